"""Compare a fresh pipeline's results with the committed ones: the data exactly, the metrics within a tolerance.

    .venv/bin/python tools/compare_metrics.py [--rev HEAD] [--pipeline dvc.yaml] [--rel-tol 0.15]
        [--abs-tol 0.02] [--stages-exact build_body_model,synth] [--json out.json]
    (or `make compare-metrics`)

Run it after `dvc repro` on a fresh clone (or on another machine): it reads the workspace's files and the same
files as committed at ``--rev`` (``git show``), and reports

* **data** — the output hashes in dvc.lock of the stages whose outputs are bit-stable across machines (the open
  body model and the synthetic dataset; tested under other thread counts and BLAS/SIMD code paths): these
  must be equal, byte for byte;
* **metrics** — every number in the pipeline's ``metrics:`` files (dvc.yaml, ``foreach`` expanded). Counts
  (integers: frames, epochs, samples) must be equal; every other number must agree within ``--rel-tol``
  (relative to the committed value), or within ``--abs-tol`` (fractions near zero). Training is not bit-stable across
  processors (oneDNN/MKL pick other float32 kernels on other CPUs, and SGD amplifies last-bit differences), so
  the metrics carry a tolerance: the default is the README's, measured by re-running the pipeline's training
  under other BLAS/SIMD code paths. Facts of the machine and the run (wall times, thread counts, CPU, torch
  version, device: ``MACHINE_KEYS``, e.g. ``sahmr refine --stats``) are listed but never compared.

Exit status: 0 all within, 1 some differ (each named on one line), 2 bad usage (unknown rev, missing pipeline).
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

import yaml

DEFAULT_REL_TOL = 0.15
DEFAULT_ABS_TOL = 0.02  # for fractions and small values (a 400-sample rate moves in steps of 0.0025)
DEFAULT_EXACT_STAGES = ("build_body_model", "synth")


@dataclass
class Row:
    file: str
    key: str
    committed: float | str | None
    fresh: float | str | None
    status: str  # "same", "within", "DIFFERS", "MISSING", "NEW", "machine" (not compared)
    rel: float | None = None


class UsageError(Exception):
    pass


def metrics_files(pipeline: Path) -> list[str]:
    """Every ``metrics:`` path of a dvc.yaml, ``foreach`` lists expanded, in file order."""
    try:
        stages = yaml.safe_load(pipeline.read_text())["stages"]
    except (OSError, KeyError, TypeError, yaml.YAMLError) as e:
        raise UsageError(f"{pipeline}: not a readable dvc.yaml with stages ({e})") from None
    out: list[str] = []
    for stage in stages.values():
        items, body = (stage["foreach"], stage["do"]) if "foreach" in stage else ([None], stage)
        for entry in body.get("metrics", []):
            path = next(iter(entry)) if isinstance(entry, dict) else entry
            for item in items:
                p = path if item is None else path.replace("${item}", str(item))
                if p not in out:
                    out.append(p)
    return out


def git_show(rev: str, path: str, cwd: Path) -> str | None:
    """The file as committed at ``rev`` (None if it is not in that commit)."""
    res = subprocess.run(["git", "show", f"{rev}:{path}"], cwd=cwd, capture_output=True, text=True)
    return res.stdout if res.returncode == 0 else None


def check_rev(rev: str, cwd: Path) -> None:
    res = subprocess.run(["git", "rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}"], cwd=cwd, capture_output=True, text=True)
    if res.returncode != 0:
        raise UsageError(f"--rev {rev}: not a commit of the repository at {cwd}")


def flatten(obj, prefix: str = "") -> dict[str, object]:
    """Nested JSON -> {"a/b/c": leaf}."""
    if isinstance(obj, dict):
        out: dict[str, object] = {}
        for k, v in obj.items():
            out.update(flatten(v, f"{prefix}{k}/"))
        return out
    return {prefix.rstrip("/"): obj}


# leaf names of values that describe the machine, not the result: reported as "machine", never compared
MACHINE_KEYS = frozenset({"seconds", "seconds_per_frame", "torch_threads", "cpu", "torch", "device"})


def compare_numbers(committed, fresh, rel_tol: float, abs_tol: float) -> tuple[str, float | None]:
    if isinstance(committed, bool) or isinstance(fresh, bool) or not isinstance(committed, int | float) or not isinstance(fresh, int | float):
        return ("same" if committed == fresh else "DIFFERS"), None
    if committed == fresh:
        return "same", 0.0
    if isinstance(committed, int) and isinstance(fresh, int):  # counts: exact
        return "DIFFERS", None
    if not (math.isfinite(committed) and math.isfinite(fresh)):
        return "DIFFERS", None
    diff = abs(fresh - committed)
    rel = diff / abs(committed) if committed else math.inf
    return ("within" if rel <= rel_tol or diff <= abs_tol else "DIFFERS"), rel


def compare_metrics(root: Path, rev: str, pipeline: Path, rel_tol: float, abs_tol: float) -> list[Row]:
    rows: list[Row] = []
    for path in metrics_files(pipeline):
        old_text = git_show(rev, path, root)
        new_path = root / path
        if old_text is None and not new_path.is_file():
            continue
        if old_text is None:
            rows.append(Row(path, "*", None, "present", "NEW"))
            continue
        if not new_path.is_file():
            rows.append(Row(path, "*", "present", None, "MISSING"))
            continue
        old, new = flatten(json.loads(old_text)), flatten(json.loads(new_path.read_text()))
        for key in list(old) + [k for k in new if k not in old]:
            if key not in new:
                rows.append(Row(path, key, old[key], None, "MISSING"))
            elif key not in old:
                rows.append(Row(path, key, None, new[key], "NEW"))
            elif key.rsplit("/", 1)[-1] in MACHINE_KEYS:
                rows.append(Row(path, key, old[key], new[key], "machine"))
            else:
                status, rel = compare_numbers(old[key], new[key], rel_tol, abs_tol)
                rows.append(Row(path, key, old[key], new[key], status, rel))
    return rows


def lock_outs(lock_text: str, stages: tuple[str, ...]) -> dict[str, str]:
    """{stage:path -> md5} of the named stages' outputs in a dvc.lock."""
    lock = yaml.safe_load(lock_text) or {}
    out = {}
    for name in stages:
        for o in (lock.get("stages", {}).get(name) or {}).get("outs", []):
            out[f"{name}:{o['path']}"] = o.get("md5", "")
    return out


