"""Procedural scenes: exact box SDF, union, generator invariants (placement, affordances), determinism."""

import json
import math

import numpy as np
import pytest
import trimesh

from sahmr.data.synth.furniture import SceneParams
from sahmr.data.synth.layout import generate_scene
from sahmr.data.synth.scan import sample_box_faces
from sahmr.data.synth.scenes import (
    AFFORDANCE_KINDS,
    FURNITURE_KINDS,
    Affordance,
    Box,
    Scene,
    SceneObject,
    box_mesh_arrays,
    box_sdf,
    scene_from_dict,
    scene_to_dict,
    union_sdf,
)

SEEDS = range(24)


@pytest.fixture(scope="module")
def scenes():
    return [generate_scene(np.random.default_rng(s), scene_id=f"s{s}") for s in SEEDS]


def _random_boxes(rng, n):
    return [Box(rng.uniform(-1, 1, 3), rng.uniform(0.05, 0.6, 3), yaw=rng.uniform(-math.pi, math.pi)) for _ in range(n)]


def _mesh(boxes):
    v, f, _, _ = box_mesh_arrays(boxes)
    return trimesh.Trimesh(v, f, process=False)


# ------------------------------------------------------------------------------------------------ box SDF


def test_box_mesh_is_closed_and_outward():
    boxes = _random_boxes(np.random.default_rng(0), 3)
    for b in boxes:
        m = _mesh([b])
        assert m.is_watertight and m.is_winding_consistent
        assert m.volume == pytest.approx(8 * np.prod(b.half), rel=1e-9)  # positive volume: outward normals


def test_box_sdf_matches_exact_distance_to_the_box_surface():
    rng = np.random.default_rng(1)
    for box in _random_boxes(rng, 5):
        pts = box.centre + rng.uniform(-1.5, 1.5, (400, 3)) * (box.half + 0.3)
        d = box.sdf(pts)
        _, dist, _ = trimesh.proximity.closest_point(_mesh([box]), pts)  # exact point-triangle distances
        local = box.to_local(pts)
        inside = (np.abs(local) < box.half).all(1)
        assert inside.any() and (~inside).any()
        np.testing.assert_array_equal(d < 0, inside)
        np.testing.assert_allclose(np.abs(d), dist, atol=1e-6, rtol=0)


def test_box_sdf_against_sampled_surface_points():
    """Brute force over dense surface samples: |sdf| equals the nearest-sample distance up to the sampling pitch."""
    rng = np.random.default_rng(2)
    box = Box((0.2, -0.1, 0.5), (0.3, 0.2, 0.25), yaw=0.7)
    surf, _ = sample_box_faces(box, rng, spacing=0.005)
    pts = box.centre + rng.uniform(-1, 1, (300, 3)) * (box.half + 0.2)
    nearest = np.sqrt(((pts[:, None] - surf[None]) ** 2).sum(-1)).min(1)
    d = box.sdf(pts)
    assert (np.abs(d) <= nearest + 1e-12).all()  # the exact distance never exceeds any sample's
    assert (nearest - np.abs(d) <= 0.005 * math.sqrt(2) / 2 + 1e-9).all()  # within half a cell diagonal


def test_union_sdf_is_min_and_exact_outside():
    rng = np.random.default_rng(3)
    boxes = _random_boxes(rng, 4)
    c = np.array([b.centre for b in boxes])
    h = np.array([b.half for b in boxes])
    y = np.array([b.yaw for b in boxes])
    pts = rng.uniform(-2, 2, (3000, 3))
    per_box = box_sdf(pts, c, h, y)
    u = union_sdf(pts, c, h, y)
    np.testing.assert_array_equal(u, per_box.min(1))
    outside = u > 0
    _, dist, _ = trimesh.proximity.closest_point(_mesh(boxes), pts[outside])
    np.testing.assert_allclose(u[outside], dist, atol=1e-6, rtol=0)
    inside_any = (per_box < 0).any(1)
    np.testing.assert_array_equal(u < 0, inside_any)
    # chunking does not change results
    big = rng.uniform(-2, 2, (70000, 3))
    np.testing.assert_array_equal(union_sdf(big, c, h, y)[:5000], box_sdf(big[:5000], c, h, y).min(1))
    assert np.isinf(union_sdf(pts, np.zeros((0, 3)), np.zeros((0, 3)), np.zeros(0))).all()


def test_box_validation_errors():
    with pytest.raises(ValueError, match="half"):
        Box((0, 0, 0), (0.1, 0.0, 0.1))
    with pytest.raises(ValueError, match="texture"):
        Box((0, 0, 0), (0.1, 0.1, 0.1), texture="marble")
    with pytest.raises(ValueError, match="colour"):
        Box((0, 0, 0), (0.1, 0.1, 0.1), colour=(255, 0, 0))
    with pytest.raises(ValueError, match="kind"):
        SceneObject("lamp", [Box((0, 0, 0), (0.1, 0.1, 0.1))])


