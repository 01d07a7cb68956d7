"""Benchmark the body model: BodyModel forward at batch 64 (CPU), and the sahmr-open build.

Writes ``reports/bench/body.json``. Run: ``.venv/bin/python benchmarks/bench_body.py [--skip-build]``.
Numbers are wall times on this machine (noisy: compare ratios within one run, not across machines).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]


def bench_forward(model_path: str, batch: int = 64, repeats: int = 20) -> dict:
    from sahmr.body.model import BodyModel

    m = BodyModel.load(model_path)
    g = torch.Generator().manual_seed(0)
    args = dict(
        betas=torch.randn(batch, 10, generator=g),
        body_pose=0.3 * torch.randn(batch, 69, generator=g),
        global_orient=torch.randn(batch, 3, generator=g),
        transl=torch.randn(batch, 3, generator=g),
    )
    out = {}
    for threads in (1, torch.get_num_threads()):
        torch.set_num_threads(threads)
        with torch.no_grad():
            m(**args)  # warm-up
            times = []
            for _ in range(repeats):
                t = time.perf_counter()
                m(**args)
                times.append(time.perf_counter() - t)
        times.sort()
        out[f"threads_{threads}"] = {
            "median_ms": 1000 * times[len(times) // 2],
            "min_ms": 1000 * times[0],
            "frames_per_s": batch / times[len(times) // 2],
        }
    return {"batch": batch, **out}


def bench_build() -> dict:
    """Build sahmr-open in a subprocess (warm Anny cache) and read its wall time and peak RSS."""
    with tempfile.TemporaryDirectory() as d:
        code = f"from sahmr.body.open_model import build_and_save; import sys; build_and_save({str(Path(d) / 'm.npz')!r}, None)"
        t = time.perf_counter()
        before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT, stdout=subprocess.DEVNULL)
        wall = time.perf_counter() - t
        peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return {"wall_s": wall, "peak_rss_mb": peak_kb / 1024, "note": "ru_maxrss of the child (Anny cache warm)", "peak_rss_before_mb": before / 1024}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--model", default=str(ROOT / "models" / "sahmr-open.npz"))
    ap.add_argument("--skip-build", action="store_true")
    ap.add_argument("--out", default=str(ROOT / "reports" / "bench" / "body.json"))
    args = ap.parse_args()
    os.environ.setdefault("ANNY_CACHE_DIR", str(ROOT / ".cache" / "anny"))
    os.environ.setdefault("WARP_CACHE_PATH", str(ROOT / ".cache" / "warp"))
    result = {
        "machine": {"cpu_count": os.cpu_count(), "python": platform.python_version(), "torch": torch.__version__},
        "forward": bench_forward(args.model),
    }
    if not args.skip_build:
        result["build_open_model"] = bench_build()
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
