"""The generic training loop (sahmr.train.loop) with a tiny real task on the tiny synthetic dataset."""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from sahmr.train.loop import TrainConfig, train
from tests.helpers.fake_task import PelvisTask, SimulatedCrash

ROOT = Path(__file__).resolve().parents[2]


def _cfg(data, out, **kw) -> TrainConfig:
    base = dict(
        data=data, out=out, val_split="test", crop_size=32, batch_size=4, epochs=3, lr=1e-2, milestones=(2,), progress="none", sanity_val_steps=0
    )
    base.update(kw)
    return TrainConfig(**base)


def _tsv(path: Path) -> list[tuple[int, float]]:
    with path.open() as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    key = [k for k in rows[0] if k != "step"][0]
    return [(int(r["step"]), float(r[key])) for r in rows]


def _weights(out: Path) -> dict[str, torch.Tensor]:
    return torch.load(out / "final.ckpt", weights_only=True)


# ---------------------------------------------------------------------------------------------- training


def test_train_loss_decreases_checkpoints_and_outputs(tiny_synth, tmp_path, monkeypatch):
    root, _ = tiny_synth
    monkeypatch.chdir(tmp_path)  # nothing may be written to the working directory (no dvc.yaml, no dvclive/)
    out = tmp_path / "run"
    res = train(PelvisTask(), _cfg(root, out, epochs=6, milestones=(5,), val_every=4))
    assert res["epochs"] == 6 and res["global_step"] == 6 * 3 and res["resumed_from"] is None
    # real optimisation: the epoch loss decreases
    loss = _tsv(out / "dvclive/plots/metrics/train/loss.tsv")
    assert [s for s, _ in loss] == [1, 2, 3, 4, 5, 6]
    assert loss[-1][1] < 0.92 * loss[0][1] and loss[-1][1] < loss[2][1]
    # one checkpoint per epoch + last
    names = sorted(p.name for p in (out / "checkpoints").glob("*.ckpt"))
    assert names == [f"epoch_{e:03d}.ckpt" for e in range(6)] + ["last.ckpt"]
    # validation every 4 epochs and always on the last
    assert [s for s, _ in _tsv(out / "dvclive/plots/metrics/val/PelvisE.tsv")] == [4, 6]
    # LR schedule: milestone 5, gamma 0.5
    assert [v for _, v in _tsv(out / "dvclive/plots/metrics/train/lr.tsv")] == pytest.approx([1e-2] * 5 + [5e-3])
    # DVCLive summary with the logged keys
    live = json.loads((out / "dvclive/metrics.json").read_text())
    assert {"loss", "pelvis_L1", "lr"} <= set(live["train"]) and "PelvisE" in live["val"] and live["step"] == 6
    # final outputs
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["epochs"] == 6 and metrics["num_val_samples"] == 6
    assert metrics["PelvisE"] == pytest.approx(res["metrics"]["PelvisE"]) == pytest.approx(live["val"]["PelvisE"], rel=1e-5)
    w = _weights(out)
    model = PelvisTask().build_model()
    model.load_state_dict(w)
    assert not list(tmp_path.glob("dvc.yaml")) and not (tmp_path / "dvclive").exists()
    assert not list(out.glob("*.tmp")) and not list(out.glob(".*.tmp"))


def test_lr_rule_and_config_errors(tiny_synth, tmp_path):
    root, _ = tiny_synth
    c = _cfg(root, tmp_path, lr=0.0, canonical_lr=5e-4, canonical_bs=32, batch_size=24)
    assert c.resolved_lr() == pytest.approx(3.75e-4)  # spec §5.1: RCNet 5e-4 * 24 / 32
    assert c.resolved_lr(world_size=2) == pytest.approx(7.5e-4)
    with pytest.raises(FileNotFoundError, match="training data folder not found"):
        train(PelvisTask(), _cfg(tmp_path / "nope", tmp_path / "o"))
    with pytest.raises(ValueError, match="cannot open split 'validation'"):
        train(PelvisTask(), _cfg(root, tmp_path / "o", val_split="validation"))
    with pytest.raises(ValueError, match="batch_size"):
        train(PelvisTask(), _cfg(root, tmp_path / "o", batch_size=0))
    with pytest.raises(ValueError, match="unknown TrainConfig keys.*'epoch'"):
        TrainConfig.from_dict({"data": root, "out": tmp_path, "epoch": 3})


