"""Evaluation metrics: pure, batched, vectorised functions (spec §6).

Every function takes batch-first arrays — all numpy or all torch (any device); the result is in the same
library. Per-frame results have shape (B,): position errors in **millimetres**, PenE/ConFE in **metres**
(sums over vertices, as the release evaluation), ratios in [0, 1]. Arithmetic happens in the inputs'
dtype (pass float64 for reference-grade numbers); count-based ratios are float64.

Alignment used by each metric (``‖·‖`` is the Euclidean norm per point):

=================  ==========================================================================  ===========
metric             formula (per frame)                                                           alignment
=================  ==========================================================================  ===========
G-MPJPE            mean_j ‖gt_j − pred_j‖ · 1000                                                 none
G-MPVE             mean_v ‖gt_v − pred_v‖ · 1000                                                 none
MPJPE              mean_j ‖gt_j − (pred_j − pred_pelvis + gt_pelvis)‖ · 1000                     pelvis translation
MPVE               same over vertices                                                            pelvis translation
PA-MPJPE           mean_j ‖gt_j − (s·R·pred_j + t)‖ · 1000, (s, R, t) least squares, det R = +1   similarity
PelvisE            ‖gt_pelvis − pred_pelvis‖ · 1000                                              none
C_HSCP_L2          (1/V) Σ_v contact_v · ‖gt_v − gt_pelvis − (pred_v − pred_pelvis)‖ · 1000      own pelvis
PenE               Σ_v |s_v| · [s_v < 0]              (s_v = scene SDF at predicted vertex v)    world
ConFE              Σ_{v∉C} |s_v| · [s_v < 0] + Σ_{v∈C} |s_v|   (C = GT contact vertices)          world
=================  ==========================================================================  ===========

The pelvis is always the regressed H36M pelvis (spec §2.2, `sahmr.body.regressors.regress_h36m`), never SMPL
joint 0. This module is a leaf (numpy and torch only): models, losses and the evaluation import it.
"""

from __future__ import annotations

import numpy as np
import torch

__all__ = [
    "CONTACT_THRESHOLD_M",
    "g_mpjpe",
    "g_mpve",
    "mpjpe",
    "mpve",
    "pa_mpjpe",
    "procrustes_align",
    "pelvis_error",
    "pene",
    "confe",
    "c_hscp_l2",
    "voxseg_precision_recall_iou",
    "contact_precision_recall_f1",
    "contact_precision_recall_f1_from_masks",
]

# A vertex is "in contact" when within this distance of the scene surface (spec §5.2 contact_thr_dist).
CONTACT_THRESHOLD_M = 0.07
_VOXSEG_EPS = 1e-10


# ------------------------------------------------------------------------------------------ helpers


def _xp(*arrays):
    """The array library (numpy or torch) shared by `arrays`; mixing them is an error."""
    n_torch = sum(isinstance(a, torch.Tensor) for a in arrays)
    if n_torch == 0:
        return np
    if n_torch != len(arrays):
        raise TypeError("metric inputs must be all numpy arrays or all torch tensors, not a mix")
    return torch


def _check(name: str, x, shape: tuple) -> None:
    """Raise ValueError naming `name` unless x.shape matches `shape` (None = any size)."""
    if x.ndim != len(shape) or any(s is not None and s != d for s, d in zip(shape, x.shape)):
        want = "(" + ", ".join("*" if s is None else str(s) for s in shape) + ")"
        raise ValueError(f"{name}: expected shape {want}, got {tuple(x.shape)}")


def _same_shape(name_a: str, a, name_b: str, b) -> None:
    if tuple(a.shape) != tuple(b.shape):
        raise ValueError(f"{name_a} and {name_b} must have the same shape, got {tuple(a.shape)} and {tuple(b.shape)}")


def _norm(x):
    """Euclidean norm over the last axis (works for numpy and torch)."""
    xp = _xp(x)
    return xp.sqrt((x * x).sum(-1))


def _as_bool(x):
    return x.astype(bool) if isinstance(x, np.ndarray) else x.bool()


def _as_f64(x):
    return x.astype(np.float64) if isinstance(x, np.ndarray) else x.double()


def _check_points(name_pred: str, pred, name_gt: str, gt) -> None:
    _xp(pred, gt)  # refuses a numpy/torch mix
    _check(name_pred, pred, (None, None, 3))
    _same_shape(name_pred, pred, name_gt, gt)


# ---------------------------------------------------------------------------------- position errors


def _mean_point_error_mm(pred, gt):
    return _norm(gt - pred).mean(-1) * 1000.0


