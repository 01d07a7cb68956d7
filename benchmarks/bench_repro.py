"""Wall time and peak memory of every stage of the default pipeline (`make repro`), stage by stage.

Runs `dvc repro --single-item <stage>` for each stage of dvc.yaml in pipeline order under `/usr/bin/time`,
so each stage is measured on its own (wall seconds, peak RSS of its largest process). A stage that is
up to date takes ~1 s (DVC only checks it): run it on a fresh clone (or after `dvc remove`/deleting
the outputs) to measure the real work. Writes reports/bench/repro.json.

    .venv/bin/python benchmarks/bench_repro.py [--stages synth,train_rcnet] [--out reports/bench/repro.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def pipeline_stages(dvc_yaml: Path) -> list[str]:
    """Stage names in file order (which is the pipeline order here), `foreach` stages expanded."""
    stages = []
    for name, spec in yaml.safe_load(dvc_yaml.read_text())["stages"].items():
        if "foreach" in spec:
            stages += [f"{name}@{item}" for item in spec["foreach"]]
        else:
            stages.append(name)
    return stages


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--stages", default="", help="comma-separated subset (default: every stage)")
    ap.add_argument("--out", default=str(ROOT / "reports" / "bench" / "repro.json"))
    args = ap.parse_args()
    stages = [s for s in args.stages.split(",") if s] or pipeline_stages(ROOT / "dvc.yaml")
    bin_dir = Path(sys.executable).parent
    env = dict(os.environ, PATH=f"{bin_dir}:{os.environ['PATH']}")
    results, t_all = [], time.monotonic()
    for stage in stages:
        with tempfile.NamedTemporaryFile("r", suffix=".time") as tf:
            t0 = time.monotonic()
            proc = subprocess.run(
                ["/usr/bin/time", "-o", tf.name, "-f", "%M %e", str(bin_dir / "dvc"), "repro", "--single-item", stage], cwd=ROOT, env=env
            )
            wall = time.monotonic() - t0
            max_kb = int(tf.read().split()[-2])
        results.append({"stage": stage, "wall_s": round(wall, 1), "peak_rss_mb": round(max_kb / 1024, 1), "rc": proc.returncode})
        print(f"[bench_repro] {stage}: {wall:.0f} s, peak {max_kb / 1024:.0f} MB, rc {proc.returncode}", flush=True)
        if proc.returncode:
            break
    out = {
        "benchmark": "make repro stage by stage (dvc repro --single-item)",
        "total_wall_s": round(time.monotonic() - t_all, 1),
        "stages": results,
        "machine": {"cpu_count": os.cpu_count(), "python": platform.python_version()},
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps(out, indent=2))
    return 0 if all(r["rc"] == 0 for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