def test_deterministic_same_seed_same_result(tiny_synth, tmp_path):
    root, _ = tiny_synth
    r1 = train(PelvisTask(), _cfg(root, tmp_path / "a", epochs=2, seed=3))
    r2 = train(PelvisTask(), _cfg(root, tmp_path / "b", epochs=2, seed=3))
    r3 = train(PelvisTask(), _cfg(root, tmp_path / "c", epochs=2, seed=4))
    assert r1["metrics"] == r2["metrics"]
    w1, w2, w3 = _weights(tmp_path / "a"), _weights(tmp_path / "b"), _weights(tmp_path / "c")
    assert all(torch.equal(w1[k], w2[k]) for k in w1)
    assert r1["metrics"] != r3["metrics"]
    assert any(not torch.equal(w1[k], w3[k]) for k in w1)  # another seed trains other weights
    assert not torch.are_deterministic_algorithms_enabled()  # the global flag is restored afterwards


@pytest.mark.parametrize("stop", ["mid_epoch", "epoch_end"])
def test_resume_reproduces_uninterrupted_run(tiny_synth, tmp_path, stop):
    """Interrupted (a crash in step 6 / fewer epochs) + resumed == uninterrupted, bit for bit (deterministic,
    0 workers). 3 batches per epoch, milestone at epoch 2: the resumed part crosses the LR milestone."""
    root, _ = tiny_synth
    full = train(PelvisTask(), _cfg(root, tmp_path / "full", ckpt_every_n_steps=1))
    out = tmp_path / "resumed"
    if stop == "mid_epoch":
        crashing = PelvisTask()
        crashing.crash_at = 5  # steps 1-4 done (epoch 0 + 1 batch of epoch 1), last.ckpt written after step 4
        with pytest.raises(SimulatedCrash):
            train(crashing, _cfg(root, out, ckpt_every_n_steps=1))
        assert not (out / "final.ckpt").exists()
    else:
        assert train(PelvisTask(), _cfg(root, out, ckpt_every_n_steps=1, epochs=1))["global_step"] == 3
    r2 = train(PelvisTask(), _cfg(root, out, ckpt_every_n_steps=1))
    assert r2["resumed_from"] == str(out / "checkpoints/last.ckpt")
    assert (r2["resume_epoch"], r2["resume_step"]) == ((1, 4) if stop == "mid_epoch" else (1, 3))
    assert r2["global_step"] == full["global_step"] == 9 and r2["epochs"] == 3
    wf, wr = _weights(tmp_path / "full"), _weights(out)
    assert all(torch.equal(wf[k], wr[k]) for k in wf), "resumed weights differ from the uninterrupted run"
    assert r2["metrics"] == full["metrics"]
    assert [s for s, _ in _tsv(out / "dvclive/plots/metrics/train/loss.tsv")] == [1, 2, 3]


def test_corrupt_last_checkpoint_falls_back(tiny_synth, tmp_path, capsys):
    """A truncated last.ckpt (killed while writing): the newest readable checkpoint is used, a warning names
    both, and the result equals the uninterrupted run."""
    root, _ = tiny_synth
    full = train(PelvisTask(), _cfg(root, tmp_path / "full"))
    out = tmp_path / "run"
    train(PelvisTask(), _cfg(root, out, epochs=2))
    last = out / "checkpoints" / "last.ckpt"
    last.write_bytes(last.read_bytes()[:1000])
    capsys.readouterr()
    r = train(PelvisTask(), _cfg(root, out))
    err = capsys.readouterr().err
    assert str(last) in err and "epoch_001.ckpt" in err and "unreadable" in err
    assert r["resumed_from"] == str(out / "checkpoints" / "epoch_001.ckpt") and (r["resume_epoch"], r["resume_step"]) == (2, 6)
    wf, wr = _weights(tmp_path / "full"), _weights(out)
    assert all(torch.equal(wf[k], wr[k]) for k in wf) and r["metrics"] == full["metrics"]
    for p in (out / "checkpoints").glob("*.ckpt"):
        p.write_bytes(b"")
    with pytest.raises(ValueError, match="no other readable checkpoint"):
        train(PelvisTask(), _cfg(root, out, epochs=4))


