"""The real-data pipelines (`make repro-rich` / `make repro-prox` = pipelines/{rich,prox}/dvc.yaml) end to end with
DVC, on stand-ins of the licensed files in their original formats (slow: ~2.5 min each on 2 cores, ~5 GB RAM, a
1.7 GB checkpoint under tmp_path).

Stand-ins: the original-format RICH / PROX fixtures (tests/helpers/original_fixture.py) under data/, an official-layout SMPL
neutral pickle + the original's companion files (tests/parity/test_paper_eval_path.py), and the oracle's seed-0
checkpoint in the released `sahmr_{rich,prox}_e30.pth` layout. A scratch DVC repository holds copies of pipelines/,
notebooks/, tools/ and sahmr/ (the stages' code deps); the `sahmr` command is the venv's (this checkout).
Checked: the check script, every stage runs (body import -> import -> convert -> dump -> evaluate -> the three
notebooks into reports/<dataset>/), the paper's metrics are finite, and a second `dvc repro` has nothing to do.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from sahmr.body.model_file import load_body_model_file
from tests.helpers.original_fixture import write_deftrafo, write_prox_fixture, write_rich_fixture

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def _run(cmd: list[str], cwd: Path, timeout: int = 1200) -> subprocess.CompletedProcess:
    env = {**os.environ, "PATH": f"{BIN}:{os.environ.get('PATH', '')}"}
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


def test_check_real_data_lists_what_is_missing(tmp_path):
    r = _run([sys.executable, str(ROOT / "tools" / "check_real_data.py"), "prox"], ROOT)
    if r.returncode == 0:
        pytest.skip("the licensed PROX files are present in this checkout")
    assert r.returncode == 1 and "place data/PROX/quantitative/sahmr_support" in r.stderr and "sahmr_prox_e30.pth" in r.stderr


@pytest.mark.slow
@pytest.mark.parametrize("dataset", ["rich", "prox"])
def test_real_pipeline_end_to_end_with_dvc(dataset, open_model_path, tmp_path):
    from tests.helpers.oracle import original_checkpoint
    from tests.parity.test_paper_eval_path import write_official_body

    repo = tmp_path / "repo"
    repo.mkdir()
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for d in ("pipelines", "notebooks", "tools", "sahmr"):
        shutil.copytree(ROOT / d, repo / d, ignore=ignore)
    assert _run(["git", "init", "-q"], repo).returncode == 0
    assert _run(["dvc", "init", "-q"], repo).returncode == 0

    data = repo / "data"
    (data / "body_models").mkdir(parents=True)
    pkl, assets, _ = write_official_body(open_model_path, data / "body_models")
    deftrafo = data / "body_models" / "model_transfer" / "smplx2smplh_deftrafo_setup.pkl"
    deftrafo.parent.mkdir()
    write_deftrafo(deftrafo)
    if dataset == "rich":
        n_frames = len(write_rich_fixture(data / "RICH", load_body_model_file(open_model_path).arrays).test_img_keys)
    else:
        n_frames = len(write_prox_fixture(data / "PROX" / "quantitative").img_keys)
    (data / "checkpoints").mkdir()
    torch.save(original_checkpoint(0), data / "checkpoints" / f"sahmr_{dataset}_e30.pth")
    params_path = repo / "pipelines" / dataset / "params.yaml"
    params = yaml.safe_load(params_path.read_text())
    params[dataset].update(smpl_pkl=str(pkl.relative_to(repo)), assets=str(assets.relative_to(repo)))
    assert params[dataset]["smplx2smplh"] == str(deftrafo.relative_to(repo))  # the README's placement
    params_path.write_text(yaml.safe_dump(params, sort_keys=False))

    r = _run([sys.executable, "tools/check_real_data.py", dataset], repo)
    assert r.returncode == 0, r.stderr
    target = f"pipelines/{dataset}/dvc.yaml:report"
    r = _run(["dvc", "repro", target], repo, timeout=1800)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    for name in ("dataset", "report", "failures"):
        assert (repo / "reports" / dataset / f"{name}.html").stat().st_size > 10_000, name
    summary = json.loads((repo / "reports" / dataset / "metrics" / "sahmr.json").read_text())
    assert summary["n_frames"] == n_frames
    for k in ("g_mpjpe", "g_mpve", "mpjpe", "mpve", "pene", "confe"):
        assert k in summary and summary[k] == summary[k], k  # present and not NaN
    conv = json.loads((repo / "models" / dataset / "converted" / "conversion.json").read_text())
    assert conv["kind"] == "sahmr"
    r = _run(["dvc", "repro", target], repo)
    assert r.returncode == 0 and "didn't change" in r.stdout and "Running stage" not in r.stdout, r.stdout
