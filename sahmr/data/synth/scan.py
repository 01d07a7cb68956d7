"""Scanner-like point clouds of box scenes: exposed surfaces only, even density, noise, voxelised.

:func:`scan_points` imitates the kit's real scene scans (RICH/PROX voxelised clouds, spec §1.2):

1. every face of every box is sampled on a jittered grid with one point per ``spacing``² of area;
2. samples that a scanner inside the room cannot see are dropped: samples inside or touching another box
   (closer than ``touch_tol`` = 5 mm, e.g. the floor under a bed, the seat under a backrest, a wall behind
   a crate standing 2 mm from it) and samples whose
   outward side is outside the room's interior box (the floor's underside, the walls' outer faces);
3. each sample moves along its face normal by Gaussian noise (``noise_std``, truncated at
   ``noise_clip`` standard deviations, so every point stays within ``noise_clip * noise_std`` of the
   surface);
4. the cloud is voxel-downsampled (``voxel_size``; 0.05 reproduces the original's 5 cm clouds): per occupied
   voxel the sample nearest to the voxel's mean is kept, so points stay on the surface (a mean would cut
   corners).

Deterministic for a given generator state. Output order: ascending voxel key.
"""

from __future__ import annotations

import numpy as np

from .scenes import Box, Scene, box_sdf

__all__ = ["scan_points", "voxel_downsample", "sample_box_faces", "DEFAULT_SCAN_VOXEL"]

# The default voxel pitch of the delivered clouds: a whole room (4-9 m sides, walls 2.5-3 m) gives
# ~50k-300k points (one point per ~9 cm^2 of exposed surface).
DEFAULT_SCAN_VOXEL = 0.03


def sample_box_faces(box: Box, rng: np.random.Generator, spacing: float) -> tuple[np.ndarray, np.ndarray]:
    """Jittered-grid samples on the 6 faces of `box`: ~one per spacing² of area (at least one per face).

    Returns points (M, 3) float64 world and outward unit normals (M, 3) float64 world.
    """
    pts, nrms = [], []
    rot = box.rotation
    for axis in range(3):
        u, v = [a for a in range(3) if a != axis]
        nu = max(1, int(np.ceil(2 * box.half[u] / spacing - 1e-9)))
        nv = max(1, int(np.ceil(2 * box.half[v] / spacing - 1e-9)))
        iu, iv = np.meshgrid(np.arange(nu), np.arange(nv), indexing="ij")
        iu, iv = iu.ravel(), iv.ravel()
        for sign in (-1.0, 1.0):
            jitter = rng.random((iu.size, 2))
            local = np.empty((iu.size, 3))
            local[:, axis] = sign * box.half[axis]
            local[:, u] = -box.half[u] + (iu + jitter[:, 0]) * (2 * box.half[u] / nu)
            local[:, v] = -box.half[v] + (iv + jitter[:, 1]) * (2 * box.half[v] / nv)
            normal = np.zeros(3)
            normal[axis] = sign
            pts.append(local @ rot.T + box.centre)
            nrms.append(np.broadcast_to(rot @ normal, local.shape))
    return np.concatenate(pts), np.concatenate(nrms)


def _box_aabbs(scene: Scene) -> tuple[np.ndarray, np.ndarray]:
    corners = np.stack([b.corners() for b in scene.boxes])  # (B, 8, 3)
    return corners.min(1), corners.max(1)


