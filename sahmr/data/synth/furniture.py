"""Furniture for the procedural rooms: the generation parameters (`SceneParams`), materials, and one builder
per kind returning its boxes and affordance specs in the object's frame (front = +y)."""

from __future__ import annotations

import colorsys
import math
from dataclasses import dataclass

import numpy as np

from .scenes import Box

__all__ = ["SceneParams", "AffordanceSpec", "BUILDERS"]


@dataclass(frozen=True)
class SceneParams:
    """Parameters of :func:`generate_scene` (ranges are (low, high), sampled uniformly; metres)."""

    room_size: tuple[float, float] = (4.0, 9.0)  # each side of the rectangular room (interior)
    wall_height: tuple[float, float] = (2.5, 3.0)
    wall_thickness: float = 0.1
    floor_thickness: float = 0.1
    n_walls: tuple[int, ...] = (3, 4, 4)  # drawn uniformly from this tuple; 3 leaves one side open
    n_items: tuple[int, int] = (3, 7)  # furniture count, inclusive
    kind_weights: tuple[tuple[str, float], ...] = (
        ("chair", 3.0),
        ("sofa", 2.0),
        ("bed", 1.2),
        ("table", 2.0),
        ("step", 1.2),
        ("box", 1.6),
    )
    max_per_kind: tuple[tuple[str, int], ...] = (("bed", 1), ("sofa", 2), ("step", 2))
    against_wall_prob: float = 0.6
    clearance: float = 0.12  # minimum horizontal gap between two pieces of furniture
    wall_gap: tuple[float, float] = (0.0, 0.05)  # gap between a wall and furniture placed against it
    max_tries: int = 80  # placement attempts per item
    # realistic heights of the top surfaces
    chair_seat_height: tuple[float, float] = (0.40, 0.50)
    sofa_seat_height: tuple[float, float] = (0.38, 0.48)
    bed_height: tuple[float, float] = (0.45, 0.65)
    table_height: tuple[float, float] = (0.70, 0.80)
    step_rise: tuple[float, float] = (0.15, 0.20)
    n_steps: tuple[int, int] = (1, 3)  # inclusive
    crate_height: tuple[float, float] = (0.30, 0.90)  # <= 0.55: sit on it; taller: lean on it
    # reserved free floor in front of affordances
    sit_access: float = 0.55
    lean_access: float = 0.70
    step_access: float = 0.60


@dataclass
class AffordanceSpec:
    """An affordance in the object's local frame (front = +y) before placement."""

    kind: str
    origin: tuple[float, float, float]
    yaw: float  # of the affordance frame in the object frame
    width: float
    depth: float
    backrest: float | None = None
    foot_height: float = 0.0
    access: float = 0.0
    required: bool = True


def hsv_rgb(h: float, s: float, v: float) -> np.ndarray:
    return np.clip(np.array(colorsys.hsv_to_rgb(h % 1.0, s, v)), 0.0, 1.0)


def wood_material(rng: np.random.Generator) -> dict:
    c = hsv_rgb(rng.uniform(0.05, 0.11), rng.uniform(0.35, 0.7), rng.uniform(0.3, 0.75))
    return {"colour": c, "colour2": np.clip(c * rng.uniform(0.65, 0.85), 0, 1), "texture": "wood", "texture_scale": float(rng.uniform(0.08, 0.2))}


def _fabric(rng: np.random.Generator) -> dict:
    c = hsv_rgb(rng.uniform(0, 1), rng.uniform(0.15, 0.75), rng.uniform(0.3, 0.9))
    tex = str(rng.choice(["plain", "plain", "checker", "stripes"]))
    c2 = hsv_rgb(rng.uniform(0, 1), rng.uniform(0.1, 0.6), rng.uniform(0.3, 0.95)) if tex != "plain" else c * 0.8
    return {"colour": c, "colour2": c2, "texture": tex, "texture_scale": float(rng.uniform(0.04, 0.15))}


def _material(rng: np.random.Generator) -> dict:
    return wood_material(rng) if rng.random() < 0.5 else _fabric(rng)


def box_between(lo, hi, mat: dict) -> Box:
    lo, hi = np.asarray(lo, np.float64), np.asarray(hi, np.float64)
    return Box(centre=(lo + hi) / 2, half=(hi - lo) / 2, **mat)


