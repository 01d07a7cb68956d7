"""Scene SDF grids: node values = analytic SDF, trilinear query error bound, layout, determinism."""

import hashlib
import math

import numpy as np
import pytest

from sahmr.data.synth.layout import generate_scene
from sahmr.data.synth.sdf import grid_dims, scene_sdf_grid
from sahmr.geometry.sdf import load_sdf_npz, query_sdf, save_sdf_npz

SPACING = 0.05


@pytest.fixture(scope="module")
def scene():
    return generate_scene(np.random.default_rng(21), scene_id="sdf")


@pytest.fixture(scope="module")
def grid(scene):
    return scene_sdf_grid(scene, spacing=SPACING, margin=0.2)


def test_grid_layout(scene, grid):
    assert grid.values.dtype == np.float32
    np.testing.assert_allclose(grid.min_world, scene.room_min - 0.2)
    assert (grid.max_world >= scene.room_max + 0.2 - 1e-9).all()
    assert (grid.max_world < scene.room_max + 0.2 + SPACING).all()
    np.testing.assert_allclose(grid.spacing, SPACING, rtol=1e-12)
    lo, hi, dims = grid_dims(scene, SPACING, 0.2)
    assert tuple(dims) == grid.dims


def test_nodes_equal_the_analytic_sdf(scene, grid):
    rng = np.random.default_rng(0)
    idx = [rng.integers(0, d, 20000) for d in grid.dims]
    nodes = np.stack([grid.min_world[a] + idx[a] * SPACING for a in range(3)], 1)
    vals = grid.values[idx[0], idx[1], idx[2]]
    np.testing.assert_array_equal(vals, scene.sdf(nodes).astype(np.float32))
    assert (vals < 0).any() and (vals > 0).any()


def test_query_matches_the_analytic_sdf_within_the_interpolation_bound(scene, grid):
    """A 1-Lipschitz function's trilinear interpolant is a convex combination of node values, each within
    |node - p| <= sqrt(3)/2 h of f(p) at the worst point (the cell centre): |error| <= sqrt(3)/2 h."""
    rng = np.random.default_rng(1)
    p = rng.uniform(grid.min_world, grid.max_world, (100000, 3))
    err = np.abs(query_sdf(grid, p) - scene.sdf(p))
    assert err.max() <= math.sqrt(3) / 2 * SPACING + 1e-6
    # where the SDF is locally one plane (most of space), interpolation is exact up to float32
    assert np.median(err) < 1e-6
    near = np.abs(scene.sdf(p)) < 0.1
    assert np.percentile(err[near], 90) < 0.2 * SPACING


def test_block_size_does_not_change_the_grid(scene, grid):
    other = scene_sdf_grid(scene, spacing=SPACING, margin=0.2, block=7)
    np.testing.assert_array_equal(other.values, grid.values)


def test_grid_is_deterministic_and_round_trips(scene, grid, tmp_path):
    again = scene_sdf_grid(generate_scene(np.random.default_rng(21), scene_id="sdf"), spacing=SPACING)
    h = lambda g: hashlib.sha256(g.values.tobytes()).hexdigest()  # noqa: E731
    assert h(again) == h(grid)
    back = load_sdf_npz(save_sdf_npz(tmp_path / "g.npz", grid))
    np.testing.assert_array_equal(back.values, grid.values)


def test_fine_grid_sign_at_furniture(scene):
    """At 2 cm the grid is negative inside the thick furniture (sofas, beds, crates, steps) and positive just
    above every top surface."""
    g = scene_sdf_grid(scene, spacing=0.02, margin=0.1)
    n_thick = 0
    for a in scene.affordances:
        kind = scene.objects[a.object_index].kind
        if kind == "floor":  # furniture stands on it
            continue
        centre = [0.0, -min(a.depth, 0.3) / 2]
        above = a.to_world([[*centre, 0.05]])
        assert query_sdf(g, above)[0] == pytest.approx(scene.sdf(above)[0], abs=1e-5)
        assert query_sdf(g, above)[0] > 0.03
        if kind in ("sofa", "bed", "box", "step") and a.height >= 0.15:
            inside = a.to_world([[*centre, -0.06]])
            assert query_sdf(g, inside)[0] < -0.03
            n_thick += 1
    assert n_thick > 0


def test_argument_errors(scene):
    with pytest.raises(ValueError, match="spacing"):
        scene_sdf_grid(scene, spacing=0.0)


def test_query_grid_equals_query_sdf_bit_for_bit():
    """The placement's numpy trilinear lookup is query_sdf's arithmetic (border clamp included)."""
    from sahmr.data.synth.sdf import query_grid
    from sahmr.geometry.sdf import query_sdf

    scene = generate_scene(np.random.default_rng(4), scene_id="q")
    grid = scene_sdf_grid(scene, spacing=0.05)
    pts = np.random.default_rng(0).uniform(grid.min_world - 0.3, grid.max_world + 0.3, (20000, 3)).astype(np.float32)
    pts[:3] = [grid.min_world, grid.max_world, (grid.min_world + grid.max_world) / 2]
    np.testing.assert_array_equal(query_grid(grid, pts), np.asarray(query_sdf(grid, pts)))
