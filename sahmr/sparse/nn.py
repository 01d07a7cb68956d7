"""Thin `nn.Module`s over `SparseVoxelTensor` (state-dict compatible with torchsparse v1.4 `spnn`).

Parameter names match torchsparse (`<conv>.kernel`, optional `<conv>.bias`; BatchNorm = `nn.BatchNorm1d`
over the `(N, C)` feature matrix), so `nn.Sequential(SparseConv3d, SparseBatchNorm, SparseReLU, ...)` yields
the released checkpoints' keys (`stem.0.kernel`, `stem.1.weight`, ...).

Backends: `backend="torch"` (pure PyTorch, any float dtype, CPU/GPU) or `"spconv"` (spconv 2.x kernels,
float32 only, imported lazily). The parameter layout is the same for both.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from .conv import check_conv_config, init_kernel_, kernel_shape, sparse_conv3d
from .tensor import SparseVoxelTensor

BACKENDS = ("torch", "spconv")


def _check_backend(backend: str) -> str:
    if backend not in BACKENDS:
        raise ValueError(f"sparse backend must be one of {BACKENDS}, got {backend!r}")
    return backend


def conv3d(
    x: SparseVoxelTensor,
    kernel: Tensor,
    kernel_size: int,
    stride: int = 1,
    transposed: bool = False,
    bias: Tensor | None = None,
    backend: str = "torch",
) -> SparseVoxelTensor:
    """Sparse conv through the chosen backend (see `conv.sparse_conv3d` for semantics and layouts)."""
    if _check_backend(backend) == "spconv" and kernel_size != 1:
        from .spconv_backend import spconv_conv3d  # lazy: the package works without spconv

        return spconv_conv3d(x, kernel, kernel_size, stride, transposed, bias)
    return sparse_conv3d(x, kernel, kernel_size, stride, transposed, bias)


class SparseConv3d(nn.Module):
    """Sparse 3D convolution (torchsparse `spnn.Conv3d` equivalent).

    in_channels/out_channels: C_in/C_out; kernel_size: 1, odd (submanifold, stride 1) or 2 (stride 2);
    transposed: kernel-2 stride-2 upsampling onto the coordinates of the matching downsampling.
    Parameters: kernel (k³, C_in, C_out) or (C_in, C_out) for k=1; bias (C_out,) if bias=True.
    forward: feats (N, C_in) -> (N', C_out).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 3,
        stride: int = 1,
        bias: bool = False,
        transposed: bool = False,
        backend: str = "torch",
    ):
        super().__init__()
        check_conv_config(kernel_size, stride, transposed)
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size, self.stride, self.transposed = kernel_size, stride, transposed
        self.backend = _check_backend(backend)
        self.kernel = nn.Parameter(torch.empty(kernel_shape(in_channels, out_channels, kernel_size)))
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        init_kernel_(self.kernel, self.transposed)
        if self.bias is not None:
            nn.init.zeros_(self.bias)

    def forward(self, x: SparseVoxelTensor) -> SparseVoxelTensor:
        return conv3d(x, self.kernel, self.kernel_size, self.stride, self.transposed, self.bias, self.backend)

    def extra_repr(self) -> str:
        t = ", transposed=True" if self.transposed else ""
        return (
            f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}"
            f"{t}, bias={self.bias is not None}, backend={self.backend!r}"
        )


class SparseConvTranspose3d(SparseConv3d):
    """Transposed sparse conv (k=2, s=2): `SparseConv3d(..., transposed=True)`."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 2, stride: int = 2, bias: bool = False, backend: str = "torch"):
        super().__init__(in_channels, out_channels, kernel_size, stride, bias, True, backend)


class SparseBatchNorm(nn.BatchNorm1d):
    """BatchNorm over the voxel feature matrix `(N, C)` of all samples together (as torchsparse)."""

    def forward(self, x: SparseVoxelTensor) -> SparseVoxelTensor:  # type: ignore[override]
        return x.replace_feats(super().forward(x.feats))


class SparseReLU(nn.ReLU):
    """ReLU on the features."""

    def forward(self, x: SparseVoxelTensor) -> SparseVoxelTensor:  # type: ignore[override]
        return x.replace_feats(super().forward(x.feats))


class SparseDropout(nn.Dropout):
    """Dropout on the features (training only)."""

    def forward(self, x: SparseVoxelTensor) -> SparseVoxelTensor:  # type: ignore[override]
        return x.replace_feats(super().forward(x.feats))


class SparseFeatureMap(nn.Module):
    """Apply any `(N, C) -> (N, C')` module (e.g. nn.Linear) to the features; keys are `<name>.module.*`."""

    def __init__(self, module: nn.Module):
        super().__init__()
        self.module = module

    def forward(self, x: SparseVoxelTensor) -> SparseVoxelTensor:
        return x.replace_feats(self.module(x.feats))


def sparse_cat(tensors: Sequence[SparseVoxelTensor]) -> SparseVoxelTensor:
    """Channel concatenation `[a, b, ...]` (coords of the first; all must share the same voxels)."""
    first = tensors[0]
    for t in tensors[1:]:
        if t.coords is not first.coords and not (t.coords.shape == first.coords.shape and torch.equal(t.coords, first.coords)):
            raise ValueError("sparse_cat needs tensors on the same voxels (same coords, same order)")
    return first.replace_feats(torch.cat([t.feats for t in tensors], 1))


def sparse_add(a: SparseVoxelTensor, b: SparseVoxelTensor) -> SparseVoxelTensor:
    """Feature sum of two tensors on the same voxels (residual connections)."""
    if a.coords is not b.coords and not (a.coords.shape == b.coords.shape and torch.equal(a.coords, b.coords)):
        raise ValueError("sparse_add needs tensors on the same voxels (same coords, same order)")
    return a.replace_feats(a.feats + b.feats)


def set_backend(module: nn.Module, backend: str) -> nn.Module:
    """Switch every `SparseConv3d` inside `module` to `backend` ("torch" or "spconv"); returns `module`."""
    _check_backend(backend)
    for m in module.modules():
        if isinstance(m, SparseConv3d):
            m.backend = backend
    return module
