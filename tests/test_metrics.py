"""Metrics: hand-computed cases, independent per-sample loop references (float64), numpy == torch."""

import numpy as np
import pytest
import torch
from scipy.optimize import least_squares
from scipy.spatial.transform import Rotation

from sahmr import metrics as M
from sahmr.body.regressors import regress_h36m
from sahmr.geometry.sdf import SDFGrid, query_sdf

J14 = [3, 2, 1, 4, 5, 6, 16, 15, 14, 11, 12, 13, 8, 10]


def random_case(seed=0, b=5, v=60):
    rng = np.random.default_rng(seed)
    gt = rng.normal(size=(b, v, 3))
    pred = gt + rng.normal(0, 0.05, size=(b, v, 3)) + rng.normal(0, 0.1, size=(b, 1, 3))
    reg = rng.uniform(size=(17, v))
    reg /= reg.sum(1, keepdims=True)
    contact = rng.uniform(size=(b, v)) < 0.3
    sdf = rng.normal(0, 0.08, size=(b, v))
    return rng, gt, pred, reg, contact, sdf


# ------------------------------------------------------------------ independent loop implementations


def ref_regress(verts, reg):
    joints14, pelvis = [], []
    for vb in verts:
        j17 = np.array([[sum(reg[j, i] * vb[i, c] for i in range(vb.shape[0])) for c in range(3)] for j in range(17)])
        joints14.append(j17[J14])
        pelvis.append(j17[0])
    return np.array(joints14), np.array(pelvis)


def ref_mean_dist_mm(a, b):
    return np.array([np.mean([np.sqrt(np.sum((a[n, j] - b[n, j]) ** 2)) for j in range(a.shape[1])]) * 1000 for n in range(len(a))])


def ref_procrustes_one(pred, gt):
    """Textbook per-sample similarity Procrustes with points as columns."""
    X, Y = pred.T, gt.T
    mu1, mu2 = X.mean(1, keepdims=True), Y.mean(1, keepdims=True)
    X1, Y1 = X - mu1, Y - mu2
    K = X1 @ Y1.T
    U, _, Vh = np.linalg.svd(K)
    Z = np.eye(3)
    Z[-1, -1] = np.sign(np.linalg.det(U @ Vh))
    R = Vh.T @ Z @ U.T
    scale = np.trace(R @ K) / np.sum(X1**2)
    t = mu2 - scale * R @ mu1
    return (scale * R @ X + t).T


def ref_pene_confe(sdf, contact):
    pen, con = [], []
    for s_b, c_b in zip(sdf, contact):
        p = c = 0.0
        for s, in_contact in zip(s_b, c_b):
            if s < 0:
                p += -s
            if in_contact:
                c += abs(s)
            elif s < 0:
                c += -s
        pen.append(p)
        con.append(c)
    return np.array(pen), np.array(con)


def ref_prf(pred_mask, gt_mask):
    out = []
    for p_b, g_b in zip(pred_mask, gt_mask):
        tp = sum(1 for p, g in zip(p_b, g_b) if p and g)
        fp = sum(1 for p, g in zip(p_b, g_b) if p and not g)
        fn = sum(1 for p, g in zip(p_b, g_b) if g and not p)
        prec = tp / (tp + fp) if tp + fp else 1.0
        rec = tp / (tp + fn) if tp + fn else 1.0
        f1 = 2 * tp / (2 * tp + fp + fn) if 2 * tp + fp + fn else 1.0
        out.append((prec, rec, f1))
    return np.array(out).T


# -------------------------------------------------------------------------------- hand-computed cases


def test_regress_h36m_picks_rows_in_h36m_order():
    rng = np.random.default_rng(0)
    verts = rng.normal(size=(2, 30, 3)).astype(np.float32)
    reg = np.zeros((17, 30))
    reg[np.arange(17), np.arange(17) + 10] = 1.0  # J17[j] = vertex j + 10
    joints14, pelvis = regress_h36m(verts, reg)
    assert joints14.shape == (2, 14, 3) and pelvis.shape == (2, 3) and joints14.dtype == np.float32
    np.testing.assert_array_equal(joints14, verts[:, np.array(J14) + 10])
    np.testing.assert_array_equal(pelvis, verts[:, 10])
    with pytest.raises(ValueError, match="regressor17"):
        regress_h36m(verts, reg[:, :29])


