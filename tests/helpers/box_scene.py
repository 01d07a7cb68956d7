"""Analytic box scenes for optimisation tests: exact SDF grids of a floor plus boxes, a posed body placed in
them (world z up, as the synthetic benchmark), and a camera looking at it."""

from __future__ import annotations

import numpy as np
import torch

from sahmr.body.poses import NAMED_POSES
from sahmr.geometry.camera import look_at
from sahmr.geometry.sdf import SDFGrid

# body frame (y up, facing +z) -> world (z up, facing -y): a rotation of +90° about x
BODY_TO_WORLD_ORIENT = np.array([np.pi / 2, 0.0, 0.0], np.float32)


def box_sdf(points: np.ndarray, centre, half) -> np.ndarray:
    """Exact signed distance (m, negative inside) of an axis-aligned box; points (..., 3)."""
    q = np.abs(points - np.asarray(centre)) - np.asarray(half)
    outside = np.linalg.norm(np.maximum(q, 0.0), axis=-1)
    return outside + np.minimum(q.max(-1), 0.0)


def scene_grid(boxes=(), lo=(-1.5, -1.5, -0.5), hi=(1.5, 1.5, 2.2), spacing=0.02) -> SDFGrid:
    """Floor z = 0 (solid below) united with boxes [(centre, half-size), ...], on a grid."""
    lo, hi = np.asarray(lo, float), np.asarray(hi, float)
    dims = np.round((hi - lo) / spacing).astype(int) + 1
    axes = [np.linspace(lo[i], hi[i], dims[i]) for i in range(3)]
    p = np.stack(np.meshgrid(*axes, indexing="ij"), -1)
    d = p[..., 2].copy()
    for centre, half in boxes:
        d = np.minimum(d, box_sdf(p, centre, half))
    return SDFGrid(d.astype(np.float32), lo, hi)


def place_body(body, pose: str, lowest_z: float, xy=(0.0, 0.0), part: int | None = None, yaw: float = 0.0):
    """World-frame params and verts (1, V, 3) of a named pose; its lowest vertex (of `part` when given,
    else of the whole body) at height lowest_z, its pelvis above xy."""
    from scipy.spatial.transform import Rotation

    orient = (Rotation.from_rotvec([0, 0, yaw]) * Rotation.from_rotvec(BODY_TO_WORLD_ORIENT)).as_rotvec()
    go = torch.as_tensor(orient, dtype=torch.float32)[None]
    bp = torch.as_tensor(NAMED_POSES[pose])[None]
    v = body(body_pose=bp, global_orient=go).verts
    sel = v[0] if part is None else v[0, body.part_ids == part]
    shift = torch.tensor([xy[0], xy[1], lowest_z]) - torch.tensor([v[0, :, 0].mean(), v[0, :, 1].mean(), sel[:, 2].min()])
    return dict(body_pose=bp, global_orient=go, transl=shift[None]), v + shift


def camera_for(target, distance=4.0, height=1.2, f=500.0, size=(512, 384)):
    """(T_world_to_cam (1, 4, 4), K (1, 3, 3)) float32 tensors of a camera looking at target from the -y side."""
    target = np.asarray(target, float)
    T = look_at(target + np.array([0.3, -distance, height]), target)
    K = np.array([[f, 0, size[0] / 2], [0, f, size[1] / 2], [0, 0, 1]])
    return torch.as_tensor(T, dtype=torch.float32)[None], torch.as_tensor(K, dtype=torch.float32)[None]
