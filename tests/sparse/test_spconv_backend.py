"""The spconv backend agrees with the pure-torch backend (float32), row for row; skipped without spconv."""

import pytest
import torch
from torch import nn

from sahmr.sparse import (
    SparseBatchNorm,
    SparseConv3d,
    SparseConvTranspose3d,
    SparseReLU,
    SparseVoxelTensor,
    conv3d,
    set_backend,
    sparse_cat,
    spconv_available,
)

if not spconv_available():  # not installed, or its import fails (broken wheel, missing libs)
    pytest.skip("spconv not importable", allow_module_level=True)

ATOL = 1e-5


def _voxels(seed=0, n=500, c=3):
    """Batch of 2 clouds with different occupancy and negative coordinates."""
    g = torch.Generator().manual_seed(seed)
    a = torch.randint(-6, 6, (n, 3), generator=g)
    b = torch.randint(-3, 9, (n // 3, 3), generator=g)
    coords = torch.cat([torch.cat([torch.zeros(n, 1, dtype=torch.long), a], 1), torch.cat([torch.ones(n // 3, 1, dtype=torch.long), b], 1)])
    coords = torch.unique(coords, dim=0)
    return torch.randn(coords.shape[0], c, generator=g), coords


def _close(a, b):
    torch.testing.assert_close(a, b, atol=ATOL, rtol=1e-5)


def _ops(backend, feats, coords, kernels):
    """subm k3 -> down -> subm k3 (stride 2) -> transposed; returns outputs and gradients."""
    f = feats.clone().requires_grad_(True)
    ks = [k.clone().requires_grad_(True) for k in kernels]
    x = SparseVoxelTensor(f, coords)
    y1 = conv3d(x, ks[0], 3, backend=backend)
    y2 = conv3d(y1, ks[1], 2, 2, backend=backend)
    y3 = conv3d(y2, ks[2], 3, backend=backend)
    y4 = conv3d(y3, ks[3], 2, 2, transposed=True, backend=backend)
    g = torch.linspace(-1, 1, y4.feats.numel()).reshape(y4.feats.shape)
    ((y4.feats * g).sum() + y3.feats.square().sum()).backward()
    return y1, y3, y4, f.grad, [k.grad for k in ks]


def _kernels(c=3, seed=1):
    g = torch.Generator().manual_seed(seed)
    shapes = [(27, c, 4), (8, 4, 5), (27, 5, 5), (8, 5, 2)]
    return [torch.randn(s, generator=g) / (s[0] * s[1]) ** 0.5 for s in shapes]  # O(1) outputs, like the init


def test_ops_agree_with_torch_backend():
    feats, coords = _voxels()
    kernels = _kernels()
    t = _ops("torch", feats, coords, kernels)
    threads = torch.get_num_threads()
    s = _ops("spconv", feats, coords, kernels)
    assert torch.get_num_threads() == threads  # the CPU single-thread guard restores the setting
    _close(s[0].feats, t[0].feats)
    # coarse rows: spconv orders them its own way; compare as sets of (coords, feats)
    key_t = {tuple(c): r for r, c in enumerate(t[1].coords.tolist())}
    rows = torch.tensor([key_t[tuple(c)] for c in s[1].coords.tolist()])
    assert len(rows) == len(key_t) == len(set(rows.tolist()))
    _close(s[1].feats, t[1].feats[rows])
    assert torch.equal(s[2].coords, t[2].coords)  # back on the input voxels, input order
    _close(s[2].feats, t[2].feats)
    _close(s[3], t[3])
    for a, b in zip(s[4], t[4]):
        _close(a, b)


def test_mixed_backends_keep_row_order():
    """spconv after torch (and vice versa) in one hierarchy: outputs permuted into the registered order."""
    feats, coords = _voxels(seed=2)
    kernels = _kernels(seed=3)
    ref = _ops("torch", feats, coords, kernels)
    x = SparseVoxelTensor(feats, coords)
    y1 = conv3d(x, kernels[0], 3, backend="torch")
    y2 = conv3d(y1, kernels[1], 2, 2, backend="torch")  # coarse coords registered in torch order
    y2s = conv3d(y1, kernels[1], 2, 2, backend="spconv")  # recomputed by spconv, reordered
    assert y2s.coords is y2.coords
    _close(y2s.feats, y2.feats)
    y3 = conv3d(y2, kernels[2], 3, backend="spconv")
    y4 = conv3d(y3, kernels[3], 2, 2, transposed=True, backend="spconv")  # spconv map of a torch downsampling
    _close(y3.feats, ref[1].feats)
    _close(y4.feats, ref[2].feats)


def test_unet_modules_agree():
    torch.manual_seed(0)
    feats, coords = _voxels(seed=4, c=6)
    net = nn.Sequential(
        SparseConv3d(6, 8, 3), SparseBatchNorm(8), SparseReLU(True), SparseConv3d(8, 8, 2, 2), SparseConv3d(8, 8, 3), SparseConvTranspose3d(8, 4)
    )
    outs, grads = [], []
    for backend in ("torch", "spconv"):
        set_backend(net, backend)
        net.zero_grad()
        x = SparseVoxelTensor(feats, coords)
        y = net(x)
        y = sparse_cat([y, x])
        y.feats.square().mean().backward()
        outs.append(y.feats.detach())
        grads.append([p.grad.clone() for p in net.parameters()])
    _close(outs[1], outs[0])
    for a, b in zip(grads[1], grads[0]):
        _close(a, b)


def test_spconv_refuses_float64_and_trunc():
    feats, coords = _voxels(seed=5)
    x = SparseVoxelTensor(feats.double(), coords)
    with pytest.raises(TypeError, match="float32"):
        conv3d(x, torch.randn(27, 3, 2, dtype=torch.float64), 3, backend="spconv")
    xt = SparseVoxelTensor(feats, coords, rounding="trunc")
    with pytest.raises(ValueError, match="floor"):
        conv3d(xt, torch.randn(27, 3, 2), 3, backend="spconv")


def test_spconv_cpu_results_repeatable():
    """spconv 2.3.8's CPU submanifold conv races with >1 torch threads; the backend's guard must prevent it."""
    feats, coords = _voxels(seed=6, c=16)
    kernel = torch.randn(27, 16, 16) / (27 * 16) ** 0.5
    outs, grads = [], []
    for _ in range(6):
        f = feats.clone().requires_grad_(True)
        y = conv3d(SparseVoxelTensor(f, coords), kernel, 3, backend="spconv")
        (y.feats * torch.linspace(-1, 1, y.feats.numel()).reshape(y.feats.shape)).sum().backward()
        outs.append(y.feats.detach())
        grads.append(f.grad)
    assert all(torch.equal(o, outs[0]) for o in outs) and all(torch.equal(g, grads[0]) for g in grads)
