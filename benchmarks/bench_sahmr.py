"""End-to-end SAHMR inference benchmark (RCNet + mesh transformer, and the image-only baseline).

    python benchmarks/bench_sahmr.py [--body-model sahmr-open] [--presets cpu paper] [--out reports/bench/sahmr.json]

Per preset (random weights; the timing does not depend on them): latency per frame at batch 1 (median of
`--repeats` after one warm-up), throughput at batch 16 (frames/s), and the peak resident memory of a fresh
process doing that work (`ru_maxrss`; each preset runs in its own spawned process). Inputs: random crops, a
synthetic scene of 20 000 points per frame in a 3 m cube around the person at 4 m; RCNet's random output
layer biases are steered (depth ~4 m, every voxel "contact") so that the scene branch does its full work
(neighbourhood, voxels, SPVCNN, > 500 contact points sub-sampled to the 500 slots). CPU, 1 thread
by default (`--threads`). A GPU run is added with `--device cuda` when available.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import platform
import resource
import statistics
import sys
import time
from pathlib import Path


def _inputs(b: int, crop: int, device, n_points: int = 20000, seed: int = 0):
    import torch

    g = torch.Generator().manual_seed(seed)
    img = torch.rand(b, 3, crop, crop, generator=g)
    K = torch.tensor([[600.0, 0, 320], [0, 600.0, 240], [0, 0, 1]]).expand(b, 3, 3).clone()
    box = torch.tensor([[220.0, 140, 420, 340]]).expand(b, 4).clone()
    pts = (torch.rand(b * n_points, 3, generator=g) - 0.5) * torch.tensor([3.0, 3.0, 3.0]) + torch.tensor([0.0, 0.0, 4.0])
    pb = torch.arange(b).repeat_interleave(n_points)
    return [t.to(device) for t in (img, K, box, pts, pb)]


def _run_preset(preset: str, body_model: str, threads: int, repeats: int, batch: int, device: str, q) -> None:
    import torch

    torch.set_num_threads(threads)
    from sahmr.body.model import BodyModel
    from sahmr.models.mesh_transformer import MeshTransformerConfig
    from sahmr.models.rcnet import RCNet, RCNetConfig
    from sahmr.models.sahmr import SAHMR, ImageOnlyBaseline

    torch.manual_seed(0)
    body = BodyModel.load(body_model)
    dev = torch.device(device)
    rc = RCNet(RCNetConfig.preset(preset))
    with torch.no_grad():  # random weights, steered so that the contact branch sees a realistic load:
        rc.root_net.out_conv.weight[1].zero_()  # random HRNet-W64 features are huge: constant depth map
        rc.root_net.out_conv.bias[1] = 4.0 * 200.0 / 600.0  # pelvis depth ~4 m (zw1f = z * box_w / fx)
        rc.contact_net.classifier[0].weight[4:].zero_()
        rc.contact_net.classifier[0].bias[5] = 10.0  # every voxel near the pelvis predicted as contact part 1
    res = {"preset": preset, "device": device, "threads": threads}
    for name, cls in (("sahmr", SAHMR), ("baseline", ImageOnlyBaseline)):
        model = cls(rc, MeshTransformerConfig.preset(preset), body).to(dev).eval()
        crop = model.metro_enhanced.cfg.crop_size
        n_params = sum(p.numel() for p in model.metro_enhanced.parameters())

        def run(b, reps, warmup=True):
            x = _inputs(b, crop, dev)
            times = []
            with torch.inference_mode():
                for i in range(int(not warmup), reps + 1):
                    if dev.type == "cuda":
                        torch.cuda.synchronize()
                    t = time.perf_counter()
                    out = model(*x)
                    if dev.type == "cuda":
                        torch.cuda.synchronize()
                    if i:  # first = warm-up
                        times.append(time.perf_counter() - t)
            return statistics.median(times), out

        lat, out = run(1, repeats)
        heavy = device == "cpu" and preset == "paper"  # minutes per batch: one timed run, already warm from b1
        thr_t, _ = run(batch, 1 if heavy else max(1, repeats // 2), warmup=not heavy)
        res[name] = {
            "latency_ms_per_frame_b1": lat * 1000.0,
            f"throughput_fps_b{batch}": batch / thr_t,
            "mesh_net_params_M": n_params / 1e6,
            "contact_points_b1": int(out.contact_points_mask.sum()) if out.contact_points_mask is not None else 0,
        }
        print(f"[{preset}/{name}] {res[name]}", flush=True)
    res["peak_rss_MiB"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    if dev.type == "cuda":
        res["peak_cuda_MiB"] = torch.cuda.max_memory_allocated() / 2**20
    q.put(res)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--body-model", default="sahmr-open")
    ap.add_argument("--presets", nargs="+", default=["cpu", "paper"])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--out", default="reports/bench/sahmr.json")
    a = ap.parse_args(argv)
    ctx = mp.get_context("spawn")
    results = []
    for preset in a.presets:
        q = ctx.Queue()
        p = ctx.Process(target=_run_preset, args=(preset, a.body_model, a.threads, a.repeats, a.batch, a.device, q))
        p.start()
        r = q.get()
        p.join()
        results.append(r)
    import torch

    doc = {
        "benchmark": "sahmr_inference_end_to_end",
        "machine": platform.processor() or platform.machine(),
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "results": results,
    }
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(doc, indent=2))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