def compare_data(root: Path, rev: str, pipeline: Path, stages: tuple[str, ...]) -> list[Row]:
    lock_path = pipeline.with_name(pipeline.stem + ".lock")
    old_text = git_show(rev, str(lock_path.relative_to(root)), root)
    if old_text is None or not lock_path.is_file():
        return [Row(str(lock_path.relative_to(root)), "*", "present" if old_text else None, "present" if lock_path.is_file() else None, "MISSING")]
    old, new = lock_outs(old_text, stages), lock_outs(lock_path.read_text(), stages)
    rows = []
    for key in sorted(set(old) | set(new)):
        a, b = old.get(key), new.get(key)
        status = "same" if a == b else ("MISSING" if b is None else "NEW" if a is None else "DIFFERS")
        rows.append(Row(str(lock_path.relative_to(root)), key, a, b, status))
    return rows


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:.6g}"
    return "-" if v is None else str(v)


def report(data: list[Row], metrics: list[Row], rel_tol: float, out=None) -> int:
    out = out or sys.stdout
    bad = [r for r in data + metrics if r.status in ("DIFFERS", "MISSING")]
    print(f"data (exact): {sum(r.status == 'same' for r in data)}/{len(data)} output hashes equal", file=out)
    numeric = [r for r in metrics if r.rel and math.isfinite(r.rel)]
    worst = max(numeric, key=lambda r: r.rel, default=None)
    print(
        f"metrics (counts exact, others within {rel_tol:.0%}): {len(metrics)} values; "
        f"{sum(r.status == 'same' for r in metrics)} identical, {sum(r.status == 'within' for r in metrics)} within, "
        f"{sum(r.status == 'DIFFERS' for r in metrics)} differ, {sum(r.status == 'MISSING' for r in metrics)} missing"
        f"{f', {n} machine facts not compared' if (n := sum(r.status == 'machine' for r in metrics)) else ''}"
        + (f"; largest relative difference {worst.rel:.2%} ({worst.file} {worst.key})" if worst else ""),
        file=out,
    )
    for r in bad:
        rel = f" ({r.rel:+.2%})" if r.rel is not None else ""
        print(f"  {r.status}: {r.file} {r.key}: committed {_fmt(r.committed)}, fresh {_fmt(r.fresh)}{rel}", file=out)
    return 1 if bad else 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rev", default="HEAD", help="the commit whose results are the reference (default: HEAD)")
    ap.add_argument("--pipeline", default="dvc.yaml", help="the dvc.yaml whose metrics and lock are compared (default: dvc.yaml)")
    ap.add_argument("--rel-tol", type=float, default=DEFAULT_REL_TOL, help=f"relative tolerance of non-count metrics (default {DEFAULT_REL_TOL})")
    ap.add_argument("--abs-tol", type=float, default=DEFAULT_ABS_TOL, help=f"a difference this small always agrees (default {DEFAULT_ABS_TOL})")
    ap.add_argument("--stages-exact", default=",".join(DEFAULT_EXACT_STAGES), help="stages whose outputs must hash the same (comma-separated)")
    ap.add_argument("--json", default=None, help="also write every compared value to this JSON file")
    args = ap.parse_args(argv)
    try:
        if not (args.rel_tol >= 0 and math.isfinite(args.rel_tol)):
            raise UsageError(f"--rel-tol {args.rel_tol}: expected a finite number >= 0")
        pipeline = Path(args.pipeline).resolve()
        if not pipeline.is_file():
            raise UsageError(f"--pipeline {args.pipeline}: not found")
        res = subprocess.run(["git", "rev-parse", "--show-toplevel"], cwd=pipeline.parent, capture_output=True, text=True)
        if res.returncode != 0:
            raise UsageError(f"--pipeline {args.pipeline}: not inside a git repository")
        root = Path(res.stdout.strip())
        check_rev(args.rev, root)
        stages = tuple(s for s in args.stages_exact.split(",") if s)
        data = compare_data(root, args.rev, pipeline, stages)
        metrics = compare_metrics(root, args.rev, pipeline, args.rel_tol, args.abs_tol)
    except UsageError as e:
        print(f"compare_metrics: error: {e}", file=sys.stderr)
        return 2
    if args.json:
        from sahmr.atomic import atomic_write_bytes

        doc = {"rev": args.rev, "rel_tol": args.rel_tol, "data": [asdict(r) for r in data], "metrics": [asdict(r) for r in metrics]}
        atomic_write_bytes(args.json, (json.dumps(doc, indent=1) + "\n").encode())
    return report(data, metrics, args.rel_tol)


if __name__ == "__main__":
    sys.exit(main())
