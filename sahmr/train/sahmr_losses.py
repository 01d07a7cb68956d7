"""SAHMR stage-2 losses (spec §5.4, SAHMR rows) and in-training metrics (spec §6.1).

Every loss is a per-sample vector (B,); the total is Σ weight·loss (entries with weight ≤ 0 dropped),
averaged over the batch by the caller. GT comes from a `collate_human_scene` batch: `verts_cam (B, V, 3)`,
`joints14_cam (B, 14, 3)`, `pelvis_cam (B, 3)` (the H36M pelvis of verts_cam), `contact (B, V)`.
"cr" = relative to the mesh's own H36M pelvis.

============ ================================================================================= ======
name         per sample                                                                         weight
============ ================================================================================= ======
vertex       mean_v Σ_xyz |gt_cr_v − pred_cr_v|                                                  1
joint        mean_j Σ_xyz |gt_cr_j − pred_cr_j| (14 H36M joints regressed from the mesh)           1
vertex_c     mean_v Σ_xyz |gt_c_v − pred_c_v| (camera frame)                                      1
corr_points  Σ_slots mask · Σ_xyz |out − in| / N with N = all slots incl. padding (quirk, spec     1
             §5.4: the contact branch reproduces its own input); `corr_points_quirk=False`
             divides by the number of valid slots instead (0 for a sample without contact)
============ ================================================================================= ======

The baseline has no contact branch: `corr_points` is skipped (not reported).
"""

from __future__ import annotations

import torch
from torch import Tensor

from sahmr import metrics as M
from sahmr.models.sahmr import SAHMROutput

__all__ = ["SAHMR_LOSS_WEIGHTS", "sahmr_losses", "sahmr_metrics"]

SAHMR_LOSS_WEIGHTS = {"vertex": 1.0, "joint": 1.0, "vertex_c": 1.0, "corr_points": 1.0}


def _dtype(out: SAHMROutput) -> torch.dtype:
    """Losses and metrics in at least float32: under bf16 autocast (precision "bf16-mixed") the network's
    outputs are bf16, whose 8-bit mantissa would quantise camera-frame coordinates at ~2 cm at 5 m."""
    return torch.promote_types(out.verts_cam.dtype, torch.float32)


def _gt(batch: dict, out: SAHMROutput):
    dt, dev = _dtype(out), out.verts_cam.device
    v = batch["verts_cam"].to(dev, dt)
    j = batch["joints14_cam"].to(dev, dt)
    p = batch["pelvis_cam"].to(dev, dt)
    return v, j, p


def sahmr_losses(
    out: SAHMROutput, batch: dict, weights: dict[str, float] | None = None, corr_points_quirk: bool = True
) -> tuple[Tensor, dict[str, Tensor]]:
    """(total (B,), {name: (B,)}) for the losses of the table above with a positive weight."""
    w = {k: float(v) for k, v in (weights or SAHMR_LOSS_WEIGHTS).items() if float(v) > 0}
    unknown = set(w) - set(SAHMR_LOSS_WEIGHTS)
    if unknown:
        raise ValueError(f"unknown SAHMR loss names {sorted(unknown)}; expected {sorted(SAHMR_LOSS_WEIGHTS)}")
    gv, gj, gp = _gt(batch, out)
    if gv.shape != out.verts_cam.shape:
        raise ValueError(
            f"batch verts_cam {tuple(gv.shape)} does not match the prediction {tuple(out.verts_cam.shape)} (same body model topology needed)"
        )
    losses: dict[str, Tensor] = {}
    dt = gv.dtype
    if "vertex" in w:
        losses["vertex"] = ((gv - gp[:, None]) - out.verts_root.to(dt)).abs().sum(-1).mean(-1)
    if "joint" in w:
        losses["joint"] = ((gj - gp[:, None]) - out.joints14_root.to(dt)).abs().sum(-1).mean(-1)
    if "vertex_c" in w:
        losses["vertex_c"] = (gv - out.verts_cam.to(dt)).abs().sum(-1).mean(-1)
    if "corr_points" in w and out.contact_points_crm_out is not None:
        m = out.contact_points_mask.to(dt)
        err = ((out.contact_points_crm_out.to(dt) - out.contact_points_crm.to(dt)).abs().sum(-1) * m).sum(-1)
        den = torch.full_like(err, m.shape[1]) if corr_points_quirk else m.sum(-1).clamp(min=1)
        losses["corr_points"] = err / den
    total = sum(w[k] * v for k, v in losses.items())
    return total, losses


@torch.no_grad()
def sahmr_metrics(out: SAHMROutput, batch: dict) -> dict[str, Tensor]:
    """Per-sample (B,) metrics in mm (spec §6.1, `sahmr.metrics`): MPJPE, MPVE (pelvis-aligned),
    PA_MPJPE, G_MPJPE, G_MPVE (camera frame), PelvisE (origin pelvis used), PelvisE_mesh (H36M pelvis of
    the predicted mesh), PelvisE_coarse (RCNet coarse pelvis), C_HSCP_L2 (÷ V)."""
    gv, gj, gp = _gt(batch, out)
    dt = gv.dtype
    pv, pj, pp = (t.detach().to(dt) for t in (out.verts_cam, out.joints14_cam, out.pelvis_mesh_cam))
    with torch.autocast(gv.device.type, enabled=False):  # Procrustes needs SVD/det, which have no bf16 kernels
        res = {
            "MPJPE": M.mpjpe(pj, gj, pp, gp),
            "MPVE": M.mpve(pv, gv, pp, gp),
            "PA_MPJPE": M.pa_mpjpe(pj, gj),
            "G_MPJPE": M.g_mpjpe(pj, gj),
            "G_MPVE": M.g_mpve(pv, gv),
            "PelvisE": M.pelvis_error(out.pelvis_cam.detach().to(dt), gp),
            "PelvisE_mesh": M.pelvis_error(pp, gp),
            "PelvisE_coarse": M.pelvis_error(out.pelvis_coarse_cam.detach().to(dt), gp),
        }
        if "contact" in batch:
            res["C_HSCP_L2"] = M.c_hscp_l2(pv, gv, pp, gp, batch["contact"].to(pv.device))
    return {k: v.float() for k, v in res.items()}
