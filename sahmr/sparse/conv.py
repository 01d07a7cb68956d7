"""Sparse 3D convolution in pure PyTorch: kernel maps + gather–matmul–scatter.

Supported (what SPVCNN needs; torchsparse v1.4 semantics, spec §3.5):

| call                                   | output coords                         | out stride | kernel shape      |
|----------------------------------------|---------------------------------------|------------|-------------------|
| kernel_size=1                          | input coords                          | s          | (C_in, C_out)     |
| odd kernel_size, stride=1 (submanifold)| input coords                          | s          | (k³, C_in, C_out) |
| kernel_size=2, stride=2                | unique(round(c/2s)·2s), manager's rule| 2s         | (8, C_in, C_out)  |
| kernel_size=2, stride=2, transposed    | coords of the matching downsampling   | s/2        | (8, C_in, C_out)  |

**Weight layout = torchsparse v1.4** (`kernel` parameter, no conversion needed for released
checkpoints): `W[k]` is the `(C_in, C_out)` matrix of kernel offset `k` in `coords.kernel_offsets` order —
x fastest for odd kernels (`k = 9(dz+1) + 3(dy+1) + (dx+1)` for k=3), z fastest for k=2
(`k = 4dx + 2dy + dz`). For the transposed conv `W[k]` maps a coarse input row to the fine output row at
offset `delta_k` (the transpose of the downsampling's connection). `kernel_from_dense` / `kernel_to_dense`
convert from/to `torch.nn.functional.conv3d` / `conv_transpose3d` weights with dense dims (X, Y, Z).

Submanifold semantics: `out[j] = Σ_k Σ_{i: c_i = c_j + s·δ_k} in[i] · W[k]` — equal to a dense conv of the
zero-filled grid **at the active sites only** (dense output at inactive sites is not produced).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from .kmap import KernelMap, get_downsample_map, get_submanifold_map
from .tensor import SparseVoxelTensor


class _KernelMapConv(torch.autograd.Function):
    """out = Σ_k scatter(out_idx_k, in[in_idx_k] @ W[k]).

    Custom backward so that only `feats` and `kernel` are saved (autograd on the plain ops would keep
    every gathered `in[in_idx_k]`, i.e. ~#pairs × C_in floats per layer). The backward is written with
    differentiable out-of-place ops, so double backward works too.
    """

    @staticmethod
    def forward(ctx, feats: Tensor, kernel: Tensor, kmap: KernelMap) -> Tensor:
        ctx.save_for_backward(feats, kernel)
        ctx.kmap = kmap
        # computed in the inputs' dtype: under autocast the per-offset products could change dtype
        # between offsets and break the index_add_ accumulation
        with torch.autocast(feats.device.type, enabled=False):
            return _apply_map(feats, kernel, kmap)

    @staticmethod
    def backward(ctx, grad_out: Tensor):
        feats, kernel = ctx.saved_tensors
        kmap: KernelMap = ctx.kmap
        need_f, need_w = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
        grad_feats = feats.new_zeros(feats.shape) if need_f else None
        rows = []
        for k in range(kmap.kernel_volume):
            w = kernel[k]
            if k == kmap.identity_k:
                go, f = grad_out, feats
            elif kmap.in_idx[k].numel() == 0:
                if need_w:
                    rows.append(kernel.new_zeros(kernel.shape[1:]))
                continue
            else:
                go = grad_out.index_select(0, kmap.out_idx[k])  # gathered once, used by both gradients
                f = feats.index_select(0, kmap.in_idx[k]) if need_w else None
            if need_f:
                # transposed connection: d feats[in] += d out[out] @ W[k]^T
                if k == kmap.identity_k:
                    grad_feats = grad_feats + go @ w.t()
                else:
                    grad_feats = grad_feats.index_add(0, kmap.in_idx[k], go @ w.t())
            if need_w:
                rows.append(f.t() @ go)
        grad_kernel = torch.stack(rows) if need_w else None
        return grad_feats, grad_kernel, None


def _apply_map(feats: Tensor, kernel: Tensor, kmap: KernelMap) -> Tensor:
    """Forward gather–matmul–scatter. feats: (n_in, C_in), kernel: (K, C_in, C_out) -> (n_out, C_out)."""
    if kmap.identity_k >= 0:
        out = feats @ kernel[kmap.identity_k]
    else:
        out = feats.new_zeros(kmap.n_out, kernel.shape[2])
    for k in range(kmap.kernel_volume):
        if k == kmap.identity_k or kmap.in_idx[k].numel() == 0:
            continue
        out.index_add_(0, kmap.out_idx[k], feats.index_select(0, kmap.in_idx[k]) @ kernel[k])
    return out


def apply_kernel_map(feats: Tensor, kernel: Tensor, kmap: KernelMap) -> Tensor:
    """Differentiable `out (n_out, C_out) = Σ_k scatter(out_idx_k, feats[in_idx_k] @ kernel[k])`.

    feats: (n_in, C_in); kernel: (K, C_in, C_out) with K = kmap.kernel_volume.
    """
    if feats.shape[0] != kmap.n_in or kernel.shape[0] != kmap.kernel_volume or kernel.shape[1] != feats.shape[1]:
        raise ValueError(
            f"shape mismatch: feats {tuple(feats.shape)}, kernel {tuple(kernel.shape)}, map with {kmap.n_in} inputs and {kmap.kernel_volume} offsets"
        )
    dev = feats.device.type
    if torch.is_autocast_enabled(dev):
        # mixed precision (bf16 autocast on CPU/CUDA): like a matmul under autocast, compute in the autocast
        # dtype; the kernel's gradient flows back through the cast to its fp32 parameter
        dt = torch.get_autocast_dtype(dev)
        with torch.autocast(dev, enabled=False):
            return _KernelMapConv.apply(feats.to(dt), kernel.to(dt), kmap)
    if feats.dtype != kernel.dtype:
        raise TypeError(f"feats dtype {feats.dtype} != kernel dtype {kernel.dtype}")
    return _KernelMapConv.apply(feats, kernel, kmap)


def check_conv_config(kernel_size: int, stride: int, transposed: bool) -> None:
    """Raise NotImplementedError for (kernel_size, stride, transposed) combinations not supported."""
    ok = (
        (kernel_size == 1 and stride == 1 and not transposed)
        or (kernel_size % 2 == 1 and stride == 1 and not transposed)
        or (kernel_size == 2 and stride == 2)
    )
    if not ok:
        raise NotImplementedError(
            f"sparse conv with kernel_size={kernel_size}, stride={stride}, transposed={transposed}: supported are "
            "k=1 s=1, odd k s=1 (submanifold), k=2 s=2 (downsampling) and its transposed form"
        )


def kernel_shape(in_channels: int, out_channels: int, kernel_size: int) -> tuple[int, ...]:
    """Shape of the `kernel` parameter: (C_in, C_out) for k=1, else (k³, C_in, C_out) (torchsparse v1.4)."""
    if kernel_size == 1:
        return (in_channels, out_channels)
    return (kernel_size**3, in_channels, out_channels)


def init_kernel_(kernel: Tensor, transposed: bool = False) -> Tensor:
    """torchsparse v1.4 init: uniform(±1/sqrt(fan)), fan = C_in·K (C_out·K when transposed)."""
    K = 1 if kernel.ndim == 2 else kernel.shape[0]
    fan = (kernel.shape[-1] if transposed else kernel.shape[-2]) * K
    bound = 1.0 / math.sqrt(fan)
    with torch.no_grad():
        return kernel.uniform_(-bound, bound)


def sparse_conv3d(
    x: SparseVoxelTensor,
    kernel: Tensor,
    kernel_size: int,
    stride: int = 1,
    transposed: bool = False,
    bias: Tensor | None = None,
) -> SparseVoxelTensor:
    """Sparse 3D convolution (pure-torch backend); see the module docstring for the supported cases.

    x: feats (N, C_in) at tensor stride s; kernel: `kernel_shape(C_in, C_out, kernel_size)`;
    bias: (C_out,) or None. Returns feats (N', C_out) with coords/stride per the table above.
    """
    check_conv_config(kernel_size, stride, transposed)
    if kernel.shape[-2] != x.num_channels:
        raise ValueError(f"kernel expects {kernel.shape[-2]} input channels, tensor has {x.num_channels}")
    m = x.manager
    if kernel_size == 1:
        if kernel.ndim == 3:
            kernel = kernel[0]
        out = x.replace_feats(x.feats @ kernel)
    elif stride == 1:
        kmap = get_submanifold_map(m, x.stride, kernel_size)
        out = x.replace_feats(apply_kernel_map(x.feats, kernel, kmap))
    elif not transposed:
        coarse, kmap = get_downsample_map(m, x.stride)
        out = SparseVoxelTensor._derived(apply_kernel_map(x.feats, kernel, kmap), coarse, 2 * x.stride, m)
    else:
        s = x.stride // 2
        if x.stride % 2 or s not in m.coords:
            raise ValueError(
                f"transposed conv on a stride-{x.stride} tensor needs the stride-{s} coordinates of the matching "
                "downsampling conv in the same hierarchy (run the downsampling first, on this tensor's manager)"
            )
        _, kmap = get_downsample_map(m, s)
        out = SparseVoxelTensor._derived(apply_kernel_map(x.feats, kernel, kmap.transpose()), m.coords[s], s, m)
    if bias is not None:
        out = out.replace_feats(out.feats + bias)
    return out


# ---- weight layout conversion -----------------------------------------------------------------------


def kernel_from_dense(weight: Tensor, transposed: bool = False) -> Tensor:
    """Dense torch weight -> sparse `kernel`, with dense spatial dims (D, H, W) = (x, y, z).

    weight: conv3d `(C_out, C_in, k, k, k)` or, transposed, conv_transpose3d `(C_in, C_out, k, k, k)`.
    Returns (k³, C_in, C_out) ((C_in, C_out) for k = 1), such that the sparse conv equals the dense one:
    submanifold (odd k) ≙ conv3d(padding=k//2), k=2 s=2 ≙ conv3d(stride=2), transposed ≙ conv_transpose3d(stride=2).
    """
    k = weight.shape[-1]
    w = weight if transposed else weight.transpose(0, 1)  # (C_in, C_out, kx, ky, kz)
    if k == 1:
        return w[..., 0, 0, 0].contiguous()
    if k % 2 == 1:  # x fastest: flatten (kz, ky, kx)
        return w.permute(4, 3, 2, 0, 1).reshape(k**3, w.shape[0], w.shape[1]).contiguous()
    if k == 2:  # z fastest: flatten (kx, ky, kz)
        return w.permute(2, 3, 4, 0, 1).reshape(8, w.shape[0], w.shape[1]).contiguous()
    raise NotImplementedError(f"kernel size {k}")


def kernel_to_dense(kernel: Tensor, kernel_size: int, transposed: bool = False) -> Tensor:
    """Inverse of `kernel_from_dense`: sparse `kernel` -> conv3d / conv_transpose3d weight."""
    k = kernel_size
    if k == 1:
        w = kernel.reshape(kernel.shape[-2], kernel.shape[-1])[..., None, None, None]
    elif k % 2 == 1:
        w = kernel.reshape(k, k, k, kernel.shape[1], kernel.shape[2]).permute(3, 4, 2, 1, 0)
    elif k == 2:
        w = kernel.reshape(2, 2, 2, kernel.shape[1], kernel.shape[2]).permute(3, 4, 0, 1, 2)
    else:
        raise NotImplementedError(f"kernel size {k}")
    return (w if transposed else w.transpose(0, 1)).contiguous()


def from_torchsparse_weight(kernel: Tensor, kernel_size: int, in_channels: int, out_channels: int) -> Tensor:
    """A torchsparse v1.4 `Conv3d.kernel` as our `kernel`: the layouts are identical, so this only validates.

    Offsets orders (x fastest for k=3, z fastest for k=2) and (K, C_in, C_out) — including transposed
    convs, whose kernel is (K, C_in(coarse), C_out) — match; k=1 kernels are (C_in, C_out) in both.
    State-dict keys match too (`<conv>.kernel`), so released checkpoints load without conversion.
    """
    expected = kernel_shape(in_channels, out_channels, kernel_size)
    if tuple(kernel.shape) != expected:
        raise ValueError(f"torchsparse kernel has shape {tuple(kernel.shape)}, expected {expected}")
    return kernel
