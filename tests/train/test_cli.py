"""``sahmr train``: params resolution through the task registry, overrides, clear errors."""

from __future__ import annotations

import argparse
import json

import pytest

from sahmr.config import ParamsError
from sahmr.train import cli as train_cli
from sahmr.train.tasks import available_tasks, get_task, load_train_params, register_task
from tests.helpers.fake_task import PelvisParams, factory


def _main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="sahmr")
    sub = parser.add_subparsers(dest="cmd", required=True)
    train_cli.register(sub)
    args = parser.parse_args(argv)
    return args.func(args)


def test_param_resolution_globals_section_overrides():
    register_task("fake_res", factory, PelvisParams, overwrite=True)
    params = {"seed": 0, "preset": "cpu", "train_fake_res": {"epochs": 5, "batch_size": 8, "width": 4, "dataset": {"bbx_zoom": 0.2}}}
    loop, task = load_train_params("fake_res", params, ["epochs=2", "milestones=[1, 3]", "dataset.max_scene_points=100", "seed=7"])
    assert loop["epochs"] == 2 and loop["batch_size"] == 8 and loop["seed"] == 7 and loop["milestones"] == (1, 3)
    assert loop["dataset"] == {"bbx_zoom": 0.2, "max_scene_points": 100}
    assert task == PelvisParams(width=4)  # 'preset' is not a field of this task: the global is not passed to it
    with pytest.raises(ParamsError, match="expected key=value"):
        load_train_params("fake_res", params, ["epochs"])


def test_misspelt_keys_fail_naming_section_and_key():
    register_task("fake_res", factory, PelvisParams, overwrite=True)
    params = {"train_fake_res": {"epoch": 5}}
    with pytest.raises(ParamsError, match=r"params.yaml: train_fake_res\.epoch: unknown parameter"):
        load_train_params("fake_res", params, source="params.yaml")
    with pytest.raises(ParamsError, match=r"override of train_fake_res\.widht: unknown parameter"):
        load_train_params("fake_res", {}, ["widht=3"])
    with pytest.raises(ParamsError, match=r"train_fake_res\.epochs: .*Integer"):
        load_train_params("fake_res", {}, ["epochs=many"])


def test_registry_errors():
    register_task("fake_pelvis_cli", factory, PelvisParams, overwrite=True)
    assert {"fake_pelvis_cli", "rcnet", "sahmr", "baseline"} <= set(available_tasks())  # built-ins at import time
    with pytest.raises(ValueError, match="unknown training task 'nope'.*fake_pelvis_cli"):
        get_task("nope", {})
    with pytest.raises(ValueError, match="already registered"):
        register_task("fake_pelvis_cli", lambda p: None, PelvisParams)
    with pytest.raises(ParamsError, match="unknown parameter"):
        get_task("fake_pelvis_cli", {"wdth": 2})
    register_task("broken_task", lambda p: object(), PelvisParams, overwrite=True)
    with pytest.raises(TypeError, match="without a callable build_model"):
        get_task("broken_task", {})


def test_cli_trains_and_reports_errors(tiny_synth, tmp_path, capsys):
    root, _ = tiny_synth
    register_task("fake_pelvis_cli", factory, PelvisParams, overwrite=True)
    p = tmp_path / "params.yaml"
    p.write_text(
        "seed: 1\npreset: cpu\ntrain_fake_pelvis_cli:\n  epochs: 3\n  batch_size: 5\n  val_split: test\n"
        "  crop_size: 32\n  lr: 0.01\n  progress: none\n  width: 4\n"
    )
    out = tmp_path / "out"
    assert _main(["train", "fake_pelvis_cli", "epochs=2", "--params", str(p), "--data", str(root), "--out", str(out), "-S", "epochs=1"]) == 0
    printed = capsys.readouterr().out
    assert json.loads(printed[printed.rindex('{\n  "metrics"') :])["epochs"] == 1
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
    # the typo of the issue: `-S epoch=5` must not train with the default
    with pytest.raises(ParamsError, match=r"train_fake_pelvis_cli\.epoch: unknown parameter"):
        _main(["train", "fake_pelvis_cli", "--params", str(p), "--data", str(root), "--out", str(out), "-S", "epoch=5"])