def test_shift_by_10cm_gives_100mm_global_and_0_aligned():
    _, gt, _, reg, contact, _ = random_case()
    pred = gt + np.array([0.06, 0.0, -0.08])  # |shift| = 0.1 m
    pj, pp = regress_h36m(pred, reg)
    gj, gp = regress_h36m(gt, reg)
    np.testing.assert_allclose(M.g_mpjpe(pj, gj), 100.0, atol=1e-9)
    np.testing.assert_allclose(M.g_mpve(pred, gt), 100.0, atol=1e-9)
    np.testing.assert_allclose(M.pelvis_error(pp, gp), 100.0, atol=1e-9)
    np.testing.assert_allclose(M.mpjpe(pj, gj, pp, gp), 0.0, atol=1e-9)
    np.testing.assert_allclose(M.mpve(pred, gt, pp, gp), 0.0, atol=1e-9)
    np.testing.assert_allclose(M.pa_mpjpe(pj, gj), 0.0, atol=1e-9)
    np.testing.assert_allclose(M.c_hscp_l2(pred, gt, pp, gp, contact), 0.0, atol=1e-9)


def test_similarity_copy_has_zero_pa_mpjpe_but_a_mirror_does_not():
    rng, gt, _, reg, _, _ = random_case(1)
    gj, _ = regress_h36m(gt, reg)
    rots = Rotation.random(len(gj), random_state=3).as_matrix()
    scale = rng.uniform(0.5, 2.0, size=(len(gj), 1, 1))
    moved = scale * gj @ rots.transpose(0, 2, 1) + rng.normal(size=(len(gj), 1, 3))
    np.testing.assert_allclose(M.pa_mpjpe(moved, gj), 0.0, atol=1e-9)
    assert (M.mpjpe(moved, gj, moved[:, 0], gj[:, 0]) > 10).all()  # the copy really is moved
    # A reflection cannot be undone by a proper rotation (det fix); the loop reference agrees.
    mirrored = gj * np.array([-1.0, 1.0, 1.0])
    err = M.pa_mpjpe(mirrored, gj)
    assert (err > 1.0).all()
    np.testing.assert_allclose(err, ref_mean_dist_mm(np.array([ref_procrustes_one(p, g) for p, g in zip(mirrored, gj)]), gj), atol=1e-9)


def test_procrustes_is_the_least_squares_optimum():
    _, gt, pred, reg, _, _ = random_case(2, b=3)
    gj, _ = regress_h36m(gt, reg)
    pj = gj @ Rotation.from_rotvec([0.3, -0.2, 0.5]).as_matrix().T * 1.3 + np.random.default_rng(5).normal(0, 0.05, gj.shape)
    aligned = M.procrustes_align(pj, gj)
    for b in range(len(gj)):

        def residual(x, b=b):
            r = Rotation.from_rotvec(x[1:4]).as_matrix()
            return (np.exp(x[0]) * pj[b] @ r.T + x[4:] - gj[b]).ravel()

        best = least_squares(residual, np.zeros(7), xtol=1e-14, ftol=1e-14, gtol=1e-14)
        ours = np.sum((aligned[b] - gj[b]) ** 2)
        assert ours <= 2 * best.cost + 1e-10  # least_squares cost = 0.5 * sum of squares
        assert ours >= 2 * best.cost - 1e-8


def box_sdf(p):
    q = np.abs(p) - np.array([0.5, 0.4, 0.3])
    return np.linalg.norm(np.maximum(q, 0.0), axis=-1) + np.minimum(q.max(-1), 0.0)