def test_resume_refuses_other_config(tiny_synth, tmp_path):
    root, _ = tiny_synth
    train(PelvisTask(), _cfg(root, tmp_path, epochs=1))
    with pytest.raises(ValueError, match=r"different training configuration.*'batch_size'"):
        train(PelvisTask(), _cfg(root, tmp_path, epochs=2, batch_size=2))
    r = train(PelvisTask(), _cfg(root, tmp_path, epochs=1, batch_size=2, resume=False))
    assert r["resumed_from"] is None and r["global_step"] == 5
    # the same folder, regenerated with other content (e.g. by `dvc repro` after a data change): refused
    data2 = tmp_path / "data2"
    shutil.copytree(root, data2)
    meta = json.loads((data2 / "dataset.json").read_text())
    train(PelvisTask(), _cfg(data2, tmp_path, epochs=1, batch_size=2, resume=False))
    meta["content_hash"] = "0" * 64
    (data2 / "dataset.json").write_text(json.dumps(meta))
    with pytest.raises(ValueError, match=r"different training configuration.*'data_content_hash'"):
        train(PelvisTask(), _cfg(data2, tmp_path, epochs=2, batch_size=2))


# ---------------------------------------------------------------------------------------------- subprocesses


def _run_fake(out: Path, data: Path, *kv: str, env: dict | None = None, timeout: float = 300) -> dict:
    cmd = [sys.executable, "-m", "tests.helpers.run_fake", str(out), str(data), *kv]
    p = subprocess.run(cmd, cwd=ROOT, env={**os.environ, **(env or {})}, capture_output=True, text=True, timeout=timeout)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    line = [ln for ln in p.stdout.splitlines() if ln.startswith("RESULT ")][-1]
    return json.loads(line[len("RESULT ") :])


