"""``sahmr train``: params resolution, overrides, registry, clear errors."""

from __future__ import annotations

import argparse
import json

import pytest

from sahmr.train import cli as train_cli
from sahmr.train.registry import available_tasks, get_task, register_task
from tests.train.fake_task import factory


def _main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="sahmr")
    sub = parser.add_subparsers(dest="cmd", required=True)
    train_cli.register(sub)
    args = parser.parse_args(argv)
    return args.func(args)


def test_overrides_and_param_resolution():
    ov = train_cli.parse_overrides(["epochs=2", "milestones=[1, 3]", "dataset.max_scene_points=100", "seed=7", "name=x"])
    assert ov == {"epochs": 2, "milestones": [1, 3], "dataset": {"max_scene_points": 100}, "seed": 7, "name": "x"}
    params = {"seed": 0, "preset": "cpu", "train_fake": {"epochs": 5, "batch_size": 8, "width": 4, "dataset": {"bbx_zoom": 0.2}}}
    merged = train_cli.resolve_params(params, "fake", ov)
    assert merged["epochs"] == 2 and merged["batch_size"] == 8 and merged["seed"] == 7 and merged["preset"] == "cpu"
    assert merged["dataset"] == {"bbx_zoom": 0.2, "max_scene_points": 100}
    assert train_cli.task_params(merged) == {"width": 4, "name": "x", "seed": 7, "preset": "cpu"}
    with pytest.raises(ValueError, match="expected key=value"):
        train_cli.parse_overrides(["epochs"])


def test_registry_errors():
    register_task("fake_pelvis_cli", factory, overwrite=True)
    assert "fake_pelvis_cli" in available_tasks()
    with pytest.raises(ValueError, match="unknown training task 'nope'.*fake_pelvis_cli"):
        get_task("nope", {})
    with pytest.raises(ValueError, match="already registered"):
        register_task("fake_pelvis_cli", lambda p: None)
    register_task("broken_task", lambda p: object(), overwrite=True)
    with pytest.raises(TypeError, match="without a callable build_model"):
        get_task("broken_task", {})


def test_cli_trains_and_reports_errors(tiny_synth, tmp_path, capsys):
    root, _ = tiny_synth
    register_task("fake_pelvis_cli", factory, overwrite=True)
    p = tmp_path / "params.yaml"
    p.write_text("seed: 1\npreset: cpu\ntrain_fake_pelvis_cli:\n  epochs: 3\n  batch_size: 5\n  val_split: test\n"
                 "  crop_size: 32\n  lr: 0.01\n  progress: none\n  width: 4\n")  # fmt: skip
    out = tmp_path / "out"
    assert _main(["train", "fake_pelvis_cli", "epochs=2", "--params", str(p), "--data", str(root), "--out", str(out),
                  "-S", "epochs=1"]) == 0  # fmt: skip
    printed = capsys.readouterr().out
    assert json.loads(printed[printed.rindex('{\n  "metrics"'):])["epochs"] == 1
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["epochs"] == 1 and "PelvisE" in metrics
    cfg = json.loads((out / "train_config.json").read_text())
    assert cfg["batch_size"] == 5 and cfg["seed"] == 1 and cfg["task_params"]["width"] == 4

    with pytest.raises(ValueError, match="unknown training task 'nope'"):
        _main(["train", "nope", "--params", str(p), "--data", str(root), "--out", str(out)])
    with pytest.raises(FileNotFoundError, match="training data folder not found"):
        _main(["train", "fake_pelvis_cli", "--params", str(p), "--data", str(tmp_path / "missing"), "--out", str(out)])
    with pytest.raises(FileNotFoundError, match="parameters file not found"):
        _main(["train", "fake_pelvis_cli", "--params", str(tmp_path / "none.yaml"), "--data", str(root), "--out", str(out)])
    with pytest.raises(ValueError, match="no out folder"):
        _main(["train", "fake_pelvis_cli", "--params", str(p), "--data", str(root)])