def g_mpjpe(pred_joints, gt_joints):
    """Global MPJPE: mean_j ‖gt_j − pred_j‖ · 1000, no alignment.

    pred_joints, gt_joints: (B, J, 3) metres, same frame (world in the release evaluation; any common
        frame gives the same number since rigid maps preserve distances).
    Returns: (B,) millimetres.
    """
    _check_points("pred_joints", pred_joints, "gt_joints", gt_joints)
    return _mean_point_error_mm(pred_joints, gt_joints)


def g_mpve(pred_verts, gt_verts):
    """Global MPVE: mean_v ‖gt_v − pred_v‖ · 1000, no alignment.

    pred_verts, gt_verts: (B, V, 3) metres, same frame. Returns: (B,) millimetres.
    """
    _check_points("pred_verts", pred_verts, "gt_verts", gt_verts)
    return _mean_point_error_mm(pred_verts, gt_verts)


def _pelvis_aligned_mm(pred, gt, pred_pelvis, gt_pelvis, names):
    _check_points(names[0], pred, names[1], gt)
    _check("pred_pelvis", pred_pelvis, (pred.shape[0], 3))
    _check("gt_pelvis", gt_pelvis, (pred.shape[0], 3))
    _xp(pred, pred_pelvis, gt_pelvis)
    aligned = pred - pred_pelvis[:, None, :] + gt_pelvis[:, None, :]
    return _mean_point_error_mm(aligned, gt)


def mpjpe(pred_joints, gt_joints, pred_pelvis, gt_pelvis):
    """Pelvis-aligned MPJPE (release evaluation): mean_j ‖gt_j − (pred_j − pred_pelvis + gt_pelvis)‖ · 1000.

    Translation only, no rotation; equal to comparing each skeleton relative to its own pelvis.
    pred_joints, gt_joints: (B, J, 3) metres; pred_pelvis, gt_pelvis: (B, 3) metres (H36M pelvis of each mesh).
    Returns: (B,) millimetres.
    """
    return _pelvis_aligned_mm(pred_joints, gt_joints, pred_pelvis, gt_pelvis, ("pred_joints", "gt_joints"))


def mpve(pred_verts, gt_verts, pred_pelvis, gt_pelvis):
    """Pelvis-aligned MPVE: mean_v ‖gt_v − (pred_v − pred_pelvis + gt_pelvis)‖ · 1000.

    pred_verts, gt_verts: (B, V, 3) metres; pred_pelvis, gt_pelvis: (B, 3) metres. Returns: (B,) millimetres.
    """
    return _pelvis_aligned_mm(pred_verts, gt_verts, pred_pelvis, gt_pelvis, ("pred_verts", "gt_verts"))


def procrustes_align(pred, gt):
    """Similarity transform of `pred` onto `gt` minimising Σ_j ‖gt_j − (s R pred_j + t)‖², batched.

    pred, gt: (B, J, 3). Returns: (B, J, 3) aligned pred = s R pred + t.
    Closed form (Umeyama): X = pred − mean, Y = gt − mean, K = Xᵀ Y = U S Vᵀ,
    R = V diag(1, 1, d) Uᵀ with d = sign(det(V Uᵀ)) (no reflections), s = tr(diag(1,1,d) S) / ‖X‖²,
    t = mean(gt) − s R mean(pred). A degenerate pred (all points equal) gets s = 0, i.e. maps to mean(gt).
    """
    _check_points("pred", pred, "gt", gt)
    xp = _xp(pred, gt)
    mu_p = pred.mean(-2)[..., None, :]
    mu_g = gt.mean(-2)[..., None, :]
    x = pred - mu_p
    y = gt - mu_g
    k = xp.einsum("bjc,bjd->bcd", x, y)  # (B, 3, 3) cross-covariance
    u, s, vh = xp.linalg.svd(k)
    v, ut = vh.swapaxes(-1, -2), u.swapaxes(-1, -2)
    # det fix: flip the weakest axis when the optimal orthogonal map would be a reflection
    d = xp.linalg.det(v @ ut)
    one = xp.ones_like(s[..., 0])
    z = xp.stack([one, one, xp.where(d < 0, -one, one)], -1)  # (B, 3)
    rot = (v * z[..., None, :]) @ ut  # V diag(z) Uᵀ, (B, 3, 3)
    var_x = (x * x).sum((-2, -1))
    trace = (s * z).sum(-1)
    safe_var = xp.where(var_x > 0, var_x, xp.ones_like(var_x))
    scale = xp.where(var_x > 0, trace / safe_var, xp.zeros_like(var_x))
    # rows are points: (s R xᵀ)ᵀ = s x Rᵀ
    return scale[:, None, None] * (x @ rot.swapaxes(-1, -2)) + mu_g


