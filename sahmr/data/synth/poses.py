"""Interaction poses for the synthetic benchmark: a pose class → random SMPL body poses within limits.

Joint rotations follow the sign conventions stated in `sahmr.body.poses` (e.g. hip flexion = −x).
"""

from __future__ import annotations

import numpy as np

from sahmr.body.model_file import SMPL_JOINT_NAMES

POSE_CLASSES = ("stand", "walk", "reach", "crouch", "kneel", "sit", "lie", "lean")
_J = {n: i for i, n in enumerate(SMPL_JOINT_NAMES)}

# Per-joint axis-angle limits (radians, per component) used to clip perturbed poses.
_LIMIT = {
    "hip": ((-2.4, 0.6), (-0.7, 0.7), (-0.8, 0.8)),
    "knee": ((0.0, 2.5), (-0.1, 0.1), (-0.1, 0.1)),
    "ankle": ((-0.6, 0.7), (-0.3, 0.3), (-0.3, 0.3)),
    "spine": ((-0.4, 0.7), (-0.35, 0.35), (-0.35, 0.35)),
    "neck": ((-0.5, 0.6), (-0.7, 0.7), (-0.4, 0.4)),
    "shoulder": ((-1.6, 1.6), (-1.7, 1.7), (-1.6, 1.6)),
    "elbow": ((-0.2, 0.2), (-2.4, 2.4), (-0.2, 0.2)),
    "other": ((-0.4, 0.4), (-0.4, 0.4), (-0.4, 0.4)),
}


def _kind(name: str) -> str:
    for k in ("hip", "knee", "ankle", "spine", "neck", "shoulder", "elbow"):
        if k in name:
            return k
    return "head" if name == "head" else "other"


_LIMITS = np.array([_LIMIT.get(_kind(n), _LIMIT["other"]) for n in SMPL_JOINT_NAMES[1:]])  # (23, 3, 2)


def _set(pose: np.ndarray, name: str, aa) -> None:
    j = _J[name] - 1
    pose[..., 3 * j : 3 * j + 3] = aa


def _arms_down(p, rng, n, lo=1.1, hi=1.45):
    a = rng.uniform(lo, hi, n)
    _set(p, "left_shoulder", np.stack([np.zeros(n), rng.uniform(-0.2, 0.3, n), -a], -1))
    _set(p, "right_shoulder", np.stack([np.zeros(n), rng.uniform(-0.3, 0.2, n), a], -1))
    e = rng.uniform(0.0, 0.5, n)
    _set(p, "left_elbow", np.stack([np.zeros(n), -e, np.zeros(n)], -1))
    _set(p, "right_elbow", np.stack([np.zeros(n), e, np.zeros(n)], -1))


