"""Dense signed-distance grids of box scenes (for penetration / contact metrics and supervision).

:func:`scene_sdf_grid` samples the scene's analytic SDF (:meth:`Scene.sdf`, min over exact box
distances) on the nodes of a regular grid over the room's interior box plus a margin, in the kit's
:class:`~sahmr.geometry.sdf.SDFGrid` convention (array axes x, y, z; node i at ``min + i * spacing``).

The grid is filled block by block (``block``³ nodes): for each block only the boxes that can be the
nearest one somewhere in the block are evaluated — a box whose distance from the block centre minus the
block's half diagonal exceeds the smallest (distance + half diagonal) can never win the min, since
distances are 1-Lipschitz — so every node gets exactly the min over all boxes, memory stays at the
output array plus a few block-sized temporaries, and a 9 x 9 x 3 m room at 2 cm (≈ 38 M nodes,
150 MB float32) takes seconds. Box distances are separable in (x, y) and z, which each block exploits.

:func:`query_grid` is the grid's trilinear lookup (the values of ``query_sdf``, bit for bit) in numpy,
~2.5x faster than ``query_sdf`` for the placement's ~10^5 body vertices per call (~7 ms).
"""

from __future__ import annotations

import numpy as np

from sahmr.geometry.sdf import SDFGrid

from .scenes import Scene, box_sdf

__all__ = ["scene_sdf_grid", "grid_dims", "query_grid"]


def grid_dims(scene: Scene, spacing: float = 0.02, margin: float = 0.2) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(min_world (3,), max_world (3,), dims (3,) int) of the grid :func:`scene_sdf_grid` builds:
    the room's interior box grown by `margin`, node pitch exactly `spacing` (max is rounded up)."""
    if not spacing > 0 or margin < 0:
        raise ValueError(f"scene_sdf_grid: need spacing > 0 and margin >= 0, got {spacing}, {margin}")
    lo = scene.room_min - margin
    dims = np.ceil((scene.room_max + margin - lo) / spacing - 1e-9).astype(np.int64) + 1
    dims = np.maximum(dims, 2)
    hi = lo + (dims - 1) * spacing
    return lo, hi, dims


def scene_sdf_grid(scene: Scene, spacing: float = 0.02, margin: float = 0.2, block: int = 32) -> SDFGrid:
    """Signed distance grid (float32, metres, negative inside) of the scene over its room box + margin.

    scene: the scene; spacing: node pitch in metres; margin: metres added on every side of
    [room_min, room_max]; block: nodes per block edge (memory/speed trade-off only; results identical).
    Returns an SDFGrid whose values equal ``scene.sdf(node positions)`` rounded to float32.
    """
    lo, hi, dims = grid_dims(scene, spacing, margin)
    axes = [lo[a] + np.arange(dims[a]) * spacing for a in range(3)]
    centres, halves, yaws = scene.box_arrays
    cos, sin = np.cos(yaws), np.sin(yaws)
    values = np.empty(tuple(int(d) for d in dims), dtype=np.float32)
    for i0 in range(0, dims[0], block):
        xs = axes[0][i0 : i0 + block]
        for j0 in range(0, dims[1], block):
            ys = axes[1][j0 : j0 + block]
            for k0 in range(0, dims[2], block):
                zs = axes[2][k0 : k0 + block]
                bmin = np.array([xs[0], ys[0], zs[0]])
                bmax = np.array([xs[-1], ys[-1], zs[-1]])
                mid = (bmin + bmax) / 2
                radius = float(np.linalg.norm(bmax - bmin) / 2)
                d_mid = box_sdf(mid[None], centres, halves, yaws)[0]
                cand = np.nonzero(d_mid - radius <= d_mid.min() + radius)[0]
                out = None
                for b in cand:
                    d = _box_sdf_block(xs, ys, zs, centres[b], halves[b], cos[b], sin[b])
                    out = d if out is None else np.minimum(out, d, out=out)
                values[i0 : i0 + block, j0 : j0 + block, k0 : k0 + block] = out
    return SDFGrid(values, lo, hi)


def _box_sdf_block(xs, ys, zs, centre, half, c, s) -> np.ndarray:
    """(nx, ny, nz) float64 exact distance of the grid xs x ys x zs to one box (same formula as box_sdf)."""
    dx = xs[:, None] - centre[0]
    dy = ys[None, :] - centre[1]
    qx = np.abs(c * dx + s * dy) - half[0]
    qy = np.abs(c * dy - s * dx) - half[1]
    qz = np.abs(zs - centre[2]) - half[2]
    out2 = np.maximum(qx, 0.0) ** 2 + np.maximum(qy, 0.0) ** 2  # (nx, ny)
    inside2 = np.maximum(qx, qy)
    outside = np.sqrt(out2[:, :, None] + (np.maximum(qz, 0.0) ** 2)[None, None, :])
    inside = np.minimum(np.maximum(inside2[:, :, None], qz[None, None, :]), 0.0)
    return outside + inside


def query_grid(grid: SDFGrid, points: np.ndarray) -> np.ndarray:
    """(N,) float32 trilinear signed distance of ``grid`` at float32 ``points`` (N, 3): the arithmetic of
    :func:`sahmr.geometry.sdf.query_sdf` (border clamp, lower corner capped at D-2) in numpy on (N,)
    coordinate planes, without its 8k-point chunking: ~3x faster for the placement's 10^5-point batches."""
    flat = np.asarray(grid.values).reshape(-1)
    dims = np.asarray(grid.values.shape, dtype=np.int64)
    lo = np.asarray(grid.min_world, dtype=np.float64)
    scale = ((dims - 1.0) / (np.asarray(grid.max_world, dtype=np.float64) - lo)).astype(np.float32)
    lo32, top = lo.astype(np.float32), (dims - 1).astype(np.float32)
    p = np.asarray(points, dtype=np.float32).reshape(-1, 3).T
    base = np.zeros(p.shape[1], dtype=np.int64)
    t = []
    for a, stride in enumerate((dims[1] * dims[2], dims[2], 1)):
        f = np.minimum(np.maximum((p[a] - lo32[a]) * scale[a], np.float32(0.0)), top[a])
        i0 = np.minimum(f.astype(np.int64), dims[a] - 2)
        t.append(f - i0.astype(np.float32))
        base += i0 * stride
    sx, sy = int(dims[1] * dims[2]), int(dims[2])
    tx, ty, tz = t

    def along_z(b: np.ndarray) -> np.ndarray:
        v0 = np.take(flat, b).astype(np.float32, copy=False)
        return v0 + (np.take(flat, b + 1).astype(np.float32, copy=False) - v0) * tz

    c00, c01 = along_z(base), along_z(base + sy)
    c10, c11 = along_z(base + sx), along_z(base + sx + sy)
    c0 = c00 + (c01 - c00) * ty
    c1 = c10 + (c11 - c10) * ty
    return c0 + (c1 - c0) * tx