# -------------------------------------------------------------------------------------------- generator


def test_rooms_match_the_parameters(scenes):
    p = SceneParams()
    for s in scenes:
        size = s.room_max - s.room_min
        assert p.room_size[0] <= size[0] <= p.room_size[1] and p.room_size[0] <= size[1] <= p.room_size[1]
        assert s.room_min[2] == 0.0 and p.wall_height[0] <= size[2] <= p.wall_height[1]
        kinds = [o.kind for o in s.objects]
        assert kinds[0] == "floor" and kinds.count("floor") == 1
        assert kinds.count("wall") in (3, 4) and kinds.count("wall") + len(s.open_sides) == 4
        n_furn = len(s.furniture)
        assert p.n_items[0] <= n_furn <= p.n_items[1]
        # the floor's top is z = 0
        floor = s.objects[0].boxes[0]
        assert floor.centre[2] + floor.half[2] == pytest.approx(0.0, abs=1e-12)
    # variety over seeds: every furniture kind and texture kind appears
    all_kinds = {o.kind for s in scenes for o in s.furniture}
    assert all_kinds == set(FURNITURE_KINDS)
    assert {b.texture for s in scenes for b in s.boxes} == {"plain", "checker", "stripes", "wood"}
    assert len({tuple(np.round(b.colour, 3)) for s in scenes for b in s.boxes}) > 100


def test_furniture_stands_on_the_floor_inside_the_room_without_overlap(scenes):
    p = SceneParams()
    for s in scenes:
        fidx = s.furniture_indices
        for i in fidx:
            corners = np.concatenate([b.corners() for b in s.objects[i].boxes])
            assert corners[:, 2].min() == pytest.approx(0.0, abs=1e-9)  # on the floor
            assert (corners[:, :2] >= s.room_min[:2] - 1e-6).all() and (corners[:, :2] <= s.room_max[:2] + 1e-6).all()
            # nothing of the scene except the object itself and the floor is inside it
            others = [j for j in range(len(s.objects)) if j not in (i, 0)]
            pts = np.concatenate([sample_box_faces(b, np.random.default_rng(0), 0.02)[0] for b in s.objects[i].boxes])
            d = s.sdf(pts, object_indices=others)
            assert d.min() > 0.0
            # pairwise with furniture: at least the clearance apart (minus the sampling pitch)
            furn_others = [j for j in fidx if j != i]
            if furn_others:
                assert s.sdf(pts, object_indices=furn_others).min() >= p.clearance - 0.02
        # boxes of different objects never overlap (only touch): SDF of the union is exact off the contacts
        for i, obj in enumerate(s.objects):
            for b in obj.boxes:
                inner = b.centre + (np.random.default_rng(1).uniform(-1, 1, (64, 3)) * b.half * 0.999) @ b.rotation.T
                others = [j for j in range(len(s.objects)) if j != i]
                assert s.sdf(inner, object_indices=others).min() >= -1e-9


