"""Mesh transformer, SAHMR, the image-only baseline and their losses/tasks."""

from __future__ import annotations


import pytest
import torch

from sahmr.models.mesh_transformer import (
    MeshTransformer,
    MeshTransformerConfig,
    linear_attention,
    pad_contact_points,
)
from sahmr.models.rcnet import RCNet, RCNetConfig
from sahmr.models.sahmr import SAHMR, ImageOnlyBaseline
from sahmr.train.sahmr_losses import sahmr_losses
from sahmr.train.sahmr_task import BaselineTask, SAHMRTask

from tests.helpers.sahmr_stub_body import StubBody


@pytest.fixture(scope="module")
def cpu_net(open_model):
    torch.manual_seed(0)
    return MeshTransformer(MeshTransformerConfig.preset("cpu"), open_model).eval()


@pytest.fixture(scope="module")
def paper_net():
    torch.manual_seed(0)
    return MeshTransformer(MeshTransformerConfig.preset("paper"), StubBody())


def _contacts(b, n, seed=0):
    g = torch.Generator().manual_seed(seed)
    pts = torch.randn(b, n, 3, generator=g)
    pid = torch.randint(1, 8, (b, n), generator=g)
    mask = torch.rand(b, n, generator=g) < 0.6
    pid = torch.where(mask, pid, torch.zeros_like(pid))
    return pts, pid, mask


# ------------------------------------------------------------------------------------ paper preset


def test_sahmr_paper_forward_backward_shapes(paper_net):
    net = paper_net.train()
    assert net.template.shape == (445, 3) and net.conv_learn_tokens.in_channels == 49
    pts, pid, mask = _contacts(1, 500)
    out = net(torch.rand(1, 3, 224, 224), pts, pid, mask)
    assert out.verts_crm.shape == (1, 6890, 3) and out.verts_mid.shape == (1, 1723, 3)
    assert out.verts_coarse.shape == (1, 431, 3) and out.contact_crm_out.shape == (1, 500, 3)
    (out.verts_crm.abs().mean() + out.contact_crm_out.abs().mean()).backward()
    enc0 = net.trans_encoder[0].bert
    for p in (enc0.encoder.layer[0].attention.self.query.weight, enc0.encoder.loftr_layer.q_proj.weight,
              enc0.encoder.linear_cp[1].mlp[0].weight, net.upsampling2.weight, net.backbone.conv1.weight):
        assert p.grad is not None and torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0
    net.zero_grad(set_to_none=True)


# -------------------------------------------------------------------------------- building blocks


def test_sahmr_linear_attention_equals_direct_computation():
    g = torch.Generator().manual_seed(1)
    b, l, s, h, d = 2, 5, 7, 3, 4
    q, k, v = (torch.randn(b, n, h, d, generator=g, dtype=torch.float64) for n in (l, s, s))
    mask = torch.rand(b, s, generator=g) < 0.6
    mask[1] = False  # an all-masked source gives exactly 0
    out = linear_attention(q, k, v, mask)
    phi = lambda x: torch.nn.functional.elu(x) + 1  # noqa: E731
    ref = torch.zeros_like(out)
    for bi in range(b):
        for hi in range(h):
            for li in range(l):
                num = torch.zeros(d, dtype=torch.float64)
                den = torch.zeros((), dtype=torch.float64)
                for si in range(s):
                    if mask[bi, si]:
                        w = phi(q[bi, li, hi]) @ phi(k[bi, si, hi])
                        num += w * v[bi, si, hi]
                        den += w
                ref[bi, li, hi] = num / (den + 1e-6)
    torch.testing.assert_close(out, ref)
    assert out[1].abs().max() == 0


def test_sahmr_pad_contact_points():
    pts = torch.arange(30.0).view(10, 3)
    part = torch.tensor([1, 2, 3, 4, 5, 6, 7, 1, 2, 3])
    batch = torch.tensor([2, 0, 2, 2, 2, 2, 2, 2, 0, 2])  # sample 0: 2 points, sample 1: none, sample 2: 8
    p, pid, m = pad_contact_points(pts, part, batch, 3, 4)
    assert m.tolist() == [[True, True, False, False], [False] * 4, [True] * 4]
    torch.testing.assert_close(p[0, :2], pts[[1, 8]])
    assert p[1].abs().sum() == 0 and pid[1].abs().sum() == 0
    torch.testing.assert_close(p[2], pts[[0, 3, 5, 7]])  # strided ranks floor(i * 8 / 4) of sample 2's points
    # sample 0's set does not depend on the others'; a seeded generator is reproducible, without replacement
    p2, _, _ = pad_contact_points(pts[batch != 2], part[batch != 2], batch[batch != 2], 3, 4)
    torch.testing.assert_close(p2[0], p[0])
    a = pad_contact_points(pts, part, batch, 3, 4, torch.Generator().manual_seed(3))
    c = pad_contact_points(pts, part, batch, 3, 4, torch.Generator().manual_seed(3))
    torch.testing.assert_close(a[0], c[0])
    assert len({tuple(r) for r in a[0][2].tolist()}) == 4
    e = pad_contact_points(pts[:0], part[:0], batch[:0], 2, 5)
    assert e[0].shape == (2, 5, 3) and not e[2].any()