def pa_mpjpe(pred_joints, gt_joints):
    """Procrustes-aligned MPJPE: mean_j ‖gt_j − (s R pred_j + t)‖ · 1000 after :func:`procrustes_align`.

    pred_joints, gt_joints: (B, J, 3) metres (the 14 H36M joints). Returns: (B,) millimetres.
    """
    _check_points("pred_joints", pred_joints, "gt_joints", gt_joints)
    return _mean_point_error_mm(procrustes_align(pred_joints, gt_joints), gt_joints)


def pelvis_error(pred_pelvis, gt_pelvis):
    """Pelvis position error ‖gt_pelvis − pred_pelvis‖ · 1000, no alignment.

    pred_pelvis, gt_pelvis: (B, 3) metres, same frame. Returns: (B,) millimetres.
    """
    _check("pred_pelvis", pred_pelvis, (None, 3))
    _same_shape("pred_pelvis", pred_pelvis, "gt_pelvis", gt_pelvis)
    _xp(pred_pelvis, gt_pelvis)
    return _norm(gt_pelvis - pred_pelvis) * 1000.0


def c_hscp_l2(pred_verts, gt_verts, pred_pelvis, gt_pelvis, contact_gt):
    """Contact-vertex error (spec §6.1 ``C_HSCP_L2``), divided by V — not by the number of contacts.

    (1/V) Σ_v contact_v · ‖(gt_v − gt_pelvis) − (pred_v − pred_pelvis)‖ · 1000
    pred_verts, gt_verts: (B, V, 3) metres; pred_pelvis, gt_pelvis: (B, 3); contact_gt: (B, V) bool/0-1.
    Returns: (B,) millimetres (0 for a frame without GT contact).
    """
    _check_points("pred_verts", pred_verts, "gt_verts", gt_verts)
    _check("contact_gt", contact_gt, pred_verts.shape[:2])
    _check("pred_pelvis", pred_pelvis, (pred_verts.shape[0], 3))
    _check("gt_pelvis", gt_pelvis, (pred_verts.shape[0], 3))
    xp = _xp(pred_verts, gt_verts, contact_gt, pred_pelvis, gt_pelvis)
    err = _norm((gt_verts - gt_pelvis[:, None, :]) - (pred_verts - pred_pelvis[:, None, :])) * 1000.0
    err = xp.where(_as_bool(contact_gt), err, xp.zeros_like(err))
    return err.sum(-1) / pred_verts.shape[1]


# -------------------------------------------------------------------------------- scene interaction


def pene(sdf_at_verts):
    """Penetration error PenE = Σ_v |s_v| · [s_v < 0] (release evaluation, spec §6.2).

    sdf_at_verts: (B, V) scene signed distance at each predicted vertex, metres (negative inside),
        e.g. :func:`sahmr.geometry.sdf.query_sdf` at the world-frame vertices.
    Returns: (B,) metres, **summed** over vertices (not averaged).
    """
    _check("sdf_at_verts", sdf_at_verts, (None, None))
    xp = _xp(sdf_at_verts)
    return xp.where(sdf_at_verts < 0, -sdf_at_verts, xp.zeros_like(sdf_at_verts)).sum(-1)


def confe(sdf_at_verts, contact_gt):
    """Contact-and-penetration error ConFE (spec §6.2).

    ConFE = Σ_{v∉C} |s_v| · [s_v < 0] + Σ_{v∈C} |s_v|, C = GT contact vertices: non-contact vertices pay
    for penetration, contact vertices pay for any distance to the surface. With no GT contact
    (PROX) ConFE = PenE.
    sdf_at_verts: (B, V) metres; contact_gt: (B, V) bool/0-1. Returns: (B,) metres (summed over vertices).
    """
    _check("sdf_at_verts", sdf_at_verts, (None, None))
    _check("contact_gt", contact_gt, tuple(sdf_at_verts.shape))
    xp = _xp(sdf_at_verts, contact_gt)
    a = xp.abs(sdf_at_verts)
    cost = xp.where(_as_bool(contact_gt) | (sdf_at_verts < 0), a, xp.zeros_like(a))
    return cost.sum(-1)


