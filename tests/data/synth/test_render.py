"""Ray-casting renderer: silhouettes vs projected geometry, depth, occlusion, shading, textures, masks."""

import numpy as np
import pytest
import trimesh
from matplotlib.path import Path
from scipy.spatial import ConvexHull

from sahmr.data.synth.layout import generate_scene
from sahmr.data.synth.render import (
    BoxTexture,
    Light,
    Renderer,
    RenderItem,
    box_item,
    random_lights,
    render,
    render_mask,
    scene_render_item,
    visible_fraction,
    visible_mask,
)
from sahmr.data.synth.scenes import Box
from sahmr.geometry.camera import look_at

W, H = 160, 120
K = np.array([[150.0, 0.0, 79.5], [0.0, 150.0, 59.5], [0.0, 0.0, 1.0]])
NO_SHADOW = [Light("directional", direction=(0.3, -0.4, 1.0), intensity=0.6, cast_shadows=False)]


def _project(points, T):
    cam = points @ T[:3, :3].T + T[:3, 3]
    uv = cam @ K.T
    return uv[:, :2] / uv[:, 2:3], cam[:, 2]


def _iou(a, b):
    return np.count_nonzero(a & b) / np.count_nonzero(a | b)


def _hull_mask(uv):
    hull = uv[ConvexHull(uv).vertices]
    u, v = np.meshgrid(np.arange(W), np.arange(H))  # pixel centres at integer coordinates
    return Path(hull).contains_points(np.stack([u.ravel(), v.ravel()], 1)).reshape(H, W)


def _box(centre, half, yaw=0.0, **kw):
    return Box(centre, half, yaw=yaw, **kw)


def test_box_silhouette_matches_its_projected_hull():
    box = _box((0.2, -0.1, 0.6), (0.4, 0.3, 0.25), yaw=0.5)
    for eye in [(2.5, -2.0, 1.8), (-1.5, 2.5, 0.9), (0.3, -3.0, 2.5)]:
        T = look_at(eye, (0.0, 0.0, 0.5))
        res = render([box_item([box], 7)], K, T, W, H)
        uv, z = _project(box.corners(), T)
        assert (z > 0).all()
        expected = _hull_mask(uv)
        got = visible_mask(res, 7)
        assert np.count_nonzero(expected) > 800
        assert _iou(got, expected) > 0.98
        assert set(np.unique(res.instance)) == {0, 7}
        np.testing.assert_array_equal(render_mask(box_item([box], 1).mesh, K, T, W, H), got)


def test_depth_of_planes_is_exact():
    # a wall facing the camera at 3 m: camera z = 3 everywhere it is seen
    T = np.eye(4)
    wall = _box((0.0, 0.0, 3.05), (10.0, 10.0, 0.05))
    res = render([box_item([wall], 1)], K, T, W, H)
    assert (res.instance == 1).all()
    np.testing.assert_allclose(res.depth, 3.0, rtol=1e-6)
    np.testing.assert_allclose(res.normals, np.broadcast_to([0, 0, -1], res.normals.shape), atol=1e-6)
    # an oblique floor seen by a tilted camera: depth = camera z of the ray/plane intersection
    T = look_at((0.3, -2.0, 1.6), (0.0, 1.0, 0.0))
    floor = _box((0.0, 0.0, -0.05), (20.0, 20.0, 0.05))
    res = render([box_item([floor], 1)], K, T, W, H)
    u, v = np.meshgrid(np.arange(W), np.arange(H))
    rays_cam = np.stack([(u - K[0, 2]) / K[0, 0], (v - K[1, 2]) / K[1, 1], np.ones_like(u, dtype=float)], -1)
    R, t = T[:3, :3], T[:3, 3]
    eye = -R.T @ t
    rays_world = rays_cam @ R  # R^T d
    s = -eye[2] / rays_world[..., 2]  # z_cam = s since d_cam has z = 1
    hit = s > 0
    hit &= (np.abs(eye[None, None, :2] + s[..., None] * rays_world[..., :2]) < 20).all(-1)
    assert hit.sum() > 1000
    np.testing.assert_array_equal(res.instance == 1, hit)
    np.testing.assert_allclose(res.depth[hit], s[hit], rtol=2e-5)
    assert np.isinf(res.depth[~hit]).all()


