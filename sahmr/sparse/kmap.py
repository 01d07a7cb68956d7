"""Kernel maps: for each kernel offset, the (input row, output row) pairs a sparse conv connects.

A conv is then `out[out_idx[k]] += in[in_idx[k]] @ W[k]` for every offset k (gather–matmul–scatter,
`conv.py`). Maps are built by exact coordinate lookup (`coords.CoordIndex`) and cached in the
`CoordinateManager` under `("subm", stride, k)` / `("down", stride)`, so every layer of a U-Net at the
same stride reuses one map and a transposed conv reuses (transposes) the map of its downsampling.

Within one offset every input row and every output row occurs at most once (the maps used here are
injective per offset), so the per-offset `index_add_` never accumulates twice into one row: results are
deterministic on GPU too.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from .coords import CoordIndex, downsample_coords, kernel_offsets
from .tensor import CoordinateManager


@dataclass(frozen=True)
class KernelMap:
    """Pairs per kernel offset.

    in_idx[k], out_idx[k]: (M_k,) int64 rows of the input / output features linked by offset k;
    n_in, n_out: row counts; identity_k: offset whose map is the identity (submanifold centre), done as
    a plain matmul without gather/scatter (its entries are empty tensors), or -1.
    """

    in_idx: tuple[Tensor, ...]
    out_idx: tuple[Tensor, ...]
    n_in: int
    n_out: int
    identity_k: int = -1

    @property
    def kernel_volume(self) -> int:
        return len(self.in_idx)

    @property
    def num_pairs(self) -> int:
        n = sum(int(i.numel()) for i in self.in_idx)
        return n + (self.n_in if self.identity_k >= 0 else 0)

    def transpose(self) -> KernelMap:
        """The same connections read backwards (input <-> output): a transposed conv's map."""
        return KernelMap(self.out_idx, self.in_idx, self.n_out, self.n_in, self.identity_k)


def _split_pairs(found: Tensor) -> tuple[tuple[Tensor, ...], tuple[Tensor, ...]]:
    """found: (K, N_out) input row or -1 -> per-offset (in_idx, out_idx) with two host syncs in total."""
    mask = found >= 0
    k, j = mask.nonzero(as_tuple=True)  # row-major: grouped by offset, ascending output row
    counts = mask.sum(1).tolist()
    return found[k, j].split(counts), j.split(counts)


def submanifold_map(coords: Tensor, index: CoordIndex, stride: int, kernel_size: int) -> KernelMap:
    """Map of a submanifold conv (output sites = input sites) at tensor stride `stride`.

    Output j receives input i through offset k iff `c_i = c_j + stride·delta_k` (delta in `kernel_offsets`
    order). Only half of the offsets are looked up: the map of -delta (index K-1-k) is the swap of delta's.
    """
    n = coords.shape[0]
    deltas = kernel_offsets(kernel_size, coords.device) * stride
    K = deltas.shape[0]
    half = K // 2
    q = coords[None, :, :].repeat(half, 1, 1)
    q[:, :, 1:] += deltas[:half, None, :]
    ins, outs = _split_pairs(index.lookup(q))
    empty = coords.new_empty(0)
    # offset K-1-k (= -delta_k) connects output i to input j whenever offset k connects output j to input i
    in_idx = ins + (empty,) + tuple(outs[half - 1 - m] for m in range(half))
    out_idx = outs + (empty,) + tuple(ins[half - 1 - m] for m in range(half))
    return KernelMap(in_idx, out_idx, n, n, identity_k=half)


def downsample_map(fine_index: CoordIndex, coarse: Tensor, stride: int, n_fine: int) -> KernelMap:
    """Map of the kernel-2 stride-2 conv from stride `stride` (fine) to `2·stride` (coarse).

    Coarse j receives fine i through offset k iff `c_i = c_j + stride·delta_k`, delta in {0,1}^3, z fastest
    (torchsparse v1.4). With floor rounding every fine voxel feeds exactly one coarse voxel; with trunc
    rounding negative voxels can fall outside the footprint of the coarse site they created (spec §3.5).
    """
    deltas = kernel_offsets(2, coarse.device) * stride
    q = coarse[None, :, :].repeat(deltas.shape[0], 1, 1)
    q[:, :, 1:] += deltas[:, None, :]
    ins, outs = _split_pairs(fine_index.lookup(q))
    return KernelMap(ins, outs, n_fine, coarse.shape[0])


def get_submanifold_map(manager: CoordinateManager, stride: int, kernel_size: int) -> KernelMap:
    """Cached `submanifold_map` of the coordinates at `stride`."""
    key = ("subm", stride, kernel_size)
    kmap = manager.kernel_maps.get(key)
    if kmap is None:
        kmap = submanifold_map(manager.coords[stride], manager.index(stride), stride, kernel_size)
        manager.kernel_maps[key] = kmap
    return kmap


@torch.no_grad()
def get_downsample_map(manager: CoordinateManager, stride: int) -> tuple[Tensor, KernelMap]:
    """Coarse coords (registered at `2·stride`, computed with the manager's rounding if absent) and the
    cached `downsample_map` from `stride`."""
    key = ("down", stride)
    kmap = manager.kernel_maps.get(key)
    coarse = manager.coords.get(2 * stride)
    if coarse is None:
        coarse = manager.register(2 * stride, downsample_coords(manager.coords[stride], stride, 2, manager.rounding))
    if kmap is None:
        kmap = downsample_map(manager.index(stride), coarse, stride, manager.coords[stride].shape[0])
        manager.kernel_maps[key] = kmap
    return coarse, kmap
