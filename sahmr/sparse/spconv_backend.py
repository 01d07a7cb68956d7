"""Optional spconv 2.x backend with the same semantics and parameter layout as the pure-torch one.

Imported lazily by `nn.conv3d(..., backend="spconv")`, so `sahmr.sparse` works without spconv.

* **float32 only**: spconv 2.3.8's CPU kernels give wrong, non-repeatable results in float64
  (ENVIRONMENT.md), so anything else raises TypeError.
* **CPU backward workaround**: spconv's backward asks CUDA for a stream (upstream issue #366); when CUDA is
  unavailable we set `spconv.pytorch.ops.get_current_stream = lambda: 0` once, on first use (a process-wide
  patch of spconv's module — it only affects spconv).
* **single-threaded on the CPU**: spconv 2.3.8's CPU submanifold conv forward and its input-gradient
  backward race when torch runs more than one intra-op thread (measured here: 2 threads give different,
  wrong outputs in ~1 of 3 runs; 1 thread is exact and repeatable). Each CPU spconv call therefore runs
  under `torch.set_num_threads(1)`, forward and backward (the backward is bracketed by two identity
  autograd nodes, `_ThreadsBackwardExit` / `_ThreadsBackwardEnter`). Edge case: if a backward pass needs
  the gradient of the conv output but of neither its features nor its kernel, the thread count stays 1.
* **floor rounding only**: spconv computes coarse sites as `floor(index / 2)`; the torchsparse-parity
  "trunc" rule cannot be expressed, so hierarchies with `rounding="trunc"` raise ValueError.

Mapping to spconv: voxel index = `(xyz - origin) / stride` with `origin` a multiple of `ALIGN` and the
stride-1 grid extent a multiple of `ALIGN`, so spconv's floor-halving reproduces `floor(c / 2s)·2s` at every
level up to stride `ALIGN`. Weights are converted on the fly from our `(K, C_in, C_out)` kernel to spconv's
KRSC `(C_out, kx, ky, kz, C_in)`; the differentiable parameter stays ours. Kernel maps live in spconv's
`indice_dict`, stored in the `CoordinateManager` (keys `subm{s}_k{k}`, `down{s}`): built once per hierarchy.
spconv orders coarse voxels its own way; when the hierarchy already holds that stride's coordinates
(e.g. made by the torch backend) outputs are permuted into the registered order, so both backends agree
row for row.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from functools import lru_cache

import torch
from torch import Tensor

from .conv import check_conv_config
from .tensor import SparseVoxelTensor

ALIGN = 64  # supports tensor strides up to 64 (the SPVCNN U-Net goes to 16)


def spconv_available() -> bool:
    """True if `spconv.pytorch` imports (any import failure — missing, broken wheel, libs — is False)."""
    try:
        _spconv()
    except Exception:
        return False
    return True


@lru_cache(maxsize=1)
def _spconv():
    try:
        with warnings.catch_warnings():  # its build helper (ccimport) warns about a deprecated locale API
            warnings.simplefilter("ignore", DeprecationWarning)
            import spconv.pytorch as sp
            import spconv.pytorch.ops as ops
    except Exception as e:
        raise ImportError(
            f"the spconv sparse backend needs spconv 2.x (`pip install spconv==2.3.8`, CPU wheel) but importing it "
            f"failed: {e!r}. Use backend='torch' (pure PyTorch, same results)."
        ) from e

    if not torch.cuda.is_available():
        ops.get_current_stream = lambda: 0  # ENVIRONMENT.md: CPU backward crashes without this
    return sp


@dataclass
class _State:
    """spconv view of one coordinate hierarchy (stored in `manager.extra["spconv"]`)."""

    origin: Tensor  # (3,) int64, multiple of ALIGN
    extent: list[int]  # stride-1 grid size per axis, multiples of ALIGN
    indice_dict: dict = field(default_factory=dict)
    # stride -> indice key whose `out_indices` row order equals the registered coords at that stride
    order_key: dict[int, str] = field(default_factory=dict)
    n_keys: int = 0

    def spatial_shape(self, stride: int) -> list[int]:
        return [e // stride for e in self.extent]

    def indices(self, coords: Tensor, stride: int) -> Tensor:
        """(N, 4) int32 [b, ix, iy, iz] spconv indices of our coords at `stride`."""
        ijk = torch.div(coords[:, 1:] - self.origin, stride, rounding_mode="floor")
        return torch.cat([coords[:, :1], ijk], 1).int()

    def coords(self, indices: Tensor, stride: int) -> Tensor:
        """Inverse of `indices`: spconv indices at `stride` -> our int64 coords."""
        ind = indices.long()
        return torch.cat([ind[:, :1], ind[:, 1:] * stride + self.origin], 1)


def _state(x: SparseVoxelTensor) -> _State:
    m = x.manager
    st = m.extra.get("spconv")
    if st is None:
        if m.rounding != "floor":
            raise ValueError(
                'the spconv backend supports only rounding="floor" hierarchies; use backend="torch" for torchsparse-parity "trunc" rounding'
            )
        c = m.coords[min(m.coords)][:, 1:]
        lo = torch.div(c.amin(0), ALIGN, rounding_mode="floor") * ALIGN
        hi = c.amax(0) + 1
        extent = (torch.div(hi - lo + ALIGN - 1, ALIGN, rounding_mode="floor") * ALIGN).tolist()
        st = m.extra["spconv"] = _State(lo, extent)
    return st


@lru_cache(maxsize=256)
def _module(kind: str, c_in: int, c_out: int, k: int, key: str):
    """A spconv conv module used only for its config and map handling (its own weight is dropped)."""
    sp = _spconv()
    if kind == "subm":
        mod = sp.SubMConv3d(c_in, c_out, k, bias=False, indice_key=key)
    elif kind == "down":
        mod = sp.SparseConv3d(c_in, c_out, 2, 2, bias=False, indice_key=key)
    else:
        mod = sp.SparseInverseConv3d(c_in, c_out, 2, indice_key=key, bias=False)
    mod.register_parameter("weight", None)
    return mod


def kernel_to_spconv(kernel: Tensor, kernel_size: int) -> Tensor:
    """Our `(k³, C_in, C_out)` kernel -> spconv KRSC weight `(C_out, kx, ky, kz, C_in)` (differentiable)."""
    k, c_in, c_out = kernel_size, kernel.shape[-2], kernel.shape[-1]
    if k % 2 == 1:  # ours: x fastest -> dims (z, y, x)
        return kernel.reshape(k, k, k, c_in, c_out).permute(4, 2, 1, 0, 3).contiguous()
    return kernel.reshape(2, 2, 2, c_in, c_out).permute(4, 0, 1, 2, 3).contiguous()  # z fastest


class _ThreadToken:
    """Shared by the two guard nodes of one call: the thread count to restore after its backward."""

    def __init__(self):
        self.saved = None


class _ThreadsBackwardEnter(torch.autograd.Function):
    """Identity on (feats, weight); its backward runs right after spconv's backward: restore threads."""

    @staticmethod
    def forward(ctx, token, feats, weight):
        ctx.token = token
        return feats.view_as(feats), weight.view_as(weight)

    @staticmethod
    def backward(ctx, g_feats, g_weight):
        if ctx.token.saved is not None:
            torch.set_num_threads(ctx.token.saved)
            ctx.token.saved = None
        return None, g_feats, g_weight


