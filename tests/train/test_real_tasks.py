"""The real tasks (RCNet, then SAHMR on the frozen RCNet) through the kit's training loop on the tiny
synthetic dataset: a few steps run end to end, and the same seed gives the same weights and metrics."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from sahmr.train.loop import TrainConfig, train


def _cfg(root, out, seed=0, **kw) -> TrainConfig:
    base = dict(
        data=root,
        out=out,
        val_split="test",
        batch_size=2,
        val_batch_size=3,
        epochs=1,
        limit_train_batches=2,
        limit_val_batches=1,
        canonical_lr=1e-4,
        canonical_bs=2,
        milestones=(1,),
        progress="none",
        sanity_val_steps=0,
        seed=seed,
        deterministic=True,
        dataset={"max_scene_points": 8000},
    )
    base.update(kw)
    return TrainConfig(**base)


def _same_weights(a, b) -> bool:
    wa, wb = (torch.load(p / "final.ckpt", weights_only=True) for p in (a, b))
    return wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)


def test_rcnet_then_sahmr_train_deterministically(tiny_synth, open_model_path, tmp_path):
    from sahmr.train.rcnet_task import RCNetTask
    from sahmr.train.sahmr_task import SAHMRTask

    root, _ = tiny_synth
    rc = [train(RCNetTask("cpu"), _cfg(root, tmp_path / f"rcnet{i}")) for i in (1, 2)]
    assert rc[0]["global_step"] == 2 and rc[0]["metrics"] == rc[1]["metrics"]
    assert _same_weights(tmp_path / "rcnet1", tmp_path / "rcnet2")
    assert {"pelvis_error_coarse_mm", "pelvis_error_refined_mm", "voxseg_iou"} <= set(rc[0]["metrics"])

    params = {"preset": "cpu", "rcnet_ckpt": str(tmp_path / "rcnet1" / "final.ckpt"), "body_model": str(open_model_path), "model": {"num_layers": 1}}
    runs = {name: train(SAHMRTask.from_params(params), _cfg(root, tmp_path / name, seed=seed)) for name, seed in (("s1", 0), ("s2", 0), ("s3", 1))}
    assert runs["s1"]["metrics"] == runs["s2"]["metrics"] and _same_weights(tmp_path / "s1", tmp_path / "s2")
    assert not _same_weights(tmp_path / "s1", tmp_path / "s3")  # another seed trains other weights
    m = runs["s1"]["metrics"]
    assert all(np.isfinite(v) for v in m.values() if isinstance(v, float))
    assert {"G_MPJPE", "MPJPE", "PelvisE"} <= set(m)
    on_disk = json.loads((tmp_path / "s1" / "metrics.json").read_text())
    assert on_disk["G_MPJPE"] == m["G_MPJPE"]


def test_stage2_training_step_under_bf16_autocast(tiny_synth, open_model_path, tmp_path):
    """precision "bf16-mixed": the network runs in bf16, its losses and metrics in float32 (Procrustes has no
    bf16 kernels; bf16 coordinates would be quantised at centimetres) and close to the float32 step's."""
    from sahmr.data.dataset import HumanSceneDataset, collate_human_scene
    from sahmr.models.rcnet import RCNet, RCNetConfig
    from sahmr.train.sahmr_task import SAHMRTask

    root, _ = tiny_synth
    torch.manual_seed(0)
    torch.save(RCNet(RCNetConfig.preset("cpu")).state_dict(), tmp_path / "rcnet.ckpt")
    task = SAHMRTask(preset="cpu", rcnet_ckpt=tmp_path / "rcnet.ckpt", body_model=open_model_path, model={"num_layers": 1})
    model = task.build_model().train()
    ds = HumanSceneDataset(root, "train", task.crop_size, train_augment=False, seed=0, max_scene_points=8000)
    batch = collate_human_scene([ds[0], ds[1]])
    ref, ref_stats = task.training_step(model, batch, torch.Generator().manual_seed(0))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss, stats = task.training_step(model, batch, torch.Generator().manual_seed(0))
    assert loss.dtype == torch.float32 and torch.isfinite(loss)
    loss.backward()
    assert all(torch.isfinite(p.grad).all() for p in model.metro_enhanced.parameters() if p.grad is not None)
    assert loss.item() == pytest.approx(ref.item(), rel=0.1)
    for k in ("MPJPE", "PA_MPJPE", "G_MPJPE", "loss/vertex"):
        assert np.isfinite(stats[k]) and stats[k] == pytest.approx(ref_stats[k], rel=0.1), k