def test_pene_confe_and_contact_on_an_analytic_box():
    axis = np.linspace(-1.0, 1.0, 21)
    grid = SDFGrid(box_sdf(np.stack(np.meshgrid(axis, axis, axis, indexing="ij"), -1)), [-1.0] * 3, [1.0] * 3)
    verts = np.array(
        [
            [
                [0.35, 0.05, 0.05],  # inside, +x face closest: s = -0.15 (linear cell)
                [0.0, 0.0, -0.25],  # inside, -z face closest: s = -0.05 (node in x, y; linear in z)
                [0.65, 0.05, 0.05],  # outside the +x face: s = +0.15
                [0.05, 0.05, -0.35],  # outside the -z face: s = +0.05
                [0.2, 0.1, 0.0],  # node, inside: s = -0.3
                [0.8, 0.6, 0.5],  # node, outside a corner: s = sqrt(0.3² + 0.2² + 0.2²)
                [1.5, 0.05, 0.05],  # beyond the grid: clamped to x = 1 -> s = 0.5 (true distance 1.0)
            ]
        ]
    )
    s = query_sdf(grid, verts)
    np.testing.assert_allclose(s[0], [-0.15, -0.05, 0.15, 0.05, -0.3, np.sqrt(0.17), 0.5], atol=1e-12)
    contact = np.array([[False, True, True, False, False, True, False]])
    np.testing.assert_allclose(M.pene(s), [0.15 + 0.05 + 0.3], atol=1e-12)
    # non-contact penetration (0.15 + 0.3) + |s| at contacts (0.05 + 0.15 + sqrt(0.17))
    np.testing.assert_allclose(M.confe(s, contact), [0.45 + 0.2 + np.sqrt(0.17)], atol=1e-12)
    np.testing.assert_allclose(M.confe(s, np.zeros_like(contact)), M.pene(s), atol=0)
    # predicted contact (|s| <= 0.07): vertices 1 and 3. GT {1, 2, 5}: TP 1, FP 1, FN 2.
    p, r, f1 = M.contact_precision_recall_f1(s, contact)
    np.testing.assert_allclose([p[0], r[0], f1[0]], [0.5, 1 / 3, 0.4], atol=1e-12)


def test_contact_empty_set_conventions():
    gt = np.array([[0, 0, 0], [0, 0, 0], [1, 1, 0], [1, 0, 0]], bool)
    pred = np.array([[0, 0, 0], [1, 0, 0], [0, 0, 0], [1, 0, 0]], bool)
    p, r, f1 = M.contact_precision_recall_f1_from_masks(pred, gt)
    np.testing.assert_array_equal(p, [1, 0, 1, 1])
    np.testing.assert_array_equal(r, [1, 1, 0, 1])
    np.testing.assert_array_equal(f1, [1, 0, 0, 1])
    # the threshold is inclusive and two-sided
    p, r, _ = M.contact_precision_recall_f1(np.array([[0.07, -0.07, 0.0701, -0.5]]), np.array([[1, 1, 0, 0]], bool))
    assert p[0] == 1 and r[0] == 1


def test_voxseg_hand_case():
    # sample 0: pred [0,1,1,2], gt [0,1,2,2] -> I=2 (classes 1,2), P=3, T=3, U=4
    # sample 1: only background -> 0 by the +1e-10 convention
    pred = np.array([0, 1, 1, 2, 0, 0])
    gt = np.array([0, 1, 2, 2, 0, 0])
    bidx = np.array([0, 0, 0, 0, 1, 1])
    prec, rec, iou = M.voxseg_precision_recall_iou(pred, gt, bidx, batch_size=3)
    np.testing.assert_allclose(prec, [2 / 3, 0, 0], atol=1e-9)
    np.testing.assert_allclose(rec, [2 / 3, 0, 0], atol=1e-9)
    np.testing.assert_allclose(iou, [0.5, 0, 0], atol=1e-9)
    with pytest.raises(ValueError, match="pred_label"):
        M.voxseg_precision_recall_iou(np.array([8]), np.array([0]), np.array([0]), batch_size=1)


# ------------------------------------------------------------------- random inputs vs loop references


