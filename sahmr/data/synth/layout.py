"""Room layout: a random furnished room from `SceneParams` (walls, floor, furniture placed with clearances and
free access zones, the affordances kept). All randomness comes from the generator argument."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .furniture import (
    BUILDERS,
    AffordanceSpec,
    SceneParams,
    box_between,
    hsv_rgb,
    wood_material,
)
from .scenes import Affordance, Box, Scene, SceneObject, affordance_frame, rot_z

__all__ = ["generate_scene", "Placement"]


@dataclass
class Placement:
    """One piece of furniture placed on the floor plan: its boxes and affordance specs (object frame), the
    pose (yaw, 2D translation t), the footprint and access polygons in the world (each (4, 2), metres)."""

    kind: str
    boxes: list[Box]
    specs: list[AffordanceSpec]
    yaw: float
    t: tuple[float, float]
    footprint: np.ndarray
    access_req: list[np.ndarray]  # the required access zones (no other furniture may cover them)
    access_world: list[np.ndarray]  # every spec's access zone, in spec order


def _rect_poly(x0, x1, y0, y1) -> np.ndarray:
    return np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], dtype=np.float64)


def _transform_2d(poly: np.ndarray, yaw: float, t) -> np.ndarray:
    c, s = math.cos(yaw), math.sin(yaw)
    return poly @ np.array([[c, s], [-s, c]]) + np.asarray(t, np.float64)[:2]


def _separation(a: np.ndarray, b: np.ndarray) -> float:
    """Largest gap between the projections of two convex polygons over their edge normals (SAT).

    > 0: separated by at least that distance; <= 0: overlapping (or touching)."""
    best = -np.inf
    for poly in (a, b):
        edges = np.roll(poly, -1, axis=0) - poly
        normals = np.stack([edges[:, 1], -edges[:, 0]], axis=1)
        normals /= np.linalg.norm(normals, axis=1, keepdims=True)
        pa, pb = a @ normals.T, b @ normals.T
        gap = np.maximum(pb.min(0) - pa.max(0), pa.min(0) - pb.max(0))
        best = max(best, float(gap.max()))
    return best


def _inside_rect(poly: np.ndarray, lo, hi, tol: float = 1e-9) -> bool:
    return bool((poly >= np.asarray(lo) - tol).all() and (poly <= np.asarray(hi) + tol).all())


def _access_poly(spec: AffordanceSpec) -> np.ndarray:
    """Access zone of a spec in the object frame."""
    local = _rect_poly(-spec.width / 2, spec.width / 2, 0.0, spec.access)
    return _transform_2d(local, spec.yaw, spec.origin)


_WALL_YAW = {"y-": 0.0, "y+": math.pi, "x+": math.pi / 2, "x-": -math.pi / 2}  # object front into the room


def generate_scene(rng: np.random.Generator, params: SceneParams | None = None, scene_id: str = "scene") -> Scene:
    """A random furnished room (see module docstring). Deterministic given the generator's state.

    The room interior spans x ∈ [-Lx/2, Lx/2], y ∈ [-Ly/2, Ly/2], z ∈ [0, wall height]; walls are thin
    boxes outside it, the floor a slab below z = 0. Furniture stands on the floor, each piece at least
    `params.clearance` from the others, inside the interior, with its required access zones free.
    """
    p = params or SceneParams()
    lx, ly = rng.uniform(*p.room_size, size=2)
    height = rng.uniform(*p.wall_height)
    n_walls = int(p.n_walls[int(rng.integers(len(p.n_walls)))])
    sides = ["x-", "x+", "y-", "y+"]
    open_sides = [] if n_walls >= 4 else [str(s) for s in rng.permutation(sides)[: 4 - n_walls]]
    wall_sides = [s for s in sides if s not in open_sides]
    x0, x1, y0, y1 = -lx / 2, lx / 2, -ly / 2, ly / 2
    wt, ft = p.wall_thickness, p.floor_thickness

    # floor
    if rng.random() < 0.5:
        floor_mat = wood_material(rng)
        floor_mat["texture_scale"] = float(rng.uniform(0.12, 0.25))
    else:
        c = hsv_rgb(rng.uniform(0, 1), rng.uniform(0.0, 0.25), rng.uniform(0.45, 0.85))
        floor_mat = {
            "colour": c,
            "colour2": np.clip(c * rng.uniform(0.75, 0.9), 0, 1),
            "texture": "checker",
            "texture_scale": float(rng.uniform(0.3, 0.6)),
        }
    floor_box = box_between((x0 - wt, y0 - wt, -ft), (x1 + wt, y1 + wt, 0.0), floor_mat)
    floor_aff = Affordance("stand", affordance_frame(0.0, (0.0, y1, 0.0)), width=float(lx), depth=float(ly), height=0.0)
    objects = [SceneObject("floor", [floor_box], [floor_aff])]

    # walls (x-walls span the corners, y-walls fit between them: touching, never overlapping)
    wc = hsv_rgb(rng.uniform(0, 1), rng.uniform(0.03, 0.25), rng.uniform(0.7, 0.95))
    wall_tex = str(rng.choice(["plain", "plain", "stripes"]))
    wall_mat = {
        "colour": wc,
        "colour2": np.clip(wc * rng.uniform(0.85, 0.95), 0, 1),
        "texture": wall_tex,
        "texture_scale": float(rng.uniform(0.08, 0.3)),
    }
    for side in wall_sides:
        if side == "y-":
            lo, hi = (x0 - wt, y0 - wt, 0.0), (x1 + wt, y0, height)
        elif side == "y+":
            lo, hi = (x0 - wt, y1, 0.0), (x1 + wt, y1 + wt, height)
        elif side == "x-":
            lo, hi = (x0 - wt, y0, 0.0), (x0, y1, height)
        else:
            lo, hi = (x1, y0, 0.0), (x1 + wt, y1, height)
        objects.append(SceneObject("wall", [box_between(lo, hi, wall_mat)]))

    # furniture
    kinds = [k for k, _ in p.kind_weights]
    weights = np.array([w for _, w in p.kind_weights], dtype=np.float64)
    caps = dict(p.max_per_kind)
    n_target = int(rng.integers(p.n_items[0], p.n_items[1] + 1))
    lo_room, hi_room = np.array([x0, y0]), np.array([x1, y1])
    placed: list[Placement] = []
    counts: dict[str, int] = {}
    attempts = 0
    while len(placed) < n_target and attempts < 6 * n_target + 10:
        attempts += 1
        allowed = np.array([counts.get(k, 0) < caps.get(k, 1 << 30) for k in kinds])
        if len(placed) >= p.n_items[0] or attempts <= 3 * n_target:
            probs = weights * allowed
        else:  # struggling to reach the minimum: small items only
            probs = weights * allowed * np.array([k in ("chair", "box") for k in kinds])
        if probs.sum() <= 0:
            break
        kind = kinds[int(rng.choice(len(kinds), p=probs / probs.sum()))]
        item = _place(rng, p, kind, placed, wall_sides, lo_room, hi_room)
        if item is not None:
            placed.append(item)
            counts[kind] = counts.get(kind, 0) + 1
    if len(placed) < p.n_items[0]:
        raise RuntimeError(
            f"generate_scene({scene_id!r}): placed only {len(placed)} of at least {p.n_items[0]} furniture items "
            f"in a {lx:.2f} x {ly:.2f} m room; enlarge SceneParams.room_size or lower n_items"
        )

    # finalise affordances: optional ones only where their access zone is free
    for item in placed:
        affs = []
        for spec, poly in zip(item.specs, item.access_world):
            if not spec.required and spec.access > 0:
                if not _inside_rect(poly, lo_room, hi_room):
                    continue
                if any(_separation(poly, o.footprint) < p.clearance for o in placed if o is not item):
                    continue
            yaw = item.yaw + spec.yaw
            origin = rot_z(item.yaw) @ np.asarray(spec.origin, np.float64) + np.array([*item.t, 0.0])
            affs.append(
                Affordance(
                    spec.kind,
                    affordance_frame(yaw, origin),
                    width=float(spec.width),
                    depth=float(spec.depth),
                    height=float(origin[2]),
                    backrest=None if spec.backrest is None else float(spec.backrest),
                    foot_height=float(spec.foot_height),
                    access=float(spec.access),
                )
            )
        boxes = [b.transformed(item.yaw, (*item.t, 0.0)) for b in item.boxes]
        objects.append(SceneObject(item.kind, boxes, affs))

    return Scene(scene_id, objects, (x0, y0, 0.0), (x1, y1, height), tuple(sorted(open_sides)))


def _place(rng, p: SceneParams, kind: str, placed: list[Placement], wall_sides, lo_room, hi_room) -> Placement | None:
    """Try to place one new item of `kind`; returns its placement or None."""
    boxes, specs = BUILDERS[kind](rng, p)
    lo = np.min([b.centre[:2] - b.half[:2] for b in boxes], axis=0)
    hi = np.max([b.centre[:2] + b.half[:2] for b in boxes], axis=0)
    foot_local = _rect_poly(lo[0], hi[0], lo[1], hi[1])
    req_access = [_access_poly(s) for s in specs if s.required and s.access > 0]
    for _ in range(p.max_tries):
        if wall_sides and rng.random() < p.against_wall_prob:
            side = wall_sides[int(rng.integers(len(wall_sides)))]
            yaw = _WALL_YAW[side]
            gap = rng.uniform(*p.wall_gap)
            # back of the footprint (local y = lo[1]) against the wall; along the wall: uniform
            along_half = (hi[0] - lo[0]) / 2
            if side in ("y-", "y+"):
                span = (lo_room[0] + along_half, hi_room[0] - along_half)
            else:
                span = (lo_room[1] + along_half, hi_room[1] - along_half)
            if span[1] <= span[0]:
                continue
            s = rng.uniform(*span)
            # world position of the local point (centre_x of footprint, lo_y) must be the wall point
            anchor_local = np.array([(lo[0] + hi[0]) / 2, lo[1]])
            wall_pt = {
                "y-": (s, lo_room[1] + gap),
                "y+": (s, hi_room[1] - gap),
                "x-": (lo_room[0] + gap, s),
                "x+": (hi_room[0] - gap, s),
            }[side]
            t = np.asarray(wall_pt) - _transform_2d(anchor_local[None], yaw, (0.0, 0.0))[0]
            margin = 0.0
        else:
            yaw = float(rng.uniform(-math.pi, math.pi))
            t = rng.uniform(lo_room, hi_room)
            margin = p.clearance
        foot = _transform_2d(foot_local, yaw, t)
        if not _inside_rect(foot, lo_room + margin, hi_room - margin, tol=1e-6):
            continue
        access = [_transform_2d(a, yaw, t) for a in req_access]
        if not all(_inside_rect(a, lo_room, hi_room, tol=1e-6) for a in access):
            continue
        ok = True
        for other in placed:
            if _separation(foot, other.footprint) < p.clearance:
                ok = False
                break
            if any(_separation(foot, a) < p.clearance for a in other.access_req):
                ok = False
                break
            if any(_separation(a, other.footprint) < p.clearance for a in access):
                ok = False
                break
        if not ok:
            continue
        return Placement(
            kind=kind,
            boxes=boxes,
            specs=specs,
            yaw=float(yaw),
            t=(float(t[0]), float(t[1])),
            footprint=foot,
            access_req=access,
            access_world=[_transform_2d(_access_poly(s), yaw, t) for s in specs],
        )
    return None