def test_kill_and_resume(tiny_synth, tmp_path):
    """SIGKILL a training process after its first checkpoint; the rerun resumes and finishes."""
    root, _ = tiny_synth
    out = tmp_path / "run"
    kv = ["epochs=4", "batch_size=4", "lr=0.01", "ckpt_every_n_steps=1", "milestones=[2]"]
    cmd = [sys.executable, "-m", "tests.helpers.run_fake", str(out), str(root), *kv]
    proc = subprocess.Popen(cmd, cwd=ROOT, env={**os.environ, "FAKE_TASK_SLEEP": "0.4"}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        first = out / "checkpoints" / "epoch_000.ckpt"
        t0 = time.time()
        while not first.exists():
            assert proc.poll() is None, "training process ended before its first checkpoint"
            assert time.time() - t0 < 120, "no checkpoint after 120 s"
            time.sleep(0.05)
        time.sleep(0.6)  # into the second epoch (3 batches of 0.4 s per epoch)
        assert proc.poll() is None, "training finished before it could be killed"
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert not (out / "final.ckpt").exists()
    res = _run_fake(out, root, *kv)
    assert res["resumed_from"] is not None and res["resume_step"] >= 3 and res["resume_epoch"] >= 1  # continued, not restarted
    assert res["epochs"] == 4 and res["global_step"] == 12
    names = sorted(p.name for p in (out / "checkpoints").glob("epoch_*.ckpt"))
    assert names == [f"epoch_{e:03d}.ckpt" for e in range(4)]
    assert [s for s, _ in _tsv(out / "dvclive/plots/metrics/train/loss.tsv")] == [1, 2, 3, 4]
    assert json.loads((out / "metrics.json").read_text())["epochs"] == 4
    torch.load(out / "final.ckpt", weights_only=True)


def test_ddp_two_cpu_processes(tiny_synth, tmp_path):  # ~50 s on 2 cores: part of `make test`
    """DDP (gloo) on 2 CPU processes with batch 2 per rank == 1 process with batch 4: same samples (split
    across ranks, disjoint within an epoch), same global batches, so the same weights up to rounding."""
    root, _ = tiny_synth
    kv = ["epochs=2", "lr=0.01", "canonical_bs=32", "milestones=[1]"]
    (tmp_path / "seen1").mkdir()
    (tmp_path / "seen2").mkdir()
    env = {"FAKE_TASK_NOISE": "0"}  # per-rank generators draw different noise: switch it off to compare weights
    one = _run_fake(tmp_path / "one", root, *kv, "batch_size=4", env={**env, "FAKE_TASK_SEEN": str(tmp_path / "seen1")})
    two = _run_fake(tmp_path / "two", root, *kv, "batch_size=2", "devices=2", "strategy=ddp", env={**env, "FAKE_TASK_SEEN": str(tmp_path / "seen2")})
    assert two["world_size"] == 2 and one["world_size"] == 1

    def read(f: Path) -> list[list[int]]:
        return [[int(x) for x in ln.split()] for ln in f.read_text().splitlines()]

    s1 = read(tmp_path / "seen1/seen_rank0.txt")
    r0, r1 = read(tmp_path / "seen2/seen_rank0.txt"), read(tmp_path / "seen2/seen_rank1.txt")
    n1 = sum(map(len, s1))
    assert n1 == 2 * 10 and sum(map(len, r0)) == sum(map(len, r1)) == n1 // 2
    steps = len(s1)
    assert len(r0) == len(r1) == steps == 2 * 3
    for t in range(steps):  # the same global batch at every step
        assert sorted(s1[t]) == sorted(r0[t] + r1[t])
    for e in range(2):  # each epoch: the ranks' samples are disjoint and cover the split
        a = [i for b in r0[3 * e : 3 * e + 3] for i in b]
        b = [i for b in r1[3 * e : 3 * e + 3] for i in b]
        assert not set(a) & set(b) and sorted(a + b) == list(range(10))
    assert two["num_val_samples"] == one["num_val_samples"] == 6
    assert two["metrics"]["PelvisE"] == pytest.approx(one["metrics"]["PelvisE"], rel=1e-4)
    w1, w2 = _weights(tmp_path / "one"), _weights(tmp_path / "two")
    assert all(torch.allclose(w1[k], w2[k], atol=1e-5) for k in w1)
    assert np.isfinite(two["metrics"]["PelvisE"])


# ---------------------------------------------------------------------------------------------- schedules


def test_lr_factor_hand_values():
    from sahmr.train.config import lr_factor

    # warm-up 4 steps: 1/4, 2/4, 3/4, 4/4; then cosine over the 10 - 4 = 6 remaining steps down to 0.1
    assert [lr_factor(s, 10, 4, 0.1) for s in range(4)] == [0.25, 0.5, 0.75, 1.0]
    assert lr_factor(4, 10, 4, 0.1) == pytest.approx(1.0)
    assert lr_factor(7, 10, 4, 0.1) == pytest.approx(0.1 + 0.9 * 0.5)  # half way: cos(pi/2) = 0
    assert lr_factor(10, 10, 4, 0.1) == pytest.approx(0.1) and lr_factor(50, 10, 4, 0.1) == pytest.approx(0.1)
    assert lr_factor(0, 10, 0, 0.0) == 1.0


def test_cosine_schedule_steps_per_batch(tiny_synth, tmp_path):
    root, _ = tiny_synth
    out = tmp_path / "cos"
    res = train(PelvisTask(), _cfg(root, out, epochs=3, schedule="cosine", warmup_steps=2, min_lr_ratio=0.0, milestones=()))
    assert res["global_step"] == 9
    ckpt = torch.load(out / "checkpoints" / "last.ckpt", weights_only=False)
    sched = ckpt["lr_schedulers"][0]
    # after 9 optimiser steps of a 9-step run: the lambda's value at step 9 = min_lr_ratio = 0
    assert sched["last_epoch"] == 9 and sched["_last_lr"][0] == pytest.approx(0.0, abs=1e-12)
    lrs = _tsv(out / "dvclive/plots/metrics/train/lr.tsv")  # the lr at each epoch's start: steps 0, 3, 6
    from sahmr.train.config import lr_factor

    assert [v for _, v in lrs] == pytest.approx([1e-2 * lr_factor(s, 9, 2, 0.0) for s in (0, 3, 6)], rel=1e-5)


@pytest.mark.parametrize(
    "kw, msg",
    [
        ({"schedule": "linear"}, "schedule must be"),
        ({"warmup_steps": 5}, "warmup_steps needs schedule: cosine"),
        ({"schedule": "cosine", "min_lr_ratio": 1.5}, "min_lr_ratio must be in"),
        ({"num_nodes": 0}, "num_nodes must be"),
    ],
)
def test_schedule_and_nodes_bad_values(tiny_synth, tmp_path, kw, msg):
    root, _ = tiny_synth
    with pytest.raises(ValueError, match=msg):
        _cfg(root, tmp_path, **kw).validate()


def test_resume_accepts_checkpoint_written_before_new_fields(tiny_synth, tmp_path):
    """A run whose train_config.json predates a TrainConfig field resumes when the field keeps its default."""
    root, _ = tiny_synth
    train(PelvisTask(), _cfg(root, tmp_path, epochs=1))
    fp_file = tmp_path / "train_config.json"
    old = json.loads(fp_file.read_text())
    for k in ("schedule", "warmup_steps", "min_lr_ratio", "num_nodes"):
        del old[k]
    fp_file.write_text(json.dumps(old))
    r = train(PelvisTask(), _cfg(root, tmp_path, epochs=2))
    assert r["resumed_from"] is not None and r["global_step"] == 6
    fp_file.write_text(json.dumps(old))
    with pytest.raises(ValueError, match=r"different training configuration.*'schedule'"):
        train(PelvisTask(), _cfg(root, tmp_path, epochs=3, schedule="cosine", milestones=()))
