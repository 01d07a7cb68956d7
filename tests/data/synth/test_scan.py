"""Scanner-like point clouds: on exposed surfaces only, density, noise bound, voxelisation, determinism."""

import hashlib

import numpy as np
import pytest

from sahmr.data.synth.layout import generate_scene
from sahmr.data.synth.scan import DEFAULT_SCAN_VOXEL, sample_box_faces, scan_points, voxel_downsample
from sahmr.data.synth.scenes import Box, Scene, SceneObject


@pytest.fixture(scope="module")
def scene():
    return generate_scene(np.random.default_rng(11), scene_id="scan")


@pytest.fixture(scope="module")
def clean(scene):
    """No noise, no voxelisation: the raw exposed-surface samples with their face normals."""
    return scan_points(scene, np.random.default_rng(0), noise_std=0.0, voxel_size=None, return_normals=True)


def _hash(a: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(a).tobytes()).hexdigest()


def test_points_lie_on_exposed_surfaces_only(scene, clean):
    pts, nrm = clean
    assert pts.dtype == np.float32 and nrm.dtype == np.float32
    d = scene.sdf(pts.astype(np.float64))
    assert np.abs(d).max() < 1e-5  # on the surface (float32 rounding)
    # nothing sits in front of a point: stepping 2 mm out along its normal reaches free space
    out = scene.sdf(pts.astype(np.float64) + 0.002 * nrm)
    assert out.min() > 0.0009
    # never under furniture: no floor samples inside the footprint of a box standing on the floor
    floor_pts = pts[np.abs(pts[:, 2]) < 1e-5]
    for i in scene.furniture_indices:
        for b in scene.objects[i].boxes:
            if b.centre[2] - b.half[2] < 1e-9:
                local = b.to_local(floor_pts.astype(np.float64))
                assert not ((np.abs(local[:, :2]) < b.half[:2] - 0.01).all(1)).any()
    # only the room's inner side is scanned: no wall outer faces, no floor underside
    assert (pts[:, 2] >= -1e-5).all()
    assert (pts[:, :2] >= scene.room_min[:2] - 1e-5).all() and (pts[:, :2] <= scene.room_max[:2] + 1e-5).all()


def test_density_is_one_point_per_spacing_squared(scene, clean):
    pts, _ = clean
    rng = np.random.default_rng(0)
    centre = scene.sample_stand_points(rng, 1, clearance=0.8)[0]  # a free 1 x 1 m floor patch
    patch = (np.abs(pts[:, 0] - centre[0]) < 0.5) & (np.abs(pts[:, 1] - centre[1]) < 0.5) & (np.abs(pts[:, 2]) < 1e-5)
    assert patch.sum() == pytest.approx(1 / 0.02**2, rel=0.05)


def test_noise_is_bounded_and_scanner_like(scene):
    noisy = scan_points(scene, np.random.default_rng(0), noise_std=0.004, voxel_size=None)
    d = scene.sdf(noisy.astype(np.float64))
    assert np.abs(d).max() <= 2.5 * 0.004 + 1e-5  # within 1 cm of the surface (truncated at 2.5 sigma)
    assert 0.002 < d.std() < 0.005  # and really noisy
    assert (d < -1e-4).mean() > 0.3  # on both sides


def test_default_scan_is_voxelised_and_room_sized(scene):
    pts = scan_points(scene, np.random.default_rng(0))
    assert 50_000 <= len(pts) <= 300_000
    keys = np.floor(pts.astype(np.float64) / DEFAULT_SCAN_VOXEL).astype(np.int64)
    assert len(np.unique(keys, axis=0)) == len(pts)  # one point per voxel
    assert np.abs(scene.sdf(pts.astype(np.float64))).max() <= 0.01 + 1e-5  # representatives stay on the surface
    coarse = scan_points(scene, np.random.default_rng(0), voxel_size=0.05)
    assert len(coarse) < 0.6 * len(pts)
    keys = np.floor(coarse.astype(np.float64) / 0.05).astype(np.int64)
    assert len(np.unique(keys, axis=0)) == len(coarse)


def test_scan_is_deterministic(scene):
    a = scan_points(scene, np.random.default_rng(5))
    b = scan_points(scene, np.random.default_rng(5))
    c = scan_points(scene, np.random.default_rng(6))
    assert _hash(a) == _hash(b) != _hash(c)


def test_hidden_faces_are_dropped_in_a_two_box_scene():
    floor = SceneObject("floor", [Box((0, 0, -0.05), (1, 1, 0.05))])
    crate = SceneObject("box", [Box((0, 0, 0.25), (0.25, 0.25, 0.25))])
    s = Scene("two", [floor, crate], (-1, -1, 0), (1, 1, 2))
    pts = scan_points(s, np.random.default_rng(0), spacing=0.01, noise_std=0.0, voxel_size=None)
    # floor top minus the crate footprint + crate top + 4 sides (the crate's bottom is hidden)
    expected = (4 - 0.25) + 0.25 + 4 * 0.5 * 0.5
    assert len(pts) == pytest.approx(expected / 0.01**2, rel=0.01)
    assert not ((np.abs(pts[:, 0]) < 0.24) & (np.abs(pts[:, 1]) < 0.24) & (pts[:, 2] < 0.01)).any()


def test_voxel_downsample_keeps_the_point_nearest_the_mean():
    p = np.array([[0.01, 0.01, 0.01], [0.03, 0.03, 0.03], [0.02, 0.02, 0.02], [0.07, 0.01, 0.01]])
    idx = voxel_downsample(p, 0.05)
    assert sorted(idx.tolist()) == [2, 3]
    assert len(voxel_downsample(np.zeros((0, 3)), 0.05)) == 0


def test_sample_box_faces_area_and_normals():
    box = Box((1, 2, 0.5), (0.5, 0.25, 0.1), yaw=0.3)
    pts, nrm = sample_box_faces(box, np.random.default_rng(0), 0.01)
    area = 8 * (0.5 * 0.25 + 0.5 * 0.1 + 0.25 * 0.1)
    assert len(pts) == pytest.approx(area / 0.01**2, rel=0.02)
    np.testing.assert_allclose(np.linalg.norm(nrm, axis=1), 1.0)
    np.testing.assert_allclose(box.sdf(pts), 0.0, atol=1e-12)
    np.testing.assert_allclose(box.sdf(pts + 0.01 * nrm), 0.01, atol=1e-9)


def test_scan_argument_errors(scene):
    with pytest.raises(ValueError, match="spacing"):
        scan_points(scene, np.random.default_rng(0), spacing=0)
    with pytest.raises(ValueError, match="voxel_size"):
        scan_points(scene, np.random.default_rng(0), voxel_size=-1)
