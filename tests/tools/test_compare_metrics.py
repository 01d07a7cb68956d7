"""tools/compare_metrics.py on a throwaway git repository: the data hashes exact, counts exact, other metrics
within the relative tolerance, missing files and values named, exit codes 0 / 1 / 2."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

TOOL = Path(__file__).resolve().parents[2] / "tools" / "compare_metrics.py"
_spec = importlib.util.spec_from_file_location("compare_metrics", TOOL)
compare_metrics = sys.modules.setdefault("compare_metrics", importlib.util.module_from_spec(_spec))
_spec.loader.exec_module(compare_metrics)
compare_numbers, main, metrics_files = compare_metrics.compare_numbers, compare_metrics.main, compare_metrics.metrics_files

PIPELINE = {
    "stages": {
        "build_body_model": {"cmd": "true", "outs": ["models/m.npz"]},
        "train": {"cmd": "true", "metrics": [{"runs/a/metrics.json": {"cache": False}}]},
        "evaluate": {"foreach": ["x", "y"], "do": {"cmd": "true", "metrics": [{"reports/${item}.json": {"cache": False}}]}},
        "refine": {"cmd": "true", "metrics": [{"reports/t.json": {"cache": False}}]},
    }
}
LOCK = {"schema": "2.0", "stages": {"build_body_model": {"cmd": "true", "outs": [{"path": "models/m.npz", "hash": "md5", "md5": "aaa"}]}}}
METRICS = {
    "runs/a/metrics.json": {"epochs": 3, "val": {"mpjpe": 200.0}},
    "reports/x.json": {"n_frames": 600, "mpjpe": 100.0},
    "reports/y.json": {"mpjpe": 0.0},
    "reports/t.json": {"seconds_per_frame": 0.3, "cpu": "x86_64", "energy_after": {"penetration": 2.0}},
}


def _git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=repo, check=True, capture_output=True)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    (tmp_path / "dvc.yaml").write_text(yaml.safe_dump(PIPELINE, sort_keys=False))
    (tmp_path / "dvc.lock").write_text(yaml.safe_dump(LOCK))
    for path, doc in METRICS.items():
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text(json.dumps(doc))
    _git(tmp_path, "init", "-q")
    _git(tmp_path, "add", ".")
    _git(tmp_path, "commit", "-qm", "results")
    return tmp_path


def _edit(repo: Path, path: str, change) -> None:
    doc = json.loads((repo / path).read_text())
    change(doc)
    (repo / path).write_text(json.dumps(doc))


def _run(repo: Path, capsys, *extra: str) -> tuple[int, str]:
    code = main(["--pipeline", str(repo / "dvc.yaml"), *extra])
    cap = capsys.readouterr()
    return code, cap.out + cap.err


def test_metrics_files_expand_foreach(repo):
    assert metrics_files(repo / "dvc.yaml") == ["runs/a/metrics.json", "reports/x.json", "reports/y.json", "reports/t.json"]


def test_identical_results_pass(repo, capsys):
    code, out = _run(repo, capsys)
    assert code == 0, out
    assert "data (exact): 1/1 output hashes equal" in out and "largest" not in out
    assert "8 values; 6 identical, 0 within, 0 differ, 0 missing, 2 machine facts not compared" in out


def test_within_and_beyond_the_tolerance(repo, capsys):
    _edit(repo, "runs/a/metrics.json", lambda d: d["val"].update(mpjpe=220.0))  # +10 %
    code, out = _run(repo, capsys, "--rel-tol", "0.15")
    assert code == 0 and "1 within" in out and "largest relative difference 10.00% (runs/a/metrics.json val/mpjpe)" in out, out
    code, out = _run(repo, capsys, "--rel-tol", "0.05")
    assert code == 1 and "DIFFERS: runs/a/metrics.json val/mpjpe: committed 200, fresh 220 (+10.00%)" in out, out


def test_counts_are_exact_and_missing_values_named(repo, capsys):
    _edit(repo, "reports/x.json", lambda d: (d.update(n_frames=599), d.pop("mpjpe")))
    code, out = _run(repo, capsys, "--rel-tol", "0.5")
    assert code == 1
    assert "DIFFERS: reports/x.json n_frames: committed 600, fresh 599" in out and "MISSING: reports/x.json mpjpe" in out, out
    (repo / "reports/y.json").unlink()
    assert "MISSING: reports/y.json *" in _run(repo, capsys)[1]


def test_data_hashes_must_be_equal(repo, capsys):
    lock = yaml.safe_load((repo / "dvc.lock").read_text())
    lock["stages"]["build_body_model"]["outs"][0]["md5"] = "bbb"
    (repo / "dvc.lock").write_text(yaml.safe_dump(lock))
    code, out = _run(repo, capsys, "--rel-tol", "1.0")
    assert code == 1 and "DIFFERS: dvc.lock build_body_model:models/m.npz: committed aaa, fresh bbb" in out, out


def test_small_differences_of_fractions_use_the_absolute_tolerance():
    assert compare_numbers(0.025, 0.01, 0.15, 0.02) == ("within", pytest.approx(0.6))  # a rate of 400 samples
    assert compare_numbers(0.025, 0.05, 0.15, 0.02)[0] == "DIFFERS"
    assert compare_numbers(0.0, 0.01, 0.15, 0.02)[0] == "within"
    assert compare_numbers(200.0, 231.0, 0.15, 0.02)[0] == "DIFFERS"
    assert compare_numbers(float("nan"), 1.0, 0.15, 0.02)[0] == "DIFFERS"


def test_bad_usage_is_one_line_exit_2(repo, tmp_path, capsys):
    code, out = _run(repo, capsys, "--rev", "no-such-rev")
    assert code == 2 and out.strip() == f"compare_metrics: error: --rev no-such-rev: not a commit of the repository at {repo}"
    code = main(["--pipeline", str(tmp_path / "nope.yaml")])
    assert code == 2 and "--pipeline" in capsys.readouterr().err
    code, out = _run(repo, capsys, "--rel-tol", "-1")
    assert code == 2 and "--rel-tol" in out


def test_json_report(repo, capsys):
    _edit(repo, "reports/x.json", lambda d: d.update(mpjpe=101.0))
    out = repo / "cmp.json"
    assert _run(repo, capsys, "--json", str(out))[0] == 0
    doc = json.loads(out.read_text())
    row = next(r for r in doc["metrics"] if r["key"] == "mpjpe" and r["file"] == "reports/x.json")
    assert row["status"] == "within" and row["rel"] == pytest.approx(0.01)


def test_machine_facts_are_listed_but_never_compared(repo, capsys):
    _edit(repo, "reports/t.json", lambda d: d.update(seconds_per_frame=0.9, cpu="aarch64"))  # another, slower machine
    code, text = _run(repo, capsys)
    assert code == 0, text
    _edit(repo, "reports/t.json", lambda d: d["energy_after"].update(penetration=3.0))  # a result: compared
    code, text = _run(repo, capsys)
    assert code == 1 and "energy_after/penetration" in text
