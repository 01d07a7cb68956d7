"""Point <-> voxel ops equal direct per-point / per-voxel loop computations (torchsparse v1.4 semantics)."""

import math

import pytest
import torch

from sahmr.sparse import (
    PointTensor,
    SparseVoxelTensor,
    point_to_voxel,
    scatter_mean,
    sparse_conv3d,
    trilinear_weights,
    voxel_to_point,
    voxelize,
)


def _points(n=300, seed=0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    pts = (torch.rand(n, 3, generator=g, dtype=dtype) - 0.4) * 0.6  # negative and positive metres
    batch = (torch.rand(n, generator=g) < 0.4).long()
    feats = torch.randn(n, 4, generator=g, dtype=dtype)
    return pts, batch, feats


def test_voxelize_mean_equals_loop():
    pts, batch, feats = _points()
    vs = 0.05
    x, z, p2v = voxelize(pts, batch, vs, feats)
    groups: dict[tuple, list[int]] = {}
    for i, (p, b) in enumerate(zip(pts.tolist(), batch.tolist())):
        groups.setdefault((b, *(math.floor(c / vs) for c in p)), []).append(i)
    assert x.num_voxels == len(groups) and x.stride == 1
    assert torch.equal(x.coords, torch.tensor(sorted(groups)))  # sorted by (batch, x, y, z)
    for row, key in enumerate(x.coords.tolist()):
        torch.testing.assert_close(x.feats[row], feats[groups[tuple(key)]].mean(0), atol=1e-12, rtol=0)
    assert all(tuple(x.coords[p2v[i]].tolist()) == k for k, idx in groups.items() for i in idx)
    torch.testing.assert_close(z.coords, pts / vs)
    # without features: mean point position in voxel units, inside each voxel
    x2, _, _ = voxelize(pts, batch, vs)
    assert bool(((x2.feats - x2.coords[:, 1:]) >= 0).all() and ((x2.feats - x2.coords[:, 1:]) < 1).all())


@pytest.mark.parametrize("stride", [1, 2, 4])
def test_point_to_voxel_average_equals_loop(stride):
    pts, batch, feats = _points(seed=1)
    x, z, _ = voxelize(pts, batch, 0.05)
    w = torch.zeros(8, 1, 1, dtype=torch.float64)
    while x.stride < stride:  # coarse levels from the hierarchy
        x = sparse_conv3d(x.replace_feats(x.feats[:, :1].double()), w, 2, 2)
    z = z.replace_feats(feats)
    v = point_to_voxel(x, z)
    lut = {tuple(c): r for r, c in enumerate(x.coords.tolist())}
    sums = torch.zeros(x.num_voxels, 4, dtype=torch.float64)
    counts = torch.zeros(x.num_voxels)
    for p, b, f in zip(z.coords.tolist(), z.batch.tolist(), feats):
        r = lut.get((b, *(math.floor(c / stride) * stride for c in p)))
        if r is not None:
            sums[r] += f
            counts[r] += 1
    expect = sums / counts.clamp(min=1)[:, None]
    torch.testing.assert_close(v.feats, expect, atol=1e-12, rtol=0)
    assert v.coords is x.coords


def _direct_trilinear(p, b, s, lut, feats, rows_out=None):
    """torchsparse devoxelize for one point, written out (corner rows appended to `rows_out`)."""
    pf = [math.floor(c / s) * s for c in p]
    ws, rows = [], []
    for k in range(8):
        d = ((k >> 2) & 1, (k >> 1) & 1, k & 1)  # k = 4dx + 2dy + dz
        w = 1.0
        for a in range(3):
            w *= (p[a] - pf[a]) if d[a] else (pf[a] + s - p[a])
        r = lut.get((b, *(pf[a] + d[a] * s for a in range(3))))
        ws.append(w / s**3 if r is not None else 0.0)
        rows.append(r)
    if rows_out is not None:
        rows_out.append([-1 if r is None else r for r in rows])
    tot = sum(ws) + 1e-8
    out = torch.zeros(feats.shape[1], dtype=feats.dtype)
    for w, r in zip(ws, rows):
        if r is not None:
            out += (w / tot) * feats[r]
    return out


@pytest.mark.parametrize("stride", [1, 2, 4])
def test_voxel_to_point_trilinear_equals_direct(stride):
    pts, batch, _ = _points(seed=2)
    x, z, _ = voxelize(pts, batch, 0.05)
    w = torch.zeros(8, 3, 3, dtype=torch.float64)
    x = x.replace_feats(torch.zeros(x.num_voxels, 3, dtype=torch.float64))
    while x.stride < stride:
        x = sparse_conv3d(x, w, 2, 2)
    vf = torch.randn(x.num_voxels, 5, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    x = x.replace_feats(vf)
    out = voxel_to_point(x, z)
    lut = {tuple(c): r for r, c in enumerate(x.coords.tolist())}
    rows = []
    expect = torch.stack([_direct_trilinear(p, b, stride, lut, vf, rows) for p, b in zip(z.coords.tolist(), z.batch.tolist())])
    torch.testing.assert_close(out.feats, expect, atol=1e-12, rtol=0)
    idx, wts = trilinear_weights(z.coords, z.batch, x)
    assert idx.tolist() == rows  # corner order 4dx + 2dy + dz
    assert bool((wts[idx < 0] == 0).all()) and bool((idx >= 0).any(1).all())


def test_stride1_integer_points_are_identity_and_gradients_flow():
    coords = torch.tensor([[0, -1, 0, 2], [0, 0, 0, 2], [1, 3, -2, 0]])
    feats = torch.randn(3, 2, dtype=torch.float64, requires_grad=True)
    x = SparseVoxelTensor(feats, coords)
    z = PointTensor.from_voxels(x)
    back = voxel_to_point(x, z)  # only corner 0 has weight: identity up to 1/(1+1e-8)
    torch.testing.assert_close(back.feats, feats / (1 + 1e-8), atol=1e-15, rtol=0)
    again = point_to_voxel(x, back)
    torch.testing.assert_close(again.feats, back.feats, atol=0, rtol=0)
    again.feats.sum().backward()
    torch.testing.assert_close(feats.grad, torch.full_like(feats, 1 / (1 + 1e-8)))


def test_maps_are_cached_per_stride_and_scatter_mean():
    pts, batch, feats = _points(n=50, seed=4)
    x, z, p2v = voxelize(pts, batch, 0.1, feats)
    x = x.replace_feats(x.feats)
    voxel_to_point(x, z)
    m = z.cache[("v2p", 1)]
    voxel_to_point(x.replace_feats(x.feats * 2), z.replace_feats(z.feats))
    assert z.cache[("v2p", 1)] is m  # same voxels -> map reused
    torch.testing.assert_close(scatter_mean(feats, p2v, x.num_voxels), x.feats)
    idx = p2v.clone()
    idx[:5] = -1  # ignored points
    expect = torch.stack([feats[(idx == r)].mean(0) if (idx == r).any() else torch.zeros(4, dtype=feats.dtype) for r in range(x.num_voxels)])
    torch.testing.assert_close(scatter_mean(feats, idx, x.num_voxels), expect)


def test_input_validation():
    with pytest.raises(ValueError, match=r"\(N, 4\)"):
        SparseVoxelTensor(torch.zeros(2, 1), torch.zeros(2, 3, dtype=torch.long))
    with pytest.raises(ValueError, match="integer"):
        SparseVoxelTensor(torch.zeros(1, 1), torch.zeros(1, 4))
    with pytest.raises(ValueError, match="65535"):
        SparseVoxelTensor(torch.zeros(1, 1), torch.tensor([[0, 70000, 0, 0]]))
    with pytest.raises(ValueError, match="multiples"):
        SparseVoxelTensor(torch.zeros(1, 1), torch.tensor([[0, 1, 0, 0]]), stride=2)
    with pytest.raises(ValueError, match=r"\(P, 3\)"):
        voxelize(torch.zeros(4, 2), torch.zeros(4, dtype=torch.long), 0.05)
