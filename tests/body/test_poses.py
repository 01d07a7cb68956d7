"""The pose sign conventions stated in sahmr/body/poses.py hold on a real body model."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sahmr.body.model_file import SMPL_JOINT_NAMES
from sahmr.body.poses import body_pose

J = {n: i for i, n in enumerate(SMPL_JOINT_NAMES)}


@pytest.fixture(scope="module")
def joints_of(open_model):
    def run(**rot) -> np.ndarray:
        out = open_model(body_pose=torch.from_numpy(body_pose(**rot))[None])
        return out.joints[0].detach().numpy()

    return run


def test_stated_signs(joints_of):
    rest = joints_of()
    # hip flexion (thigh forward) = -x: the knee moves forward (+z)
    assert joints_of(left_hip=(-1.0, 0, 0))[J["left_knee"], 2] > rest[J["left_knee"], 2] + 0.1
    # knee bend = +x: the ankle moves backward (-z)
    assert joints_of(left_knee=(1.0, 0, 0))[J["left_ankle"], 2] < rest[J["left_ankle"], 2] - 0.1
    # spine flexion (lean forward) = +x: the head moves forward
    assert joints_of(spine1=(0.6, 0, 0))[J["head"], 2] > rest[J["head"], 2] + 0.1
    # left arm down from the T-pose = -z at the left shoulder (right: +z)
    assert joints_of(left_shoulder=(0, 0, -1.0))[J["left_wrist"], 1] < rest[J["left_wrist"], 1] - 0.1
    assert joints_of(right_shoulder=(0, 0, 1.0))[J["right_wrist"], 1] < rest[J["right_wrist"], 1] - 0.1
    # arm forward = -y (left) / +y (right)
    assert joints_of(left_shoulder=(0, -1.0, 0))[J["left_wrist"], 2] > rest[J["left_wrist"], 2] + 0.1
    assert joints_of(right_shoulder=(0, 1.0, 0))[J["right_wrist"], 2] > rest[J["right_wrist"], 2] + 0.1
    # elbow flexion bringing the forearm forward = -y (left) / +y (right)
    assert joints_of(left_elbow=(0, -1.0, 0))[J["left_wrist"], 2] > rest[J["left_wrist"], 2] + 0.05
    assert joints_of(right_elbow=(0, 1.0, 0))[J["right_wrist"], 2] > rest[J["right_wrist"], 2] + 0.05
    # ankle dorsiflexion (toes up) = -x: the foot joint rises
    assert joints_of(left_ankle=(-0.6, 0, 0))[J["left_foot"], 1] > rest[J["left_foot"], 1] + 0.01
