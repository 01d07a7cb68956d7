"""Benchmark ``sahmr refine`` and the fitting baseline ``sahmr fit``: seconds per frame, batched over a split.

Refines the first ``--frames`` frames of a predictions file (default: the committed SAHMR test predictions)
at two batch sizes, and fits as many frames of the synthetic keypoints, with ``--threads`` torch threads.
Writes ``reports/bench/refine.json``. Run: ``.venv/bin/python benchmarks/bench_refine.py``.
Wall times on this machine (noisy: compare ratios within one run).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]


def _subset(pred_path: Path, n: int, out: Path) -> None:
    from sahmr.eval.predictions import Predictions, read_predictions, write_predictions

    p = read_predictions(pred_path)
    keep = {f.name: getattr(p, f.name) for f in dataclasses.fields(Predictions)}
    for k in ("frame_ids", "verts_cam", "verts_world", "pelvis_cam", "pelvis_refined_cam", "contact_vertex"):
        if keep[k] is not None:
            keep[k] = keep[k][:n]
    write_predictions(out, Predictions(**keep))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pred", default=str(ROOT / "predictions/sahmr_test.npz"))
    ap.add_argument("--keypoints", default=str(ROOT / "predictions/keypoints_test.npz"))
    ap.add_argument("--data", default=str(ROOT / "datasets/synth"))
    ap.add_argument("--frames", type=int, default=128)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default=str(ROOT / "reports/bench/refine.json"))
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    from sahmr.config import load_section
    from sahmr.refine.fitting import FitParams
    from sahmr.refine.keypoints import Keypoints, read_keypoints, write_keypoints
    from sahmr.refine.optimize import RefineParams
    from sahmr.refine.run import fit_keypoints_file, refine_predictions

    params = ROOT / "params.yaml"
    rp = load_section(params, "refine", RefineParams)
    fp = load_section(params, "fit", FitParams)
    result = {"frames": args.frames, "threads": args.threads, "cpu": platform.processor() or platform.machine(), "torch": torch.__version__}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        _subset(Path(args.pred), args.frames, tmp / "pred.npz")
        for bs in (rp.batch_size, 16):
            t0 = time.perf_counter()
            s = refine_predictions(
                tmp / "pred.npz", args.data, "test", tmp / f"refined_{bs}.npz", dataclasses.replace(rp, batch_size=bs), progress=False
            )
            wall = time.perf_counter() - t0
            result[f"refine_batch{bs}"] = {"seconds_per_frame": s["seconds_per_frame"], "wall_seconds_incl_loading": round(wall, 2)}
            print(f"refine, batch {bs}: {s['seconds_per_frame']:.3f} s/frame ({wall:.1f} s wall for {args.frames} frames)")
        kp = read_keypoints(args.keypoints)
        write_keypoints(tmp / "kp.npz", Keypoints(kp.frame_ids[: args.frames], kp.keypoints[: args.frames], kp.source))
        t0 = time.perf_counter()
        s = fit_keypoints_file(tmp / "kp.npz", args.data, "test", tmp / "fit.npz", fp, progress=False)
        wall = time.perf_counter() - t0
        result["fit"] = {"seconds_per_frame": s["seconds_per_frame"], "wall_seconds_incl_loading": round(wall, 2)}
        print(f"fit: {s['seconds_per_frame']:.3f} s/frame ({wall:.1f} s wall)")
    result["ratio_refine_batch16_over_batch64"] = round(
        result["refine_batch16"]["seconds_per_frame"] / result[f"refine_batch{rp.batch_size}"]["seconds_per_frame"], 3
    )
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    np.set_printoptions(precision=3)
    main()
