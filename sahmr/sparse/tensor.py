"""Sparse voxel tensors (packed, batched) and the coordinate cache shared by one U-Net hierarchy.

`SparseVoxelTensor` = features `(N, C)` + coords `(N, 4) int64 [batch, x, y, z]` + tensor stride `s`.
Coordinates are always in the stride-1 lattice (multiples of `s` at stride `s`), as in torchsparse v1.4,
whose own layout is `[x, y, z, batch]`: convert with `coords_from_torchsparse` / `coords_to_torchsparse`.

All tensors derived from one input (by convs, BN, ReLU, concatenation, point<->voxel ops) share a
`CoordinateManager`: it owns the coordinate set of each stride (one set per stride, as torchsparse's
`cmaps`), their lookup indices and the cached kernel maps (torchsparse's `kmaps`), so a U-Net builds each
map once per forward and transposed convs find the coordinates of the matching downsampling.

`PointTensor` = point features `(P, C)` + float coords `(P, 3)` in the same lattice units + batch `(P,)`;
it caches its point<->voxel maps per stride (torchsparse's `idx_query`/`weights`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from .coords import ROUNDINGS, CoordIndex, Rounding, as_coords, coords_to_keys


class CoordinateManager:
    """Per-hierarchy cache: coordinates, lookup indices and kernel maps, keyed by tensor stride.

    rounding: rule for coarse coordinates of strided convs ("floor" clean, "trunc" torchsparse-1.4 parity;
        see `coords.downsample_coords`). One rule per hierarchy so every layer agrees.
    coords: {stride: (N_s, 4) int64}; kernel_maps: {key tuple: KernelMap}; extra: backend caches.
    """

    def __init__(self, rounding: Rounding = "floor", batch_size: int | None = None):
        if rounding not in ROUNDINGS:
            raise ValueError(f"rounding must be one of {ROUNDINGS}, got {rounding!r}")
        self.rounding: Rounding = rounding
        self.coords: dict[int, Tensor] = {}
        self._index: dict[int, CoordIndex] = {}
        self.kernel_maps: dict[tuple, Any] = {}
        self.extra: dict[str, Any] = {}
        self._batch_size = batch_size

    def register(self, stride: int, coords: Tensor) -> Tensor:
        """Record `coords` as the coordinate set at `stride`; returns the stored tensor.

        A stride can hold only one set (kernel maps are cached by stride): registering a different set
        raises ValueError; an equal one returns the stored tensor so identity checks keep working.
        """
        old = self.coords.get(stride)
        if old is None:
            self.coords[stride] = coords
            return coords
        if old is coords or (old.shape == coords.shape and torch.equal(old, coords)):
            return old
        raise ValueError(
            f"this coordinate hierarchy already holds a different coordinate set at stride {stride}; "
            "create the tensor with a new CoordinateManager (manager=None)"
        )

    def index(self, stride: int) -> CoordIndex:
        """Lookup index of the coordinates at `stride` (built once)."""
        idx = self._index.get(stride)
        if idx is None:
            idx = self._index[stride] = CoordIndex.build(self.coords[stride])
        return idx

    @property
    def batch_size(self) -> int:
        """Number of samples (max batch index + 1 over the stride-1 coords unless given)."""
        if self._batch_size is None:
            c = self.coords[min(self.coords)]
            self._batch_size = int(c[:, 0].max()) + 1 if c.numel() else 0
        return self._batch_size


class SparseVoxelTensor:
    """Batched sparse voxel features.

    feats: (N, C) float; coords: (N, 4) int64 [batch, x, y, z], unique rows, multiples of `stride` in x, y, z;
    stride: int tensor stride (isotropic); manager: shared `CoordinateManager` (new one if None).
    rounding / batch_size are only used when a new manager is created.
    """

    __slots__ = ("feats", "coords", "stride", "manager")

    def __init__(
        self,
        feats: Tensor,
        coords: Tensor,
        stride: int = 1,
        manager: CoordinateManager | None = None,
        *,
        rounding: Rounding = "floor",
        batch_size: int | None = None,
    ):
        coords = as_coords(coords)
        if feats.ndim != 2 or feats.shape[0] != coords.shape[0]:
            raise ValueError(f"feats must be (N, C) with N = len(coords) = {coords.shape[0]}, got {tuple(feats.shape)}")
        if feats.device != coords.device:
            raise ValueError(f"feats on {feats.device} but coords on {coords.device}")
        if stride < 1:
            raise ValueError(f"stride must be >= 1, got {stride}")
        if stride > 1 and coords.numel() and bool((coords[:, 1:] % stride != 0).any()):
            raise ValueError(f"coords at stride {stride} must be multiples of {stride} (stride-1 lattice units)")
        if manager is None:
            manager = CoordinateManager(rounding, batch_size)
        if stride not in manager.coords and coords.shape[0] > 1:
            keys = torch.sort(coords_to_keys(coords)).values
            if bool((keys[1:] == keys[:-1]).any()):
                raise ValueError("coords contain duplicate rows; voxelise with `voxelize` or torch.unique first")
        self.manager = manager
        self.coords = manager.register(stride, coords)
        self.feats = feats
        self.stride = int(stride)

    @classmethod
    def _derived(cls, feats: Tensor, coords: Tensor, stride: int, manager: CoordinateManager) -> SparseVoxelTensor:
        """Internal constructor without validation (coords already registered in `manager`)."""
        self = cls.__new__(cls)
        self.feats, self.coords, self.stride, self.manager = feats, coords, stride, manager
        return self

    def replace_feats(self, feats: Tensor) -> SparseVoxelTensor:
        """Same voxels, new features `(N, C')` (shares coords and cache)."""
        if feats.shape[0] != self.coords.shape[0]:
            raise ValueError(f"expected {self.coords.shape[0]} feature rows, got {feats.shape[0]}")
        return SparseVoxelTensor._derived(feats, self.coords, self.stride, self.manager)

    @property
    def num_voxels(self) -> int:
        return self.coords.shape[0]

    @property
    def num_channels(self) -> int:
        return self.feats.shape[1]

    @property
    def batch_size(self) -> int:
        return self.manager.batch_size

    @property
    def batch(self) -> Tensor:
        """(N,) int64 batch index of each voxel."""
        return self.coords[:, 0]

    def index(self) -> CoordIndex:
        """Lookup index of this tensor's coordinates (cached in the manager)."""
        return self.manager.index(self.stride)

    def __repr__(self) -> str:
        return (
            f"SparseVoxelTensor(N={self.num_voxels}, C={self.num_channels}, stride={self.stride}, "
            f"dtype={self.feats.dtype}, device={self.feats.device})"
        )

    # ---- dense conversion (tests, debugging, small grids) -------------------------------------------
    def to_dense(
        self, origin: Tensor | tuple[int, int, int] | None = None, shape: tuple[int, int, int] | None = None, batch_size: int | None = None
    ) -> Tensor:
        """Scatter into a dense grid `(B, C, X, Y, Z)`; cell `(c.xyz - origin) / stride`.

        origin defaults to the minimum coordinate, shape to the tight extent. Voxels outside are dropped.
        """
        dev = self.coords.device
        xyz = self.coords[:, 1:]
        origin_t = xyz.amin(0) if origin is None else torch.as_tensor(origin, device=dev, dtype=torch.long)
        cell = torch.div(xyz - origin_t, self.stride, rounding_mode="floor")
        if shape is None:
            shape = tuple(int(v) + 1 for v in cell.amax(0))
        b = self.batch_size if batch_size is None else batch_size
        dims = torch.tensor(shape, device=dev)
        keep = ((cell >= 0) & (cell < dims)).all(1)
        grid = self.feats.new_zeros(b, *shape, self.num_channels)
        c = cell[keep]
        grid[self.coords[keep, 0], c[:, 0], c[:, 1], c[:, 2]] = self.feats[keep]
        return grid.permute(0, 4, 1, 2, 3)

    @classmethod
    def from_dense(
        cls, grid: Tensor, mask: Tensor | None = None, origin: tuple[int, int, int] = (0, 0, 0), stride: int = 1, **kwargs
    ) -> SparseVoxelTensor:
        """Active cells of `grid: (B, C, X, Y, Z)` (where `mask: (B, X, Y, Z) bool`, default: any non-zero)."""
        if mask is None:
            mask = (grid != 0).any(1)
        b, x, y, z = mask.nonzero(as_tuple=True)
        xyz = torch.stack([x, y, z], 1) * stride + torch.as_tensor(origin, device=grid.device)
        coords = torch.cat([b[:, None], xyz], 1)
        feats = grid.permute(0, 2, 3, 4, 1)[b, x, y, z]
        return cls(feats, coords, stride, batch_size=grid.shape[0], **kwargs)


