"""RCNet, the root-and-contact network (spec §3.1–3.3): image branch + sparse scene branch.

Pipeline for a batch of B crops (H = W = crop_size / backbone stride heatmap cells; `paper`: 224 -> 56):

1. image branch: backbone -> `out_conv` (1x1) -> 41 maps: pelvis heatmap logits (1), normalised pelvis
   depth `zw1f` (1), image features (`feat_channels`, 32), 7 part-contact heatmaps (auxiliary).
2. coarse pelvis: argmax cell (u, v) of the heatmap (no sub-pixel refinement), `uv01 = (u, v) / (W - 1)`,
   depth `z = zw1f * bi_f / bi_w` with `bi_f = fx * bi_w / box_w` (so `z = zw1f * fx / box_w`, the
   spec's zw1f convention), back-projected through K at the full-image pixel `box_lu + uv01 * box_wh`.
3. anchors: the coarse pelvis (training: replaced by `GT + N(0, noise²)` per sample where it is more than
   `train_anchor_err_thr` from the GT, when the GT pelvis and a generator are given) and the same point
   ± `anchor_spacing` along camera z.
4. neighbourhood: scene points (packed, with batch index) whose distance to the nearest of their sample's
   3 anchors is < `keep_radius` — one vectorised test over all samples.
5. voxelise at `voxel_size` (`sahmr.sparse.voxelize`; voxels sorted batch-major); voxel features =
   [anchor − centre (quirks) or centre − anchor (clean), image features bilinearly sampled at the voxel
   centre's projection (align_corners convention, zeros outside the crop)].
6. SPVCNN -> per voxel confidence logit, offset to the pelvis, 8-class contact logits.
7. refined pelvis = Σ_i w_i (centre_i + offset_i), `w = softmax over the sample's voxels` of
   `sigmoid(conf)` (quirks, as the released weights) or of `conf` (clean); a segment softmax, no loop.
8. contact points: the neighbourhood's raw scene points whose voxel is predicted as part 1..7, packed.
9. inference only (eval mode, no explicit `anchor_cam`), `refine_iters` > 1: steps 3-8 again, anchored at
   the refined pelvis (no noise); the output's scene fields (anchor_cam, voxels, refined pelvis, contact
   points, fallback) are the last pass's. Training (stage 1) always runs one pass, as the original.

Fallback (explicit, per sample, `RCNetOutput.fallback`): a sample whose neighbourhood holds no scene point
(empty frustum, or every point farther than `keep_radius` from the anchors) gets no voxel, refined pelvis
= its middle anchor (= the coarse pelvis at inference; the noisy GT anchor in training when it was
replaced), no contact points, and its per-voxel losses are 0. Never NaN. With `quirks=True` a sample
whose frustum is non-empty but has no point near the anchors uses all its frustum points instead (the
original's silent fallback). Input validation: a non-finite K / box, a non-positive box size or a
non-finite image raise ValueError naming the field.

`quirks=True` (spec §8, needed for bit-parity with the released weights): softmax over sigmoid(conf);
anchor − voxel-centre feature sign; `bi_f` with S (224) while uv01 uses S − 1 (it cancels in z); GT
heatmap y divided by the box width; torchsparse-1.4 truncating coarse voxel coordinates
(`rounding="trunc"`, its own field: set `rounding` explicitly to combine otherwise); all-frustum fallback.
`quirks=False` (default for training from scratch): the clean counterparts (softmax over the logits,
centre − anchor, S − 1 everywhere, floor rounding, explicit fallback).

`return_intermediates=True` fills `RCNetOutput.intermediates` with what a parity test compares:
`spvcnn_in` (N, 35) the SPVCNN input features, `spvcnn_out` (N, 12), and the SPVCNN stage outputs
`spv_{stem,stage1..4,up1..4}_{feats,coords,stride}` (see `SPVCNN.forward`), of the last scene pass.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from sahmr.body.parts import NUM_PARTS
from sahmr.sparse import SparseVoxelTensor, voxelize

from .backbones import build_image_backbone
from .spvcnn import SPVCNN

__all__ = ["RCNetConfig", "RCNetOutput", "RCNet", "RootNet", "sample_image_features", "select_near_anchors",
           "segment_softmax", "vote_pelvis", "coarse_pelvis_from_maps", "check_camera_inputs"]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass
class RCNetConfig:
    """RCNet hyper-parameters. Presets: `RCNetConfig.preset("paper" | "cpu", **overrides)`.

    `paper`: HRNet-W64, 224 px crops, 32 image-feature channels, SPVCNN widths 32..96 (width 1.0), 5 cm
    voxels, 1.25 m radius, extra-flip auxiliary loss — the original sizes.
    `cpu`: HRNet-W18-small (1.5 M params), 128 px crops (32x32 heatmaps), SPVCNN width 0.5 (16..48 ch),
    8 cm voxels (about 2.5x fewer voxels than 5 cm on the synthetic scans), voxel contact-label distance
    0.10 m (0.07 m + the larger voxel half-diagonal growth), no extra flip (halves the image cost), two
    scene passes at inference (`refine_iters`; the paper preset keeps the original's one).
    """

    name: str = "cpu"
    backbone: str = "hrnet_w18_small"
    pretrained: bool = False
    backbone_weights: str | None = None
    crop_size: int = 128
    feat_channels: int = 32
    spvcnn_width: float = 0.5
    spvcnn_dropout: float = 0.3
    voxel_size: float = 0.08
    anchor_spacing: float = 0.5
    keep_radius: float = 1.25
    train_anchor_err_thr: float = 0.5
    train_anchor_noise_std: float = 0.5
    # Inference only (eval mode, no explicit anchor_cam): run the scene branch this many times, each pass
    # anchored at the previous pass's refined pelvis (1 = the original). The cpu preset's short-trained
    # depth head leaves coarse pelvises ~0.7 m off; a second pass from the ~0.4 m refined one lands closer.
    refine_iters: int = 2
    extra_flip: bool = False
    quirks: bool = False
    # Coarse voxel coordinates of the SPVCNN's strided convs: "floor" (clean; consistent with the
    # point<->voxel ops) or "trunc" (torchsparse 1.4 under torch 1.12, whose integer `//` truncated toward
    # zero: what the released weights were trained with, spec §3.5). None = "trunc" with quirks, else "floor".
    rounding: str | None = None
    sparse_backend: str = "torch"
    # supervision (spec §5.3-5.4)
    voxel_label_dist: float = 0.10
    # Cross-entropy weight of the 7 contact classes relative to background (1.0 = the original's uniform
    # weights). Contact voxels are ~3% of the voxels; with uniform weights and a short CPU schedule the
    # segmentation collapses to background, so the cpu preset up-weights them.
    voxel_seg_part_weight: float = 10.0
    loss_weights: dict[str, float] = field(default_factory=lambda: {
        "pelvis_hm": 1.0, "pelvis_depth": 10.0, "voxel_seg": 1.0, "voxel_offset": 1.0,
        "pelvis_refined": 1.0, "contact_hm": 1.0, "contact_hm_flip": 1.0,
    })

    def __post_init__(self) -> None:
        if self.rounding is None:
            self.rounding = "trunc" if self.quirks else "floor"
        if self.rounding not in ("floor", "trunc"):
            raise ValueError(f"RCNetConfig.rounding: expected 'floor' or 'trunc' (torchsparse 1.4 / released "
                             f"weights), got {self.rounding!r}")
        if isinstance(self.refine_iters, bool) or not isinstance(self.refine_iters, int) or self.refine_iters < 1:
            raise ValueError(f"RCNetConfig.refine_iters: expected an integer >= 1 (1 = the original single scene "
                             f"pass), got {self.refine_iters!r}")

    @classmethod
    def preset(cls, name: str, **overrides: Any) -> "RCNetConfig":
        if name == "paper":
            base = cls(name="paper", backbone="hrnet_w64", crop_size=224, spvcnn_width=1.0, voxel_size=0.05,
                       voxel_label_dist=0.07, extra_flip=True, voxel_seg_part_weight=1.0,
                       refine_iters=1)
        elif name == "cpu":
            base = cls()
        else:
            raise ValueError(f"unknown RCNet preset {name!r}; choose 'paper' or 'cpu'")
        from sahmr.config import with_preset

        # rounding None follows `quirks` (see __post_init__) unless set explicitly
        return with_preset(cls, base, {"rounding": None, **overrides}, what=f"RCNet model ({name} preset)")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class RCNetOutput:
    """Everything RCNet predicts for a batch (B samples, H x W heatmap cells, N voxels, M neighbourhood
    points, Q contact points; packed tensors carry a batch index; all float32 on the input's device).

    pelvis_hm: (B, 1, H, W) pelvis heatmap logits. depth_map: (B, 1, H, W) predicted zw1f.
    feat_map: (B, C, H, W) image features. contact_hm: (B, 7, H, W) part-contact heatmaps.
    contact_hm_flip: (B, 7, H, W) prediction on the flipped crop (training with extra_flip) or None.
    pelvis_hm_uv: (B, 2) int64 argmax cell (u, v). pelvis_uv01: (B, 2) box-normalised (u, v).
    pelvis_z_coarse: (B,) metres. pelvis_coarse_cam: (B, 3). bi_f: (B,) crop focal (px of the bi_w grid).
    anchor_cam: (B, 3) middle anchor of the (last) scene pass (coarse pelvis, noisy GT, or the previous refined
    pelvis with refine_iters > 1). noisy_gt_anchor: (B,) bool.
    near_points_cam: (M, 3), near_points_batch: (M,), near_points_voxel: (M,) voxel row of each point.
    voxel_coords: (N, 4) int64 [batch, x, y, z] lattice coords; voxel_centres_cam: (N, 3);
    voxel_batch: (N,); voxel_conf: (N,) confidence logits; voxel_offset: (N, 3) predicted pelvis − centre;
    voxel_seg_logits: (N, 8); voxel_seg_label: (N,) argmax; voxel_weight: (N,) vote weights (sum 1 per sample).
    pelvis_refined_cam: (B, 3). contact_points_cam: (Q, 3); contact_points_part: (Q,) int64 in 1..7;
    contact_points_batch: (Q,). fallback: (B,) bool (no voxel: refined = anchor, no contact points).
    voxel_size: float metres. intermediates: None, or (return_intermediates=True) the dict of the module
    docstring.
    """

    pelvis_hm: Tensor
    depth_map: Tensor
    feat_map: Tensor
    contact_hm: Tensor
    contact_hm_flip: Tensor | None
    pelvis_hm_uv: Tensor
    pelvis_uv01: Tensor
    pelvis_z_coarse: Tensor
    pelvis_coarse_cam: Tensor
    bi_f: Tensor
    anchor_cam: Tensor
    noisy_gt_anchor: Tensor
    near_points_cam: Tensor
    near_points_batch: Tensor
    near_points_voxel: Tensor
    voxel_coords: Tensor
    voxel_centres_cam: Tensor
    voxel_batch: Tensor
    voxel_conf: Tensor
    voxel_offset: Tensor
    voxel_seg_logits: Tensor
    voxel_seg_label: Tensor
    voxel_weight: Tensor
    pelvis_refined_cam: Tensor
    contact_points_cam: Tensor
    contact_points_part: Tensor
    contact_points_batch: Tensor
    fallback: Tensor
    voxel_size: float
    intermediates: dict[str, Any] | None = None

    @property
    def batch_size(self) -> int:
        return self.pelvis_hm.shape[0]


# ----------------------------------------------------------------------------------- functions


def check_camera_inputs(K: Tensor, crop_box_xyxy: Tensor) -> None:
    """ValueError unless K (B, 3, 3) and crop_box_xyxy (B, 4) are finite with positive box width/height."""
    if K.ndim != 3 or K.shape[1:] != (3, 3):
        raise ValueError(f"K: expected shape (B, 3, 3), got {tuple(K.shape)}")
    if crop_box_xyxy.ndim != 2 or crop_box_xyxy.shape[1] != 4 or crop_box_xyxy.shape[0] != K.shape[0]:
        raise ValueError(f"crop_box_xyxy: expected shape ({K.shape[0]}, 4), got {tuple(crop_box_xyxy.shape)}")
    bad = ~torch.isfinite(K).flatten(1).all(1)
    if bool(bad.any()):
        raise ValueError(f"K (camera intrinsics) is not finite for samples {bad.nonzero().flatten().tolist()}")
    if bool((K[:, 0, 0] <= 0).any() | (K[:, 1, 1] <= 0).any()):
        raise ValueError("K: focal lengths fx, fy must be positive")
    bad = ~torch.isfinite(crop_box_xyxy).all(1)
    if bool(bad.any()):
        raise ValueError(f"crop_box_xyxy is not finite for samples {bad.nonzero().flatten().tolist()}")
    wh = crop_box_xyxy[:, 2:] - crop_box_xyxy[:, :2]
    if bool((wh <= 0).any()):
        raise ValueError("crop_box_xyxy: box width and height must be positive ([left, upper, right, bottom])")


def crop_focal(K: Tensor, crop_box_xyxy: Tensor, bi_w: float) -> Tensor:
    """bi_f = fx * bi_w / box_width: (B,)."""
    return K[:, 0, 0] * bi_w / (crop_box_xyxy[:, 2] - crop_box_xyxy[:, 0])


def coarse_pelvis_from_maps(pelvis_hm: Tensor, depth_map: Tensor, K: Tensor, crop_box_xyxy: Tensor, bi_w: float):
    """Argmax pelvis cell + depth -> camera-frame pelvis (spec §3.2, no gradient).

    pelvis_hm, depth_map: (B, 1, H, W); K (B, 3, 3); crop_box_xyxy (B, 4); bi_w: crop width of the zw1f
    convention (S with quirks, S − 1 clean; z does not depend on it).
    Returns uv (B, 2) int64, uv01 (B, 2), z (B,), pelvis_cam (B, 3), bi_f (B,).
    """
    b, _, h, w = pelvis_hm.shape
    flat = pelvis_hm.detach().flatten(1).argmax(1)
    u, v = flat % w, flat // w
    uv = torch.stack([u, v], 1)
    uv01 = uv.to(K.dtype) / torch.tensor([w - 1, h - 1], dtype=K.dtype, device=K.device)
    zw1f = depth_map.detach().flatten(1).gather(1, flat[:, None]).squeeze(1)
    bi_f = crop_focal(K, crop_box_xyxy, bi_w)
    z = zw1f * bi_f / bi_w
    px = crop_box_xyxy[:, :2] + uv01 * (crop_box_xyxy[:, 2:] - crop_box_xyxy[:, :2])
    x = (px[:, 0] - K[:, 0, 2] - K[:, 0, 1] * (px[:, 1] - K[:, 1, 2]) / K[:, 1, 1]) / K[:, 0, 0]
    y = (px[:, 1] - K[:, 1, 2]) / K[:, 1, 1]
    pelvis = torch.stack([x * z, y * z, z], 1)
    return uv, uv01, z, pelvis, bi_f


def project_to_uv01(points: Tensor, batch: Tensor, K: Tensor, crop_box_xyxy: Tensor) -> Tensor:
    """Box-normalised coords (P, 2) of camera points (P, 3) of samples `batch`; non-finite -> −10."""
    Kp = K[batch]
    # normalise by depth first, then apply K (the original's float rounding: ~1e-4 closer image features)
    z = points[:, 2:3]
    h = torch.einsum("pij,pj->pi", Kp, points / z)
    uv = h[:, :2]
    box = crop_box_xyxy[batch]
    uv01 = (uv - box[:, :2]) / (box[:, 2:] - box[:, :2])
    ok = torch.isfinite(uv01).all(1, keepdim=True) & (z > 0)
    return torch.where(ok, uv01, torch.full_like(uv01, -10.0))


def sample_image_features(fmap: Tensor, batch: Tensor, uv01: Tensor) -> Tensor:
    """Bilinear sampling of packed locations, = `grid_sample(fmap[b], 2·uv01 − 1, align_corners=True,
    padding_mode="zeros")` per point, without a per-sample loop.

    fmap: (B, C, H, W); batch: (P,) int64; uv01: (P, 2) (0 = first cell centre, 1 = last). Returns (P, C),
    differentiable w.r.t. fmap.
    """
    b, c, h, w = fmap.shape
    g = 2.0 * uv01 - 1.0  # the grid of grid_sample, unnormalised as it does (same float rounding)
    x = (g[:, 0] + 1.0) / 2.0 * (w - 1)
    y = (g[:, 1] + 1.0) / 2.0 * (h - 1)
    x0, y0 = torch.floor(x), torch.floor(y)
    flat = fmap.permute(0, 2, 3, 1).reshape(b * h * w, c)
    out = fmap.new_zeros(uv01.shape[0], c)
    for dx in (0, 1):
        for dy in (0, 1):
            xi, yi = x0 + dx, y0 + dy
            wx = (x - x0) if dx else (x0 + 1 - x)
            wy = (y - y0) if dy else (y0 + 1 - y)
            valid = (xi >= 0) & (xi <= w - 1) & (yi >= 0) & (yi <= h - 1)
            idx = batch * (h * w) + yi.clamp(0, h - 1).long() * w + xi.clamp(0, w - 1).long()
            wgt = torch.where(valid, wx * wy, torch.zeros_like(wx)).to(fmap.dtype)
            out = out + flat.index_select(0, idx) * wgt[:, None]
    return out


def make_anchors(anchor_mid: Tensor, spacing: float) -> Tensor:
    """(B, 3) -> (B, 3 anchors, 3): the point with z − spacing, z, z + spacing."""
    dz = torch.tensor([-spacing, 0.0, spacing], dtype=anchor_mid.dtype, device=anchor_mid.device)
    anchors = anchor_mid[:, None, :].repeat(1, 3, 1)
    anchors[..., 2] = anchors[..., 2] + dz
    return anchors


def select_near_anchors(points: Tensor, batch: Tensor, anchors: Tensor, radius: float) -> Tensor:
    """Mask (P,) of packed points whose squared distance to the nearest of their sample's anchors is
    < radius². points (P, 3); batch (P,) int64; anchors (B, A, 3)."""
    if points.shape[0] == 0:
        return torch.zeros(0, dtype=torch.bool, device=points.device)
    d2 = ((points[:, None, :] - anchors[batch]) ** 2).sum(-1).amin(1)
    return d2 < radius * radius


def segment_softmax(scores: Tensor, batch: Tensor, batch_size: int) -> Tensor:
    """Softmax of scores (N,) within each segment `batch` (N,) -> (N,) (segments sum to 1)."""
    if scores.numel() == 0:
        return scores
    mx = torch.full((batch_size,), -math.inf, dtype=scores.dtype, device=scores.device)
    mx = mx.scatter_reduce(0, batch, scores.detach(), reduce="amax", include_self=True)
    e = torch.exp(scores - mx[batch])
    den = torch.zeros(batch_size, dtype=scores.dtype, device=scores.device).index_add(0, batch, e)
    return e / den[batch]


def vote_pelvis(conf: Tensor, centres: Tensor, offset: Tensor, batch: Tensor, fallback_xyz: Tensor,
                sigmoid_first: bool) -> tuple[Tensor, Tensor, Tensor]:
    """Confidence-weighted pelvis vote (spec §3.3 step 6).

    conf (N,) logits; centres, offset (N, 3); batch (N,); fallback_xyz (B, 3) used for samples without
    voxels. sigmoid_first: weights = softmax(sigmoid(conf)) (released weights) instead of softmax(conf).
    Returns pelvis (B, 3), weights (N,), has_voxels (B,) bool.
    """
    bsz = fallback_xyz.shape[0]
    s = torch.sigmoid(conf) if sigmoid_first else conf
    w = segment_softmax(s, batch, bsz)
    votes = (centres + offset) * w[:, None]
    pel = fallback_xyz.new_zeros(bsz, 3).index_add(0, batch, votes)
    has = torch.bincount(batch, minlength=bsz) > 0
    return torch.where(has[:, None], pel, fallback_xyz), w, has


# ------------------------------------------------------------------------------------- modules


class RootNet(nn.Module):
    """Image branch: backbone (`hrnet`) + 1x1 `out_conv` to 2 + feat_channels + 7 maps (spec §3.2)."""

    def __init__(self, cfg: RCNetConfig):
        super().__init__()
        self.hrnet, c, self.stride = build_image_backbone(cfg.backbone, cfg.pretrained, cfg.backbone_weights)
        self.feat_channels = cfg.feat_channels
        self.out_conv = nn.Conv2d(c, 2 + cfg.feat_channels + NUM_PARTS, 1)
        # Without the original's pretrained init, default-initialised heatmap channels start at ±several
        # units per cell and their summed squared errors (~10^4) swamp every other loss: start them small.
        nn.init.normal_(self.out_conv.weight, std=1e-3)
        nn.init.zeros_(self.out_conv.bias)

    def forward(self, x: Tensor) -> Tensor:
        return self.out_conv(self.hrnet(x))


class RCNet(nn.Module):
    """Root & contact network. Parameters: `root_net.hrnet.*`, `root_net.out_conv.*`, `contact_net.*`
    (SPVCNN) — the original's `rcnet.*` names. forward -> `RCNetOutput` (see the module docstring)."""

    def __init__(self, cfg: RCNetConfig | None = None):
        super().__init__()
        self.cfg = cfg = cfg or RCNetConfig()
        self.root_net = RootNet(cfg)
        if cfg.crop_size % self.root_net.stride:
            raise ValueError(f"crop_size {cfg.crop_size} must be a multiple of the backbone stride {self.root_net.stride}")
        self.contact_net = SPVCNN(3 + cfg.feat_channels, 1 + 3 + NUM_PARTS + 1, cfg.spvcnn_width, cfg.spvcnn_dropout)
        if cfg.sparse_backend != "torch":
            from sahmr.sparse import set_backend

            set_backend(self.contact_net, cfg.sparse_backend)
        self.register_buffer("img_mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("img_std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    @property
    def heatmap_size(self) -> int:
        return self.cfg.crop_size // self.root_net.stride

    @property
    def bi_w(self) -> float:
        """Crop width of the zw1f convention: S (quirk, spec §3.2) or S − 1 (consistent with uv01)."""
        s = self.cfg.crop_size
        return float(s if self.cfg.quirks else s - 1)

    def prepare_image(self, image: Tensor) -> Tensor:
        """(B, 3, S', S') RGB in [0, 1] -> (B, 3, S, S) normalised; resized (bilinear, align_corners=True,
        which keeps the box-edge = pixel-centre convention) when S' != crop_size."""
        if image.ndim != 4 or image.shape[1] != 3:
            raise ValueError(f"image: expected (B, 3, S, S) RGB, got {tuple(image.shape)}")
        if not bool(torch.isfinite(image).all()):
            raise ValueError("image contains non-finite values")
        s = self.cfg.crop_size
        if image.shape[-2:] != (s, s):
            image = F.interpolate(image, size=(s, s), mode="bilinear", align_corners=True)
        return (image - self.img_mean) / self.img_std

    def forward(
        self,
        image: Tensor,
        K: Tensor,
        crop_box_xyxy: Tensor,
        points_cam: Tensor,
        points_batch: Tensor,
        pelvis_gt_cam: Tensor | None = None,
        generator: torch.Generator | None = None,
        anchor_cam: Tensor | None = None,
        return_intermediates: bool = False,
    ) -> RCNetOutput:
        """image (B, 3, S, S) in [0, 1]; K (B, 3, 3); crop_box_xyxy (B, 4) full-image px; points_cam (P, 3)
        frustum scene points (camera frame) with points_batch (P,) int64; pelvis_gt_cam (B, 3) and
        generator: only used in training mode (noisy-GT anchors; no noise when either is None);
        anchor_cam (B, 3): an explicit middle anchor replacing the coarse pelvis (oracle-root studies,
        benchmarks); the training noise is then not applied. return_intermediates: fill `intermediates`."""
        cfg = self.cfg
        K = K.float()
        crop_box_xyxy = crop_box_xyxy.float()
        check_camera_inputs(K, crop_box_xyxy)
        if points_cam.ndim != 2 or points_cam.shape[1] != 3 or points_batch.shape != points_cam.shape[:1]:
            raise ValueError(f"points_cam (P, 3) with points_batch (P,) expected, got {tuple(points_cam.shape)}, "
                             f"{tuple(points_batch.shape)}")
        bsz = image.shape[0]
        dev = image.device
        points_cam = points_cam.float()
        points_batch = points_batch.long()

        # ---- image branch
        x = self.prepare_image(image.float())
        flip = self.training and cfg.extra_flip
        maps = self.root_net(torch.cat([x, x.flip(-1)]) if flip else x)
        c = cfg.feat_channels
        main = maps[:bsz]
        pelvis_hm, depth_map = main[:, 0:1], main[:, 1:2]
        feat_map, contact_hm = main[:, 2:2 + c], main[:, 2 + c:]
        contact_hm_flip = maps[bsz:, 2 + c:] if flip else None

        with torch.no_grad():
            uv, uv01, z, pelvis_coarse, bi_f = coarse_pelvis_from_maps(pelvis_hm, depth_map, K, crop_box_xyxy, self.bi_w)
            anchor = pelvis_coarse.clone() if anchor_cam is None else anchor_cam.float().clone()
            noisy = torch.zeros(bsz, dtype=torch.bool, device=dev)
            if anchor_cam is not None and anchor.shape != (bsz, 3):
                raise ValueError(f"anchor_cam: expected shape ({bsz}, 3), got {tuple(anchor_cam.shape)}")
            if self.training and pelvis_gt_cam is not None and generator is not None and anchor_cam is None:
                gt = pelvis_gt_cam.float()
                noisy = (anchor - gt).norm(dim=1) > cfg.train_anchor_err_thr
                noise = torch.randn(bsz, 3, generator=generator, device=generator.device).to(dev)
                anchor = torch.where(noisy[:, None], gt + cfg.train_anchor_noise_std * noise, anchor)

        inter = {} if return_intermediates else None
        scene = self._scene_pass(anchor, feat_map, K, crop_box_xyxy, points_cam, points_batch, inter)
        if not self.training and anchor_cam is None:
            for _ in range(cfg.refine_iters - 1):  # re-anchor at the refined pelvis (inference only)
                scene = self._scene_pass(scene["pelvis_refined_cam"].detach(), feat_map, K, crop_box_xyxy, points_cam,
                                         points_batch, inter)

        return RCNetOutput(
            pelvis_hm=pelvis_hm, depth_map=depth_map, feat_map=feat_map, contact_hm=contact_hm,
            contact_hm_flip=contact_hm_flip, pelvis_hm_uv=uv, pelvis_uv01=uv01, pelvis_z_coarse=z,
            pelvis_coarse_cam=pelvis_coarse, bi_f=bi_f, noisy_gt_anchor=noisy, voxel_size=cfg.voxel_size,
            intermediates=inter, **scene,
        )

    def _scene_pass(self, anchor: Tensor, feat_map: Tensor, K: Tensor, crop_box_xyxy: Tensor, points_cam: Tensor,
                    points_batch: Tensor, inter: dict | None = None) -> dict[str, Tensor]:
        """One scene-branch pass (steps 3-8 of the module docstring) around the middle anchors `anchor`
        (B, 3): neighbourhood, voxels, SPVCNN, vote, contact points -> the RCNetOutput fields from
        `anchor_cam` on (a dict). `inter`: a dict to fill with the SPVCNN input/outputs, or None."""
        cfg = self.cfg
        bsz, dev = anchor.shape[0], anchor.device
        with torch.no_grad():
            anchor = anchor.detach()
            anchors = make_anchors(anchor, cfg.anchor_spacing)

            # ---- neighbourhood (packed, one vectorised test)
            keep = select_near_anchors(points_cam, points_batch, anchors, cfg.keep_radius)
            if cfg.quirks and points_cam.shape[0]:
                n_near = torch.bincount(points_batch[keep], minlength=bsz)
                keep = keep | (n_near[points_batch] == 0)  # original: no nearby point -> all frustum points
            near_pts = points_cam[keep]
            near_b = points_batch[keep]

            vox, _, point_voxel = voxelize(near_pts, near_b, cfg.voxel_size, batch_size=bsz, rounding=cfg.rounding)
            coords = vox.coords
            vbatch = coords[:, 0]
            # coord·s + s/2, not (coord + 0.5)·s: the original's float rounding (up to 5e-7 m apart)
            centres = coords[:, 1:].to(points_cam.dtype) * cfg.voxel_size + cfg.voxel_size / 2
            vox_uv01 = project_to_uv01(centres, vbatch, K, crop_box_xyxy)

        n_vox = coords.shape[0]
        img_feat = sample_image_features(feat_map, vbatch, vox_uv01)
        rel = anchor[vbatch] - centres if cfg.quirks else centres - anchor[vbatch]
        feats = torch.cat([rel, img_feat], 1)
        run_sparse = n_vox >= 2 or (n_vox == 1 and not self.training)
        if run_sparse:
            x = SparseVoxelTensor(feats, coords, 1, vox.manager)
            if inter is not None:
                out, stages = self.contact_net(x, return_intermediates=True)
                inter.update(stages, spvcnn_in=feats, spvcnn_out=out)
            else:
                out = self.contact_net(x)
        else:  # nothing (or a single voxel in training: BatchNorm needs 2 rows) -> every sample falls back
            out = feats.new_zeros(n_vox, self.contact_net.out_channels) + 0.0 * feats.sum()
        conf, offset, seg = out[:, 0], out[:, 1:4], out[:, 4:]
        if not run_sparse and n_vox:
            keep_v = torch.zeros(n_vox, dtype=torch.bool, device=dev)
            coords, vbatch, centres = coords[keep_v], vbatch[keep_v], centres[keep_v]
            conf, offset, seg = conf[keep_v], offset[keep_v], seg[keep_v]
            near_pts, near_b, point_voxel = near_pts[:0], near_b[:0], point_voxel[:0]

        refined, weight, has = vote_pelvis(conf, centres, offset, vbatch, anchor, sigmoid_first=cfg.quirks)

        with torch.no_grad():
            seg_label = seg.argmax(1) if n_vox else torch.zeros(0, dtype=torch.long, device=dev)
            pid = seg_label[point_voxel] if point_voxel.numel() else point_voxel
            is_contact = pid != 0
            contact_pts, contact_pid, contact_b = near_pts[is_contact], pid[is_contact], near_b[is_contact]

        return dict(
            anchor_cam=anchor, near_points_cam=near_pts, near_points_batch=near_b, near_points_voxel=point_voxel,
            voxel_coords=coords, voxel_centres_cam=centres, voxel_batch=vbatch, voxel_conf=conf,
            voxel_offset=offset, voxel_seg_logits=seg, voxel_seg_label=seg_label, voxel_weight=weight,
            pelvis_refined_cam=refined, contact_points_cam=contact_pts, contact_points_part=contact_pid,
            contact_points_batch=contact_b, fallback=~has,
        )

    def forward_batch(self, batch: dict, generator: torch.Generator | None = None) -> RCNetOutput:
        """forward on a `collate_human_scene` batch (GT pelvis used for the noisy anchors in training)."""
        return self(batch["image"], batch["K"], batch["crop_box_xyxy"], batch["points_cam"], batch["points_batch"],
                    batch.get("pelvis_cam") if self.training else None, generator)
