"""Benchmark: RCNet forward latency per frame (batch 1, eval, no_grad) and peak memory, both presets, CPU.

Workload: a cluttered synthetic scene (the planar-patch scene of `bench_sparse.py`: ~20k voxels at 5 cm
within 1.25 m of the anchors, more points farther away are culled by the neighbourhood test), a 640x480
camera, a square crop box around the person, a random-init RCNet of the preset. The middle anchor is
given explicitly (`anchor_cam` = the scene centre) so the scene branch always sees a full neighbourhood
(an untrained coarse pelvis could land anywhere). Each preset runs in a fresh subprocess with
`torch.set_num_threads(--threads)` (1 by default: stable on shared cores): median / min of `--reps`
forwards after one warm-up, split into image branch (root net) and total; peak memory = the process's
peak RSS growth over the forwards (ru_maxrss, after the model is built) and the model's parameter bytes.

    python benchmarks/bench_rcnet.py                 # writes reports/bench/rcnet.json
    python benchmarks/bench_rcnet.py --presets cpu --reps 3
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def measure(preset: str, reps: int, threads: int) -> dict:
    from bench_sparse import make_scene

    from sahmr.models.rcnet import RCNet, RCNetConfig

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    cfg = RCNetConfig.preset(preset)
    model = RCNet(cfg).eval()
    pts = make_scene(0)
    centre = torch.tensor([[0.3, 0.2, 3.0]])
    K = torch.tensor([[[500.0, 0, 320], [0, 500.0, 240], [0, 0, 1]]])
    uv = (K[0] @ centre[0] / centre[0, 2])[:2]
    box = torch.cat([uv - 150, uv + 150])[None]
    image = torch.rand(1, 3, cfg.crop_size, cfg.crop_size, generator=torch.Generator().manual_seed(0))
    pb = torch.zeros(len(pts), dtype=torch.long)
    rss0 = _rss_mb()
    times, img_times = [], []
    with torch.no_grad():
        out = model(image, K, box, pts, pb, anchor_cam=centre)  # warm-up
        for _ in range(reps):
            t = time.perf_counter()
            model.root_net(model.prepare_image(image))
            img_times.append(time.perf_counter() - t)
            t = time.perf_counter()
            out = model(image, K, box, pts, pb, anchor_cam=centre)
            times.append(time.perf_counter() - t)
    return {
        "preset": preset,
        "threads": threads,
        "reps": reps,
        "crop_size": cfg.crop_size,
        "backbone": cfg.backbone,
        "voxel_size": cfg.voxel_size,
        "spvcnn_widths": list(model.contact_net.widths),
        "num_scene_points": int(len(pts)),
        "num_neighbourhood_points": int(out.near_points_cam.shape[0]),
        "num_voxels": int(out.voxel_coords.shape[0]),
        "params_M": sum(p.numel() for p in model.parameters()) / 1e6,
        "forward_s_median": statistics.median(times),
        "forward_s_min": min(times),
        "image_branch_s_median": statistics.median(img_times),
        "scene_branch_s_median_est": statistics.median(times) - statistics.median(img_times),
        "peak_rss_growth_mb": _rss_mb() - rss0,
        "peak_rss_mb": _rss_mb(),
        "param_mb": sum(p.numel() * p.element_size() for p in model.parameters()) / 2**20,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--presets", nargs="+", default=["cpu", "paper"])
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", default=str(ROOT / "reports" / "bench" / "rcnet.json"))
    ap.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(measure(args.child, args.reps, args.threads)))
        return
    results = []
    for preset in args.presets:
        cmd = [sys.executable, __file__, "--child", preset, "--reps", str(args.reps), "--threads", str(args.threads)]
        res = subprocess.run(cmd, capture_output=True, text=True, check=True, cwd=ROOT)
        r = json.loads(res.stdout.strip().splitlines()[-1])
        print(
            f"{preset}: {r['forward_s_median'] * 1000:.0f} ms/frame (image {r['image_branch_s_median'] * 1000:.0f} ms), "
            f"{r['num_voxels']} voxels, peak RSS +{r['peak_rss_growth_mb']:.0f} MB (total {r['peak_rss_mb']:.0f} MB)"
        )
        results.append(r)
    report = {
        "benchmark": "RCNet forward latency per frame (batch 1, eval, no_grad, CPU) and peak memory",
        "machine": {"platform": platform.platform(), "cpu_count": os.cpu_count(), "torch": torch.__version__, "loadavg": list(os.getloadavg())},
        "results": results,
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