def coords_from_torchsparse(coords_xyzb: Tensor) -> Tensor:
    """torchsparse v1.4 coords `(N, 4) [x, y, z, batch]` -> ours `(N, 4) int64 [batch, x, y, z]`."""
    return coords_xyzb[:, [3, 0, 1, 2]].long()


def coords_to_torchsparse(coords: Tensor) -> Tensor:
    """Ours `(N, 4) [batch, x, y, z]` -> torchsparse v1.4 `(N, 4) int32 [x, y, z, batch]`."""
    return coords[:, [1, 2, 3, 0]].int()


@dataclass
class PointTensor:
    """Batched points carried alongside a voxel hierarchy (SPVCNN's point branch).

    feats: (P, C) float; coords: (P, 3) float (x, y, z) in stride-1 voxel units (point / voxel_size);
    batch: (P,) int64; cache: point<->voxel maps per (kind, stride), shared by `replace_feats`.
    """

    feats: Tensor
    coords: Tensor
    batch: Tensor
    cache: dict = field(default_factory=dict, repr=False)

    def __post_init__(self):
        p = self.coords.shape[0]
        if self.coords.ndim != 2 or self.coords.shape[1] != 3 or not self.coords.dtype.is_floating_point:
            raise ValueError(f"point coords must be (P, 3) float, got {tuple(self.coords.shape)} {self.coords.dtype}")
        if self.feats.ndim != 2 or self.feats.shape[0] != p or self.batch.shape != (p,):
            raise ValueError(f"feats (P, C) and batch (P,) must match P = {p} points")

    def replace_feats(self, feats: Tensor) -> PointTensor:
        """Same points, new features `(P, C')` (shares coords and map cache)."""
        if feats.shape[0] != self.coords.shape[0]:
            raise ValueError(f"expected {self.coords.shape[0]} feature rows, got {feats.shape[0]}")
        return PointTensor(feats, self.coords, self.batch, self.cache)

    @classmethod
    def from_voxels(cls, x: SparseVoxelTensor, feats: Tensor | None = None) -> PointTensor:
        """One point per voxel of `x`, at its integer coordinate (SPVCNN's `z` for stride-1 input)."""
        f = x.feats if feats is None else feats
        dtype = f.dtype if f.dtype.is_floating_point else torch.float32
        return cls(f, x.coords[:, 1:].to(dtype), x.coords[:, 0])
