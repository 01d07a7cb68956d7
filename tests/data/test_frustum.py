"""CameraFrustumIndex == frustum_points_cam, bit for bit and in order, for many boxes of one camera."""

import numpy as np
import pytest

from sahmr.data.dataset import HumanSceneDataset
from sahmr.data.format import open_dataset
from sahmr.data.frustum import CameraFrustumIndex, frustum_points_cam
from tests.helpers.tiny_dataset import make_tiny_dataset


def _camera(rng):
    f = rng.uniform(300, 700)
    K = np.array([[f, 0, rng.uniform(200, 300)], [0, f, rng.uniform(150, 230)], [0, 0, 1.0]])
    a = rng.uniform(-np.pi, np.pi)
    R = np.array([[np.cos(a), 0, np.sin(a)], [0, 1, 0], [-np.sin(a), 0, np.cos(a)]])  # yaw about camera y
    T = np.eye(4)
    T[:3, :3] = R
    T[:3, 3] = rng.uniform(-1, 1, 3)
    return K, T


def _boundary_points(K, T, box, z):
    """World points whose camera-frame projection lies exactly on the box edges and corners."""
    l, t, r, b = box
    uv = np.array([[l, t], [r, t], [l, b], [r, b], [l, (t + b) / 2], [r, (t + b) / 2], [(l + r) / 2, t], [(l + r) / 2, b]])
    rays = np.c_[(uv - K[:2, 2]) / K[[0, 1], [0, 1]], np.ones(len(uv))]
    cam = (rays[:, None, :] * np.asarray(z)[None, :, None]).reshape(-1, 3)
    Tinv = np.linalg.inv(T)
    return cam @ Tinv[:3, :3].T + Tinv[:3, 3]


def test_index_equals_the_direct_rule_for_random_and_boundary_points():
    rng = np.random.default_rng(3)
    for _trial in range(4):
        K, T = _camera(rng)
        boxes = []
        for _ in range(25):
            c = rng.uniform([-100, -100], [600, 480])
            side = rng.uniform(20, 400)
            boxes.append(np.r_[c - side / 2, c + side / 2])
        boxes.append(np.array([0.0, 0.0, 512.0, 384.0]))
        Tinv = np.linalg.inv(T)
        cam = np.c_[rng.uniform(-8, 8, (40000, 2)), rng.uniform(-3, 15, 40000)]
        pts = [cam @ Tinv[:3, :3].T + Tinv[:3, 3]]
        pts += [_boundary_points(K, T, bx, [0.5, 1.0, 3.3, 12.5]) for bx in boxes[:5]]
        P = np.ascontiguousarray(np.concatenate(pts).astype(np.float32).T)
        index = CameraFrustumIndex(P, K, T)
        for bx in boxes:
            want = frustum_points_cam(None, K, T, bx, points_world_T=P)
            got = index.query(bx)
            assert got.dtype == np.float32 and got.shape == want.shape
            np.testing.assert_array_equal(got, want)
        # a box outside the field of view and a degenerate one give what the rule gives (nothing / a line)
        for bx in (np.array([5000.0, 5000, 5100, 5100]), np.array([100.0, 100, 100, 300])):
            np.testing.assert_array_equal(index.query(bx), frustum_points_cam(None, K, T, bx, points_world_T=P))


def test_index_keeps_the_depth_range_and_rejects_bad_points():
    K = np.array([[100.0, 0, 50], [0, 100.0, 50], [0, 0, 1]])
    T = np.eye(4)
    P = np.ascontiguousarray(np.array([[0, 0, 0.49], [0, 0, 0.5], [0, 0, 12.5], [0, 0, 12.51], [0, 0, 3.0]], np.float32).T)
    index = CameraFrustumIndex(P, K, T, 0.5, 12.5)
    got = index.query([0.0, 0.0, 100.0, 100.0])
    np.testing.assert_array_equal(got[:, 2], np.float32([0.5, 12.5, 3.0]))  # original order, ends inclusive
    with pytest.raises(ValueError, match=r"\(3, M\) float32"):
        CameraFrustumIndex(P.T, K, T)
    with pytest.raises(ValueError, match=r"\(3, M\) float32"):
        CameraFrustumIndex(P.astype(np.float64), K, T)


def test_dataset_items_use_exactly_the_frustum_rule(tmp_path):
    root = tmp_path / "ds"
    make_tiny_dataset(root, splits={"train": 6})
    src = open_dataset(root)
    arrays = src.split("train")
    for augment in (True, False):
        ds = HumanSceneDataset(root, "train", 32, train_augment=augment, seed=2)
        for i in range(len(ds)):
            it = ds[i]
            box = ds.crop_box(i, ds.item_rng(i))
            pw = src.scene_points(str(arrays["scene_id"][i]))
            want = frustum_points_cam(pw, np.float32(arrays["K"][i]), np.float32(arrays["T_world_to_cam"][i]), box)
            np.testing.assert_array_equal(it["points_cam"].numpy(), want)
            assert len(want) > 0