def test_front_box_hides_the_back_box():
    T = look_at((0.0, -4.0, 1.0), (0.0, 0.0, 1.0))
    front = _box((0.0, -1.0, 1.0), (0.3, 0.1, 0.3))
    back = _box((0.1, 1.0, 1.0), (0.6, 0.1, 0.6))
    res = render([box_item([front], 1), box_item([back], 2)], K, T, W, H)
    front_sil = render_mask(box_item([front], 1).mesh, K, T, W, H)
    back_sil = render_mask(box_item([back], 2).mesh, K, T, W, H)
    overlap = front_sil & back_sil
    assert overlap.sum() > 200
    assert (res.instance[overlap] == 1).all()  # the front box wins where both project
    np.testing.assert_array_equal(visible_mask(res, 2), back_sil & ~front_sil)
    frac = visible_fraction(res, 2, back_sil)
    assert frac == pytest.approx(1 - overlap.sum() / back_sil.sum())
    assert (res.depth[overlap] < 4.0).all() and (res.depth[back_sil & ~front_sil] > 4.5).all()


def test_lit_face_is_brighter_than_unlit_face_and_shadows_darken():
    light = Light("directional", direction=(1.0, 0.0, 0.0), intensity=0.7, cast_shadows=True)
    T = look_at((2.0, -3.0, 1.5), (0.0, 0.0, 0.5))
    cube = _box((0.0, 0.0, 0.5), (0.5, 0.5, 0.5), colour=(0.8, 0.8, 0.8))
    res = render([box_item([cube], 1)], K, T, W, H, lights=[light], ambient=0.2, background=(0.0, 0.0, 0.0))
    lit = (res.instance == 1) & (res.normals[..., 0] > 0.99)  # +x face, faces the light
    unlit = (res.instance == 1) & (res.normals[..., 1] < -0.99)  # -y face, perpendicular to it
    assert lit.sum() > 300 and unlit.sum() > 300
    g = res.rgb[..., 1].astype(float)
    assert g[lit].mean() == pytest.approx(255 * 0.8 * 0.9, abs=1.0)
    assert g[unlit].mean() == pytest.approx(255 * 0.8 * 0.2, abs=1.0)
    # a box on a floor under a light from above casts a shadow on the floor
    sun = Light("directional", direction=(0.0, 0.0, 1.0), intensity=0.6)
    floor = _box((0.0, 0.0, -0.05), (5.0, 5.0, 0.05), colour=(0.5, 0.5, 0.5))
    block = _box((0.0, 0.0, 1.0), (0.3, 0.3, 0.05), colour=(0.9, 0.1, 0.1))  # a slab floating at 1 m
    T = look_at((0.0, -3.0, 3.0), (0.0, 0.0, 0.0))
    items = [box_item([floor], 1), box_item([block], 2)]
    shadowed = render(items, K, T, W, H, lights=[sun], ambient=0.3)
    no_shadow = render(items, K, T, W, H, lights=[sun], ambient=0.3, shadows=False)
    floor_px = shadowed.instance == 1
    uv, _ = _project(np.array([[x, y, 0.0] for x in (-0.3, 0.3) for y in (-0.3, 0.3)]), T)
    under = _hull_mask(uv) & floor_px
    assert under.sum() > 50
    assert (shadowed.rgb[under] < no_shadow.rgb[under]).all(-1).mean() > 0.95
    assert np.abs(shadowed.rgb[under].astype(int).mean() - 0.5 * 0.3 * 255) < 2
    open_floor = floor_px & ~_hull_mask(uv)
    assert np.abs(shadowed.rgb[open_floor].astype(int) - no_shadow.rgb[open_floor].astype(int)).max() <= 1