def _make_chair(rng, p: SceneParams):
    h = rng.uniform(*p.chair_seat_height)
    w, d = rng.uniform(0.40, 0.55), rng.uniform(0.40, 0.50)
    t = rng.uniform(0.04, 0.07)
    leg = rng.uniform(0.03, 0.05)
    bt, bh = rng.uniform(0.03, 0.06), rng.uniform(0.35, 0.55)
    frame, cushion = wood_material(rng), _material(rng)
    boxes = [box_between((-w / 2, -d / 2, h - t), (w / 2, d / 2, h), cushion)]
    for sx in (-1, 1):
        for sy in (-1, 1):
            x0 = sx * (w / 2 - 0.01) - (leg if sx > 0 else 0)
            y0 = sy * (d / 2 - 0.01) - (leg if sy > 0 else 0)
            boxes.append(box_between((x0, y0, 0.0), (x0 + leg, y0 + leg, h - t), frame))
    boxes.append(box_between((-w / 2, -d / 2, h), (w / 2, -d / 2 + bt, h + bh), frame))
    sit_w = w
    if rng.random() < 0.3:  # arms on the seat's sides
        at, ah = rng.uniform(0.04, 0.06), rng.uniform(0.18, 0.25)
        for sx in (-1, 1):
            x0 = -w / 2 if sx < 0 else w / 2 - at
            boxes.append(box_between((x0, -d / 2 + bt, h), (x0 + at, d / 2 - 0.04, h + ah), frame))
        sit_w = w - 2 * at
    specs = [AffordanceSpec("sit", (0, d / 2, h), 0.0, sit_w, d - bt, backrest=d - bt, access=p.sit_access)]
    return boxes, specs


def _make_sofa(rng, p: SceneParams):
    h = rng.uniform(*p.sofa_seat_height)
    length, sd = rng.uniform(1.2, 2.3), rng.uniform(0.50, 0.65)
    bt, bh = rng.uniform(0.15, 0.25), rng.uniform(0.75, 0.95)
    arms = rng.random() < 0.8
    aw = rng.uniform(0.12, 0.22) if arms else 0.0
    ah = h + rng.uniform(0.15, 0.25)
    mat = _fabric(rng)
    boxes = [box_between((-length / 2, -sd / 2, 0), (length / 2, sd / 2, h), mat)]
    boxes.append(box_between((-length / 2 - aw, -sd / 2 - bt, 0), (length / 2 + aw, -sd / 2, bh), mat))
    if arms:
        boxes.append(box_between((-length / 2 - aw, -sd / 2, 0), (-length / 2, sd / 2, ah), mat))
        boxes.append(box_between((length / 2, -sd / 2, 0), (length / 2 + aw, sd / 2, ah), mat))
    specs = [AffordanceSpec("sit", (0, sd / 2, h), 0.0, length, sd, backrest=sd, access=p.sit_access)]
    if length >= 1.75:
        # lying along the seat, feet toward one end: y_aff = ±x_obj, origin at that end's edge, centred in depth
        sign = 1.0 if rng.random() < 0.5 else -1.0
        yaw = -math.pi / 2 if sign > 0 else math.pi / 2
        specs.append(
            AffordanceSpec("lie", (sign * length / 2, 0, h), yaw, sd, length, backrest=length if arms else None, foot_height=h, required=False)
        )
    return boxes, specs


