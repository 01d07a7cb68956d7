"""Benchmark the synthetic benchmark: generation speed and the training Dataset's throughput.

1. Generates ``--scenes`` train rooms with the default generator parameters (150 frames each) using
   ``--workers`` processes, and reports frames/s, the extrapolated time of the default 50-room set and
   the peak memory (largest process).
2. Reads items of that set through ``HumanSceneDataset`` (train augmentation, crop ``--crop``) in the
   main process with one torch thread, collated in batches of 16: samples/s (goal ≥ 200).

Writes ``reports/bench/synth.json``. Run: ``.venv/bin/python benchmarks/bench_synth.py [--scenes 4]``.
``--data datasets/synth`` skips the generation and measures the Dataset on an existing set (the one
`make repro` generated; the full generation time is in ``reports/bench/repro.json``), writing
``reports/bench/synth_dataset.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]


def dataset_throughput(root: Path, crop: int, n_items: int) -> dict:
    """Samples/s of HumanSceneDataset (train augmentation) + collate in batches of 16, one torch thread.

    Two passes over the same items: the first (epoch 0) also builds the per-process caches (scene
    points, one frustum index per static camera, ~20 ms each); the second (epoch 1: other crops) is the
    steady state of a training run, where every camera has been seen."""
    from sahmr.data.dataset import HumanSceneDataset, collate_human_scene

    torch.set_num_threads(1)
    ds = HumanSceneDataset(root, "train", crop_size=crop, train_augment=True, seed=0)
    order = np.random.default_rng(0).permutation(len(ds))
    items = [order[i % len(ds)] for i in range(n_items)]
    rates = []
    for epoch in (0, 1):
        t = time.perf_counter()
        for b in range(0, len(items), 16):
            collate_human_scene([ds[(epoch, int(i))] for i in items[b : b + 16]])
        rates.append(len(items) / (time.perf_counter() - t))
    return {
        "crop": crop,
        "items": len(items),
        "samples_per_s_one_thread": rates[1],
        "samples_per_s_first_pass": rates[0],
        "cameras_cached": len(ds._frustum),
    }


def main() -> None:
    from sahmr.data.synth.generate import SynthParams, generate_dataset

    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--scenes", type=int, default=4)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--crop", type=int, default=128)
    ap.add_argument("--items", type=int, default=800)
    ap.add_argument("--body-model", default=str(ROOT / "models" / "sahmr-open.npz"))
    ap.add_argument("--out", default=str(ROOT / "reports" / "bench" / "synth.json"))
    ap.add_argument("--data", default=None, help="measure the Dataset on this existing dataset (no generation)")
    args = ap.parse_args()

    if args.data is not None:
        out = Path(args.out if args.out != ap.get_default("out") else ROOT / "reports" / "bench" / "synth_dataset.json")
        result = {"data": args.data, "dataset": dataset_throughput(Path(args.data), args.crop, args.items), "cpu_count": os.cpu_count()}
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(result, indent=2) + "\n")
        print(json.dumps(result, indent=2))
        return

    defaults = SynthParams()
    params = SynthParams(scenes={"train": args.scenes, "val": 0, "test": 0})
    with tempfile.TemporaryDirectory() as d:
        t = time.perf_counter()
        meta = generate_dataset(Path(d) / "ds", params, args.body_model, workers=args.workers, progress=False)
        gen_s = time.perf_counter() - t
        n = sum(meta["splits"].values())
        total_default = sum(defaults.scenes[s] * defaults.frames_per_scene[s] for s in defaults.scenes)
        peak_mb = max(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss) / 1024

        ds_result = dataset_throughput(Path(d) / "ds", args.crop, args.items)

    result = {
        "generation": {
            "scenes": args.scenes,
            "frames": n,
            "workers": args.workers,
            "seconds": gen_s,
            "frames_per_s": n / gen_s,
            "default_set_frames": total_default,
            "default_set_minutes_extrapolated": total_default / (n / gen_s) / 60,
            "peak_rss_mb_largest_process": peak_mb,
        },
        "dataset": ds_result,
        "cpu_count": os.cpu_count(),
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
