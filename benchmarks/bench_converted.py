"""The converted paper-preset SA-HMR (seed-0 checkpoint in the released layout): parity, latency, memory.

    python benchmarks/bench_converted.py [--device cpu|cuda] [--threads N] [--repeats 5] [--out JSON]

The oracle's synthetic checkpoint (`tests/fixtures/oracle`, the released `sahmr_*_e30.pth` layout) is
generated in memory, converted with `sahmr.models.convert` and run on the oracle's two frames with the
original's recorded contact draws. Reported (JSON, default `reports/bench/converted_<device>.json`):

* parity: max |kit − original| / max |original| of the camera-frame vertices on that device (trunc mode);
  on CUDA also the CUDA-vs-CPU difference of the same forward (the issue asks ≤ 1e-4);
* latency per frame at batch 1 (median of `--repeats` after a warm-up; frame 0: 5,789 scene points),
  throughput at batch 16 (the two frames tiled 8x), peak memory (CUDA: `max_memory_allocated` of a batch-1
  forward; CPU: the process's peak RSS, which includes building the checkpoint). The paper reports
  170 ms and 1,852 MB per frame on a V100.

`benchmarks/gpu_check_converted.sh` runs this on a GPU machine in one command (< 8 minutes).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _sync(dev) -> None:
    import torch

    if dev.type == "cuda":
        torch.cuda.synchronize(dev)


def _tile(batch, times: int):
    """The oracle batch (2 frames) repeated `times` times -> 2·times frames, points re-indexed."""
    import torch

    img, K, box, P, Pb = batch
    n = img.shape[0]
    Ps = [P] * times
    Pbs = [Pb + n * t for t in range(times)]
    return img.repeat(times, 1, 1, 1), K.repeat(times, 1, 1), box.repeat(times, 1), torch.cat(Ps), torch.cat(Pbs)


def _frame0(batch):
    img, K, box, P, Pb = batch
    m = Pb == 0
    return img[:1], K[:1], box[:1], P[m], Pb[m]


def _time(model, batch, dev, repeats: int) -> float:
    import torch

    with torch.no_grad():
        model(*batch, generator=torch.Generator().manual_seed(0))  # warm-up
        _sync(dev)
        ts = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            model(*batch, generator=torch.Generator().manual_seed(0))
            _sync(dev)
            ts.append(time.perf_counter() - t0)
    return statistics.median(ts)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=None, help="CPU threads (default: torch's)")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)

    import numpy as np
    import torch

    from sahmr.models.convert import convert_state_dict
    from tests.helpers.oracle import NET, build_parity_model, oracle_batch, original_checkpoint

    if args.threads:
        torch.set_num_threads(args.threads)
    dev = torch.device(args.device)
    inputs = np.load(NET / "inputs.npz")
    ref = np.load(NET / "mesh_trunc.npz")
    idx = torch.stack([torch.as_tensor(ref[f"pcSeg_sample_idx_{b}"]) for b in range(2)])
    res: dict = {
        "benchmark": "converted_paper_sahmr",
        "device": str(dev),
        "machine": platform.machine(),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
    }

    t0 = time.perf_counter()
    conv = convert_state_dict(original_checkpoint(0), "seed-0 checkpoint")
    res["convert_s"] = round(time.perf_counter() - t0, 2)
    model = build_parity_model(conv.state_dict, inputs)
    del conv

    def verts(m, d):
        with torch.no_grad():
            return m(*oracle_batch(inputs, d), contact_indices=idx.to(d)).verts_cam.double().cpu()

    v_cpu = verts(model, torch.device("cpu"))
    ref_v = torch.as_tensor(ref["pred_c_verts"]).double()
    scale = float(ref_v.abs().max())
    res["parity_cpu_rel"] = float((v_cpu - ref_v).abs().max()) / scale
    if dev.type != "cpu":
        model = model.to(dev)
        v_dev = verts(model, dev)
        res["parity_device_rel"] = float((v_dev - ref_v).abs().max()) / scale
        res["device_vs_cpu_max_abs"] = float((v_dev - v_cpu).abs().max())
        res["device_vs_cpu_rel"] = res["device_vs_cpu_max_abs"] / scale
        res["device_name"] = torch.cuda.get_device_name(dev) if dev.type == "cuda" else str(dev)

    batch = oracle_batch(inputs, dev)
    b1 = _frame0(batch)
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats(dev)
        base = torch.cuda.memory_allocated(dev)
    res["latency_ms_per_frame_b1"] = 1000 * _time(model, b1, dev, args.repeats)
    if dev.type == "cuda":
        res["peak_memory_MiB_b1"] = torch.cuda.max_memory_allocated(dev) / 2**20
        res["weights_memory_MiB"] = base / 2**20
    b16 = _tile(batch, 8)
    t16 = _time(model, b16, dev, max(1, args.repeats // 2))
    res["throughput_fps_b16"] = 16 / t16
    if dev.type == "cuda":
        res["peak_memory_MiB_b16"] = torch.cuda.max_memory_allocated(dev) / 2**20
    res["peak_rss_MiB"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    res["paper_v100"] = {"latency_ms_per_frame": 170, "memory_MB_per_frame": 1852}
    out = Path(args.out or ROOT / "reports" / "bench" / f"converted_{dev.type}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(res, indent=2) + "\n")
    os.replace(tmp, out)
    print(json.dumps(res, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
