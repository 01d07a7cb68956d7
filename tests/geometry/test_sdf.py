"""SDF grid: trilinear query semantics (vs grid_sample and an analytic box), file formats, errors."""

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from sahmr.geometry.sdf import SDFGrid, load_original_sdf, load_sdf_npz, query_sdf, save_sdf_npz

HALF = np.array([0.5, 0.4, 0.3])  # half extents of the analytic box, centred at the origin


def box_sdf(p: np.ndarray) -> np.ndarray:
    """Exact signed distance to the axis-aligned box [-HALF, HALF] (negative inside)."""
    q = np.abs(p) - HALF
    return np.linalg.norm(np.maximum(q, 0.0), axis=-1) + np.minimum(q.max(-1), 0.0)


def box_grid(dtype=np.float64) -> SDFGrid:
    """[-1, 1]^3 sampled every 0.1 m (21 nodes per axis)."""
    axis = np.linspace(-1.0, 1.0, 21)
    xyz = np.stack(np.meshgrid(axis, axis, axis, indexing="ij"), -1)
    return SDFGrid(box_sdf(xyz).astype(dtype), [-1.0] * 3, [1.0] * 3)


def grid_sample_reference(grid: SDFGrid, points: np.ndarray) -> np.ndarray:
    """The original evaluation's query: grid_sample on (1,1,Dx,Dy,Dz) with coordinates reversed to (z,y,x)."""
    vol = torch.from_numpy(grid.values)[None, None]
    g = (points - grid.min_world) / (grid.max_world - grid.min_world) * 2 - 1
    g = torch.from_numpy(np.ascontiguousarray(g[..., ::-1])).to(vol.dtype).reshape(1, 1, 1, -1, 3)
    out = F.grid_sample(vol, g, mode="bilinear", padding_mode="border", align_corners=True)
    return out.reshape(points.shape[:-1]).numpy()


def random_grid(rng, dims=(5, 7, 6), dtype=np.float64) -> SDFGrid:
    return SDFGrid(rng.standard_normal(dims).astype(dtype), [-1.0, 0.5, -2.0], [1.5, 1.1, 0.25])


def test_matches_grid_sample_float64_inside_and_outside():
    rng = np.random.default_rng(0)
    grid = random_grid(rng)
    span = grid.max_world - grid.min_world
    # a third of the points outside the box on some axis -> border clamping
    points = grid.min_world - 0.3 * span + rng.uniform(size=(4, 500, 3)) * 1.6 * span
    ours = query_sdf(grid, points)
    assert ours.shape == (4, 500) and ours.dtype == np.float64
    np.testing.assert_allclose(ours, grid_sample_reference(grid, points), rtol=0, atol=1e-9)


def test_matches_grid_sample_float32_and_across_chunks():
    rng = np.random.default_rng(1)
    grid = random_grid(rng, dims=(9, 4, 11), dtype=np.float32)
    points = (grid.min_world + rng.uniform(-0.1, 1.1, size=(20_000, 3)) * (grid.max_world - grid.min_world)).astype(np.float32)
    ours = query_sdf(grid, points)  # several chunks
    assert ours.dtype == np.float32 and ours.shape == (20_000,)
    np.testing.assert_allclose(ours, grid_sample_reference(grid, points), rtol=0, atol=2e-5)


def test_exact_at_nodes_and_in_linear_cells_of_a_box():
    grid = box_grid()
    nodes = np.array([[0.2, 0.1, 0.0], [0.8, 0.6, 0.5], [-1.0, -1.0, -1.0], [0.5, 0.0, 0.0], [1.0, 1.0, 1.0]])
    np.testing.assert_allclose(query_sdf(grid, nodes), box_sdf(nodes), atol=1e-12)
    # Cells whose 8 corners lie where the box SDF is one linear function (a single face is closest),
    # so trilinear interpolation is exact there.
    rng = np.random.default_rng(2)
    cells_lo = np.array([[0.3, 0.0, 0.0], [0.6, -0.1, 0.0], [0.0, 0.0, -0.4], [-0.1, 0.2, -0.1], [0.0, -0.8, 0.1]])
    points = cells_lo[:, None, :] + rng.uniform(0, 0.1, size=(5, 20, 3))
    np.testing.assert_allclose(query_sdf(grid, points), box_sdf(points), atol=1e-12)


def test_border_clamping_outside_the_box():
    grid = box_grid()
    far = np.array([[1.5, 0.05, 0.05], [-3.0, 0.0, 0.0], [0.0, 0.0, 9.0]])
    # clamped to the box border: (1.0, .05, .05), (-1, 0, 0), (0, 0, 1)
    np.testing.assert_allclose(query_sdf(grid, far), [0.5, 0.5, 0.7], atol=1e-12)


def test_torch_input_keeps_library_shape_and_is_differentiable():
    grid = box_grid(np.float32)
    p = torch.tensor([[[0.65, 0.05, 0.05]], [[0.05, 0.05, -0.35]]], dtype=torch.float64, requires_grad=True)
    s = query_sdf(grid, p)
    assert isinstance(s, torch.Tensor) and s.shape == (2, 1) and s.dtype == torch.float64
    s.sum().backward()
    # +x face: s = x - 0.5; below the -z face: s = -z - 0.3
    np.testing.assert_allclose(p.grad.numpy().reshape(2, 3), [[1, 0, 0], [0, 0, -1]], atol=1e-6)
    np.testing.assert_allclose(s.detach().numpy().ravel(), [0.15, 0.05], atol=1e-6)


