"""The RICH pipeline (`make repro-rich` = pipelines/rich/dvc.yaml) end to end with DVC, on stand-ins of the licensed
files in their original formats (slow: ~4 min on 2 cores, ~5 GB RAM, a 1.7 GB checkpoint under tmp_path).

Stand-ins: the original-format RICH fixture (tests/data/original_fixture.py) as data/RICH, an official-layout SMPL
neutral pickle + the original's companion files (tests/parity/test_paper_eval_path.py), and the oracle's seed-0
checkpoint in the released `sahmr_rich_e30.pth` layout. A scratch DVC repository holds copies of pipelines/,
notebooks/, tools/ and sahmr/ (the stages' code deps); the `sahmr` command is the venv's (this checkout).
Checked: the check script, every stage runs (body import -> import -> convert -> dump -> evaluate -> the three
notebooks into reports/rich/), the paper's metrics are finite, and a second `dvc repro` has nothing to do.
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
from tests.data.original_fixture import write_rich_fixture

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
def test_rich_pipeline_end_to_end_with_dvc(open_model_path, tmp_path):
    from tests.parity.oracle import original_checkpoint
    from tests.parity.test_paper_eval_path import write_official_body

    repo = tmp_path / "repo"
    repo.mkdir()
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for d in ("pipelines", "notebooks", "tools", "sahmr"):
        shutil.copytree(ROOT / d, repo / d, ignore=ignore)
    assert _run(["git", "init", "-q"], repo).returncode == 0
    assert _run(["dvc", "init", "-q"], repo).returncode == 0

    data = repo / "data"
    truth = write_rich_fixture(data / "RICH", load_body_model_file(open_model_path).arrays)
    (data / "body_models").mkdir(parents=True)
    pkl, assets, _ = write_official_body(open_model_path, data / "body_models")
    (data / "checkpoints").mkdir()
    torch.save(original_checkpoint(0), data / "checkpoints" / "sahmr_rich_e30.pth")
    params_path = repo / "pipelines" / "rich" / "params.yaml"
    params = yaml.safe_load(params_path.read_text())
    params["rich"].update(smpl_pkl=str(pkl.relative_to(repo)), assets=str(assets.relative_to(repo)),
                          smplx2smplh=str(truth.deftrafo_path.relative_to(repo)))  # fmt: skip
    params_path.write_text(yaml.safe_dump(params, sort_keys=False))

    r = _run([sys.executable, "tools/check_real_data.py", "rich"], repo)
    assert r.returncode == 0, r.stderr
    r = _run(["dvc", "repro", "pipelines/rich/dvc.yaml:report"], repo, timeout=1800)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    for name in ("dataset", "report", "failures"):
        assert (repo / "reports" / "rich" / f"{name}.html").stat().st_size > 10_000, name
    summary = json.loads((repo / "reports" / "rich" / "metrics" / "sahmr.json").read_text())
    assert summary["n_frames"] == len(truth.test_img_keys)
    for k in ("g_mpjpe", "g_mpve", "mpjpe", "mpve", "pene", "confe"):
        assert k in summary and summary[k] == summary[k], k  # present and not NaN
    conv = json.loads((repo / "models" / "rich" / "converted" / "conversion.json").read_text())
    assert conv["kind"] == "sahmr"
    r = _run(["dvc", "repro", "pipelines/rich/dvc.yaml:report"], repo)
    assert r.returncode == 0 and "didn't change" in r.stdout and "Running stage" not in r.stdout, r.stdout
