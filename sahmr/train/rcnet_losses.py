"""RCNet losses (spec §5.4, RCNet rows) and in-training metrics (spec §6.1, RCNet parts).

Every loss is a per-sample vector (B,); the total is Σ weight·loss (weights from `RCNetConfig.loss_weights`,
entries ≤ 0 dropped), averaged over the batch by the caller.

========================= ============================================================== ======
name                      per sample                                                      weight
========================= ============================================================== ======
pelvis_hm                 Σ_pixels (gt_hm − pred_hm)²                                      1
pelvis_depth              Σ_3x3 gkernel · |gt_zw1f − pred_depth[y−1:y+2, x−1:x+2]| at the   10
                          GT cell clamped to [1, W−2] (the original used the unclamped cell,
                          which breaks at the border; spec §8)
voxel_seg                 cross-entropy, mean over the sample's voxels; 0 without voxels    1
voxel_offset              mean over voxels of Σ_xyz |pred − gt|; 0 without voxels           1
pelvis_refined            Σ_xyz |refined − gt pelvis|                                       1
contact_hm                Σ_{c,pixels} (gt − pred)²                                         1
contact_hm_flip           same on the flipped-crop prediction; 0 when absent                1
========================= ============================================================== ======
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from sahmr.metrics import voxseg_precision_recall_iou
from sahmr.models.rcnet import RCNetOutput

from .rcnet_targets import RCNetTargets, gkernel

__all__ = ["LOSS_NAMES", "rcnet_losses", "rcnet_metrics", "segment_mean"]

LOSS_NAMES = ("pelvis_hm", "pelvis_depth", "voxel_seg", "voxel_offset", "pelvis_refined", "contact_hm", "contact_hm_flip")


def segment_mean(values: Tensor, batch: Tensor, batch_size: int) -> Tensor:
    """Mean of values (N,) per sample `batch` (N,) -> (B,); 0 for samples without rows."""
    s = values.new_zeros(batch_size).index_add(0, batch, values)
    n = torch.bincount(batch, minlength=batch_size).clamp(min=1).to(values.dtype)
    return s / n


def pelvis_depth_loss(depth_map: Tensor, px: Tensor, zw1f: Tensor) -> Tensor:
    """Σ_3x3 gkernel · |zw1f − depth| around the clamped GT cell. depth_map (B, 1, H, W); px (B, 2) (u, v)."""
    b, _, h, w = depth_map.shape
    u = px[:, 0].clamp(1, w - 2)
    v = px[:, 1].clamp(1, h - 2)
    d = torch.arange(-1, 2, device=depth_map.device)
    idx = (v[:, None, None] + d[None, :, None]) * w + (u[:, None, None] + d[None, None, :])  # (B, 3, 3)
    win = depth_map.flatten(1).gather(1, idx.flatten(1)).view(b, 3, 3)
    return (gkernel(depth_map.device, depth_map.dtype) * (zw1f[:, None, None] - win).abs()).sum((1, 2))


def rcnet_losses(
    out: RCNetOutput, tgt: RCNetTargets, weights: dict[str, float], voxel_seg_part_weight: float = 1.0
) -> tuple[Tensor, dict[str, Tensor]]:
    """Returns (total (B,), {name: (B,)}) for the names of `LOSS_NAMES` with weight > 0.

    voxel_seg_part_weight: cross-entropy class weight of the 7 contact classes (background: 1)."""
    bsz = out.batch_size
    w = {k: float(v) for k, v in weights.items() if float(v) > 0}
    unknown = set(w) - set(LOSS_NAMES)
    if unknown:
        raise ValueError(f"unknown RCNet loss names {sorted(unknown)}; known: {LOSS_NAMES}")
    losses: dict[str, Tensor] = {}
    if "pelvis_hm" in w:
        losses["pelvis_hm"] = ((tgt.pelvis_hm - out.pelvis_hm) ** 2).flatten(1).sum(1)
    if "pelvis_depth" in w:
        losses["pelvis_depth"] = pelvis_depth_loss(out.depth_map, tgt.pelvis_px, tgt.pelvis_zw1f)
    if "voxel_seg" in w:
        cls_w = torch.ones(out.voxel_seg_logits.shape[1], device=out.voxel_seg_logits.device, dtype=out.voxel_seg_logits.dtype)
        cls_w[1:] = voxel_seg_part_weight
        ce = F.cross_entropy(out.voxel_seg_logits, tgt.voxel_label, weight=cls_w, reduction="none")
        losses["voxel_seg"] = segment_mean(ce, out.voxel_batch, bsz) + 0.0 * out.voxel_seg_logits.sum()
    if "voxel_offset" in w:
        l1 = (out.voxel_offset - tgt.voxel_offset).abs().sum(1)
        losses["voxel_offset"] = segment_mean(l1, out.voxel_batch, bsz) + 0.0 * out.voxel_offset.sum()
    if "pelvis_refined" in w:
        losses["pelvis_refined"] = (out.pelvis_refined_cam - tgt.pelvis_cam).abs().sum(1)
    if "contact_hm" in w:
        losses["contact_hm"] = ((tgt.contact_hm - out.contact_hm) ** 2).flatten(1).sum(1)
    if "contact_hm_flip" in w:
        if out.contact_hm_flip is None:
            losses["contact_hm_flip"] = out.contact_hm.new_zeros(bsz)
        else:
            losses["contact_hm_flip"] = ((tgt.contact_hm_flip - out.contact_hm_flip) ** 2).flatten(1).sum(1)
    total = sum(w[k] * v for k, v in losses.items())
    return total, losses


@torch.no_grad()
def rcnet_metrics(out: RCNetOutput, tgt: RCNetTargets) -> dict[str, Tensor]:
    """Per-sample metrics (B,) float (spec §6.1): pelvis_error_coarse_mm / _refined_mm (PelvisE),
    pelvis_error_2d_px (PelvisE_2D: heatmap cells between the GT cell, unclamped, and the argmax),
    voxseg_precision / _recall / _iou (VoxSeg, classes 1..7, 0 for a sample with no contact voxel in
    prediction and GT), fallback (1.0 where the sample had no voxel)."""
    bsz = out.batch_size
    gt = tgt.pelvis_cam
    m = {
        "pelvis_error_coarse_mm": (out.pelvis_coarse_cam - gt).norm(dim=1) * 1000.0,
        "pelvis_error_refined_mm": (out.pelvis_refined_cam.detach() - gt).norm(dim=1) * 1000.0,
        "pelvis_error_2d_px": (out.pelvis_hm_uv - tgt.pelvis_px).float().norm(dim=1),
    }
    p, r, iou = voxseg_precision_recall_iou(out.voxel_seg_label, tgt.voxel_label, out.voxel_batch, bsz)
    m["voxseg_precision"], m["voxseg_recall"], m["voxseg_iou"] = p.float(), r.float(), iou.float()
    m["fallback"] = out.fallback.float()
    return m