def test_sahmr_upsampling_initialised_from_the_body_model(cpu_net, open_model):
    x = torch.randn(2, open_model.level_sizes[2], 3)
    with torch.no_grad():
        up = cpu_net.upsampling2(cpu_net.upsampling(x.transpose(1, 2))).transpose(1, 2)
    torch.testing.assert_close(up, open_model.sampler.upsample(x, 2, 0), atol=1e-5, rtol=1e-5)
    assert cpu_net.template.shape == (14 + open_model.level_sizes[2], 3)


def test_sahmr_contact_padding_and_masking_isolation(cpu_net):
    img = torch.rand(2, 3, 128, 128)
    pts, pid, mask = _contacts(2, 500)
    with torch.no_grad():
        ref = cpu_net(img, pts, pid, mask)
        # another sample's contact set changes (points, parts, mask): sample 0 unchanged
        pts2, pid2, mask2 = pts.clone(), pid.clone(), mask.clone()
        pts2[1] = torch.randn(500, 3) * 3
        mask2[1] = False
        pid2[1] = 0
        o2 = cpu_net(img, pts2, pid2, mask2)
        torch.testing.assert_close(o2.verts_crm[0], ref.verts_crm[0])
        torch.testing.assert_close(o2.contact_crm_out[0], ref.contact_crm_out[0])
        assert torch.isfinite(o2.verts_crm).all() and torch.isfinite(o2.contact_crm_out).all()  # all-masked: no NaN
        # masked slots (their positions) have no effect on the mesh or on the valid slots
        pts3 = torch.where(mask[..., None], pts, torch.randn(2, 500, 3) * 10)
        o3 = cpu_net(img, pts3, pid, mask)
        torch.testing.assert_close(o3.verts_crm, ref.verts_crm)
        torch.testing.assert_close(o3.contact_crm_out[mask], ref.contact_crm_out[mask])
        # the valid contact points do matter
        o4 = cpu_net(img, pts + 0.5, pid, mask)
        assert (o4.verts_crm - ref.verts_crm).abs().max() > 1e-6


