"""tools/orientation_error.py: the best rotation is recovered exactly, and its angle and the errors are right."""

import numpy as np
import pytest

from tests.helpers.scripts import load_script


def _tool():
    return load_script("tools/orientation_error.py")


def _rot_z(deg: float) -> np.ndarray:
    a = np.radians(deg)
    return np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1.0]])


def test_rotated_copies_give_their_angle_and_zero_error_after_rotation():
    tool = _tool()
    rng = np.random.default_rng(0)
    gt = rng.normal(size=(3, 50, 3)) * [0.2, 0.8, 0.1] + [0.0, 0.0, 3.0]
    angles = [0.0, 40.0, 120.0]
    pred = np.stack([(g - g.mean(0)) @ _rot_z(a).T + g.mean(0) + [0.1, 0.0, 0.5] for g, a in zip(gt, angles)])  # rotated + moved
    R = tool.best_rotation(pred - pred.mean(1, keepdims=True), gt - gt.mean(1, keepdims=True))
    for r, a in zip(R, angles):
        np.testing.assert_allclose(r, _rot_z(-a), atol=1e-9)  # undoes the rotation
    s = tool.orientation_stats(pred, gt)
    assert s["mpve_rotated_mm"] == pytest.approx(0.0, abs=1e-6) and s["mpve_centroid_mm"] > 50
    assert s["rotation_deg_median"] == pytest.approx(40.0) and s["rotation_deg_mean"] == pytest.approx(160.0 / 3)
    assert s["frac_over_30"] == pytest.approx(2 / 3) and s["frac_over_90"] == pytest.approx(1 / 3)
    mirrored = pred * [-1.0, 1.0, 1.0]  # a reflection is never returned as a "rotation"
    assert np.allclose(np.linalg.det(tool.best_rotation(mirrored - mirrored.mean(1, keepdims=True), gt - gt.mean(1, keepdims=True))), 1.0)


def test_facing_stats_track_a_correct_facing_and_catch_a_front_back_flip():
    tool = _tool()
    rng = np.random.default_rng(1)
    n = 40
    centre = np.c_[rng.uniform(-1, 1, n), rng.uniform(-0.5, 0.5, n), rng.uniform(2, 6, n)]  # people in front of the camera
    yaw = rng.uniform(0, 2 * np.pi, n)
    facing = np.c_[np.sin(yaw), np.zeros(n), np.cos(yaw)]  # horizontal, any direction
    eye = np.repeat(np.eye(3)[None], n, 0)
    right = tool.facing_stats(eye, facing, centre)  # prediction oriented as the GT
    assert right["facing_to_camera_corr"] == pytest.approx(1.0) and right["front_back_agreement"] == 1.0
    flip = np.repeat(np.diag([-1.0, 1.0, -1.0])[None], n, 0)  # 180 deg about the vertical: front <-> back
    wrong = tool.facing_stats(flip, facing, centre)
    assert wrong["front_back_agreement"] == 0.0 and wrong["front_back_frames"] == right["front_back_frames"] > 0
    assert wrong["facing_to_camera_corr"] < -0.9


def test_orientation_stats_adds_the_facing_numbers_when_given_the_facing():
    tool = _tool()
    rng = np.random.default_rng(2)
    gt = rng.normal(size=(6, 30, 3)) * [0.2, 0.8, 0.1] + [0.0, 0.0, 4.0]
    facing = np.tile([[0.0, 0.0, -1.0]], (6, 1))  # everyone faces the camera
    s = tool.orientation_stats(gt, gt, facing)
    assert s["front_back_agreement"] == 1.0 and s["front_back_frames"] == 6 and s["rotation_deg_median"] == pytest.approx(0.0, abs=1e-5)
    assert "front_back_agreement" not in tool.orientation_stats(gt, gt)
