"""Point <-> voxel operations (SPVCNN / torchsparse v1.4 semantics, spec §3.5).

Both directions are sparse linear maps stored as triplets (`PointVoxelMap`: dst row, src row, weight), so
they are built once per (points, voxel stride), applied with one gather + `index_add_`, and are
differentiable w.r.t. the features (not the coordinates: maps are built under no_grad, as in torchsparse).

* `voxelize`: points -> unique stride-1 voxels `floor(p / voxel_size)` with mean features
  (torchsparse `initial_voxelize`).
* `point_to_voxel(x, z)`: every point goes to voxel `floor(p/s)·s` of `x` (if present); voxel features =
  mean over its points, 0 for voxels without points. Coordinates of `x` kept.
* `voxel_to_point(x, z)`: trilinear interpolation from the 8 corners `floor(p/s)·s + δ·s`, δ ∈ {0,1}³
  ordered `4δx + 2δy + δz`; weights `Π_axis (δ ? p - pf : pf + s - p) / s³`, absent corners weigh 0, then
  weights are divided by their sum + 1e-8 (so a point whose 8 corners are all absent gets 0).

On CUDA the `index_add_` of many points into one voxel uses atomics, so point->voxel sums may differ
in the last bits between runs (as in torchsparse); the sparse convs themselves are deterministic.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from .coords import as_coords, coords_to_keys, kernel_offsets, keys_to_coords
from .tensor import PointTensor, SparseVoxelTensor

_RENORM_EPS = 1e-8  # torchsparse's `w / (sum(w) + 1e-8)`


@dataclass(frozen=True)
class PointVoxelMap:
    """Sparse matrix `(n_dst, n_src)` as triplets: `out[dst[l]] += w[l] · in[src[l]]`.

    dst, src: (L,) int64; weight: (L,) float; n_dst: rows of the output; n_src: rows of the input.
    `voxel_coords` remembers the voxel coordinate tensor the map was built against (cache validity).
    """

    dst: Tensor
    src: Tensor
    weight: Tensor
    n_dst: int
    n_src: int
    voxel_coords: Tensor | None = None

    def apply(self, feats: Tensor) -> Tensor:
        """feats: (n_src, C) -> (n_dst, C), differentiable w.r.t. feats."""
        if feats.shape[0] != self.n_src:
            raise ValueError(f"map expects {self.n_src} input rows, got {feats.shape[0]}")
        w = self.weight.to(feats.dtype)[:, None]
        out = feats.new_zeros(self.n_dst, feats.shape[1])
        return out.index_add_(0, self.dst, feats.index_select(0, self.src) * w)


def scatter_mean(feats: Tensor, index: Tensor, n_out: int) -> Tensor:
    """Mean of `feats: (P, C)` rows per `index: (P,) int64` (-1 ignored) -> (n_out, C); empty rows 0."""
    m = _mean_map(index, n_out, feats.dtype, feats.shape[0])
    return m.apply(feats)


def _mean_map(index: Tensor, n_out: int, dtype: torch.dtype, n_src: int, voxel_coords: Tensor | None = None) -> PointVoxelMap:
    src = (index >= 0).nonzero().squeeze(1)
    dst = index[src]
    counts = torch.bincount(dst, minlength=n_out)
    weight = 1.0 / counts[dst].to(dtype)
    return PointVoxelMap(dst, src, weight, n_out, n_src, voxel_coords)


def voxelize(
    points: Tensor,
    batch: Tensor,
    voxel_size: float,
    feats: Tensor | None = None,
    *,
    batch_size: int | None = None,
    rounding: str = "floor",
) -> tuple[SparseVoxelTensor, PointTensor, Tensor]:
    """Voxelise batched points into unique stride-1 voxels (torchsparse `initial_voxelize`).

    points: (P, 3) float metres; batch: (P,) int64; feats: (P, C) or None.
    Returns (voxels, point_tensor, point_to_voxel):
    * voxels: coords `floor(points / voxel_size)` (unique, sorted by (batch, x, y, z)), feats = mean of
      `feats` per voxel (differentiable) or, if None, the mean point position in voxel units (P, 3);
      a new coordinate hierarchy with the given `rounding` for its strided convs;
    * point_tensor: the points in voxel units with `feats` (or the zero-width (P, 0) tensor), with the
      point -> voxel map cached for stride 1;
    * point_to_voxel: (P,) int64 voxel row of each point.
    Voxel centres in metres: `(voxels.coords[:, 1:] + 0.5) * voxel_size`.
    """
    if points.ndim != 2 or points.shape[1] != 3 or batch.shape != points.shape[:1]:
        raise ValueError(f"points must be (P, 3) with batch (P,), got {tuple(points.shape)} and {tuple(batch.shape)}")
    if feats is not None and feats.shape[0] != points.shape[0]:
        raise ValueError(f"feats must have one row per point ({points.shape[0]}), got {tuple(feats.shape)}")
    with torch.no_grad():
        lattice = points.detach() / voxel_size
        coords = as_coords(torch.cat([batch.long()[:, None], torch.floor(lattice).long()], 1))
        keys, inverse = torch.unique(coords_to_keys(coords), return_inverse=True)
        vcoords = keys_to_coords(keys)
        x = SparseVoxelTensor(lattice.new_zeros(vcoords.shape[0], 0), vcoords, 1, rounding=rounding, batch_size=batch_size)
        mean_map = _mean_map(inverse, vcoords.shape[0], lattice.dtype, points.shape[0], x.coords)
    z = PointTensor(lattice.new_zeros(points.shape[0], 0) if feats is None else feats, lattice, batch.long())
    z.cache[("p2v", 1)] = mean_map
    x = x.replace_feats(mean_map.apply(lattice if feats is None else feats))
    return x, z, inverse


@torch.no_grad()
def point_to_voxel_map(x: SparseVoxelTensor, z: PointTensor) -> PointVoxelMap:
    """Averaging map from the points of `z` into the voxels of `x` (point -> voxel `floor(p/s)·s`)."""
    s = x.stride
    cell = torch.floor(z.coords / s).long() * s
    idx = x.index().lookup(torch.cat([z.batch[:, None], cell], 1))
    return _mean_map(idx, x.num_voxels, z.coords.dtype, z.coords.shape[0], x.coords)


@torch.no_grad()
def trilinear_weights(z_coords: Tensor, z_batch: Tensor, x: SparseVoxelTensor) -> tuple[Tensor, Tensor]:
    """Corner rows and weights for `voxel_to_point` (torchsparse `calc_ti_weights` semantics).

    z_coords: (P, 3) float lattice units; z_batch: (P,) int64.
    Returns idx: (P, 8) int64 voxel row of corner `4δx + 2δy + δz` (-1 if absent) and
    weights: (P, 8) float (0 for absent corners, renormalised to sum ≈ 1 per point, + 1e-8 in the denominator).
    """
    s = x.stride
    pf = torch.floor(z_coords / s) * s  # (P, 3) float lower corner
    delta = kernel_offsets(2, z_coords.device)  # (8, 3) {0,1}, z fastest
    frac = z_coords - pf  # p - pf in [0, s)
    # per axis: δ=1 -> (p - pf), δ=0 -> (pf + s - p) = s - (p - pf)
    per_axis = torch.where(delta[None].bool(), frac[:, None, :], s - frac[:, None, :])  # (P, 8, 3)
    w = per_axis.prod(-1) / float(s) ** 3
    corners = pf.long()[:, None, :] + delta[None] * s  # (P, 8, 3)
    q = torch.cat([z_batch[:, None, None].expand(-1, 8, 1), corners], -1)
    idx = x.index().lookup(q)
    w = torch.where(idx >= 0, w, torch.zeros_like(w))
    w = w / (w.sum(1, keepdim=True) + _RENORM_EPS)
    return idx, w


@torch.no_grad()
def voxel_to_point_map(x: SparseVoxelTensor, z: PointTensor) -> PointVoxelMap:
    """Trilinear interpolation map from the voxels of `x` to the points of `z` (zero weights dropped)."""
    idx, w = trilinear_weights(z.coords, z.batch, x)
    keep = (idx >= 0) & (w != 0)
    p, k = keep.nonzero(as_tuple=True)
    return PointVoxelMap(p, idx[p, k], w[p, k], z.coords.shape[0], x.num_voxels, x.coords)


def _cached(z: PointTensor, kind: str, x: SparseVoxelTensor, build) -> PointVoxelMap:
    key = (kind, x.stride)
    m = z.cache.get(key)
    if m is None or m.voxel_coords is not x.coords:
        m = z.cache[key] = build(x, z)
    return m


def point_to_voxel(x: SparseVoxelTensor, z: PointTensor) -> SparseVoxelTensor:
    """Voxel features = mean of the features of `z`'s points in each voxel of `x` (0 if none).

    x: voxels (N, ·) at stride s (only coords used); z: points (P, C) -> returns `x` with feats (N, C).
    """
    m = _cached(z, "p2v", x, point_to_voxel_map)
    return x.replace_feats(m.apply(z.feats))


def voxel_to_point(x: SparseVoxelTensor, z: PointTensor) -> PointTensor:
    """Point features = trilinear interpolation of `x.feats` at `z`'s points -> `z` with feats (P, C)."""
    m = _cached(z, "v2p", x, voxel_to_point_map)
    return z.replace_feats(m.apply(x.feats))
