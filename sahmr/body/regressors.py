"""Joint regressors: convex sparse rows fitted to skeleton joints, the H36M-style evaluation rows, and the
H36M joints of meshes (`regress_h36m`, spec §2.2: the joints and pelvis every metric uses).

A regressor row expresses a joint as a convex combination (non-negative weights summing to 1) of
nearby mesh vertices, fitted by non-negative least squares over many shaped (and posed) meshes.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy.optimize import nnls
from scipy.spatial import cKDTree

from sahmr.body.model_file import H36M_J17_NAMES, H36M_J17_TO_J14, H36M_PELVIS

__all__ = ["fit_convex_row", "fit_joint_regressor", "h36m_regressor_from_skeleton", "posed_samples", "regress_h36m"]


def fit_convex_row(verts: np.ndarray, target: np.ndarray, candidates: np.ndarray, sum_weight: float = 1e3) -> np.ndarray:
    """Non-negative weights over ``candidates`` (summing to 1) so that Σ w·verts ≈ target.

    verts: (S, V, 3) sample meshes; target: (S, 3); candidates: (k,) vertex indices. Returns (k,).
    The sum-to-one constraint is a heavily weighted extra equation; the row is renormalised after.
    """
    S = verts.shape[0]
    A = verts[:, candidates, :].transpose(0, 2, 1).reshape(S * 3, len(candidates))
    b = target.reshape(S * 3)
    A = np.vstack([A, sum_weight * np.ones((1, len(candidates)))])
    b = np.concatenate([b, [sum_weight]])
    w, _ = nnls(A, b, maxiter=50 * len(candidates))
    s = w.sum()
    if s <= 0:
        raise RuntimeError("convex regressor fit failed (all weights zero)")
    return w / s


def fit_joint_regressor(verts: np.ndarray, joints: np.ndarray, weights: np.ndarray, parents: np.ndarray, num_candidates: int = 160) -> np.ndarray:
    """Fit a (K, V) convex joint regressor.

    verts: (S, V, 3) shaped rest meshes; joints: (S, K, 3) their skeleton joints; weights: (V, K).
    Candidates of joint j: the ``num_candidates`` vertices nearest to it (in the mean mesh) among those
    skinned to j or its parent, so each row stays local and moves with the joint.
    """
    S, V, _ = verts.shape
    K = joints.shape[1]
    mean_v, mean_j = verts.mean(0), joints.mean(0)
    reg = np.zeros((K, V))
    for j in range(K):
        related = [j] + ([int(parents[j])] if parents[j] >= 0 else [])
        pool = np.flatnonzero(weights[:, related].sum(1) > 0.05)
        if len(pool) < 4:
            pool = np.arange(V)
        d = np.linalg.norm(mean_v[pool] - mean_j[j], axis=1)
        cand = pool[np.argsort(d)[:num_candidates]]
        reg[j, cand] = fit_convex_row(verts, joints[:, j], cand)
    return reg


def posed_samples(
    verts: np.ndarray, joints: np.ndarray, weights: np.ndarray, parents: np.ndarray, pose_std: float = 0.4, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Pose rest meshes with linear blend skinning about their true skeleton joints.

    verts: (S, V, 3); joints: (S, K, 3); weights: (V, K). Random axis-angle per joint ~ N(0, pose_std²)
    (root included). Returns posed verts (S, V, 3) and posed joints (S, K, 3). Fitting a regressor on
    these as well as on rest meshes makes it follow the skeleton on posed bodies, which is how the
    evaluation joints are used.
    """
    from smplx.lbs import batch_rigid_transform, batch_rodrigues

    S, K = joints.shape[:2]
    g = torch.Generator().manual_seed(seed)
    aa = pose_std * torch.randn(S * K, 3, generator=g, dtype=torch.float64)
    rot = batch_rodrigues(aa).view(S, K, 3, 3)
    J = torch.as_tensor(joints, dtype=torch.float64)
    posed_j, A = batch_rigid_transform(rot, J, torch.as_tensor(parents, dtype=torch.long), dtype=torch.float64)
    T = torch.einsum("vk,skij->svij", torch.as_tensor(weights, dtype=torch.float64), A)
    v = torch.as_tensor(verts, dtype=torch.float64)
    posed_v = torch.einsum("svij,svj->svi", T[..., :3, :3], v) + T[..., :3, 3]
    return posed_v.numpy(), posed_j.numpy()