def _make_bed(rng, p: SceneParams):
    top = rng.uniform(*p.bed_height)
    length, w = rng.uniform(1.9, 2.2), rng.uniform(0.9, 1.8)
    base_h = rng.uniform(0.2, 0.35)
    hh, ht = rng.uniform(0.9, 1.2), rng.uniform(0.05, 0.10)
    wood = wood_material(rng)
    sheet = hsv_rgb(rng.uniform(0, 1), rng.uniform(0.0, 0.35), rng.uniform(0.7, 0.95))
    mattress = {
        "colour": sheet,
        "colour2": hsv_rgb(rng.uniform(0, 1), 0.3, 0.8),
        "texture": str(rng.choice(["plain", "stripes", "checker"])),
        "texture_scale": float(rng.uniform(0.05, 0.2)),
    }
    boxes = [
        box_between((-w / 2, -length / 2, 0), (w / 2, length / 2, base_h), wood),
        box_between((-w / 2, -length / 2, base_h), (w / 2, length / 2, top), mattress),
        box_between((-w / 2, -length / 2 - ht, 0), (w / 2, -length / 2, hh), wood),
    ]
    specs = [
        AffordanceSpec("lie", (0, length / 2, top), 0.0, w, length, backrest=length, foot_height=top),
        AffordanceSpec("sit", (w / 2, 0, top), -math.pi / 2, length, w, access=p.sit_access, required=False),
        AffordanceSpec("sit", (-w / 2, 0, top), math.pi / 2, length, w, access=p.sit_access, required=False),
    ]
    return boxes, specs


def _make_table(rng, p: SceneParams):
    h = rng.uniform(*p.table_height)
    w, d = rng.uniform(0.8, 1.8), rng.uniform(0.6, 1.0)
    t, leg, inset = rng.uniform(0.03, 0.05), rng.uniform(0.04, 0.07), rng.uniform(0.03, 0.08)
    top_mat = wood_material(rng) if rng.random() < 0.7 else _fabric(rng)
    leg_mat = wood_material(rng)
    boxes = [box_between((-w / 2, -d / 2, h - t), (w / 2, d / 2, h), top_mat)]
    for sx in (-1, 1):
        for sy in (-1, 1):
            x0 = sx * (w / 2 - inset) - (leg if sx > 0 else 0)
            y0 = sy * (d / 2 - inset) - (leg if sy > 0 else 0)
            boxes.append(box_between((x0, y0, 0.0), (x0 + leg, y0 + leg, h - t), leg_mat))
    specs = [
        AffordanceSpec("lean", (0, d / 2, h), 0.0, w, d, access=p.lean_access),
        AffordanceSpec("lean", (0, -d / 2, h), math.pi, w, d, access=p.lean_access, required=False),
    ]
    return boxes, specs


def _make_step(rng, p: SceneParams):
    n = int(rng.integers(p.n_steps[0], p.n_steps[1] + 1))
    rise, w = rng.uniform(*p.step_rise), rng.uniform(0.8, 1.6)
    tread = rng.uniform(0.25, 0.40)
    treads = [tread] * n
    if rng.random() < 0.5:
        treads[-1] = rng.uniform(0.4, 0.8)  # a platform on top
    total = sum(treads)
    mat = _material(rng) if rng.random() < 0.5 else {"colour": hsv_rgb(0, 0, rng.uniform(0.4, 0.8)), "texture": "plain"}
    boxes, specs = [], []
    front = total / 2
    for k in range(n):
        top = (k + 1) * rise
        boxes.append(box_between((-w / 2, front - treads[k], 0), (w / 2, front, top), mat))
        specs.append(
            AffordanceSpec("stand", (0, front, top), 0.0, w, treads[k], foot_height=top, access=p.step_access if k == 0 else 0.0, required=(k == 0))
        )
        front -= treads[k]
    if n >= 2:
        k = n - 1
        specs.append(
            AffordanceSpec(
                "sit", (0, total / 2 - sum(treads[:k]), (k + 1) * rise), 0.0, w, treads[k], foot_height=max(k - 1, 0) * rise, required=False
            )
        )
    return boxes, specs


def _make_crate(rng, p: SceneParams):
    w, d, h = rng.uniform(0.3, 0.8), rng.uniform(0.3, 0.7), rng.uniform(*p.crate_height)
    mat = wood_material(rng) if rng.random() < 0.6 else _fabric(rng)
    boxes = [box_between((-w / 2, -d / 2, 0), (w / 2, d / 2, h), mat)]
    if h <= 0.55:
        specs = [AffordanceSpec("sit", (0, d / 2, h), 0.0, w, d, access=p.sit_access)]
    else:
        specs = [AffordanceSpec("lean", (0, d / 2, h), 0.0, w, d, access=p.lean_access)]
    return boxes, specs


BUILDERS = {"chair": _make_chair, "sofa": _make_sofa, "bed": _make_bed, "table": _make_table, "step": _make_step, "box": _make_crate}