def contact_precision_recall_f1_from_masks(contact_pred, contact_gt):
    """Per-frame vertex-level contact precision, recall and F1 from two boolean masks.

    contact_pred, contact_gt: (B, V) bool/0-1. With TP, FP, FN counted per frame:
        precision = TP / (TP + FP), or 1 when nothing is predicted (no false positive is possible);
        recall    = TP / (TP + FN), or 1 when the GT has no contact (nothing can be missed);
        F1        = 2 TP / (2 TP + FP + FN), or 1 when both sets are empty.
    So a frame scores F1 = 1 exactly when the sets are equal (both empty included), and F1 = 0 whenever
    exactly one set is empty; F1 equals 2PR/(P+R) whenever P + R > 0.
    Returns: precision, recall, f1 — each (B,) float64.
    """
    _check("contact_pred", contact_pred, (None, None))
    _same_shape("contact_pred", contact_pred, "contact_gt", contact_gt)
    xp = _xp(contact_pred, contact_gt)
    p, g = _as_bool(contact_pred), _as_bool(contact_gt)
    tp = _as_f64((p & g).sum(-1))
    fp = _as_f64((p & ~g).sum(-1))
    fn = _as_f64((~p & g).sum(-1))

    def ratio(num, den):
        return xp.where(den > 0, num / xp.where(den > 0, den, xp.ones_like(den)), xp.ones_like(den))

    return ratio(tp, tp + fp), ratio(tp, tp + fn), ratio(2 * tp, 2 * tp + fp + fn)


def contact_precision_recall_f1(sdf_at_verts, contact_gt, threshold: float = CONTACT_THRESHOLD_M):
    """Vertex-level contact precision / recall / F1 of a predicted mesh against a GT contact mask.

    A predicted vertex is in contact when |s_v| ≤ threshold, i.e. within `threshold` metres of the scene
    surface on either side (a penetrating vertex near the surface counts as contact).
    sdf_at_verts: (B, V) metres; contact_gt: (B, V) bool/0-1; threshold: metres (default 0.07, the
    original's contact distance). Empty-set conventions: see :func:`contact_precision_recall_f1_from_masks`.
    Returns: precision, recall, f1 — each (B,) float64.
    """
    _check("sdf_at_verts", sdf_at_verts, (None, None))
    xp = _xp(sdf_at_verts)
    return contact_precision_recall_f1_from_masks(xp.abs(sdf_at_verts) <= threshold, contact_gt)


def voxseg_precision_recall_iou(pred_label, gt_label, batch_index, batch_size: int, num_classes: int = 8):
    """Per-sample voxel contact segmentation scores (spec §6.1 ``VoxSeg_PREC/_RECALL/_IOU``).

    Voxels are packed over the batch. Per sample and class c, over its voxels: I_c = #(pred = gt = c),
    P_c = #(pred = c), T_c = #(gt = c), U_c = P_c + T_c − I_c. Over the contact classes c = 1..num_classes−1
    (class 0 = background is ignored):
        precision = ΣI / (ΣP + 1e-10), recall = ΣI / (ΣT + 1e-10), IoU = ΣI / (ΣU + 1e-10)
    so a sample with no contact voxel in prediction and GT scores 0 (the spec writes "+1e-10" without
    placing it; we add it to the denominator only).
    pred_label, gt_label: (N,) int in [0, num_classes); batch_index: (N,) int in [0, batch_size).
    Returns: precision, recall, iou — each (batch_size,) float64.
    """
    _check("pred_label", pred_label, (None,))
    _same_shape("pred_label", pred_label, "gt_label", gt_label)
    _same_shape("pred_label", pred_label, "batch_index", batch_index)
    xp = _xp(pred_label, gt_label, batch_index)
    if pred_label.shape[0] > 0:
        for name, arr, hi in (("pred_label", pred_label, num_classes), ("gt_label", gt_label, num_classes), ("batch_index", batch_index, batch_size)):
            if int(arr.min()) < 0 or int(arr.max()) >= hi:
                raise ValueError(f"{name}: values must lie in [0, {hi}), got range [{int(arr.min())}, {int(arr.max())}]")
    n_bins = batch_size * num_classes

    def hist(labels, keep=None):
        key = batch_index * num_classes + labels
        if keep is not None:
            key = key[keep]
        counts = xp.bincount(key, minlength=n_bins)
        return _as_f64(counts.reshape(batch_size, num_classes)[:, 1:].sum(-1))

    inter = hist(gt_label, pred_label == gt_label)
    p = hist(pred_label)
    t = hist(gt_label)
    union = p + t - inter
    return inter / (p + _VOXSEG_EPS), inter / (t + _VOXSEG_EPS), inter / (union + _VOXSEG_EPS)
