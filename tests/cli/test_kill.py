"""SIGKILL at random points, repeated: the rerun of the same command ends with outputs identical to an
uninterrupted run, and nothing half-written is ever taken as valid in between (synth, dump, evaluate;
training has its own kill test in tests/train/test_loop.py)."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import TINY_SYNTH

from .conftest import World

ROOT = Path(__file__).resolve().parents[2]
KILL_AFTER_S = {"synth": (4.0, 9.0, 14.0), "dump": (3.5, 6.0), "evaluate": (3.0, 4.5)}  # s after the start


def _argv(name: str, w: World, out: Path, params: Path) -> list[str]:
    if name == "synth":
        return ["synth", "--out", str(out), "--params", str(params), "--body-model", str(w.body), "--workers", "1", "--quiet"]
    if name == "dump":
        return ["dump", "sahmr", "--ckpt", str(w.ckpt), "--data", str(w.data), "--out", str(out / "pred.npz"), "--params", str(w.params)]
    return ["evaluate", "--pred", str(w.pred), "--data", str(w.data), "--body-model", str(w.body), "--out", str(out / "m.json"), "--quiet"]


def _run(argv: list[str], kill_after: float | None = None) -> int | None:
    """Run `sahmr argv` in a fresh process; with kill_after, SIGKILL it then (None if it finished first)."""
    proc = subprocess.Popen([sys.executable, "-m", "sahmr.cli", *argv], cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    if kill_after is None:
        _, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, err.decode()[-2000:]
        return 0
    try:
        proc.wait(timeout=kill_after)
        return None
    except subprocess.TimeoutExpired:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        return -9


def _outputs(out: Path, name: str) -> dict[str, str]:
    """Digests of what a run leaves: for synth the dataset's content hash (its files are resumable state)."""
    if name == "synth":
        from sahmr.data.format import open_dataset

        return {"content_hash": open_dataset(out).meta["content_hash"]} if (out / "dataset.json").is_file() else {}
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(out.iterdir()) if p.is_file()}


def _valid_or_absent(out: Path, name: str) -> None:
    """Between kill and rerun: every output present is complete and readable (no half-written file)."""
    if name == "synth":
        if (out / "dataset.json").is_file():
            from sahmr.data.format.validate import validate_dataset

            assert [p for p in validate_dataset(out) if p.severity == "error"] == []
        return
    visible = [p for p in out.iterdir() if not p.name.startswith(".")] if out.exists() else []
    for p in visible:
        if p.suffix == ".npz":
            from sahmr.eval.predictions import read_predictions

            read_predictions(p)
        elif p.suffix == ".json":
            import json

            json.loads(p.read_text())
        else:
            assert p.read_text().count("\n") > 1


@pytest.mark.parametrize("name", ["synth", "dump", "evaluate"])
def test_kill_and_rerun(name: str, world: World, tmp_path: Path):
    params = tmp_path / "params.yaml"
    small = dict(TINY_SYNTH, frames_per_scene={"train": 4, "val": 0, "test": 3})
    params.write_text(yaml.safe_dump({"synth": {k: list(v) if isinstance(v, tuple) else v for k, v in small.items()}}))
    ref = tmp_path / "ref"
    ref.mkdir()
    _run(_argv(name, world, ref if name != "synth" else ref / "ds", params))
    want = _outputs(ref / "ds" if name == "synth" else ref, name)
    assert want
    killed = 0
    for kill_after in KILL_AFTER_S[name]:
        out = tmp_path / f"k{kill_after}"
        out.mkdir()
        target = out / "ds" if name == "synth" else out
        killed += _run(_argv(name, world, target, params), kill_after) == -9
        _valid_or_absent(target, name)
        _run(_argv(name, world, target, params))  # the rerun
        assert _outputs(target, name) == want, f"kill after {kill_after} s: the rerun differs from the uninterrupted run"
        leftovers = [p.name for p in (target.rglob("*") if target.is_dir() else []) if p.name.endswith(".tmp")]
        assert leftovers == [], leftovers
    assert killed >= 1, "no run was killed: raise KILL_AFTER_S"