def test_every_item_has_a_valid_affordance(scenes):
    p = SceneParams()
    height_range = {"chair": p.chair_seat_height, "sofa": p.sofa_seat_height, "bed": p.bed_height, "table": p.table_height}
    for s in scenes:
        for i in s.furniture_indices:
            obj = s.objects[i]
            assert obj.affordances, f"{s.scene_id}: {obj.kind} without affordance"
            for a in obj.affordances:
                assert a.kind in AFFORDANCE_KINDS and a.object_index == i
                R = a.T_world_aff[:3, :3]
                np.testing.assert_allclose(R @ R.T, np.eye(3), atol=1e-12)
                assert np.linalg.det(R) == pytest.approx(1.0)
                np.testing.assert_allclose(R[:, 2], [0, 0, 1], atol=1e-12)  # z up
                assert a.height == pytest.approx(a.origin[2])
                assert a.width > 0.2 and a.depth > 0.2
                # the origin lies on the object's top surface (its front edge)
                assert abs(s.sdf(a.origin[None], object_indices=[i])[0]) < 1e-9
                assert abs(s.sdf(a.origin[None])[0]) < 1e-9
                # the usable top surface is the object's, free above (nothing on it)
                w, dpt = a.width / 2 - 0.01, a.depth - 0.01
                grid = np.array([[x, y, 0.0] for x in np.linspace(-w, w, 7) for y in np.linspace(-0.01, -dpt, 7)])
                on = a.to_world(grid)
                assert np.abs(s.sdf(on, object_indices=[i])).max() < 1e-9
                above = a.to_world(grid + [0, 0, 0.02])
                assert s.sdf(above).min() > 0.005
                below = a.to_world(grid - [0, 0, 0.005])
                assert s.sdf(below, object_indices=[i]).max() < 0
                if a.backrest is not None:  # the backrest's front face, 10 cm above the surface
                    face_pt = a.to_world([[0.0, -a.backrest, 0.1]])
                    assert abs(s.sdf(face_pt)[0]) < 1e-9
                    assert s.sdf(a.to_world([[0.0, -a.backrest - 0.02, 0.1]]))[0] < 0
                if a.access > 0:  # the reserved zone in front is free floor (up to 1.5 m high)
                    zone = np.array([[x, y, z] for x in np.linspace(-w, w, 5) for y in np.linspace(0.03, a.access, 5) for z in (0.05, 0.5, 1.5)])
                    zone[:, 2] -= a.height
                    assert s.sdf(a.to_world(zone), object_indices=s.furniture_indices).min() > 0.02
            for a in obj.affordances:
                if a.kind in ("sit", "lie", "lean") and obj.kind in height_range:
                    lo, hi = height_range[obj.kind]
                    assert lo - 1e-9 <= a.height <= hi + 1e-9, (obj.kind, a.kind, a.height)
                if obj.kind == "step" and a.kind == "stand":
                    rise = a.height / (round(a.height / 0.175) or 1)
                    assert p.step_rise[0] - 0.03 <= rise <= p.step_rise[1] + 0.03
                if a.kind in ("stand", "lie"):
                    assert a.foot_height == pytest.approx(a.height)
                else:
                    assert 0.0 <= a.foot_height < a.height
    # sit with a backrest exists for chairs/sofas; beds can be lain on with the headboard at the back
    kinds = {(s.objects[a.object_index].kind, a.kind) for s in scenes for a in s.affordances}
    for pair in [("chair", "sit"), ("sofa", "sit"), ("bed", "lie"), ("table", "lean"), ("step", "stand"), ("box", "sit"), ("floor", "stand")]:
        assert pair in kinds


def test_step_and_sit_frames_point_away_from_backrests(scenes):
    for s in scenes:
        for a in s.affordances:
            obj = s.objects[a.object_index]
            if obj.kind in ("chair", "sofa") and a.kind == "sit":
                # walking forward (+y) from the edge leaves the object; backward runs into the backrest
                assert s.sdf(a.to_world([[0, 0.05, 0.05]]), object_indices=[a.object_index])[0] > 0.04
                assert s.sdf(a.to_world([[0, -a.backrest - 0.01, 0.05]]), object_indices=[a.object_index])[0] < 0


def test_stand_points_are_on_free_floor(scenes):
    rng = np.random.default_rng(0)
    for s in scenes[:8]:
        pts = s.sample_stand_points(rng, 50, clearance=0.35)
        assert len(pts) == 50 and (pts[:, 2] == 0).all()
        assert (s.footprint_distance(pts[:, :2]) >= 0.35).all()
        # a vertical body-sized column above each point is free
        col = np.concatenate([pts + [0, 0, z] for z in (0.1, 0.9, 1.7)])
        assert s.sdf(col, object_indices=range(1, len(s.objects))).min() >= 0.35 - 1e-9
        assert np.abs(s.sdf(pts)).max() < 1e-12  # on the floor surface


def test_same_seed_same_scene_and_json_round_trip():
    a = generate_scene(np.random.default_rng(7), scene_id="x")
    b = generate_scene(np.random.default_rng(7), scene_id="x")
    c = generate_scene(np.random.default_rng(8), scene_id="x")
    assert a.content_hash() == b.content_hash() != c.content_hash()
    d = json.loads(json.dumps(scene_to_dict(a)))
    back = scene_from_dict(d)
    assert back.content_hash() == a.content_hash()
    with pytest.raises(ValueError, match="objects"):
        scene_from_dict({"scene_id": "x", "room_min": [0, 0, 0], "room_max": [1, 1, 1]})


def test_scene_mesh_and_small_params():
    s = generate_scene(np.random.default_rng(4), SceneParams(room_size=(4.0, 4.0), n_items=(3, 3)), "small")
    assert len(s.furniture) == 3
    m = s.mesh()
    assert len(m.faces) == 12 * len(s.boxes) and m.visual.face_colors.shape == (len(m.faces), 4)
    assert (m.metadata["face_object"][:12] == 0).all()
    lo, hi = s.bounds()
    assert lo[2] < 0 < hi[2]


def test_affordance_validation():
    with pytest.raises(ValueError, match="kind"):
        Affordance("jump", np.eye(4), 1, 1, 0)
    with pytest.raises(ValueError, match="T_world_aff"):
        Affordance("sit", np.eye(3), 1, 1, 0)
    with pytest.raises(ValueError, match="room_max"):
        Scene("bad", [], (0, 0, 0), (0, 1, 1))
