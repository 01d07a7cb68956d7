"""RCNet paper preset on CPU: forward/backward at batch 1, determinism, and the state-dict layout against
the original's keys is checked by tests/models/test_convert.py."""

from __future__ import annotations

import pytest
import torch

from sahmr.models.rcnet import RCNet, RCNetConfig

@pytest.fixture(scope="module")
def paper_model():
    torch.manual_seed(0)
    return RCNet(RCNetConfig.preset("paper"))


def test_paper_parameter_count(paper_model):
    n_params = sum(p.numel() for p in paper_model.parameters())
    assert abs(n_params / 1e6 - 137.5) < 0.2  # spec §3.4: RCNet 137.5 M (root net 115.7 M + SPVCNN 21.8 M)


def test_paper_forward_backward_batch1(paper_model, rcnet_cpu_batch):
    b = rcnet_cpu_batch
    sel = b["points_batch"] == 0
    model = paper_model.train()
    pelvis = b["pelvis_cam"][:1]
    out = model(b["image"][:1], b["K"][:1], b["crop_box_xyxy"][:1], b["points_cam"][sel], b["points_batch"][sel], pelvis,
                torch.Generator().manual_seed(0))  # the 128 px crop is resized to 224 inside
    assert out.pelvis_hm.shape == (1, 1, 56, 56) and out.feat_map.shape == (1, 32, 56, 56)
    assert out.contact_hm_flip is not None and out.contact_hm_flip.shape == (1, 7, 56, 56)
    assert out.voxel_seg_logits.shape[1] == 8 and out.voxel_coords.shape[0] > 100 and not bool(out.fallback.any())
    loss = out.pelvis_refined_cam.abs().sum() + out.voxel_seg_logits.logsumexp(1).mean() + out.pelvis_hm.square().mean() \
        + out.contact_hm_flip.square().mean()
    loss.backward()
    for name, p in model.named_parameters():
        if p.requires_grad:
            assert p.grad is not None and torch.isfinite(p.grad).all(), name
    model.zero_grad(set_to_none=True)


def test_paper_eval_is_deterministic(paper_model, rcnet_cpu_batch):
    b = rcnet_cpu_batch
    model = paper_model.eval()
    with torch.no_grad():
        o1 = model.forward_batch(b)
        o2 = model.forward_batch(b)
    for name in ("pelvis_hm", "pelvis_coarse_cam", "voxel_conf", "pelvis_refined_cam", "contact_points_cam"):
        assert torch.equal(getattr(o1, name), getattr(o2, name)), name