class _ThreadsBackwardExit(torch.autograd.Function):
    """Identity on the conv output; its backward runs right before spconv's backward: one thread."""

    @staticmethod
    def forward(ctx, token, out):
        ctx.token = token
        return out.view_as(out)

    @staticmethod
    def backward(ctx, g_out):
        if ctx.token.saved is None:
            ctx.token.saved = torch.get_num_threads()
            torch.set_num_threads(1)
        return None, g_out


def _run(mod, st: _State, feats: Tensor, indices: Tensor, stride: int, batch_size: int, weight: Tensor):
    """One spconv conv call; returns (spconv output tensor, output features)."""
    sp = _spconv()
    guard = feats.device.type == "cpu" and torch.get_num_threads() > 1
    token = _ThreadToken()
    if guard and torch.is_grad_enabled() and (feats.requires_grad or weight.requires_grad):
        feats, weight = _ThreadsBackwardEnter.apply(token, feats, weight)
    inp = sp.SparseConvTensor(feats.contiguous(), indices, st.spatial_shape(stride), batch_size, indice_dict=st.indice_dict)
    threads = torch.get_num_threads()
    if guard:
        torch.set_num_threads(1)
    try:
        out = mod._conv_forward(True, inp, weight, None)
    finally:
        if guard:
            torch.set_num_threads(threads)
    st.indice_dict = out.indice_dict  # spconv copies the dict per call; keep the grown one
    feats_out = out.features
    if guard and feats_out.requires_grad:
        feats_out = _ThreadsBackwardExit.apply(token, feats_out)
    return out, feats_out