def test_nan_points_give_nan_without_crashing():
    grid = box_grid()
    out = query_sdf(grid, np.array([[np.nan, 0.0, 0.0], [0.65, 0.05, 0.05]]))
    assert np.isnan(out[0]) and abs(out[1] - 0.15) < 1e-12


def test_rejects_bad_points_and_bad_grids():
    grid = box_grid()
    with pytest.raises(ValueError, match=r"\(\.\.\., 3\)"):
        query_sdf(grid, np.zeros((4, 2)))
    with pytest.raises(ValueError, match="float"):
        query_sdf(grid, np.zeros((4, 3), dtype=np.int64))
    with pytest.raises(ValueError, match="values"):
        SDFGrid(np.zeros((4, 4)), [0, 0, 0], [1, 1, 1])
    with pytest.raises(ValueError, match="max_world"):
        SDFGrid(np.zeros((4, 4, 4), np.float32), [0, 0, 0], [1, 0, 1])
    with pytest.raises(ValueError, match="non-finite"):
        SDFGrid(np.full((2, 2, 2), np.nan, np.float32), [0, 0, 0], [1, 1, 1])


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.gpu
def test_cuda_matches_cpu():
    rng = np.random.default_rng(3)
    grid = random_grid(rng, dtype=np.float32)
    pts = torch.from_numpy(rng.uniform(-2, 2, size=(10_000, 3)).astype(np.float32))
    np.testing.assert_allclose(query_sdf(grid, pts.cuda()).cpu().numpy(), query_sdf(grid, pts).numpy(), atol=1e-5)


# --------------------------------------------------------------------------------------------- files


def write_original(tmp_path, grid: SDFGrid, name="scan_camcoord_mysdf", meta=None, values=None):
    dim = grid.dims[0]
    meta = meta if meta is not None else {"min": grid.min_world.tolist(), "max": grid.max_world.tolist(), "dim": dim}
    (tmp_path / f"{name}.json").write_text(json.dumps(meta))
    np.save(tmp_path / f"{name}.npy", grid.values.reshape(-1) if values is None else values)
    return tmp_path / f"{name}.json"


def test_load_original_pair(tmp_path):
    grid = box_grid(np.float32)
    loaded = load_original_sdf(write_original(tmp_path, grid))
    np.testing.assert_array_equal(loaded.values, grid.values)
    assert loaded.values.dtype == np.float32 and loaded.dims == (21, 21, 21)
    np.testing.assert_array_equal(loaded.min_world, grid.min_world)
    # PROX naming: vicon.json + vicon_sdf.npy
    (tmp_path / "vicon.json").write_text(json.dumps({"min": [-1] * 3, "max": [1] * 3, "dim": 21}))
    np.save(tmp_path / "vicon_sdf.npy", grid.values)
    np.testing.assert_array_equal(load_original_sdf(tmp_path / "vicon.json").values, grid.values)


@pytest.mark.parametrize(
    "meta, values, match",
    [
        ({"min": [0, 0, 0], "max": [1, 1, 1]}, None, r"missing field.*'dim'"),
        ({"min": [0, 0], "max": [1, 1, 1], "dim": 21}, None, "field 'min'"),
        ({"min": [0, 0, 0], "max": [1, 1, 1], "dim": 2.5}, None, "field 'dim'"),
        ({"min": [0, 0, 0], "max": [0, 1, 1], "dim": 21}, None, "field 'max'"),
        ({"min": [0, 0, 0], "max": [1, 1, 1], "dim": 20}, None, r"dim\*\*3 = 8000"),
        ([1, 2, 3], None, "JSON object"),
        (None, np.array(["a"] * 9261), "numeric"),
    ],
)
def test_load_original_errors_name_file_and_field(tmp_path, meta, values, match):
    path = write_original(tmp_path, box_grid(np.float32), meta=meta, values=values)
    with pytest.raises(ValueError, match=match) as err:
        load_original_sdf(path)
    assert "scan_camcoord_mysdf" in str(err.value)


def test_npz_round_trip_is_identical(tmp_path):
    grid = random_grid(np.random.default_rng(4), dtype=np.float32)
    path = save_sdf_npz(tmp_path / "sub" / "scene.npz", grid)
    back = load_sdf_npz(path)
    assert back.values.dtype == np.float32
    np.testing.assert_array_equal(back.values, grid.values)
    np.testing.assert_array_equal(back.min_world, grid.min_world)
    np.testing.assert_array_equal(back.max_world, grid.max_world)
    assert sorted(p.name for p in (tmp_path / "sub").iterdir()) == ["scene.npz"]


def test_npz_missing_key_is_named(tmp_path):
    np.savez(tmp_path / "bad.npz", values=np.zeros((2, 2, 2), np.float32), min_world=np.zeros(3))
    with pytest.raises(ValueError, match=r"bad\.npz.*max_world"):
        load_sdf_npz(tmp_path / "bad.npz")
