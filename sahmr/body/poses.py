"""A few named SMPL-style body poses (axis-angle, radians) used by previews and tests.

Joint indices follow SMPL's 24-joint order; ``body_pose`` excludes the root (joint 0), so joint j
lives at ``body_pose[3*(j-1):3*j]``.

Sign conventions of SMPL's local joint rotations — the kit's one statement of them (SMPL axes: x = subject's
left, y up, z forward; checked by ``tests/body/test_poses.py``):
hip flexion (thigh forward) = −x at the hip; knee bend (heel back) = +x; spine flexion (lean forward) = +x;
left arm down from the T-pose = −z at the left shoulder (right: +z); arm forward = −y (left) / +y (right);
elbow flexion bringing the forearm forward = −y (left) / +y (right); ankle dorsiflexion = −x.
"""

from __future__ import annotations

import numpy as np

from sahmr.body.model_file import SMPL_JOINT_NAMES

_J = {n: i for i, n in enumerate(SMPL_JOINT_NAMES)}


def body_pose(**rotations: tuple[float, float, float]) -> np.ndarray:
    """(69,) body pose with the given joints' axis-angle vectors, e.g. ``left_knee=(1.2, 0, 0)``."""
    pose = np.zeros(69, np.float32)
    for name, aa in rotations.items():
        j = _J[name]
        if j == 0:
            raise ValueError("the root is global_orient, not part of body_pose")
        pose[3 * (j - 1) : 3 * j] = aa
    return pose


NAMED_POSES: dict[str, np.ndarray] = {
    "t-pose": body_pose(),
    "a-pose": body_pose(left_shoulder=(0, 0, -0.8), right_shoulder=(0, 0, 0.8)),
    "sitting": body_pose(
        left_hip=(-1.5, 0, 0),
        right_hip=(-1.5, 0, 0),
        left_knee=(1.5, 0, 0),
        right_knee=(1.5, 0, 0),
        left_shoulder=(0, 0, -1.2),
        right_shoulder=(0, 0, 1.2),
    ),
    "walking": body_pose(
        left_hip=(-0.5, 0, 0),
        right_hip=(0.35, 0, 0),
        left_knee=(0.3, 0, 0),
        right_knee=(0.6, 0, 0),
        left_shoulder=(0.4, 0, -1.3),
        right_shoulder=(-0.4, 0, 1.3),
    ),
    "reaching": body_pose(right_shoulder=(0, -1.2, 0.6), left_shoulder=(0, 0, -1.2), spine2=(0.2, 0, 0)),
}
