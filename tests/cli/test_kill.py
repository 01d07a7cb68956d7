"""SIGKILL at random points, repeated: the rerun of the same command ends with outputs identical to an
uninterrupted run, and nothing half-written is ever taken as valid in between (synth, dump, evaluate,
``import rich``, ``body import``, ``refine``; training has its own kill test in tests/train/test_loop.py).

The kill points are seeded random fractions of the uninterrupted run's own wall time (start-up included), so
they fall inside the work on a fast or a loaded machine alike."""

from __future__ import annotations

import hashlib
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from tests.conftest import TINY_SYNTH

from .conftest import World

ROOT = Path(__file__).resolve().parents[2]
KILLS = {"synth": 3, "train": 2, "dump": 2, "evaluate": 2, "import": 3, "body-import": 2, "refine": 2}  # kills per command
TRAIN = [
    "-S",
    "epochs=2",
    "-S",
    "batch_size=2",
    "-S",
    "limit_train_batches=3",
    "-S",
    "limit_val_batches=1",
    "-S",
    "ckpt_every_n_steps=1",
    "-S",
    "progress=none",
]


@pytest.fixture(scope="module")
def rich_src(open_model_path, tmp_path_factory):
    """A tiny RICH folder in the original layout and the kit's SMPL-H files imported from its pickles."""
    from sahmr.body.model_file import load_body_model_file
    from sahmr.cli import main
    from tests.helpers.original_fixture import write_rich_fixture

    base = tmp_path_factory.mktemp("kill-rich")
    truth = write_rich_fixture(base / "RICH", load_body_model_file(open_model_path).arrays)
    for g in ("male", "female"):
        argv = ["body", "import", str(truth.smplh_model_paths[g]), "--out-dir", str(base / "models"), "--gender", g]
        assert main([*argv, "--name", f"smplh_{g}"]) == 0
    return truth, base / "models"


def _argv(name: str, w: World, out: Path, params: Path, rich=None) -> list[str]:
    if name == "import":
        truth, models = rich
        argv = ["import", "rich", str(truth.root), "--out", str(out), "--splits", "train,val,test", "--quiet"]
        argv += ["--body-model", str(w.body), "--smplx2smplh", str(truth.deftrafo_path)]
        return argv + ["--smplh-male", str(models / "smplh_male.npz"), "--smplh-female", str(models / "smplh_female.npz")]
    if name == "body-import":
        return ["body", "import", str(rich[0].smplh_model_paths["male"]), "--out-dir", str(out), "--name", "m", "--gender", "male"]
    if name == "train":  # resumes from its last checkpoint when run again
        return ["train", "rcnet", "--params", str(w.params), "--data", str(w.data), "--out", str(out), *TRAIN]
    if name == "synth":
        return ["synth", "--out", str(out), "--params", str(params), "--body-model", str(w.body), "--workers", "1", "--quiet"]
    if name == "refine":  # resumes from its finished batches (2 frames each)
        argv = ["refine", "--pred", str(w.pred), "--data", str(w.data), "--body-model", str(w.body), "--out", str(out / "refined.npz")]
        return argv + ["--params", "", "-S", "batch_size=2", "-S", "fit_iters=20", "-S", "iters=30", "--quiet"]
    if name == "dump":
        return ["dump", "sahmr", "--ckpt", str(w.ckpt), "--data", str(w.data), "--out", str(out / "pred.npz"), "--params", str(w.params)]
    return ["evaluate", "--pred", str(w.pred), "--data", str(w.data), "--body-model", str(w.body), "--out", str(out / "m.json"), "--quiet"]


def _run(argv: list[str], kill_after: float | None = None) -> float | None:
    """Run `sahmr argv` in a fresh process: without kill_after, to the end (returns its wall time in s); with
    kill_after, SIGKILL it then (returns -9.0, or None if it finished first)."""
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "sahmr.cli", *argv], cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    if kill_after is None:
        _, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, err.decode()[-2000:]
        return time.perf_counter() - t0
    try:
        proc.wait(timeout=kill_after)
        return None
    except subprocess.TimeoutExpired:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        return -9.0


