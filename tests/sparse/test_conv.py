"""Sparse conv (pure-torch backend) equals dense conv3d / conv_transpose3d: outputs and gradients, float64."""

import pytest
import torch
import torch.nn.functional as F

from sahmr.sparse import (
    SparseVoxelTensor,
    apply_kernel_map,
    downsample_coords,
    from_torchsparse_weight,
    get_downsample_map,
    get_submanifold_map,
    kernel_from_dense,
    kernel_offsets,
    kernel_to_dense,
    sparse_conv3d,
)
from tests.helpers.sparse_dense_ref import gather_sites, naive_conv, random_grid, scatter_sites

TOL = 1e-10
SHAPE = (6, 6, 8)
ORIGIN = (-4, -2, 6)  # negative coordinates; even, so dense stride-2 cells match floor(c / 2)


def _cotangent(n, c, seed=1):
    return torch.randn(n, c, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


@pytest.mark.parametrize("density", [1.0, 0.35, (0.5, 0.15)], ids=["full", "partial", "batch-different"])
@pytest.mark.parametrize("ksize", [3, 1])
def test_submanifold_matches_dense_at_active_sites(density, ksize):
    grid, mask = random_grid(2, 3, SHAPE, density)
    x = SparseVoxelTensor.from_dense(grid, mask, origin=ORIGIN)
    feats = x.feats.clone().requires_grad_(True)
    w = torch.randn(4, 3, ksize, ksize, ksize, dtype=torch.float64, requires_grad=True)
    kernel = kernel_from_dense(w.detach()).requires_grad_(True)

    y = sparse_conv3d(x.replace_feats(feats), kernel, ksize)
    assert torch.equal(y.coords, x.coords) and y.stride == 1

    dense_in = scatter_sites(feats, x.coords, ORIGIN, 1, 2, SHAPE).detach().requires_grad_(True)
    dense_out = F.conv3d(dense_in, w, padding=ksize // 2)
    ref = gather_sites(dense_out, x.coords, ORIGIN, 1)
    torch.testing.assert_close(y.feats, ref, atol=TOL, rtol=0)

    g = _cotangent(*y.feats.shape)
    (y.feats * g).sum().backward()
    (ref * g).sum().backward()
    torch.testing.assert_close(feats.grad, gather_sites(dense_in.grad, x.coords, ORIGIN, 1), atol=TOL, rtol=0)
    torch.testing.assert_close(kernel.grad, kernel_from_dense(w.grad), atol=TOL, rtol=0)
    if density == 1.0:  # fully occupied: submanifold == dense everywhere
        torch.testing.assert_close(y.to_dense(ORIGIN, SHAPE), dense_out.detach(), atol=TOL, rtol=0)


@pytest.mark.parametrize("density", [1.0, 0.3, (0.6, 0.1)], ids=["full", "partial", "batch-different"])
def test_downsample_matches_dense_stride2(density):
    grid, mask = random_grid(2, 3, SHAPE, density, seed=2)
    x = SparseVoxelTensor.from_dense(grid, mask, origin=ORIGIN)
    feats = x.feats.clone().requires_grad_(True)
    w = torch.randn(5, 3, 2, 2, 2, dtype=torch.float64, requires_grad=True)
    kernel = kernel_from_dense(w.detach()).requires_grad_(True)

    y = sparse_conv3d(x.replace_feats(feats), kernel, 2, 2)
    assert y.stride == 2 and bool((y.coords[:, 1:] % 2 == 0).all())

    dense_in = scatter_sites(feats, x.coords, ORIGIN, 1, 2, SHAPE).detach().requires_grad_(True)
    dense_out = F.conv3d(dense_in, w, stride=2)
    # output sites = coarse cells with at least one active input; the dense output is 0 elsewhere
    assert y.num_voxels == int(F.max_pool3d(mask[:, None].double(), 2).sum())
    ref = gather_sites(dense_out, y.coords, ORIGIN, 2)
    torch.testing.assert_close(y.feats, ref, atol=TOL, rtol=0)
    torch.testing.assert_close(y.to_dense(ORIGIN, dense_out.shape[2:]), dense_out.detach(), atol=TOL, rtol=0)

    g = _cotangent(*y.feats.shape)
    (y.feats * g).sum().backward()
    (ref * g).sum().backward()
    torch.testing.assert_close(feats.grad, gather_sites(dense_in.grad, x.coords, ORIGIN, 1), atol=TOL, rtol=0)
    torch.testing.assert_close(kernel.grad, kernel_from_dense(w.grad), atol=TOL, rtol=0)


@pytest.mark.parametrize("density", [1.0, 0.3, (0.6, 0.1)], ids=["full", "partial", "batch-different"])
def test_transposed_matches_conv_transpose3d(density):
    grid, mask = random_grid(2, 3, SHAPE, density, seed=3)
    x = SparseVoxelTensor.from_dense(grid, mask, origin=ORIGIN)
    coarse = sparse_conv3d(x, torch.zeros(8, 3, 2, dtype=torch.float64), 2, 2)  # builds the stride-2 level
    cfeats = torch.randn(coarse.num_voxels, 4, dtype=torch.float64, requires_grad=True)
    w = torch.randn(4, 5, 2, 2, 2, dtype=torch.float64, requires_grad=True)  # (C_in, C_out, 2, 2, 2)
    kernel = kernel_from_dense(w.detach(), transposed=True).requires_grad_(True)

    y = sparse_conv3d(coarse.replace_feats(cfeats), kernel, 2, 2, transposed=True)
    assert y.stride == 1 and y.coords is x.coords  # back onto the fine voxels, same rows

    cshape = tuple(s // 2 for s in SHAPE)
    dense_in = scatter_sites(cfeats, coarse.coords, ORIGIN, 2, 2, cshape).detach().requires_grad_(True)
    dense_out = F.conv_transpose3d(dense_in, w, stride=2)
    ref = gather_sites(dense_out, x.coords, ORIGIN, 1)
    torch.testing.assert_close(y.feats, ref, atol=TOL, rtol=0)

    g = _cotangent(*y.feats.shape)
    (y.feats * g).sum().backward()
    (ref * g).sum().backward()
    torch.testing.assert_close(cfeats.grad, gather_sites(dense_in.grad, coarse.coords, ORIGIN, 2), atol=TOL, rtol=0)
    torch.testing.assert_close(kernel.grad, kernel_from_dense(w.grad, transposed=True), atol=TOL, rtol=0)


def test_submanifold_on_stride2_tensor_scales_offsets():
    grid, mask = random_grid(2, 3, SHAPE, 0.5, seed=4)
    x = SparseVoxelTensor.from_dense(grid, mask, origin=ORIGIN)
    coarse = sparse_conv3d(x, torch.zeros(8, 3, 3, dtype=torch.float64), 2, 2)
    cfeats = torch.randn(coarse.num_voxels, 3, dtype=torch.float64)
    w = torch.randn(2, 3, 3, 3, 3, dtype=torch.float64)
    y = sparse_conv3d(coarse.replace_feats(cfeats), kernel_from_dense(w), 3)
    cshape = tuple(s // 2 for s in SHAPE)
    dense_out = F.conv3d(scatter_sites(cfeats, coarse.coords, ORIGIN, 2, 2, cshape), w, padding=1)
    torch.testing.assert_close(y.feats, gather_sites(dense_out, coarse.coords, ORIGIN, 2), atol=TOL, rtol=0)


def test_gradcheck_and_gradgradcheck_tiny():
    grid, mask = random_grid(2, 1, (2, 3, 3), 0.5, seed=5)
    x = SparseVoxelTensor.from_dense(grid, mask)
    kmap = get_submanifold_map(x.manager, 1, 3)
    feats = x.feats.clone().requires_grad_(True)
    kernel = torch.randn(27, 1, 2, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda f, k: apply_kernel_map(f, k, kmap), (feats, kernel))
    assert torch.autograd.gradgradcheck(lambda f, k: apply_kernel_map(f, k, kmap), (feats, kernel))


def test_kernel_maps_are_cached_and_reused():
    grid, mask = random_grid(1, 2, SHAPE, 0.4, seed=6)
    x = SparseVoxelTensor.from_dense(grid, mask)
    a = get_submanifold_map(x.manager, 1, 3)
    y = sparse_conv3d(x, torch.randn(27, 2, 2, dtype=torch.float64), 3)
    assert get_submanifold_map(y.manager, 1, 3) is a
    coarse, d = get_downsample_map(x.manager, 1)
    z = sparse_conv3d(y, torch.randn(8, 2, 2, dtype=torch.float64), 2, 2)
    assert z.coords is coarse and get_downsample_map(z.manager, 1)[1] is d
    # symmetric offsets of the submanifold map are swaps of each other
    K = a.kernel_volume
    for k in range(K // 2):
        assert torch.equal(a.in_idx[k], a.out_idx[K - 1 - k]) and torch.equal(a.out_idx[k], a.in_idx[K - 1 - k])


def test_trunc_rounding_matches_loop_reference_and_quirk():
    """torchsparse-1.4 parity mode: coarse sites trunc(c / 2s)·2s; gather offsets stay {0, s}."""
    g = torch.Generator().manual_seed(7)
    xyz = torch.randint(-5, 5, (60, 3), generator=g)
    b = torch.randint(0, 2, (60, 1), generator=g)
    coords = torch.unique(torch.cat([b, xyz], 1), dim=0)
    feats = torch.randn(coords.shape[0], 3, dtype=torch.float64, generator=g)
    kernel = torch.randn(8, 3, 2, dtype=torch.float64, generator=g)
    for rounding in ("trunc", "floor"):
        x = SparseVoxelTensor(feats, coords, rounding=rounding)
        y = sparse_conv3d(x, kernel, 2, 2)
        div = torch.div(coords[:, 1:], 2, rounding_mode=rounding) * 2
        expect = torch.unique(torch.cat([coords[:, :1], div], 1), dim=0)
        assert torch.equal(y.coords, expect)
        torch.testing.assert_close(y.feats, naive_conv(coords, feats, y.coords, kernel, kernel_offsets(2)), atol=TOL, rtol=0)
        up_kernel = torch.randn(8, 2, 3, dtype=torch.float64, generator=g)
        up = sparse_conv3d(y, up_kernel, 2, 2, transposed=True)
        ref = naive_conv(y.coords, y.feats, coords, up_kernel, kernel_offsets(2), transposed=True)
        torch.testing.assert_close(up.feats, ref, atol=TOL, rtol=0)
    # the quirk itself: a lone voxel at x = -1 creates coarse site 0 but is outside its footprint {0, 1}
    lone = SparseVoxelTensor(torch.ones(1, 1, dtype=torch.float64), torch.tensor([[0, -1, 0, 0]]), rounding="trunc")
    y = sparse_conv3d(lone, torch.ones(8, 1, 1, dtype=torch.float64), 2, 2)
    assert y.coords.tolist() == [[0, 0, 0, 0]] and y.feats.item() == 0.0
    assert downsample_coords(torch.tensor([[0, -1, 0, 0]]), 1, rounding="floor").tolist() == [[0, -2, 0, 0]]


def test_weight_layout_roundtrip_and_torchsparse_identity():
    for k, transposed in [(3, False), (2, False), (2, True), (1, False)]:
        w = torch.randn(4, 5, k, k, k, dtype=torch.float64)
        kern = kernel_from_dense(w, transposed)
        assert torch.equal(kernel_to_dense(kern, k, transposed), w)
        assert from_torchsparse_weight(kern, k, *((4, 5) if transposed else (5, 4))) is kern
    # x fastest for k=3: offset index 1 is (dx, dy, dz) = (0, -1, -1) -> dense tap (kx=1, ky=0, kz=0)
    w = torch.zeros(1, 1, 3, 3, 3, dtype=torch.float64)
    w[0, 0, 1, 0, 0] = 1.0
    assert kernel_from_dense(w)[:, 0, 0].nonzero().item() == 1
    assert kernel_offsets(3)[1].tolist() == [0, -1, -1] and kernel_offsets(2)[1].tolist() == [0, 0, 1]
    with pytest.raises(ValueError, match="shape"):
        from_torchsparse_weight(torch.zeros(27, 4, 5), 3, 5, 4)


def test_errors_are_clear():
    x = SparseVoxelTensor(torch.zeros(2, 1), torch.tensor([[0, 0, 0, 0], [0, 2, 0, 0]]))
    with pytest.raises(NotImplementedError, match="supported"):
        sparse_conv3d(x, torch.zeros(27, 1, 1), 3, stride=2)
    with pytest.raises(ValueError, match="matching"):
        sparse_conv3d(SparseVoxelTensor(torch.zeros(1, 1), torch.tensor([[0, 2, 0, 0]]), stride=2), torch.zeros(8, 1, 1), 2, 2, transposed=True)
    with pytest.raises(ValueError, match="input channels"):
        sparse_conv3d(x, torch.zeros(27, 2, 1), 3)


@pytest.mark.parametrize("ksize, stride", [(3, 1), (2, 2)])
def test_autocast_bf16_computes_in_bf16_and_grads_reach_fp32_kernel(ksize, stride):
    """Under torch.autocast(bfloat16) (precision "bf16-mixed") the conv runs in bf16 like a matmul would, the
    result is the fp32 conv's to bf16 accuracy, and the fp32 kernel parameter gets an fp32 gradient."""
    grid, mask = random_grid(2, 8, SHAPE, 0.5)
    x = SparseVoxelTensor.from_dense(grid.float(), mask, origin=ORIGIN)
    kernel = torch.randn(ksize**3, 8, 5, generator=torch.Generator().manual_seed(3)).requires_grad_(True)
    ref = sparse_conv3d(x, kernel, ksize, stride).feats
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = sparse_conv3d(x, kernel, ksize, stride).feats
    assert y.dtype == torch.bfloat16
    err = (y.float() - ref).abs().max() / ref.abs().max()
    assert 0 < err < 0.02  # bf16 (8-bit mantissa), not fp32 (err 0) and not garbage
    y.float().sum().backward()
    assert kernel.grad is not None and kernel.grad.dtype == torch.float32 and torch.isfinite(kernel.grad).all()
    with pytest.raises(TypeError, match="dtype"):  # outside autocast, mixed dtypes stay an error
        sparse_conv3d(x.replace_feats(x.feats.double()), kernel, ksize, stride)