def test_every_metric_matches_loop_reference_in_float64():
    rng, gt, pred, reg, contact, sdf = random_case(7)
    pj, pp = regress_h36m(pred, reg)
    gj, gp = regress_h36m(gt, reg)
    rpj, rpp = ref_regress(pred, reg)
    rgj, rgp = ref_regress(gt, reg)
    np.testing.assert_allclose(pj, rpj, atol=1e-12)
    np.testing.assert_allclose(pp, rpp, atol=1e-12)
    tol = dict(rtol=0, atol=1e-9)
    np.testing.assert_allclose(M.g_mpjpe(pj, gj), ref_mean_dist_mm(rpj, rgj), **tol)
    np.testing.assert_allclose(M.g_mpve(pred, gt), ref_mean_dist_mm(pred, gt), **tol)
    np.testing.assert_allclose(M.mpjpe(pj, gj, pp, gp), ref_mean_dist_mm(rpj - rpp[:, None] + rgp[:, None], rgj), **tol)
    np.testing.assert_allclose(M.mpve(pred, gt, pp, gp), ref_mean_dist_mm(pred - rpp[:, None] + rgp[:, None], gt), **tol)
    aligned = np.array([ref_procrustes_one(p, g) for p, g in zip(rpj, rgj)])
    np.testing.assert_allclose(M.pa_mpjpe(pj, gj), ref_mean_dist_mm(aligned, rgj), **tol)
    np.testing.assert_allclose(M.pelvis_error(pp, gp), [np.linalg.norm(a - b) * 1000 for a, b in zip(rpp, rgp)], **tol)
    hscp = [
        sum(np.linalg.norm((gt[n, v] - rgp[n]) - (pred[n, v] - rpp[n])) * 1000 for v in range(gt.shape[1]) if contact[n, v]) / gt.shape[1]
        for n in range(len(gt))
    ]
    np.testing.assert_allclose(M.c_hscp_l2(pred, gt, pp, gp, contact), hscp, **tol)
    ref_pen, ref_con = ref_pene_confe(sdf, contact)
    np.testing.assert_allclose(M.pene(sdf), ref_pen, **tol)
    np.testing.assert_allclose(M.confe(sdf, contact), ref_con, **tol)
    np.testing.assert_allclose(np.array(M.contact_precision_recall_f1(sdf, contact)), ref_prf(np.abs(sdf) <= 0.07, contact), **tol)

    n_vox, bsz = 400, 4
    pl, gl, bi = rng.integers(0, 8, n_vox), rng.integers(0, 8, n_vox), np.sort(rng.integers(0, bsz, n_vox))
    ref = []
    for b in range(bsz):
        m = bi == b
        i = sum(np.sum((pl[m] == c) & (gl[m] == c)) for c in range(1, 8))
        p = sum(np.sum(pl[m] == c) for c in range(1, 8))
        t = sum(np.sum(gl[m] == c) for c in range(1, 8))
        ref.append((i / (p + 1e-10), i / (t + 1e-10), i / (p + t - i + 1e-10)))
    np.testing.assert_allclose(np.array(M.voxseg_precision_recall_iou(pl, gl, bi, bsz)), np.array(ref).T, **tol)


def test_torch_inputs_give_the_numpy_numbers():
    rng, gt, pred, reg, contact, sdf = random_case(8)
    t = torch.from_numpy
    pj, pp = regress_h36m(pred, reg)
    gj, gp = regress_h36m(gt, reg)
    tpj, tpp = regress_h36m(t(pred), t(reg))
    tgj, tgp = regress_h36m(t(gt), t(reg))
    pairs = [
        (M.g_mpjpe(pj, gj), M.g_mpjpe(tpj, tgj)),
        (M.mpve(pred, gt, pp, gp), M.mpve(t(pred), t(gt), tpp, tgp)),
        (M.pa_mpjpe(pj, gj), M.pa_mpjpe(tpj, tgj)),
        (M.c_hscp_l2(pred, gt, pp, gp, contact), M.c_hscp_l2(t(pred), t(gt), tpp, tgp, t(contact))),
        (M.confe(sdf, contact), M.confe(t(sdf), t(contact))),
        (M.pene(sdf), M.pene(t(sdf))),
        (np.array(M.contact_precision_recall_f1(sdf, contact)), torch.stack(M.contact_precision_recall_f1(t(sdf), t(contact)))),
    ]
    pl, gl, bi = rng.integers(0, 8, 50), rng.integers(0, 8, 50), np.sort(rng.integers(0, 3, 50))
    pairs.append((np.array(M.voxseg_precision_recall_iou(pl, gl, bi, 3)), torch.stack(M.voxseg_precision_recall_iou(t(pl), t(gl), t(bi), 3))))
    for a, b in pairs:
        assert isinstance(b, torch.Tensor)
        np.testing.assert_allclose(b.numpy(), a, rtol=0, atol=1e-9)
    with pytest.raises(TypeError, match="mix"):
        M.g_mpve(pred, t(gt))


def test_shape_errors_name_the_argument():
    a = np.zeros((2, 14, 3))
    with pytest.raises(ValueError, match="gt_joints"):
        M.g_mpjpe(a, np.zeros((2, 13, 3)))
    with pytest.raises(ValueError, match="gt_pelvis"):
        M.mpjpe(a, a, np.zeros((2, 3)), np.zeros((3, 3)))
    with pytest.raises(ValueError, match="contact_gt"):
        M.confe(np.zeros((2, 5)), np.zeros((2, 4), bool))
