"""RCNet targets, losses, metrics and the RCNetTask training interface."""

from __future__ import annotations

import math

import pytest
import torch

from sahmr.models.rcnet import RCNetConfig
from sahmr.train.rcnet_losses import pelvis_depth_loss, rcnet_losses, segment_mean
from sahmr.train.rcnet_targets import (
    build_rcnet_targets,
    contact_heatmap_targets,
    flip_contact_heatmap,
    label_points_by_part,
    pelvis_targets,
)
from sahmr.train.rcnet_task import RCNetTask


def test_pelvis_heatmap_peaks_at_the_projected_gt_pelvis(rcnet_cpu_batch):
    b = rcnet_cpu_batch
    hm = 32
    t = pelvis_targets(b["pelvis_cam"], b["K"], b["crop_box_xyxy"], hm)
    uvw = torch.einsum("bij,bj->bi", b["K"], b["pelvis_cam"])
    px = uvw[:, :2] / uvw[:, 2:]
    box = b["crop_box_xyxy"]
    expect = torch.round((px - box[:, :2]) / (box[:, 2:] - box[:, :2]) * (hm - 1)).long()
    assert torch.equal(t["px"], expect)
    flat = t["heatmap"].flatten(1).argmax(1)
    peak = torch.stack([flat % hm, flat // hm], 1)
    assert torch.equal(peak, expect.clamp(1, hm - 2))
    assert t["heatmap"].flatten(1).amax(1).eq(1).all() and torch.allclose(t["heatmap"].flatten(1).sum(1), torch.full((3,), 4.0))
    torch.testing.assert_close(t["zw1f"], b["pelvis_cam"][:, 2] * (box[:, 2] - box[:, 0]) / b["K"][:, 0, 0])


def test_pelvis_heatmap_clamps_at_the_border():
    K = torch.tensor([[[100.0, 0, 50], [0, 100.0, 50], [0, 0, 1]]])
    box = torch.tensor([[0.0, 0.0, 100.0, 100.0]])
    t = pelvis_targets(torch.tensor([[-3.0, -3.0, 1.0]]), K, box, 16)  # far outside the box (top-left)
    assert t["px"].tolist()[0][0] < 0 and t["heatmap"][0, 0, 0, 0] == 0.25 and t["heatmap"][0, 0, 1, 1] == 1
    depth = torch.zeros(1, 1, 16, 16, requires_grad=True)
    loss = pelvis_depth_loss(depth, t["px"], torch.tensor([2.0]))
    assert math.isclose(float(loss.detach()), 2.0 * 4.0) and loss.requires_grad  # Σ gkernel = 4


def test_labels_only_near_contact_vertices_of_the_right_part():
    verts = torch.zeros(2, 5, 3)
    verts[0, :, 0] = torch.arange(5.0)  # sample 0: vertices at x = 0..4
    verts[1, :, 1] = torch.arange(5.0)  # sample 1: along y
    part = torch.tensor([[0, 3, 0, 6, 0], [1, 0, 0, 0, 7]])
    pts = torch.tensor([[1.05, 0, 0], [3.0, 0.06, 0], [0.0, 0, 0.01], [2.0, 0, 0], [1.05, 0, 0], [0, 4.0, 0.2], [0, 0, 0.05]])
    bt = torch.tensor([0, 0, 0, 0, 1, 1, 1])
    lab = label_points_by_part(pts, bt, verts, part, 0.07)
    # near part-3 vertex; near part-6; near an unlabelled vertex; far; sample 1 has no vertex at x=1; too far; near part 1
    assert lab.tolist() == [3, 6, 0, 0, 0, 0, 1]
    # chunking gives the same answer
    assert torch.equal(label_points_by_part(pts, bt, verts, part, 0.07, chunk_elems=2), lab)
    # nothing labelled anywhere -> all background
    assert label_points_by_part(pts, bt, verts, torch.zeros_like(part), 0.07).eq(0).all()


def test_voxel_targets_follow_gt_contact(rcnet_cpu_batch):
    b = rcnet_cpu_batch
    cfg = RCNetConfig.preset("cpu")
    task = RCNetTask(cfg)
    model = task.build_model().eval()
    # force the neighbourhood around the GT pelvis: use GT as the coarse-pelvis anchor through train-mode noise 0
    model.cfg = RCNetConfig.preset("cpu", train_anchor_err_thr=0.0, train_anchor_noise_std=0.0)
    model.train()
    with torch.no_grad():
        out = model.forward_batch(b, torch.Generator().manual_seed(0))
    tgt = build_rcnet_targets(b, out, cfg)
    assert tgt.voxel_label.shape == out.voxel_batch.shape and tgt.voxel_offset.shape == out.voxel_centres_cam.shape
    torch.testing.assert_close(tgt.voxel_offset + out.voxel_centres_cam, b["pelvis_cam"][out.voxel_batch])
    lab = tgt.voxel_label
    assert int((lab > 0).sum()) > 0, "synthetic people touch the scene: some voxels must be contact voxels"
    # each labelled voxel is within the distance of a GT contact vertex of exactly that part (own sample)
    for i in (lab > 0).nonzero().flatten().tolist():
        s, p = int(out.voxel_batch[i]), int(lab[i])
        v = b["verts_cam"][s][b["contact_part"][s] == p]
        assert float((v - out.voxel_centres_cam[i]).norm(dim=1).min()) < cfg.voxel_label_dist
    assert tgt.contact_hm.shape == (3, 7, 32, 32) and float(tgt.contact_hm.max()) == 1.0
    torch.testing.assert_close(flip_contact_heatmap(tgt.contact_hm_flip), tgt.contact_hm)


def test_contact_heatmap_marks_the_projected_cell():
    K = torch.tensor([[[100.0, 0, 50], [0, 100.0, 50], [0, 0, 1]]])
    box = torch.tensor([[0.0, 0.0, 99.0, 99.0]])  # uv01 = px / 99
    pts = torch.tensor([[0.0, 0.0, 1.0], [0.2, 0.0, 1.0]])  # px (50, 50) and (70, 50)
    hm = contact_heatmap_targets(pts, torch.tensor([0, 0]), torch.tensor([2, 0]), K, box, 12)
    cell = round(50 / 99 * 11)
    assert hm[0, 1, cell, cell] == 1 and hm[0, 1, cell, cell + 1] == 0.5 and hm[0, 1].sum() == 4 and hm[0, [0, 2, 3, 4, 5, 6]].sum() == 0


def test_segment_mean_and_losses_are_finite_without_voxels():
    v = torch.tensor([1.0, 3.0, 5.0])
    assert segment_mean(v, torch.tensor([0, 0, 2]), 3).tolist() == [2.0, 0.0, 5.0]


def test_task_training_step_reduces_the_loss(rcnet_cpu_batch):
    torch.manual_seed(0)
    task = RCNetTask({"name": "cpu", "extra_flip": True})
    model = task.build_model().train()
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-3)
    g = torch.Generator().manual_seed(0)
    losses = []
    for _ in range(4):
        loss, stats = task.training_step(model, rcnet_cpu_batch, g)
        assert loss.ndim == 0 and torch.isfinite(loss) and loss.requires_grad
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < losses[0]
    for k in ("loss/pelvis_hm", "loss/pelvis_depth", "loss/voxel_seg", "loss/voxel_offset", "loss/pelvis_refined",
              "loss/contact_hm", "loss/contact_hm_flip", "loss/total", "pelvis_error_coarse_mm", "voxseg_iou"):
        assert isinstance(stats[k], float) and math.isfinite(stats[k]), k
    assert stats["loss/contact_hm_flip"] > 0
    model.eval()
    m = task.validation_metrics(model, rcnet_cpu_batch)
    for k in ("pelvis_error_coarse_mm", "pelvis_error_refined_mm", "pelvis_error_2d_px", "voxseg_precision",
              "voxseg_recall", "voxseg_iou", "fallback", "loss/total"):
        assert m[k].shape == (3,) and torch.isfinite(m[k]).all(), k
    assert float(m["loss/contact_hm_flip"].abs().sum()) == 0  # no flip branch in eval


def test_loss_weights_validation(rcnet_cpu_batch):
    task = RCNetTask(RCNetConfig.preset("cpu", loss_weights={"pelvis_hm": 1.0, "bogus": 1.0}))
    model = task.build_model().eval()
    with pytest.raises(ValueError, match="bogus"):
        task.validation_metrics(model, rcnet_cpu_batch)
    with pytest.raises(ValueError, match="voxelsize: unknown parameter"):
        RCNetConfig.preset("cpu", voxelsize=0.1)
    with pytest.raises(ValueError, match="preset"):
        RCNetConfig.preset("gpu")
    with pytest.raises(TypeError):
        RCNetTask(3)


def test_loss_with_zero_weight_is_dropped(rcnet_cpu_batch):
    task = RCNetTask(RCNetConfig.preset("cpu", loss_weights={"pelvis_hm": 1.0, "pelvis_depth": 0.0}))
    model = task.build_model().eval()
    with torch.no_grad():
        out = model.forward_batch(rcnet_cpu_batch)
    tgt = build_rcnet_targets(rcnet_cpu_batch, out, task.cfg)
    total, parts = rcnet_losses(out, tgt, task.cfg.loss_weights)
    assert set(parts) == {"pelvis_hm"} and torch.equal(total, parts["pelvis_hm"])


def test_labels_equal_brute_force_nearest_vertex_on_random_clouds():
    """The matrix-product nearest-vertex search equals a per-point brute force (float64 distances)."""
    g = torch.Generator().manual_seed(0)
    verts = torch.rand(3, 300, 3, generator=g) * torch.tensor([0.5, 1.7, 0.4]) + torch.tensor([0.0, 0.0, 4.0])
    part = torch.randint(0, 8, (3, 300), generator=g)
    part[2] = 0  # a sample without contact labels
    pts = torch.rand(5000, 3, generator=g) * torch.tensor([0.8, 2.0, 0.8]) + torch.tensor([-0.15, -0.15, 3.8])
    bt = torch.randint(0, 3, (5000,), generator=g)
    lab = label_points_by_part(pts, bt, verts, part, 0.07, chunk_elems=1000)
    ref = torch.zeros_like(lab)
    for i in range(len(pts)):
        m = part[bt[i]] != 0
        if m.any():
            d2 = ((pts[i].double() - verts[bt[i]][m].double()) ** 2).sum(1)
            j = int(d2.argmin())
            ref[i] = part[bt[i]][m][j] if d2[j] < 0.07**2 else 0
    assert lab.gt(0).sum() > 300 and torch.equal(lab, ref)