def sample_poses(pose_class: str, n: int, rng: np.random.Generator, seat_height: float | None = None) -> np.ndarray:
    """(n, 69) float32 body poses of one class, varied and clipped to joint limits.

    ``seat_height`` (m, sit only): low seats (steps) get deeply bent knees so the feet reach the floor
    in front; chair-height seats get shins near vertical so calves clear the seat front.
    """
    if pose_class not in POSE_CLASSES:
        raise ValueError(f"unknown pose class {pose_class!r}; expected one of {POSE_CLASSES}")
    p = np.zeros((n, 69))
    u = lambda lo, hi: rng.uniform(lo, hi, n)  # noqa: E731
    z = np.zeros(n)
    _arms_down(p, rng, n)
    if pose_class == "stand":
        for s in ("left", "right"):
            _set(p, f"{s}_hip", np.stack([u(-0.15, 0.05), z, u(-0.05, 0.05) * (1 if s == "left" else -1)], -1))
            _set(p, f"{s}_knee", np.stack([u(0.0, 0.15), z, z], -1))
    elif pose_class == "walk":
        swing = u(0.25, 0.5) * rng.choice([-1.0, 1.0], n)
        _set(p, "left_hip", np.stack([-swing, z, z], -1))
        _set(p, "right_hip", np.stack([swing, z, z], -1))
        _set(p, "left_knee", np.stack([u(0.05, 0.6), z, z], -1))
        _set(p, "right_knee", np.stack([u(0.05, 0.6), z, z], -1))
        _set(p, "left_shoulder", np.stack([z, -0.6 * swing, u(-1.35, -1.15)], -1))
        _set(p, "right_shoulder", np.stack([z, -0.6 * swing, u(1.15, 1.35)], -1))
    elif pose_class == "reach":
        side = rng.choice(["left", "right"], n)
        for i, s in enumerate(side):
            sgn = 1.0 if s == "left" else -1.0
            _set(p[i], f"{s}_shoulder", [0.0, -sgn * rng.uniform(0.8, 1.5), sgn * rng.uniform(-0.2, 0.9)])
            _set(p[i], f"{s}_elbow", [0.0, -sgn * rng.uniform(0.0, 0.6), 0.0])
        _set(p, "spine2", np.stack([u(0.0, 0.25), u(-0.2, 0.2), z], -1))
    elif pose_class == "crouch":
        h = u(1.9, 2.3)
        for s in ("left", "right"):
            _set(p, f"{s}_hip", np.stack([-h, z, u(-0.3, 0.3) * (1 if s == "left" else -1)], -1))
            _set(p, f"{s}_knee", np.stack([u(2.0, 2.4), z, z], -1))
            _set(p, f"{s}_ankle", np.stack([u(-0.5, -0.2), z, z], -1))
        _set(p, "spine1", np.stack([u(0.2, 0.5), z, z], -1))
        _set(p, "left_shoulder", np.stack([z, u(-1.1, -0.6), u(-1.0, -0.6)], -1))
        _set(p, "right_shoulder", np.stack([z, u(0.6, 1.1), u(0.6, 1.0)], -1))
    elif pose_class == "kneel":
        one = rng.random(n) < 0.5  # one knee up (half-kneel) or both knees down
        _set(p, "left_hip", np.stack([u(-0.2, 0.1), z, z], -1))
        _set(p, "left_knee", np.stack([u(1.5, 1.7), z, z], -1))
        rh = np.where(one, u(-1.7, -1.4), u(-0.2, 0.1))
        rk = np.where(one, u(1.4, 1.7), u(1.5, 1.7))
        _set(p, "right_hip", np.stack([rh, z, z], -1))
        _set(p, "right_knee", np.stack([rk, z, z], -1))
        _set(p, "left_ankle", np.stack([u(0.3, 0.7), z, z], -1))
    elif pose_class == "sit":
        low = seat_height is not None and seat_height < 0.3
        hip_rng, knee_rng = ((-2.1, -1.7), (1.9, 2.35)) if low else ((-1.75, -1.35), (1.15, 1.75))
        for s in ("left", "right"):
            _set(p, f"{s}_hip", np.stack([u(*hip_rng), z, u(-0.25, 0.05) * (1 if s == "left" else -1)], -1))
            _set(p, f"{s}_knee", np.stack([u(*knee_rng), z, z], -1))
            _set(p, f"{s}_ankle", np.stack([u(-0.3, 0.3), z, z], -1))
        _set(p, "spine1", np.stack([u(-0.15, 0.2), z, z], -1))
        _arms_down(p, rng, n, 0.9, 1.35)
        e = u(0.6, 1.4)
        _set(p, "left_elbow", np.stack([z, -e, z], -1))
        _set(p, "right_elbow", np.stack([z, e, z], -1))
    elif pose_class == "lie":
        for s in ("left", "right"):
            _set(p, f"{s}_hip", np.stack([u(-0.5, 0.05), z, u(-0.15, 0.25) * (1 if s == "left" else -1)], -1))
            _set(p, f"{s}_knee", np.stack([u(0.0, 0.9), z, z], -1))
        _arms_down(p, rng, n, 0.6, 1.4)
    elif pose_class == "lean":
        _set(p, "spine1", np.stack([u(0.05, 0.3), z, z], -1))
        _set(p, "spine2", np.stack([u(0.0, 0.2), z, z], -1))
        for s, sgn in (("left", 1.0), ("right", -1.0)):
            _set(p, f"{s}_shoulder", np.stack([z, -sgn * u(0.9, 1.4), -sgn * u(0.1, 0.9)], -1))
            _set(p, f"{s}_elbow", np.stack([z, -sgn * u(0.0, 0.4), z], -1))
            _set(p, f"{s}_hip", np.stack([u(-0.25, 0.0), z, z], -1))
    # Small natural variation everywhere (spine, neck, head, wrists), then joint limits.
    for name, s in (("spine3", 0.08), ("neck", 0.12), ("head", 0.12), ("left_wrist", 0.2), ("right_wrist", 0.2)):
        j = _J[name] - 1
        p[:, 3 * j : 3 * j + 3] += rng.normal(0, s, (n, 3))
    p = p.reshape(n, 23, 3)
    p = np.clip(p, _LIMITS[None, :, :, 0], _LIMITS[None, :, :, 1])
    return p.reshape(n, 69).astype(np.float32)
