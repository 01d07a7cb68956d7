"""Reference helpers for the sparse tests: random partly-occupied grids and naive loop implementations."""

from __future__ import annotations

import torch


def random_grid(batch: int, channels: int, shape: tuple[int, int, int], density, dtype=torch.float64, seed: int = 0):
    """Dense features `(B, C, X, Y, Z)` zero outside a random mask `(B, X, Y, Z)`.

    density: a float or one float per sample (different occupancy per sample)."""
    g = torch.Generator().manual_seed(seed)
    dens = torch.as_tensor(density, dtype=torch.float64).reshape(-1, 1, 1, 1).expand(batch, 1, 1, 1)
    mask = torch.rand(batch, *shape, generator=g, dtype=torch.float64) < dens
    grid = torch.randn(batch, channels, *shape, generator=g, dtype=dtype) * mask[:, None]
    return grid, mask


def gather_sites(dense: torch.Tensor, coords: torch.Tensor, origin, stride: int) -> torch.Tensor:
    """Rows of `dense (B, C, X, Y, Z)` at sparse `coords (N, 4)`: cell `(xyz - origin) / stride` -> (N, C)."""
    cell = torch.div(coords[:, 1:] - torch.as_tensor(origin), stride, rounding_mode="floor")
    return dense.permute(0, 2, 3, 4, 1)[coords[:, 0], cell[:, 0], cell[:, 1], cell[:, 2]]


def scatter_sites(feats: torch.Tensor, coords: torch.Tensor, origin, stride: int, batch: int, shape) -> torch.Tensor:
    """Inverse of `gather_sites`: zero-filled dense grid `(B, C, X, Y, Z)`, differentiable in feats."""
    cell = torch.div(coords[:, 1:] - torch.as_tensor(origin), stride, rounding_mode="floor")
    grid = feats.new_zeros(batch, *shape, feats.shape[1])
    grid = grid.index_put((coords[:, 0], cell[:, 0], cell[:, 1], cell[:, 2]), feats)
    return grid.permute(0, 4, 1, 2, 3)


def naive_conv(in_coords, in_feats, out_coords, kernel, deltas, transposed=False):
    """Loop reference: out[j] = Σ_k in[i] W[k] over pairs with c_i = c_j + δ_k (or c_j = c_i + δ_k if transposed).

    coords: (N, 4) [b, x, y, z]; deltas: (K, 3) already scaled by the stride."""
    lut = {tuple(c): i for i, c in enumerate(in_coords.tolist())}
    out = torch.zeros(out_coords.shape[0], kernel.shape[2], dtype=in_feats.dtype)
    for j, (b, x, y, z) in enumerate(out_coords.tolist()):
        for k, (dx, dy, dz) in enumerate(deltas.tolist()):
            q = (b, x - dx, y - dy, z - dz) if transposed else (b, x + dx, y + dy, z + dz)
            i = lut.get(q)
            if i is not None:
                out[j] += in_feats[i] @ kernel[k]
    return out