def scan_points(
    scene: Scene,
    rng: np.random.Generator,
    spacing: float = 0.02,
    noise_std: float = 0.004,
    voxel_size: float | None = DEFAULT_SCAN_VOXEL,
    noise_clip: float = 2.5,
    touch_tol: float = 5e-3,
    return_normals: bool = False,
):
    """Sample a scanner-like point cloud of the scene's exposed surfaces (see module docstring).

    scene: the scene; rng: the only source of randomness.
    spacing: sampling pitch on the surfaces (metres; ~1/spacing² points per m² before voxelisation).
    noise_std: std of the Gaussian noise along the surface normal (metres), truncated at ±noise_clip·std.
    voxel_size: pitch of the voxel downsampling (metres), None to keep every sample.
    touch_tol: samples closer than this to another box (or inside it) are hidden and dropped.
    return_normals: also return the (N, 3) float32 unit normals of the faces the points were sampled on.
    Returns: points_world (N, 3) float32 [, normals_world (N, 3) float32].
    """
    if not spacing > 0:
        raise ValueError(f"scan_points: spacing must be > 0, got {spacing}")
    if noise_std < 0 or noise_clip <= 0:
        raise ValueError(f"scan_points: need noise_std >= 0 and noise_clip > 0, got {noise_std}, {noise_clip}")
    if voxel_size is not None and not voxel_size > 0:
        raise ValueError(f"scan_points: voxel_size must be > 0 or None, got {voxel_size}")
    centres, halves, yaws = scene.box_arrays
    aabb_lo, aabb_hi = _box_aabbs(scene)
    room_lo, room_hi = scene.room_min - 1e-9, scene.room_max + 1e-9
    out_p, out_n = [], []
    for i, box in enumerate(scene.boxes):
        p, n = sample_box_faces(box, rng, spacing)
        probe = p + 0.01 * n
        keep = ((probe >= room_lo) & (probe <= room_hi)).all(axis=1)
        p, n = p[keep], n[keep]
        if len(p) == 0:
            continue
        hidden = np.zeros(len(p), dtype=bool)
        lo_i, hi_i = p.min(0) - touch_tol, p.max(0) + touch_tol
        for j in np.nonzero(((aabb_lo <= hi_i) & (aabb_hi >= lo_i)).all(axis=1))[0]:
            if j == i:
                continue
            m = ((p >= aabb_lo[j] - touch_tol) & (p <= aabb_hi[j] + touch_tol)).all(axis=1) & ~hidden
            if m.any():
                d = box_sdf(p[m], centres[j : j + 1], halves[j : j + 1], yaws[j : j + 1])[:, 0]
                hidden[np.nonzero(m)[0][d < touch_tol]] = True
        out_p.append(p[~hidden])
        out_n.append(n[~hidden])
    points = np.concatenate(out_p) if out_p else np.zeros((0, 3))
    normals = np.concatenate(out_n) if out_n else np.zeros((0, 3))
    if noise_std > 0 and len(points):
        offset = np.clip(rng.standard_normal(len(points)), -noise_clip, noise_clip) * noise_std
        points = points + offset[:, None] * normals
    points = points.astype(np.float32)  # voxelise the stored values: keys agree with a re-voxelisation
    if voxel_size is not None and len(points):
        idx = voxel_downsample(points, voxel_size)
        points, normals = points[idx], normals[idx]
    if return_normals:
        return points, normals.astype(np.float32)
    return points


def voxel_downsample(points: np.ndarray, voxel_size: float) -> np.ndarray:
    """Indices of one point per occupied voxel ``floor(p / voxel_size)``: the point nearest to the mean of
    its voxel's points (ties: the lowest index). points (N, 3); returns (M,) int64 sorted by voxel key."""
    p = np.asarray(points, dtype=np.float64)
    if len(p) == 0:
        return np.zeros(0, dtype=np.int64)
    k = np.floor(p / voxel_size).astype(np.int64)
    k -= k.min(0)
    dims = k.max(0) + 1
    key = (k[:, 0] * dims[1] + k[:, 1]) * dims[2] + k[:, 2]
    _, inv, counts = np.unique(key, return_inverse=True, return_counts=True)
    mean = np.stack([np.bincount(inv, weights=p[:, a], minlength=len(counts)) for a in range(3)], 1) / counts[:, None]
    dist = ((p - mean[inv]) ** 2).sum(1)
    order = np.lexsort((np.arange(len(p)), dist, inv))
    first = np.ones(len(order), dtype=bool)
    first[1:] = inv[order[1:]] != inv[order[:-1]]
    return order[first]