def spconv_conv3d(
    x: SparseVoxelTensor,
    kernel: Tensor,
    kernel_size: int,
    stride: int = 1,
    transposed: bool = False,
    bias: Tensor | None = None,
) -> SparseVoxelTensor:
    """`conv.sparse_conv3d` computed by spconv (same coords, row order and kernel layout). float32 only."""
    check_conv_config(kernel_size, stride, transposed)
    if x.feats.dtype != torch.float32 or kernel.dtype != torch.float32:
        raise TypeError(
            f"the spconv backend is float32-only (spconv 2.3.8 gives wrong results in float64 on the CPU); got "
            f"feats {x.feats.dtype}, kernel {kernel.dtype}. Use backend='torch' for other dtypes."
        )
    if kernel.shape[-2] != x.num_channels:
        raise ValueError(f"kernel expects {kernel.shape[-2]} input channels, tensor has {x.num_channels}")
    m, s = x.manager, x.stride
    st = _state(x)
    c_in, c_out = kernel.shape[-2], kernel.shape[-1]
    weight = kernel_to_spconv(kernel, kernel_size)
    if stride == 1:
        mod = _module("subm", c_in, c_out, kernel_size, f"subm{s}_k{kernel_size}")
        _, feats = _run(mod, st, x.feats, st.indices(x.coords, s), s, x.batch_size, weight)
        y = x.replace_feats(feats)
    elif not transposed:
        if 2 * s > ALIGN:
            raise ValueError(f"spconv backend supports output strides up to {ALIGN}")
        key = f"down{s}"
        if key in st.indice_dict:  # spconv cannot reuse a non-submanifold map: recompute under a new key
            st.n_keys += 1
            key = f"down{s}_{st.n_keys}"
        out, feats = _run(_module("down", c_in, c_out, 2, key), st, x.feats, st.indices(x.coords, s), s, x.batch_size, weight)
        coarse = st.coords(out.indices, 2 * s)
        if 2 * s not in m.coords:
            m.register(2 * s, coarse)
            st.order_key[2 * s] = key
        elif st.order_key.get(2 * s) != key:
            rows = m.index(2 * s).lookup(coarse)
            assert rows.numel() == m.coords[2 * s].shape[0] and bool((rows >= 0).all()), "coarse sets differ"
            feats = feats.new_zeros(feats.shape).index_copy(0, rows, feats)
        y = SparseVoxelTensor._derived(feats, m.coords[2 * s], 2 * s, m)
    else:
        f = s // 2
        if s % 2 or f not in m.coords:
            raise ValueError(
                f"transposed conv on a stride-{s} tensor needs the stride-{f} coordinates of the matching downsampling in the same hierarchy"
            )
        key = f"down{f}"
        if key not in st.indice_dict:  # downsampling ran on the torch backend: let spconv build its map once
            dummy = x.feats.new_zeros(m.coords[f].shape[0], 1)
            _run(_module("down", 1, 1, 2, key), st, dummy, st.indices(m.coords[f], f), f, x.batch_size, x.feats.new_zeros(1, 2, 2, 2, 1))
        datas = st.indice_dict[key]
        feats = x.feats
        if st.order_key.get(s) != key:
            feats = feats.index_select(0, m.index(s).lookup(st.coords(datas.out_indices, s)))
        _, feats = _run(_module("up", c_in, c_out, 2, key), st, feats, datas.out_indices, s, x.batch_size, weight)
        y = SparseVoxelTensor._derived(feats, m.coords[f], f, m)
    if bias is not None:
        y = y.replace_feats(y.feats + bias)
    return y
