"""SPVCNN: the sparse point-voxel U-Net of RCNet's scene branch (spec §3.4), on `sahmr.sparse`.

Channel list `cs = [32, 32, 64, 128, 256, 256, 128, 96, 96]` scaled by `width` (cpu preset: 0.5).
Module and parameter names follow the original (`fc_in`, `stem.{0,1,3,4}`, `stage{1..4}.{0,1,2}.net.*`,
`.downsample.*`, `up{1..4}.0.net.*`, `up{1..4}.1.{0,1}.*`, `classifier.0`, `point_transforms.{0,1,2}.{0,1}`),
and sparse conv kernels use torchsparse v1.4's layout, so with `width=1, in_channels=35, out_channels=12`
the state dict equals the original `rcnet.contact_net.*` keys and shapes.

forward(x): x = SparseVoxelTensor at stride 1 with feats (N, in_channels) -> (N, out_channels), one row
per input voxel in input order. Strided-conv rounding (floor / torchsparse-1.4 trunc) is the one of the
input's coordinate hierarchy (`voxelize(..., rounding=...)`).

BatchNorm on a level with a single voxel in training mode cannot compute batch statistics; there
(`_SafeBN`) the layer normalises with its running statistics instead of raising (rare: tiny neighbourhoods).
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from sahmr.sparse import (
    PointTensor,
    SparseBatchNorm,
    SparseConv3d,
    SparseConvTranspose3d,
    SparseReLU,
    SparseVoxelTensor,
    point_to_voxel,
    sparse_add,
    sparse_cat,
    voxel_to_point,
)

__all__ = ["SPVCNN", "PAPER_WIDTHS"]

PAPER_WIDTHS = (32, 32, 64, 128, 256, 256, 128, 96, 96)


class _SafeBN(SparseBatchNorm):
    """SparseBatchNorm that falls back to running statistics when training on a single voxel."""

    def forward(self, x: SparseVoxelTensor) -> SparseVoxelTensor:  # type: ignore[override]
        if self.training and x.feats.shape[0] <= 1:
            f = F.batch_norm(x.feats, self.running_mean, self.running_var, self.weight, self.bias, False, 0.0, self.eps)
            return x.replace_feats(f)
        return super().forward(x)


class _SafeBN1d(nn.BatchNorm1d):
    def forward(self, x: Tensor) -> Tensor:  # type: ignore[override]
        if self.training and x.shape[0] <= 1:
            return F.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias, False, 0.0, self.eps)
        return super().forward(x)


class BasicConvolutionBlock(nn.Module):
    """Conv3d(ks, stride) + BN + ReLU; keys `net.0.kernel`, `net.1.*`."""

    def __init__(self, c_in: int, c_out: int, ks: int = 3, stride: int = 1):
        super().__init__()
        self.net = nn.Sequential(SparseConv3d(c_in, c_out, ks, stride), _SafeBN(c_out), SparseReLU(True))

    def forward(self, x):
        return self.net(x)


class BasicDeconvolutionBlock(nn.Module):
    """Transposed Conv3d(k2, s2) + BN + ReLU."""

    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.net = nn.Sequential(SparseConvTranspose3d(c_in, c_out), _SafeBN(c_out), SparseReLU(True))

    def forward(self, x):
        return self.net(x)


class ResidualBlock(nn.Module):
    """ReLU(conv3-BN-ReLU-conv3-BN (x) + skip(x)); skip = identity or k1 conv + BN (`downsample.*`)."""

    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.net = nn.Sequential(
            SparseConv3d(c_in, c_out, 3), _SafeBN(c_out), SparseReLU(True), SparseConv3d(c_out, c_out, 3), _SafeBN(c_out)
        )
        self.downsample = nn.Sequential() if c_in == c_out else nn.Sequential(SparseConv3d(c_in, c_out, 1), _SafeBN(c_out))
        self.relu = SparseReLU(True)

    def forward(self, x):
        return self.relu(sparse_add(self.net(x), self.downsample(x)))


def _point_transform(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(c_in, c_out), _SafeBN1d(c_out), nn.ReLU(True))


class SPVCNN(nn.Module):
    """Sparse point-voxel U-Net (spec §3.4).

    in_channels: per-voxel input features (35 = 3 anchor offset + 32 image features);
    out_channels: 12 = 1 confidence + 3 offset + 8 segmentation; width: multiplier of the paper widths
    (rounded, at least 4 channels); dropout: p of the two Dropout layers (train only).
    """

    def __init__(self, in_channels: int = 35, out_channels: int = 12, width: float = 1.0, dropout: float = 0.3):
        super().__init__()
        cs = [max(4, int(round(width * c))) for c in PAPER_WIDTHS]
        self.widths = tuple(cs)
        self.in_channels, self.out_channels = in_channels, out_channels
        self.fc_in = nn.Linear(in_channels, in_channels)
        self.stem = nn.Sequential(
            SparseConv3d(in_channels, cs[0], 3), _SafeBN(cs[0]), SparseReLU(True),
            SparseConv3d(cs[0], cs[0], 3), _SafeBN(cs[0]), SparseReLU(True),
        )

        def stage(c_in, c_out):
            return nn.Sequential(BasicConvolutionBlock(c_in, c_in, 2, 2), ResidualBlock(c_in, c_out), ResidualBlock(c_out, c_out))

        self.stage1 = stage(cs[0], cs[1])
        self.stage2 = stage(cs[1], cs[2])
        self.stage3 = stage(cs[2], cs[3])
        self.stage4 = stage(cs[3], cs[4])

        def up(c_in, c_out, c_skip):
            return nn.ModuleList([
                BasicDeconvolutionBlock(c_in, c_out),
                nn.Sequential(ResidualBlock(c_out + c_skip, c_out), ResidualBlock(c_out, c_out)),
            ])

        self.up1 = up(cs[4], cs[5], cs[3])
        self.up2 = up(cs[5], cs[6], cs[2])
        self.up3 = up(cs[6], cs[7], cs[1])
        self.up4 = up(cs[7], cs[8], cs[0])
        self.classifier = nn.Sequential(nn.Linear(cs[8], out_channels))
        self.point_transforms = nn.ModuleList([
            _point_transform(cs[0], cs[4]), _point_transform(cs[4], cs[6]), _point_transform(cs[6], cs[8]),
        ])
        self.dropout = nn.Dropout(dropout, True)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """BN weight 1 / bias 0 (sparse kernels and Linear layers keep their own default init)."""
        for m in self.modules():
            if isinstance(m, nn.BatchNorm1d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    @staticmethod
    def _up(block: nn.ModuleList, y: SparseVoxelTensor, skip: SparseVoxelTensor) -> SparseVoxelTensor:
        y = block[0](y)
        return block[1](sparse_cat([y, skip]))

    def forward(self, x: SparseVoxelTensor, return_intermediates: bool = False) -> Tensor | tuple[Tensor, dict]:
        """x: stride-1 SparseVoxelTensor, feats (N, in_channels) -> (N, out_channels).

        return_intermediates: also return {`spv_<name>_feats` (M, C), `spv_<name>_coords` (M, 4) int64
        [b, x, y, z], `spv_<name>_stride` int} for name in stem, stage1..4, up1..4 (`up<n>` = after the
        concat and its two residual blocks; the original's `spv_*` reference arrays)."""
        inter: dict = {}

        def keep(name: str, t: SparseVoxelTensor) -> SparseVoxelTensor:
            if return_intermediates:
                inter.update({f"spv_{name}_feats": t.feats, f"spv_{name}_coords": t.coords, f"spv_{name}_stride": t.stride})
            return t

        if x.stride != 1:
            raise ValueError(f"SPVCNN expects a stride-1 voxel tensor, got stride {x.stride}")
        x = x.replace_feats(self.fc_in(x.feats))
        z = PointTensor.from_voxels(x)  # one point per voxel at its integer coordinate
        x0 = keep("stem", self.stem(x))
        z0 = voxel_to_point(x0, z)
        x1 = point_to_voxel(x0, z0)
        x1 = keep("stage1", self.stage1(x1))
        x2 = keep("stage2", self.stage2(x1))
        x3 = keep("stage3", self.stage3(x2))
        x4 = keep("stage4", self.stage4(x3))
        z1 = voxel_to_point(x4, z0)
        z1 = z1.replace_feats(z1.feats + self.point_transforms[0](z0.feats))

        y1 = point_to_voxel(x4, z1)
        y1 = y1.replace_feats(self.dropout(y1.feats))
        y1 = keep("up1", self._up(self.up1, y1, x3))
        y2 = keep("up2", self._up(self.up2, y1, x2))
        z2 = voxel_to_point(y2, z1)
        z2 = z2.replace_feats(z2.feats + self.point_transforms[1](z1.feats))

        y3 = point_to_voxel(y2, z2)
        y3 = y3.replace_feats(self.dropout(y3.feats))
        y3 = keep("up3", self._up(self.up3, y3, x1))
        y4 = keep("up4", self._up(self.up4, y3, x0))
        z3 = voxel_to_point(y4, z2)
        z3 = z3.replace_feats(z3.feats + self.point_transforms[2](z2.feats))
        out = self.classifier(z3.feats)
        return (out, inter) if return_intermediates else out
