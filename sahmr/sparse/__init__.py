"""Sparse voxel tensors and sparse 3D convolution in pure PyTorch (CPU/GPU, batched, differentiable).

A torchsparse-v1.4-free re-implementation of what SPVCNN needs (spec §3.4–3.5), with an optional spconv
backend. Conventions:

* coords: `(N, 4) int64 [batch, x, y, z]` in the stride-1 lattice (torchsparse uses `[x, y, z, batch]`:
  `coords_from_torchsparse`); feats `(N, C)`; one `CoordinateManager` per input caches coordinates per
  stride and kernel maps, shared by all tensors derived from it.
* kernel layout = torchsparse v1.4: `kernel (K, C_in, C_out)` ((C_in, C_out) for k=1); offsets x fastest for
  k=3 (`9(dz+1)+3(dy+1)+(dx+1)`), z fastest for k=2 (`4dx+2dy+dz`). Released checkpoints load as is.
* strided coarse coordinates: `rounding="floor"` (default) or `"trunc"` (torchsparse 1.4 under torch 1.12,
  for exact parity with released weights), chosen per hierarchy when the input tensor is created.

Typical use::

    x, z, _ = voxelize(points, batch, 0.05, feats)        # stride-1 voxels + points
    x = SparseConv3d(35, 32, 3)(x)                          # submanifold
    x2 = SparseConv3d(32, 64, 2, stride=2)(x)               # stride 2
    y = SparseConvTranspose3d(64, 32)(x2)                   # back onto x's voxels
    y = sparse_cat([y, x]); z = voxel_to_point(y, z)
"""

from .conv import (
    apply_kernel_map,
    from_torchsparse_weight,
    init_kernel_,
    kernel_from_dense,
    kernel_shape,
    kernel_to_dense,
    sparse_conv3d,
)
from .coords import CoordIndex, coords_to_keys, downsample_coords, kernel_offsets, keys_to_coords
from .kmap import KernelMap, get_downsample_map, get_submanifold_map
from .nn import (
    BACKENDS,
    SparseBatchNorm,
    SparseConv3d,
    SparseConvTranspose3d,
    SparseDropout,
    SparseFeatureMap,
    SparseReLU,
    conv3d,
    set_backend,
    sparse_add,
    sparse_cat,
)
from .spconv_backend import spconv_available  # imports spconv only when called
from .tensor import (
    CoordinateManager,
    PointTensor,
    SparseVoxelTensor,
    coords_from_torchsparse,
    coords_to_torchsparse,
)
from .voxelize import (
    PointVoxelMap,
    point_to_voxel,
    point_to_voxel_map,
    scatter_mean,
    trilinear_weights,
    voxel_to_point,
    voxel_to_point_map,
    voxelize,
)

__all__ = [
    "BACKENDS",
    "CoordIndex",
    "CoordinateManager",
    "KernelMap",
    "PointTensor",
    "PointVoxelMap",
    "SparseBatchNorm",
    "SparseConv3d",
    "SparseConvTranspose3d",
    "SparseDropout",
    "SparseFeatureMap",
    "SparseReLU",
    "SparseVoxelTensor",
    "apply_kernel_map",
    "conv3d",
    "coords_from_torchsparse",
    "coords_to_keys",
    "coords_to_torchsparse",
    "downsample_coords",
    "from_torchsparse_weight",
    "get_downsample_map",
    "get_submanifold_map",
    "init_kernel_",
    "kernel_from_dense",
    "kernel_offsets",
    "kernel_shape",
    "kernel_to_dense",
    "keys_to_coords",
    "point_to_voxel",
    "point_to_voxel_map",
    "scatter_mean",
    "set_backend",
    "sparse_add",
    "sparse_cat",
    "sparse_conv3d",
    "spconv_available",
    "trilinear_weights",
    "voxel_to_point",
    "voxel_to_point_map",
    "voxelize",
]