def h36m_regressor_from_skeleton(joint_regressor: np.ndarray, verts: np.ndarray, weights: np.ndarray, head_joint: int = 15) -> np.ndarray:
    """(17, V) H36M-style evaluation regressor (spec §2.2 joint order) built from a 24-joint one.

    Rows are convex: pelvis = midpoint of the hips (the H36M definition); hips, knees, ankles,
    shoulders, elbows, wrists, neck = the SMPL skeleton joints; torso = spine2; nose = the 5 most
    forward head vertices; head = the top-of-head vertices averaged with the head joint.
    verts: (V, 3) rest mesh in SMPL axes (y up, facing +z); weights: (V, K).
    """
    R = joint_regressor
    V = R.shape[1]
    head_vs = np.flatnonzero(weights[:, head_joint] > 0.9)
    nose_tip = head_vs[np.argmax(verts[head_vs, 2])]
    nose = cKDTree(verts[head_vs]).query(verts[nose_tip], k=5)[1]
    nose_row = np.zeros(V)
    nose_row[head_vs[nose]] = 1.0 / 5
    top = head_vs[verts[head_vs, 1] > verts[head_vs, 1].max() - 0.03]
    crown = np.zeros(V)
    crown[top] = 1.0 / len(top)
    rows = {
        "pelvis": 0.5 * (R[1] + R[2]),
        "right_hip": R[2],
        "right_knee": R[5],
        "right_ankle": R[8],
        "left_hip": R[1],
        "left_knee": R[4],
        "left_ankle": R[7],
        "torso": R[6],
        "neck": R[12],
        "nose": nose_row,
        "head": 0.5 * (crown + R[head_joint]),
        "left_shoulder": R[16],
        "left_elbow": R[18],
        "left_wrist": R[20],
        "right_shoulder": R[17],
        "right_elbow": R[19],
        "right_wrist": R[21],
    }
    return np.stack([rows[n] for n in H36M_J17_NAMES])


def regress_h36m(verts, regressor17):
    """H36M joints of meshes (spec §2.2).

    verts: (B, V, 3) float, any frame, metres.
    regressor17: (17, V) H36M joint regressor (numpy, torch, or scipy.sparse), rows ~sum to 1. Cast to the
        dtype of `verts` (as the original float32 pipeline does).
    Returns: joints14 (B, 14, 3) = J17[:, H36M_J17_TO_J14], pelvis (B, 3) = J17[:, 0]; same frame as `verts`.
    """
    if verts.ndim != 3 or verts.shape[-1] != 3:
        raise ValueError(f"verts: expected shape (B, V, 3), got {tuple(verts.shape)}")
    if hasattr(regressor17, "toarray"):  # scipy.sparse: 17 x V is tiny, densify
        regressor17 = regressor17.toarray()
    if isinstance(verts, torch.Tensor):
        reg = torch.as_tensor(regressor17).to(device=verts.device, dtype=verts.dtype)
    else:
        reg = np.asarray(regressor17).astype(verts.dtype, copy=False)
    if tuple(reg.shape) != (17, verts.shape[1]):
        raise ValueError(f"regressor17: expected shape (17, {verts.shape[1]}), got {tuple(reg.shape)}")
    j17 = reg @ verts  # (17, V) @ (B, V, 3) -> (B, 17, 3), batched BLAS
    idx = list(H36M_J17_TO_J14)
    return j17[:, idx], j17[:, H36M_PELVIS]
