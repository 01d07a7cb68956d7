"""Every section of the shipped params files loads into its schema; a misspelt key fails, naming it."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from sahmr.body.open_model import OpenModelParams
from sahmr.config import ParamsError, load_params, load_section, parse_overrides
from sahmr.data.synth.generate import SynthParams
from sahmr.refine.fitting import FitParams
from sahmr.refine.keypoints import KeypointNoise
from sahmr.refine.optimize import RefineParams
from sahmr.train.tasks import get_task, load_train_params

ROOT = Path(__file__).resolve().parents[1]
PARAMS_FILES = [ROOT / "params.yaml", ROOT / "pipelines" / "rich" / "params.yaml", ROOT / "pipelines" / "prox" / "params.yaml"]
GLOBALS = {"seed": int, "preset": str}
SCHEMAS = {"body_open": OpenModelParams, "synth": SynthParams, "refine": RefineParams, "fit": FitParams, "keypoints": KeypointNoise}
DVC_VARS_ONLY = {"rich", "prox"}  # paths substituted into pipelines/<ds>/dvc.yaml (${rich.root}); no command reads them


def _sections(path: Path) -> list[tuple[Path, str]]:
    return [(path, k) for k in load_params(path)]


@pytest.mark.parametrize("path,section", [s for p in PARAMS_FILES for s in _sections(p)], ids=lambda v: getattr(v, "name", v))
def test_every_shipped_section_loads(path, section):
    params = load_params(path)
    if section in GLOBALS:
        assert isinstance(params[section], GLOBALS[section])
    elif section in SCHEMAS:
        cfg = load_section(params, section, SCHEMAS[section], source=str(path))
        for key, value in params[section].items():  # every key reached the dataclass
            got = getattr(cfg, key)
            got = dataclasses.asdict(got) if dataclasses.is_dataclass(got) else got
            assert (list(got) if isinstance(got, tuple) else got) == value, key
    elif section.startswith("train_"):
        loop, task_params = load_train_params(section.removeprefix("train_"), params, source=str(path))
        task = get_task(section.removeprefix("train_"), task_params)  # builds the configs: model keys checked too
        assert loop["epochs"] == params[section]["epochs"] and task.name == section.removeprefix("train_")
    else:
        assert section in DVC_VARS_ONLY and path.parent.name == section, f"{path}: section '{section}' has no schema"


@pytest.mark.parametrize(
    "section,typo,key",
    [
        ("body_open", "num_sample=3", "num_sample"),
        ("synth", "frames_per_scen.train=3", "frames_per_scen"),
        ("train_rcnet", "epoch=5", "epoch"),
        ("train_sahmr", "rcnet_ckpts=x", "rcnet_ckpts"),
        ("train_baseline", "lr_rate=0.1", "lr_rate"),
        ("train_rcnet", "model.voxelsize=0.1", "voxelsize"),
        ("train_sahmr", "model.num_layer=3", "num_layer"),
        ("refine", "iter=3", "iter"),
        ("refine", "weights.penetraton=1", "penetraton"),
        ("fit", "yaw=2", "yaw"),
        ("keypoints", "noise=2", "noise"),
    ],
)
def test_a_misspelt_key_fails(section, typo, key):
    params = load_params(ROOT / "params.yaml")
    with pytest.raises(ParamsError, match=rf"\.{key}: unknown parameter"):
        if section.startswith("train_"):
            loop, task_params = load_train_params(section.removeprefix("train_"), params, [typo])
            get_task(section.removeprefix("train_"), task_params)
        else:
            load_section(params, section, SCHEMAS[section], [typo])
    # the same key in the file itself, not as an override, fails the same way
    bad = dict(params)
    k, v = typo.split("=")
    if "." not in k:
        bad[section] = {**params[section], k: parse_overrides([typo])[k]}
        with pytest.raises(ParamsError, match=rf"params.yaml: {section}\.{key}: unknown parameter"):
            if section.startswith("train_"):
                load_train_params(section.removeprefix("train_"), bad, source="params.yaml")
            else:
                load_section(bad, section, SCHEMAS[section], source="params.yaml")


def test_wrong_types_and_bad_overrides_fail():
    params = load_params(ROOT / "params.yaml")
    with pytest.raises(ParamsError, match=r"synth\.seed: .*Integer"):
        load_section(params, "synth", SynthParams, ["seed=abc"])
    with pytest.raises(ParamsError, match=r"train_rcnet\.batch_size: .*Integer"):
        load_train_params("rcnet", params, ["batch_size=[1]"])
    with pytest.raises(ParamsError, match="expected key=value"):
        parse_overrides(["epochs"])
    with pytest.raises(ParamsError, match="empty key"):
        parse_overrides(["a..b=1"])
    with pytest.raises(ParamsError, match="'synth' must be a mapping"):
        load_section({"synth": [1, 2]}, "synth", SynthParams)


def test_overrides_reach_the_dataclass_with_their_types():
    params = load_params(ROOT / "params.yaml")
    cfg = load_section(params, "synth", SynthParams, ["seed=3", "scenes.train=4", "image_size=[64, 48]", "noise_std=1"])
    assert cfg.seed == 3 and cfg.scenes == {"train": 4, "val": 5, "test": 5} and cfg.image_size == (64, 48)
    assert isinstance(cfg.noise_std, float)
    loop, task = load_train_params("sahmr", params, ["model.dropout=0.2", "preset=paper", "canonical_lr=1e-4"])
    assert task.model == {"dropout": 0.2} and task.preset == "paper" and loop["canonical_lr"] == 1e-4