def test_point_light_falls_on_facing_side():
    lamp = Light("point", direction=None, position=(0.0, 0.0, 2.0), intensity=0.8)
    floor = _box((0.0, 0.0, -0.05), (5.0, 5.0, 0.05), colour=(0.5, 0.5, 0.5))
    T = look_at((0.0, -3.0, 3.0), (0.0, 0.0, 0.0))
    res = render([box_item([floor], 1)], K, T, W, H, lights=[lamp], ambient=0.0)
    # brighter right under the lamp than far away (cosine falloff only)
    uv, _ = _project(np.array([[0.0, 0.0, 0.0], [0.0, 3.0, 0.0]]), T)
    near, far = (res.rgb[int(round(v)), int(round(u)), 0] for u, v in uv)
    assert near > far + 20


def test_textures_are_procedural_and_deterministic():
    checker = _box((0.0, 0.0, -0.05), (2.0, 2.0, 0.05), colour=(0.9, 0.9, 0.9), colour2=(0.1, 0.1, 0.1), texture="checker", texture_scale=0.25)
    tex = BoxTexture([checker])
    top_faces = np.nonzero(np.arange(12) // 2 == 5)[0]  # +z faces of the box template
    pts = np.array([[0.1, 0.1, 0.0], [0.35, 0.1, 0.0], [0.35, 0.35, 0.0], [-0.1, 0.1, 0.0]])
    col = tex.albedo(np.full(len(pts), top_faces[0]), pts)
    # squares of 25 cm from the box corner (-2, -2): neighbours differ, diagonal neighbours agree
    assert not np.allclose(col[0], col[1]) and np.allclose(col[0], col[2]) and not np.allclose(col[0], col[3])
    assert {tuple(round(float(x), 3) for x in c) for c in col} == {(0.9, 0.9, 0.9), (0.1, 0.1, 0.1)}
    T = look_at((0.0, -2.0, 2.0), (0.0, 0.0, 0.0))
    a = render([box_item([checker], 1)], K, T, W, H)
    b = render([box_item([checker], 1)], K, T, W, H)
    np.testing.assert_array_equal(a.rgb, b.rgb)
    assert a.rgb.std() > 40  # the pattern is visible
    for kind in ("stripes", "wood"):
        bx = _box((0.0, 0.0, -0.05), (2.0, 2.0, 0.05), colour=(0.7, 0.5, 0.3), texture=kind, texture_scale=0.2)
        img = render([box_item([bx], 1)], K, T, W, H, lights=NO_SHADOW).rgb
        assert len(np.unique(img.reshape(-1, 3), axis=0)) > 4


def test_vertex_colours_smooth_shading_and_per_face_ids():
    sphere = trimesh.creation.icosphere(subdivisions=3, radius=0.5)
    sphere.apply_translation((0.0, 0.0, 1.0))
    vc = np.clip((sphere.vertices - sphere.vertices.min(0)) / np.ptp(sphere.vertices, 0), 0, 1)
    T = look_at((0.0, -3.0, 1.0), (0.0, 0.0, 1.0))
    res = render([RenderItem(sphere, vc, 5)], K, T, W, H, lights=NO_SHADOW)
    m = res.instance == 5
    assert m.sum() > 1000
    n = res.normals[m]
    np.testing.assert_allclose(np.linalg.norm(n, axis=1), 1.0, atol=1e-5)
    # smooth normals: many distinct directions, close to the true sphere normals
    hit = np.argwhere(m)
    d = res.depth[m]
    rays = np.stack([(hit[:, 1] - K[0, 2]) / K[0, 0], (hit[:, 0] - K[1, 2]) / K[1, 1], np.ones(len(hit))], 1)
    p_world = (rays * d[:, None] - T[:3, 3]) @ T[:3, :3]
    true_n = (p_world - [0, 0, 1]) / np.linalg.norm(p_world - [0, 0, 1], axis=1, keepdims=True)
    assert np.degrees(np.arccos(np.clip((n * true_n).sum(1), -1, 1))).mean() < 3.0
    # per-face instance ids
    ids = np.where(sphere.triangles_center[:, 0] > 0, 3, 4).astype(np.int32)
    res2 = render([(sphere, (0.5, 0.5, 0.5), ids)], K, T, W, H)
    assert set(np.unique(res2.instance)) == {0, 3, 4}
    right = res2.instance[:, W // 2 + 10 :]
    assert (right[right > 0] == 3).mean() > 0.95


def test_renderer_extra_items_and_silhouettes():
    scene = generate_scene(np.random.default_rng(3), scene_id="r")
    rng = np.random.default_rng(0)
    pos = scene.sample_stand_points(rng, 1, clearance=0.5)[0]
    body = trimesh.creation.capsule(height=1.2, radius=0.25)
    body.apply_translation(pos + [0, 0, 0.85])
    eye = np.array([scene.room_min[0] + 0.3, scene.room_min[1] + 0.3, 1.6])
    T = look_at(eye, pos + [0, 0, 0.9])
    r = Renderer([scene_render_item(scene)])
    lights = random_lights(np.random.default_rng(1), scene)
    res = r.render(K, T, W, H, extra_items=[(body, (0.8, 0.6, 0.5), 1000)], lights=lights)
    full = render([scene_render_item(scene), (body, (0.8, 0.6, 0.5), 1000)], K, T, W, H, lights=lights)
    # the fast path (per-frame layer, ROI rays, box-culled shadow rays) renders the same image
    np.testing.assert_array_equal(res.instance, full.instance)
    np.testing.assert_array_equal(res.depth, full.depth)
    assert np.abs(res.rgb.astype(int) - full.rgb.astype(int)).max() <= 1
    sil = res.silhouettes[0]
    np.testing.assert_array_equal(sil, render_mask(body, K, T, W, H))
    vis = visible_mask(res, 1000)
    assert vis.sum() > 100 and not (vis & ~sil).any()
    assert 0 < visible_fraction(res, 1000, sil) <= 1
    # scene object ids: floor = 1, walls 2.., furniture after
    ids = set(np.unique(res.instance)) - {0, 1000}
    assert 1 in ids and ids <= set(range(1, len(scene.objects) + 1))
    # a moved body is re-built (the BVH cache is keyed by geometry), the same body again reuses it
    moved = body.copy()
    moved.apply_translation((0.3, 0.0, 0.0))
    res_moved = r.render(K, T, W, H, extra_items=[(moved, (0.8, 0.6, 0.5), 1000)])
    np.testing.assert_array_equal(res_moved.silhouettes[0], render_mask(moved, K, T, W, H))
    assert not np.array_equal(res_moved.silhouettes[0], sil)
    again = r.render(K, T, W, H, extra_items=[(body.copy(), (0.8, 0.6, 0.5), 1000)], lights=lights)
    np.testing.assert_array_equal(again.rgb, res.rgb)
    # sensor noise is seeded
    n1 = r.render(K, T, W, H, rng=np.random.default_rng(4), noise_std=3.0)
    n2 = r.render(K, T, W, H, rng=np.random.default_rng(4), noise_std=3.0)
    np.testing.assert_array_equal(n1.rgb, n2.rgb)
    assert not np.array_equal(n1.rgb, r.render(K, T, W, H).rgb)


def test_static_view_cache_renders_exactly_what_a_fresh_renderer_renders():
    """Per camera the static hits/normals/albedo are cached; frames with different people, lights and
    cameras (revisited in any order, more cameras than the cache holds) equal an uncached renderer's."""
    scene = generate_scene(np.random.default_rng(5), scene_id="c")
    rng = np.random.default_rng(2)
    bodies = []
    for pos in scene.sample_stand_points(rng, 3, clearance=0.5):
        b = trimesh.creation.capsule(height=1.2, radius=0.25)
        b.apply_translation(pos + [0, 0, 0.85])
        bodies.append((b, pos))
    cams = [
        look_at(np.array([scene.room_min[0] + 0.3 + 0.4 * i, scene.room_min[1] + 0.3, 1.2 + 0.3 * i]), pos + [0, 0, 0.9])
        for i, (_, pos) in enumerate(bodies)
    ]
    item = scene_render_item(scene)
    cached, uncached = Renderer([item], view_cache=2), Renderer([item], view_cache=0)
    for k, (ci, bi, shade) in enumerate(
        [(0, 0, True), (1, 1, True), (0, 2, True), (2, 0, False), (1, 1, True), (0, 1, False), (2, 2, True), (2, None, True)]
    ):
        extra = [] if bi is None else [RenderItem(bodies[bi][0], (0.7, 0.5, 0.4), 1000)]
        lights = random_lights(np.random.default_rng(k), scene)
        a = cached.render(K, cams[ci], W, H, extra_items=extra, lights=lights, shade=shade)
        b = uncached.render(K, cams[ci], W, H, extra_items=extra, lights=lights, shade=shade)
        for name in ("rgb", "instance", "depth", "normals", "face"):
            np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=f"{name} frame {k}")
        for sa, sb in zip(a.silhouettes, b.silhouettes):
            np.testing.assert_array_equal(sa, sb)
    assert len(cached._views) == 2 and not uncached._views
    # without static items every output comes from the extra items alone
    res = Renderer().render(K, cams[0], W, H, extra_items=[(bodies[0][0], (0.7, 0.5, 0.4), 7)])
    assert set(np.unique(res.instance)) == {0, 7} and (res.face[res.instance == 0] == -1).all()


def test_bad_inputs_raise_clear_errors():
    box = box_item([_box((0, 0, 2), (0.2, 0.2, 0.2))], 1)
    with pytest.raises(ValueError, match="K"):
        render([box], np.eye(2), np.eye(4), W, H)
    with pytest.raises(ValueError, match="rotation"):
        render([box], K, np.diag([2.0, 1, 1, 1]), W, H)
    with pytest.raises(ValueError, match="instance ids"):
        render([(box.mesh, (0.5, 0.5, 0.5), 0)], K, np.eye(4), W, H)
    with pytest.raises(ValueError, match="colours"):
        render([(box.mesh, np.ones((5, 3)), 1)], K, np.eye(4), W, H)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        render([(box.mesh, np.full((12, 3), 200.0), 1)], K, np.eye(4), W, H)
    with pytest.raises(ValueError, match="size"):
        render([box], K, np.eye(4), 0, H)


def test_look_at_and_random_lights():
    T = look_at((1.0, -2.0, 1.5), (0.0, 0.0, 1.0))
    R = T[:3, :3]
    np.testing.assert_allclose(R @ R.T, np.eye(3), atol=1e-12)
    assert np.linalg.det(R) == pytest.approx(1.0)
    target_cam = R @ [0.0, 0.0, 1.0] + T[:3, 3]
    np.testing.assert_allclose(target_cam[:2], 0.0, atol=1e-12)  # the target projects to the principal point
    assert target_cam[2] > 0
    assert (R @ [0, 0, 1.0])[1] < 0  # world up is image up (camera -y)
    scene = generate_scene(np.random.default_rng(0))
    a = random_lights(np.random.default_rng(9), scene)
    b = random_lights(np.random.default_rng(9), scene)
    assert a == b and any(l.cast_shadows for l in a)
    with pytest.raises(ValueError, match="direction"):
        Light("directional", direction=(0.0, 0.0, 0.0))