def _outputs(out: Path, name: str) -> dict[str, str]:
    """Digests of what a run leaves: for datasets their content hash (synth's files are resumable state)."""
    if name == "train":  # the trained weights (tensor bytes) and the final metrics
        import torch

        if not (out / "final.ckpt").is_file():
            return {}
        state = torch.load(out / "final.ckpt", weights_only=True)
        h = hashlib.sha256()
        for k in sorted(state):
            h.update(k.encode() + state[k].cpu().contiguous().view(-1).view(torch.uint8).numpy().tobytes())
        return {"final.ckpt": h.hexdigest(), "metrics.json": (out / "metrics.json").read_text()}
    if name in ("synth", "import"):
        from sahmr.data.format import open_dataset

        return {"content_hash": open_dataset(out).meta["content_hash"]} if (out / "dataset.json").is_file() else {}
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(out.iterdir()) if p.is_file()}


def _valid_or_absent(out: Path, name: str) -> None:
    """Between kill and rerun: every output present is complete and readable (no half-written file)."""
    if name == "train":
        import torch

        for p in [out / "final.ckpt", *sorted((out / "checkpoints").glob("*.ckpt"))] if out.exists() else []:
            if p.exists():
                torch.load(p, weights_only=True, map_location="cpu")  # complete and readable (as resume reads them)
        if (out / "metrics.json").exists():
            json.loads((out / "metrics.json").read_text())
        return
    if name == "body-import":
        from sahmr.body.model_file import load_body_model_file

        if (out / "m.npz").exists() or (out / "m.json").exists():
            load_body_model_file(out / "m.npz")
        return
    if name in ("synth", "import"):
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
            json.loads(p.read_text())
        else:
            assert p.read_text().count("\n") > 1


# train through the real CLI takes ~1-2 min a run on 2 cores: `make test-slow` (tests/train/test_loop.py kills the
# loop with a fast task in `make test`)
@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.slow) if n == "train" else n for n in KILLS])
def test_kill_and_rerun(name: str, world: World, rich_src, tmp_path: Path):
    params = tmp_path / "params.yaml"
    small = dict(TINY_SYNTH, frames_per_scene={"train": 4, "val": 0, "test": 3})
    params.write_text(yaml.safe_dump({"synth": {k: list(v) if isinstance(v, tuple) else v for k, v in small.items()}}))
    is_dataset = name in ("synth", "import")

    def target_in(folder: Path) -> Path:
        return folder / "ds" if is_dataset else folder

    ref = tmp_path / "ref"
    ref.mkdir()
    wall = _run(_argv(name, world, target_in(ref), params, rich_src))
    want = _outputs(target_in(ref), name)
    assert want
    rng = random.Random(f"kill-{name}")
    killed = 0
    for i in range(KILLS[name]):
        kill_after = wall * rng.uniform(0.35, 0.95)
        out = tmp_path / f"k{i}"
        out.mkdir()
        target = target_in(out)
        was_killed = _run(_argv(name, world, target, params, rich_src), kill_after) == -9.0
        killed += was_killed
        print(f"[kill] {name}: run of {wall:.1f} s, SIGKILL at {kill_after:.1f} s: {'killed' if was_killed else 'had finished'}")
        _valid_or_absent(target, name)
        if was_killed:  # the rerun
            again = _argv(name, world, target, params, rich_src)
            if name == "import" and target.exists():  # killed after its dataset was in place: import refuses to
                again.append("--force")  # replace a dataset unasked, and says to pass --force
            _run(again)
        assert _outputs(target, name) == want, f"kill after {kill_after:.1f} s: the rerun differs from the uninterrupted run"
        leftovers = [p.name for p in out.rglob("*") if p.name.endswith(".tmp") or ".importing-" in p.name]
        assert leftovers == [], leftovers
    assert killed >= 1, f"no run was killed (uninterrupted run {wall:.1f} s)"
