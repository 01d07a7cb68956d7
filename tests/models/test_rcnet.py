"""RCNet (cpu preset) behaviour: batched ops equal per-sample references, fallbacks, errors, determinism."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F

from sahmr.models.backbones import build_image_backbone
from sahmr.models.rcnet import (
    RCNet,
    RCNetConfig,
    coarse_pelvis_from_maps,
    make_anchors,
    sample_image_features,
    segment_softmax,
    select_near_anchors,
    vote_pelvis,
)


def _seeded_model(cfg: RCNetConfig, seed: int = 0) -> RCNet:
    torch.manual_seed(seed)
    return RCNet(cfg)


def _inputs(batch):
    return batch["image"], batch["K"], batch["crop_box_xyxy"], batch["points_cam"], batch["points_batch"]


# ------------------------------------------------------------------------------------ backbone


def test_backbone_offline_switch_and_local_weights(tmp_path):
    m, c, s = build_image_backbone("hrnet_w18_small")
    assert (c, s) == (16, 4)
    y = m(torch.rand(2, 3, 64, 64))
    assert y.shape == (2, 16, 16, 16)
    y.square().sum().backward()
    for n, p in m.named_parameters():  # exactly the trainable parameters get a gradient
        assert (p.grad is not None) == p.requires_grad, n
    assert 0 < sum(not p.requires_grad for p in m.parameters()) < 50
    with pytest.raises(ValueError, match="weights_path"):
        build_image_backbone("hrnet_w18_small", pretrained=True)
    with pytest.raises(ValueError, match="unknown image backbone"):
        build_image_backbone("resnet-nope")
    with pytest.raises(FileNotFoundError):
        build_image_backbone("hrnet_w18_small", pretrained=True, weights_path=tmp_path / "absent.pth")
    path = tmp_path / "w.pth"
    torch.save({f"backbone.{k}": v for k, v in m.state_dict().items()}, path)
    m2, _, _ = build_image_backbone("hrnet_w18_small", pretrained=True, weights_path=path)
    for k, v in m.state_dict().items():
        assert torch.equal(v, m2.state_dict()[k]), k


# ------------------------------------------------------------------------ batched ops vs loops


def test_sample_image_features_equals_grid_sample():
    g = torch.Generator().manual_seed(0)
    fmap = torch.randn(3, 5, 7, 7, generator=g, dtype=torch.float64)
    batch = torch.randint(0, 3, (200,), generator=g)
    uv01 = torch.rand(200, 2, generator=g, dtype=torch.float64) * 1.4 - 0.2  # some outside the crop
    ours = sample_image_features(fmap, batch, uv01)
    for b in range(3):
        sel = batch == b
        grid = (2 * uv01[sel] - 1)[None, None]  # (1, 1, n, 2) x, y
        ref = F.grid_sample(fmap[b:b + 1], grid, mode="bilinear", padding_mode="zeros", align_corners=True)
        torch.testing.assert_close(ours[sel], ref[0, :, 0].T, rtol=0, atol=1e-12)


def test_neighbourhood_selection_equals_per_sample_loop():
    g = torch.Generator().manual_seed(1)
    pts = torch.randn(3000, 3, generator=g) * 1.5 + torch.tensor([0, 0, 4.0])
    batch = torch.sort(torch.randint(0, 4, (3000,), generator=g)).values
    anchor = torch.randn(4, 3, generator=g) * 0.3 + torch.tensor([0, 0, 4.0])
    anchors = make_anchors(anchor, 0.5)
    assert torch.allclose(anchors[:, 0, 2], anchor[:, 2] - 0.5) and torch.allclose(anchors[:, 2, 2], anchor[:, 2] + 0.5)
    mask = select_near_anchors(pts, batch, anchors, 1.25)
    for b in range(4):
        p = pts[batch == b]
        d = torch.cdist(p, anchors[b]).min(1).values
        assert torch.equal(mask[batch == b], d ** 2 < 1.25 ** 2) or torch.equal(mask[batch == b], d < 1.25)
    assert 0 < int(mask.sum()) < 3000


@pytest.mark.parametrize("sigmoid_first", [False, True])
def test_vote_equals_per_sample_reference(sigmoid_first):
    g = torch.Generator().manual_seed(2)
    n, bsz = 500, 4
    batch = torch.sort(torch.randint(0, 3, (n,), generator=g)).values  # sample 3 has no voxel
    conf = torch.randn(n, generator=g, dtype=torch.float64) * 3
    centres = torch.randn(n, 3, generator=g, dtype=torch.float64)
    offset = torch.randn(n, 3, generator=g, dtype=torch.float64) * 0.1
    fallback = torch.randn(bsz, 3, generator=g, dtype=torch.float64)
    pel, w, has = vote_pelvis(conf, centres, offset, batch, fallback, sigmoid_first)
    assert has.tolist() == [True, True, True, False]
    for b in range(3):
        sel = batch == b
        s = torch.sigmoid(conf[sel]) if sigmoid_first else conf[sel]
        wb = torch.softmax(s, 0)
        torch.testing.assert_close(w[sel], wb)
        torch.testing.assert_close(pel[b], (wb[:, None] * (centres[sel] + offset[sel])).sum(0))
    assert torch.equal(pel[3], fallback[3])
    sm = segment_softmax(conf, batch, bsz)
    torch.testing.assert_close(torch.zeros(bsz, dtype=sm.dtype).index_add(0, batch, sm)[:3], torch.ones(3, dtype=sm.dtype))


def test_coarse_pelvis_backprojects_the_argmax_cell():
    # a pelvis at a known 3D point whose projection falls exactly on cell (u, v) = (9, 20) of a 32-map
    K = torch.tensor([[[500.0, 0, 320], [0, 480.0, 240], [0, 0, 1]]])
    box = torch.tensor([[100.0, 50.0, 420.0, 370.0]])
    u, v, hm = 9, 20, 32
    px = box[0, :2] + torch.tensor([u, v]) / (hm - 1) * (box[0, 2:] - box[0, :2])
    z = 3.7
    p = torch.tensor([(px[0] - 320) / 500 * z, (px[1] - 240) / 480 * z, z])
    heat = torch.zeros(1, 1, hm, hm)
    heat[0, 0, v, u] = 5.0
    zw1f = z * (box[0, 2] - box[0, 0]) / K[0, 0, 0]
    for bi_w in (127.0, 128.0):  # the 224-vs-223 quirk cancels in z
        depth = torch.full((1, 1, hm, hm), float(zw1f))
        uv, uv01, zz, pel, bi_f = coarse_pelvis_from_maps(heat, depth, K, box, bi_w)
        assert uv.tolist() == [[u, v]]
        torch.testing.assert_close(pel[0], p, rtol=0, atol=1e-5)
        torch.testing.assert_close(bi_f, K[:, 0, 0] * bi_w / 320.0)


# ------------------------------------------------------------------------------ RCNet forward


def test_cpu_preset_forward_backward_on_synthetic_batch(rcnet_cpu_batch):
    batch = rcnet_cpu_batch
    cfg = RCNetConfig.preset("cpu")
    model = _seeded_model(cfg).train()
    g = torch.Generator().manual_seed(0)
    out = model.forward_batch(batch, g)
    bsz, hm = batch["image"].shape[0], cfg.crop_size // 4
    assert out.pelvis_hm.shape == (bsz, 1, hm, hm) and out.contact_hm.shape == (bsz, 7, hm, hm)
    assert out.feat_map.shape == (bsz, cfg.feat_channels, hm, hm)
    assert out.pelvis_coarse_cam.shape == out.pelvis_refined_cam.shape == (bsz, 3)
    n = out.voxel_coords.shape[0]
    assert n > 0 and out.voxel_seg_logits.shape == (n, 8) and out.voxel_offset.shape == (n, 3)
    assert torch.equal(out.voxel_batch, out.voxel_coords[:, 0])
    torch.testing.assert_close(out.voxel_centres_cam, (out.voxel_coords[:, 1:].float() + 0.5) * cfg.voxel_size)
    # every neighbourhood point is within the radius of an anchor and lies in its voxel
    anchors = make_anchors(out.anchor_cam, cfg.anchor_spacing)
    d = (out.near_points_cam[:, None] - anchors[out.near_points_batch]).norm(dim=-1).min(1).values
    assert bool((d < cfg.keep_radius + 1e-5).all())
    vox_of_pt = torch.floor(out.near_points_cam / cfg.voxel_size).long()
    assert torch.equal(vox_of_pt, out.voxel_coords[out.near_points_voxel, 1:])
    # contact points carry the predicted label of their voxel
    if out.contact_points_cam.shape[0]:
        assert bool(((out.contact_points_part >= 1) & (out.contact_points_part <= 7)).all())
    assert not bool(out.fallback.any())
    loss = out.pelvis_refined_cam.sum() + out.voxel_seg_logits.logsumexp(1).mean() + out.pelvis_hm.mean() + out.contact_hm.mean()
    loss.backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert all(gr is not None and torch.isfinite(gr).all() for gr in grads)
    assert model.contact_net.stem[0].kernel.grad.abs().sum() > 0
    assert model.root_net.hrnet.conv1.weight.grad.abs().sum() > 0  # image features reach the voxels


def test_training_anchor_noise_replaces_far_coarse_pelvis(rcnet_cpu_batch):
    batch = rcnet_cpu_batch
    model = _seeded_model(RCNetConfig.preset("cpu")).train()
    gt = batch["pelvis_cam"]
    out = model.forward_batch(batch, torch.Generator().manual_seed(3))
    far = (out.pelvis_coarse_cam - gt).norm(dim=1) > 0.5
    assert torch.equal(out.noisy_gt_anchor, far)
    assert torch.equal(out.anchor_cam[~far], out.pelvis_coarse_cam[~far])
    assert bool((out.anchor_cam[far] - gt[far]).abs().max() < 5 * 0.5)
    model.eval()
    model.cfg.refine_iters = 1  # one scene pass: its anchor is the coarse pelvis
    with torch.no_grad():
        out2 = model.forward_batch(batch)
    assert not bool(out2.noisy_gt_anchor.any()) and torch.equal(out2.anchor_cam, out2.pelvis_coarse_cam)


def test_second_scene_pass_is_anchored_at_the_first_refined_pelvis(rcnet_cpu_batch):
    img, K, box, pts, pb = _inputs(rcnet_cpu_batch)
    one = _seeded_model(RCNetConfig.preset("cpu", refine_iters=1)).eval()
    two = _seeded_model(RCNetConfig.preset("cpu", refine_iters=2)).eval()
    # an untrained depth head puts the coarse pelvis at the camera (no scene nearby): make it predict the
    # GT's mean zw1f (z * box width / fx) everywhere, so the first pass has voxels to vote with
    zw1f = float((rcnet_cpu_batch["pelvis_cam"][:, 2] * (box[:, 2] - box[:, 0]) / K[:, 0, 0]).mean())
    for m in (one, two):
        with torch.no_grad():
            m.root_net.out_conv.weight[1].zero_()
            m.root_net.out_conv.bias[1] = zw1f
    with torch.no_grad():
        first = one(img, K, box, pts, pb)
        out = two(img, K, box, pts, pb)
        # the same weights, asked explicitly for one pass at the first pass's refined pelvis
        manual = one(img, K, box, pts, pb, anchor_cam=first.pelvis_refined_cam)
    torch.testing.assert_close(out.anchor_cam, first.pelvis_refined_cam)
    assert torch.equal(out.pelvis_coarse_cam, first.pelvis_coarse_cam)
    for name in ("voxel_coords", "voxel_conf", "voxel_offset", "pelvis_refined_cam", "contact_points_cam", "fallback"):
        assert torch.equal(getattr(out, name), getattr(manual, name)), name
    assert not bool(first.fallback.any()) and not torch.equal(out.pelvis_refined_cam, first.pelvis_refined_cam)
    # training (stage 1) keeps the original's single pass: its anchor is the coarse pelvis without GT
    two.train()
    torch.manual_seed(0)
    tr = two(img, K, box, pts, pb)
    assert torch.equal(tr.anchor_cam, tr.pelvis_coarse_cam)
    assert RCNetConfig.preset("paper").refine_iters == 1
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match="refine_iters"):
            RCNetConfig.preset("cpu", refine_iters=bad)


def test_empty_frustum_and_far_points_fall_back(rcnet_cpu_batch):
    batch = rcnet_cpu_batch
    # anchors = the GT pelvis exactly (noise 0, threshold 0), so sample 2 surely has a neighbourhood
    model = _seeded_model(RCNetConfig.preset("cpu", train_anchor_err_thr=0.0, train_anchor_noise_std=0.0)).train()
    img, K, box, pts, pb = _inputs(batch)
    gt, g = batch["pelvis_cam"], torch.Generator().manual_seed(0)
    keep0 = pb == 0
    # sample 0: its points moved 50 m away; sample 1: no points at all; sample 2: unchanged
    pts = torch.cat([pts[keep0] + torch.tensor([0.0, 0.0, 50.0]), pts[pb == 2]])
    pb = torch.cat([pb[keep0], pb[pb == 2]])
    out = model(img, K, box, pts, pb, gt, g)
    assert out.fallback.tolist() == [True, True, False]
    assert torch.equal(out.pelvis_refined_cam[:2], out.anchor_cam[:2])
    torch.testing.assert_close(out.anchor_cam, gt)
    assert bool((out.voxel_batch == 2).all()) and bool((out.contact_points_batch == 2).all())
    assert torch.isfinite(out.pelvis_refined_cam).all()
    out.pelvis_refined_cam.sum().backward()
    # nothing at all: every sample falls back, outputs are empty but well-formed
    out = model.eval()(img, K, box, torch.zeros(0, 3), torch.zeros(0, dtype=torch.long))
    assert out.fallback.all() and out.voxel_coords.shape == (0, 4) and out.contact_points_cam.shape == (0, 3)
    assert torch.equal(out.pelvis_refined_cam, out.pelvis_coarse_cam)
    # the original's quirk: no point near the anchors -> all frustum points are used
    q = _seeded_model(RCNetConfig.preset("cpu", quirks=True, train_anchor_err_thr=0.0, train_anchor_noise_std=0.0)).train()
    with torch.no_grad():
        far = q(img, K, box, pts, pb, gt, g)
    assert far.fallback.tolist() == [False, True, False]


def test_bad_camera_inputs_raise(rcnet_cpu_batch):
    model = _seeded_model(RCNetConfig.preset("cpu")).eval()
    img, K, box, pts, pb = _inputs(rcnet_cpu_batch)
    K_nan = K.clone()
    K_nan[1, 0, 2] = float("nan")
    with pytest.raises(ValueError, match="K .*not finite.*\\[1\\]"):
        model(img, K_nan, box, pts, pb)
    bad_box = box.clone()
    bad_box[0, 2] = bad_box[0, 0]
    with pytest.raises(ValueError, match="width and height"):
        model(img, K, bad_box, pts, pb)
    with pytest.raises(ValueError, match="crop_box_xyxy"):
        model(img, K, box[:, :3], pts, pb)


def test_box_outside_the_image_runs_without_nan(rcnet_cpu_batch):
    model = _seeded_model(RCNetConfig.preset("cpu")).eval()
    img, K, box, pts, pb = _inputs(rcnet_cpu_batch)
    box = box + torch.tensor([5000.0, 0.0, 5000.0, 0.0])  # the frustum points are now outside the crop
    with torch.no_grad():
        out = model(torch.zeros_like(img), K, box, pts, pb)
    assert torch.isfinite(out.pelvis_refined_cam).all() and torch.isfinite(out.voxel_conf).all()


def test_same_seed_same_outputs(rcnet_cpu_batch):
    cfg = RCNetConfig.preset("cpu")
    outs = []
    for _ in range(2):
        model = _seeded_model(cfg, seed=7).train()
        torch.manual_seed(123)  # dropout
        outs.append(model.forward_batch(rcnet_cpu_batch, torch.Generator().manual_seed(5)))
    a, b = outs
    for name in ("pelvis_hm", "pelvis_coarse_cam", "anchor_cam", "voxel_coords", "voxel_conf", "voxel_seg_logits",
                 "pelvis_refined_cam", "contact_points_cam"):
        assert torch.equal(getattr(a, name), getattr(b, name)), name


def test_quirks_mode_uses_trunc_rounding_and_sigmoid_vote(rcnet_cpu_batch):
    cfg = RCNetConfig.preset("cpu", quirks=True)
    assert cfg.rounding == "trunc"
    model = _seeded_model(cfg).eval()
    with torch.no_grad():
        out = model.forward_batch(rcnet_cpu_batch)
    ref, w, _ = vote_pelvis(out.voxel_conf, out.voxel_centres_cam, out.voxel_offset, out.voxel_batch, out.anchor_cam, True)
    torch.testing.assert_close(out.pelvis_refined_cam, ref)
    # softmax over sigmoid: weights within a factor e of each other inside a sample
    for b in range(out.batch_size):
        wb = out.voxel_weight[out.voxel_batch == b]
        assert float(wb.max() / wb.min()) <= torch.e + 1e-4


def test_model_deepcopy_and_state_dict_roundtrip():
    m = _seeded_model(RCNetConfig.preset("cpu"))
    m2 = copy.deepcopy(m)
    assert set(m.state_dict()) == set(m2.state_dict())
    assert "img_mean" not in m.state_dict()  # non-persistent, as the original
