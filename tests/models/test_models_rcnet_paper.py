"""RCNet paper preset on CPU: forward/backward at batch 1, determinism, and the state-dict layout against
the original's `rcnet.*` keys (original-state-dict-keys.txt from the project's reference folder)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from sahmr.models.checkpoint_map import compare_rcnet_state_dict, load_original_rcnet_state_dict
from sahmr.models.rcnet import RCNet, RCNetConfig

_CANDIDATES = [os.environ.get("SAHMR_ORIGINAL_KEYS", ""), "/work/shared/reference/original-state-dict-keys.txt",
               str(Path(__file__).resolve().parents[2] / "docs" / "reference" / "original-state-dict-keys.txt")]  # fmt: skip
KEYS_FILE = next((Path(p) for p in _CANDIDATES if p and Path(p).is_file()), None)


@pytest.fixture(scope="module")
def paper_model():
    torch.manual_seed(0)
    return RCNet(RCNetConfig.preset("paper"))


@pytest.mark.skipif(KEYS_FILE is None, reason="original-state-dict-keys.txt not available")
def test_paper_state_dict_matches_the_original_layout(paper_model):
    rep = compare_rcnet_state_dict(paper_model, KEYS_FILE)
    print(f"\nRCNet vs original: {rep['n_original']} original keys, {rep['n_ours']} ours, matched "
          f"{len(rep['matched'])}, renamed {len(rep['renamed'])}, shape mismatch {rep['shape_mismatch']}, "
          f"missing {rep['missing']}, extra {rep['extra']}; numel {rep['ours_numel']} vs {rep['original_numel']}")
    assert rep["matched_fraction"] == 1.0
    assert not rep["shape_mismatch"] and not rep["missing"] and not rep["extra"]
    assert rep["ours_numel"] == rep["original_numel"]
    n_params = sum(p.numel() for p in paper_model.parameters())
    assert abs(n_params / 1e6 - 137.5) < 0.2  # spec §3.4: RCNet 137.5 M (root net 115.7 M + SPVCNN 21.8 M)


def test_load_original_state_dict_roundtrip(paper_model):
    sd = {f"net.{k}": v.clone() for k, v in paper_model.state_dict().items()}
    sd["net.contact_net.classifier.0.bias"] = torch.arange(12.0)
    sd["net.metro_enhanced.some.weight"] = torch.zeros(3)  # a full SAHMR checkpoint's other half: ignored
    rep = load_original_rcnet_state_dict(paper_model, sd)
    assert rep["loaded"] == len(paper_model.state_dict()) and rep["ignored"] == ["net.metro_enhanced.some.weight"]
    assert torch.equal(paper_model.contact_net.classifier[0].bias.detach(), torch.arange(12.0))
    bad = dict(sd)
    bad["net.contact_net.stem.0.kernel"] = torch.zeros(27, 35, 31)
    with pytest.raises(ValueError, match="stem.0.kernel"):
        load_original_rcnet_state_dict(paper_model, bad)
    with pytest.raises(ValueError, match="missing"):
        load_original_rcnet_state_dict(paper_model, {"net.root_net.out_conv.bias": torch.zeros(41)})


def test_paper_forward_backward_batch1(paper_model, rcnet_cpu_batch):
    b = rcnet_cpu_batch
    sel = b["points_batch"] == 0
    model = paper_model.train()
    pelvis = b["pelvis_cam"][:1]
    out = model(b["image"][:1], b["K"][:1], b["bbx_lurb"][:1], b["points_cam"][sel], b["points_batch"][sel], pelvis,
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