def test_sahmr_factored_contact_embedding_equals_the_concatenation(cpu_net, monkeypatch):
    """ContactTokens.linear (8 part rows through the 2048-wide weights) == the layer on cat([xyz, tok[pid]])."""
    import sahmr.models.mesh_transformer as mt

    img = torch.rand(2, 3, 128, 128)
    pts, pid, mask = _contacts(2, 500, seed=3)

    def run():
        cpu_net.zero_grad()
        out = cpu_net(img, pts, pid, mask)
        (out.verts_crm.square().mean() + out.contact_crm_out.square().mean()).backward()
        grads = {k: p.grad.clone() for k, p in cpu_net.named_parameters() if p.grad is not None}
        return out, grads

    fast, g_fast = run()
    monkeypatch.setattr(mt.ContactTokens, "linear", lambda self, layer: layer(self.dense()))
    ref, g_ref = run()
    cpu_net.zero_grad()
    torch.testing.assert_close(fast.verts_crm, ref.verts_crm, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(fast.contact_crm_out, ref.contact_crm_out, rtol=1e-4, atol=1e-5)
    assert g_fast.keys() == g_ref.keys() and "trans_encoder.0.bert.img_embedding.weight" in g_fast
    top = max(float(g.abs().max()) for g in g_ref.values())
    for k in g_ref:  # float32 through 3 encoders; a wrong term is O(1). Floor: gradients ~0 in theory (key biases)
        scale = max(float(g_ref[k].abs().max()), 1e-3 * top)
        assert float((g_fast[k] - g_ref[k]).abs().max()) / scale < 2e-3, k
    # and the pieces: one layer on random inputs, float64, exact to rounding
    tok = mt.ContactTokens(torch.randn(3, 7, 3, dtype=torch.float64), torch.randn(3, 8, 5, dtype=torch.float64),
                           torch.randint(0, 8, (3, 7)))
    lin = torch.nn.Linear(8, 4).double()
    torch.testing.assert_close(mt.ContactTokens.linear(tok, lin), lin(tok.dense()), rtol=1e-12, atol=1e-12)


def test_sahmr_transformer_deterministic_for_a_seed(open_model):
    outs = []
    img = torch.rand(1, 3, 128, 128)
    pts, pid, mask = _contacts(1, 500)
    for _ in range(2):
        torch.manual_seed(7)
        net = MeshTransformer(MeshTransformerConfig.preset("cpu", num_layers=1), open_model).eval()
        with torch.no_grad():
            outs.append(net(img, pts, pid, mask).verts_crm)
    torch.testing.assert_close(outs[0], outs[1], rtol=0, atol=0)


# ------------------------------------------------------------------------------- SAHMR + baseline


@pytest.fixture(scope="module")
def rcnet_ckpt(tmp_path_factory):
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("rcnet") / "final.ckpt"
    torch.save(RCNet(RCNetConfig.preset("cpu")).state_dict(), path)
    return path


def test_sahmr_baseline_ignores_scene_points(open_model, rcnet_cpu_batch):
    torch.manual_seed(0)
    rc = RCNet(RCNetConfig.preset("cpu"))
    model = ImageOnlyBaseline(rc, MeshTransformerConfig.preset("cpu", num_layers=1), open_model).eval()
    assert not hasattr(model.metro_enhanced.trans_encoder[0].bert.encoder, "loftr_layer")
    b = rcnet_cpu_batch
    with torch.no_grad():
        o1 = model(b["image"], b["K"], b["crop_box_xyxy"], b["points_cam"], b["points_batch"])
        o2 = model(b["image"], b["K"], b["crop_box_xyxy"], b["points_cam"][:5] + 1.0, b["points_batch"][:5])
        full = rc(b["image"], b["K"], b["crop_box_xyxy"], b["points_cam"], b["points_batch"])
    torch.testing.assert_close(o1.verts_cam, o2.verts_cam, rtol=0, atol=0)
    torch.testing.assert_close(o1.pelvis_cam, full.pelvis_coarse_cam)
    torch.testing.assert_close(o1.verts_cam, o1.verts_crm + o1.pelvis_cam[:, None])
    assert o1.contact_points_mask is None


def test_sahmr_task_missing_rcnet_checkpoint(tmp_path, open_model_path):
    with pytest.raises(FileNotFoundError, match="rcnet_ckpt"):
        SAHMRTask(rcnet_ckpt=tmp_path / "nope.ckpt", body_model=open_model_path).build_model()
    with pytest.raises(ValueError, match="rcnet_ckpt is required"):
        SAHMRTask(body_model=open_model_path).build_model()


def test_sahmr_task_starts_the_image_trunk_from_rcnet(rcnet_ckpt, open_model_path):
    """init_backbone="rcnet": the transformer's stem + stages compute RCNet's stride-4 features exactly;
    "none": they do not; a weights file together with "rcnet" is refused."""
    x = torch.rand(2, 3, 128, 128)
    kw = dict(preset="cpu", rcnet_ckpt=rcnet_ckpt, body_model=open_model_path, model={"num_layers": 1})
    outs = {}
    for init in ("rcnet", "none"):
        torch.manual_seed(1)  # a different draw than the checkpoint's
        model = SAHMRTask(init_backbone=init, **kw).build_model().eval()
        trunk = model.metro_enhanced.backbone
        with torch.no_grad():
            h = trunk.act2(trunk.bn2(trunk.conv2(trunk.act1(trunk.bn1(trunk.conv1(x))))))
            outs[init] = trunk.stages(h)[0]
            ref = model.rcnet.root_net.hrnet(x)
    torch.testing.assert_close(outs["rcnet"], ref, rtol=0, atol=0)
    assert (outs["none"] - ref).abs().max() > 1e-3
    # a full stage-2 checkpoint is loaded right after build_model(load_rcnet=False): no copy then
    with pytest.raises(ValueError, match="backbone_weights"):
        SAHMRTask(preset="cpu", rcnet_ckpt=rcnet_ckpt, body_model=open_model_path, model={"backbone_weights": "w.pth"})
    with pytest.raises(ValueError, match="init_backbone"):
        SAHMRTask(preset="cpu", rcnet_ckpt=rcnet_ckpt, init_backbone="imagenet")


def test_copy_trunk_weights_refuses_another_architecture():
    from sahmr.models.backbones import build_image_backbone, copy_trunk_weights
    from sahmr.models.mesh_transformer import build_image_trunk

    src, _, _ = build_image_backbone("hrnet_w18_small")
    dst, _, _ = build_image_trunk("hrnet_w18_small_v2")
    with pytest.raises(ValueError, match="same HRNet"):
        copy_trunk_weights(src, dst)


def test_sahmr_cpu_training_losses_decrease(rcnet_ckpt, open_model_path, rcnet_cpu_batch):
    task = SAHMRTask.from_params({"preset": "cpu", "rcnet_ckpt": str(rcnet_ckpt), "body_model": str(open_model_path),
                                  "model": {"num_layers": 1, "dropout": 0.0, "attn_dropout": 0.0}})
    torch.manual_seed(0)
    model = task.build_model()
    model.train()
    assert not model.rcnet.training and not any(p.requires_grad for p in model.rcnet.parameters())
    b = {k: v[:2] if isinstance(v, torch.Tensor) and k not in ("points_cam", "points_batch", "points_offsets") else v
         for k, v in rcnet_cpu_batch.items()}
    keep = b["points_batch"] < 2
    b["points_cam"], b["points_batch"] = b["points_cam"][keep], b["points_batch"][keep]
    opt = torch.optim.Adam(task.optimizer_groups(model), lr=3e-4)
    gen = torch.Generator().manual_seed(0)
    losses = []
    for _ in range(6):
        loss, stats = task.training_step(model, b, gen)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    assert {"loss/vertex", "loss/joint", "loss/vertex_c", "loss/corr_points", "G_MPJPE", "noisy_gt_pelvis_frac"} <= set(stats)
    assert losses[-1] < 0.8 * losses[0], losses
    model.eval()
    m = task.validation_metrics(model, b)
    for k in ("MPJPE", "MPVE", "PA_MPJPE", "G_MPJPE", "G_MPVE", "PelvisE", "C_HSCP_L2"):
        assert m[k].shape == (2,) and torch.isfinite(m[k]).all()
    # the baseline task trains its own transformer (no corr_points)
    btask = BaselineTask(preset="cpu", rcnet_ckpt=rcnet_ckpt, body_model=open_model_path, model={"num_layers": 1})
    bmodel = btask.build_model().train()
    loss, stats = btask.training_step(bmodel, b, torch.Generator().manual_seed(0))
    loss.backward()
    assert "loss/corr_points" not in stats and torch.isfinite(loss)


def test_sahmr_corr_points_quirk_switch(cpu_net):
    from sahmr.models.sahmr import SAHMROutput

    z = torch.zeros(1, 4, 3)
    mask = torch.tensor([[True, True, False, False]])
    out = SAHMROutput(verts_cam=torch.zeros(1, 5, 3), joints14_cam=torch.zeros(1, 14, 3), pelvis_cam=torch.zeros(1, 3),
                      pelvis_mesh_cam=torch.zeros(1, 3), verts_root=torch.zeros(1, 5, 3), joints14_root=torch.zeros(1, 14, 3),
                      verts_crm=torch.zeros(1, 5, 3), pelvis_coarse_cam=torch.zeros(1, 3), pelvis_refined_cam=torch.zeros(1, 3),
                      noisy_gt_pelvis=torch.zeros(1, dtype=torch.bool), contact_points_crm=z,
                      contact_points_crm_out=z + torch.tensor([1.0, 0, 0]), contact_points_mask=mask)
    batch = {"verts_cam": torch.zeros(1, 5, 3), "joints14_cam": torch.zeros(1, 14, 3), "pelvis_cam": torch.zeros(1, 3)}
    _, l_q = sahmr_losses(out, batch, corr_points_quirk=True)
    _, l_c = sahmr_losses(out, batch, corr_points_quirk=False)
    assert float(l_q["corr_points"]) == pytest.approx(0.5) and float(l_c["corr_points"]) == pytest.approx(1.0)
    assert float(l_q["vertex"]) == 0.0


def test_sahmr_model_is_deterministic_and_rcnet_frozen(open_model, rcnet_cpu_batch):
    torch.manual_seed(0)
    model = SAHMR(RCNet(RCNetConfig.preset("cpu")), MeshTransformerConfig.preset("cpu", num_layers=1), open_model).eval()
    b = rcnet_cpu_batch
    with torch.no_grad():
        o1, o2 = model.forward_batch(b), model.forward_batch(b)
    torch.testing.assert_close(o1.verts_cam, o2.verts_cam, rtol=0, atol=0)
    torch.testing.assert_close(o1.pelvis_cam, o1.rcnet.pelvis_refined_cam)
    assert o1.contact_points_crm.shape == (3, 500, 3)
    model.train()
    assert not model.rcnet.training and model.metro_enhanced.training
