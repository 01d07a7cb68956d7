"""Sparse nn modules: torchsparse-compatible state-dict keys/shapes, feature ops, a small U-Net end to end."""

import pytest
import torch
from torch import nn

from sahmr.sparse import (
    PointTensor,
    SparseBatchNorm,
    SparseConv3d,
    SparseConvTranspose3d,
    SparseDropout,
    SparseFeatureMap,
    SparseReLU,
    SparseVoxelTensor,
    coords_from_torchsparse,
    coords_to_torchsparse,
    point_to_voxel,
    set_backend,
    sparse_add,
    sparse_cat,
    voxel_to_point,
    voxelize,
)


def _cloud(n=400, batch_size=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    pts = torch.rand(n, 3, generator=g) * torch.tensor([1.0, 0.8, 0.6]) - 0.3
    batch = torch.arange(n) % batch_size
    return pts, batch


class TinyUNet(nn.Module):
    """Two-level SPVCNN-style net (stem, down, res, up, concat) with a point branch."""

    def __init__(self, c_in=5, c=4):
        super().__init__()
        self.stem = nn.Sequential(SparseConv3d(c_in, c, 3), SparseBatchNorm(c), SparseReLU(True))
        self.down = nn.Sequential(
            SparseConv3d(c, c, 2, stride=2), SparseBatchNorm(c), SparseReLU(True), SparseConv3d(c, 2 * c, 3), SparseBatchNorm(2 * c), SparseReLU(True)
        )
        self.up = nn.Sequential(SparseConvTranspose3d(2 * c, c), SparseBatchNorm(c), SparseReLU(True))
        self.fuse = nn.Sequential(SparseConv3d(2 * c, c, 1), SparseBatchNorm(c))
        self.point = nn.Linear(2 * c, c)
        self.head = nn.Linear(c, 3)

    def forward(self, x: SparseVoxelTensor, z: PointTensor) -> torch.Tensor:
        x0 = self.stem(x)
        x1 = self.down(x0)
        z1 = voxel_to_point(x1, z)
        x1 = point_to_voxel(x1, z1.replace_feats(z1.feats))
        y = self.fuse(sparse_cat([self.up(x1), x0]))
        zy = voxel_to_point(y, z)
        return self.head(zy.feats + self.point(z1.feats))


def test_state_dict_keys_and_shapes_match_torchsparse():
    stem = nn.Sequential(
        SparseConv3d(35, 32, 3), SparseBatchNorm(32), SparseReLU(True), SparseConv3d(32, 32, 3), SparseBatchNorm(32), SparseReLU(True)
    )
    shapes = {k: tuple(v.shape) for k, v in stem.state_dict().items()}
    # from reference/original-state-dict-keys.txt (rcnet.contact_net.stem.*)
    assert shapes["0.kernel"] == (27, 35, 32) and shapes["3.kernel"] == (27, 32, 32)
    assert shapes["1.weight"] == (32,) and shapes["1.running_var"] == (32,) and "1.num_batches_tracked" in shapes
    assert tuple(SparseConv3d(32, 32, 2, 2).kernel.shape) == (8, 32, 32)
    assert tuple(SparseConvTranspose3d(256, 128).kernel.shape) == (8, 256, 128)
    assert tuple(SparseConv3d(32, 64, 1).kernel.shape) == (32, 64)
    assert "bias" not in dict(SparseConv3d(3, 4).named_parameters())
    # torchsparse init bound 1/sqrt(fan): fan = C_in·K (C_out·K transposed)
    assert SparseConv3d(35, 32, 3).kernel.abs().max() <= 1 / (35 * 27) ** 0.5
    assert SparseConvTranspose3d(256, 128).kernel.abs().max() <= 1 / (128 * 8) ** 0.5


def test_feature_modules_and_cat():
    pts, batch = _cloud()
    x, _, _ = voxelize(pts, batch, 0.1)
    x = x.replace_feats(torch.randn(x.num_voxels, 3))
    bn = SparseBatchNorm(3).train()
    y = bn(x)
    torch.testing.assert_close(y.feats, nn.functional.batch_norm(x.feats, None, None, training=True))
    assert SparseReLU()(x).feats.min() >= 0 and SparseDropout(0.5).eval()(x).feats is x.feats
    assert SparseFeatureMap(nn.Linear(3, 7))(x).feats.shape == (x.num_voxels, 7)
    c = sparse_cat([x, y])
    assert c.feats.shape == (x.num_voxels, 6) and c.coords is x.coords
    torch.testing.assert_close(sparse_add(x, y).feats, x.feats + y.feats)
    other = SparseVoxelTensor(torch.zeros(1, 3), torch.zeros(1, 4, dtype=torch.long))
    with pytest.raises(ValueError, match="same voxels"):
        sparse_cat([x, other])


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_tiny_unet_forward_backward_batched(dtype):
    torch.manual_seed(0)
    pts, batch = _cloud()
    x, z, _ = voxelize(pts, batch, 0.05, batch_size=2)
    feats = torch.randn(x.num_voxels, 5, dtype=dtype)
    x = x.replace_feats(feats)
    z = PointTensor.from_voxels(x)
    net = TinyUNet().to(dtype)
    out = net(x, z)
    assert out.shape == (x.num_voxels, 3) and out.dtype == dtype and torch.isfinite(out).all()
    out.square().mean().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in net.parameters())
    # batching: sample 1 alone gives the same result in eval mode (BN statistics frozen)
    net.eval()
    with torch.no_grad():
        both = net(x, z)
        m = x.coords[:, 0] == 1
        coords1 = x.coords[m].clone()
        coords1[:, 0] = 0
        x1 = SparseVoxelTensor(feats[m], coords1)
        one = net(x1, PointTensor.from_voxels(x1))
    torch.testing.assert_close(both[m], one, atol=1e-5 if dtype == torch.float32 else 1e-12, rtol=1e-5)


def test_set_backend_and_coords_conversion():
    net = set_backend(TinyUNet(), "spconv")
    assert all(m.backend == "spconv" for m in net.modules() if isinstance(m, SparseConv3d))
    with pytest.raises(ValueError, match="backend"):
        SparseConv3d(1, 1, backend="torchsparse")
    c = torch.tensor([[1, -2, 3, 4]])
    assert coords_to_torchsparse(c).tolist() == [[-2, 3, 4, 1]]
    assert torch.equal(coords_from_torchsparse(coords_to_torchsparse(c)), c)
