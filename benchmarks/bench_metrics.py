"""Benchmark the release evaluation end to end on synthetic data (CPU).

Default: 3,000 frames, V = 6890, 5 scenes with 256³ SDF grids, predictions in the camera frame (the
network's native output, so the cam->world mapping is included). Times `evaluate_arrays` (the goal is
≤ 30 s on a 2-core CPU), a prediction-file write + read, and `query_sdf` alone; writes JSON to
reports/bench/metrics.json.

    python benchmarks/bench_metrics.py [--frames 3000] [--grid-dim 256] [--out reports/bench/metrics.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from sahmr.eval.evaluate import evaluate_arrays, format_paper_table
from sahmr.eval.predictions import Predictions, read_predictions, write_predictions
from sahmr.geometry.sdf import SDFGrid, query_sdf

V = 6890
N_SCENES = 5


def scene_grid(rng: np.random.Generator, dim: int) -> SDFGrid:
    """A 8 x 8 x 3 m room: floor at z = 0 plus one random box (a table), as a float32 SDF grid."""
    lo, hi = np.array([-4.0, -4.0, -0.5]), np.array([4.0, 4.0, 2.5])
    axes = [np.linspace(lo[i], hi[i], dim, dtype=np.float32) for i in range(3)]
    centre = np.array([*rng.uniform(-2, 2, 2), 0.4], np.float32)
    half = np.array([*rng.uniform(0.3, 0.8, 2), 0.4], np.float32)
    # separable evaluation keeps the 256³ build to ~1 s per scene
    qx = (np.abs(axes[0] - centre[0]) - half[0])[:, None, None]
    qy = (np.abs(axes[1] - centre[1]) - half[1])[None, :, None]
    qz = (np.abs(axes[2] - centre[2]) - half[2])[None, None, :]
    outside = np.sqrt(np.maximum(qx, 0) ** 2 + np.maximum(qy, 0) ** 2 + np.maximum(qz, 0) ** 2)
    box = outside + np.minimum(np.maximum(np.maximum(qx, qy), qz), 0)
    values = np.minimum(box, axes[2][None, None, :]).astype(np.float32)  # union with the floor half-space
    return SDFGrid(values, lo, hi)


def synthetic_split(n: int, dim: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    # a crude body: an ellipsoidal shell 1.7 m tall, feet at z = 0
    u = rng.normal(size=(V, 3))
    u /= np.linalg.norm(u, axis=1, keepdims=True)
    body = (u * [0.25, 0.15, 0.85] + [0, 0, 0.85]).astype(np.float32)
    yaw = rng.uniform(0, 2 * np.pi, n)
    rot = np.zeros((n, 3, 3), np.float32)
    rot[:, 0, 0], rot[:, 0, 1], rot[:, 1, 0], rot[:, 1, 1], rot[:, 2, 2] = np.cos(yaw), -np.sin(yaw), np.sin(yaw), np.cos(yaw), 1
    pos = np.concatenate([rng.uniform(-3, 3, (n, 2)), np.zeros((n, 1))], 1).astype(np.float32)
    gt_w = body @ rot.transpose(0, 2, 1) + pos[:, None]
    pred_w = gt_w + rng.normal(0, 0.03, (n, 1, 3)).astype(np.float32) + rng.normal(0, 0.02, (n, V, 3)).astype(np.float32)
    # cameras 3-5 m away looking at the person (world -> camera)
    T = np.tile(np.eye(4), (n, 1, 1))
    for i in range(n):
        eye = pos[i] + np.array([*rng.normal(0, 1, 2) + 4, 1.5])
        fwd = pos[i] + [0, 0, 1] - eye
        fwd /= np.linalg.norm(fwd)
        right = np.cross(fwd, [0, 0, 1])
        right /= np.linalg.norm(right)
        down = np.cross(fwd, right)
        R = np.stack([right, down, fwd])
        T[i, :3, :3], T[i, :3, 3] = R, -R @ eye
    pred_c = (pred_w @ T[:, :3, :3].transpose(0, 2, 1).astype(np.float32) + T[:, None, :3, 3].astype(np.float32)).astype(np.float32)
    reg = rng.uniform(size=(17, V)) * (rng.uniform(size=(17, V)) < 0.02)
    reg /= reg.sum(1, keepdims=True)
    ids = np.array([f"frame_{i:05d}" for i in range(n)])
    grids = {f"scene_{k}": scene_grid(rng, dim) for k in range(N_SCENES)}
    gt = dict(
        gt_frame_ids=ids,
        gt_verts_world=gt_w,
        regressor17=reg,
        scene_ids=np.array([f"scene_{k}" for k in rng.integers(0, N_SCENES, n)]),
        sdf_grids=grids,
        T_world_to_cam=T,
        gt_contact=gt_w[..., 2] < 0.05,
    )
    pred = Predictions(frame_ids=ids, body_model="synthetic", num_vertices=V, verts_cam=pred_c)
    return gt, pred


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: KiB


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=3000)
    ap.add_argument("--grid-dim", type=int, default=256)
    ap.add_argument("--out", type=Path, default=Path("reports/bench/metrics.json"))
    args = ap.parse_args()

    t0 = time.perf_counter()
    gt, pred = synthetic_split(args.frames, args.grid_dim)
    setup_s = time.perf_counter() - t0
    rss_after_setup = peak_rss_mb()

    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        path = write_predictions(Path(tmp) / "preds.npz", pred, expected_num_vertices=V)
        write_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        pred = read_predictions(path, expected_num_vertices=V)
        read_s = time.perf_counter() - t0
        file_mb = path.stat().st_size / 2**20

    t0 = time.perf_counter()
    table, summary = evaluate_arrays(pred, **gt)
    eval_s = time.perf_counter() - t0

    pts = gt["gt_verts_world"].reshape(-1, 3)
    grid = next(iter(gt["sdf_grids"].values()))
    t0 = time.perf_counter()
    query_sdf(grid, pts)
    query_s = time.perf_counter() - t0

    result = {
        "benchmark": "evaluate_arrays (release evaluation + extras), synthetic split",
        "frames": args.frames,
        "num_vertices": V,
        "scenes": N_SCENES,
        "sdf_grid_dim": args.grid_dim,
        "prediction_frame": "cam (mapped to world with inverse(T_world_to_cam))",
        "evaluate_wall_s": round(eval_s, 3),
        "evaluate_frames_per_s": round(args.frames / eval_s, 1),
        "query_sdf_points": int(len(pts)),
        "query_sdf_wall_s": round(query_s, 3),
        "query_sdf_mpoints_per_s": round(len(pts) / query_s / 1e6, 2),
        "predictions_file_mb": round(file_mb, 1),
        "predictions_write_s": round(write_s, 3),
        "predictions_read_s": round(read_s, 3),
        "setup_s": round(setup_s, 3),
        "peak_rss_mb_after_setup": round(rss_after_setup, 1),
        "peak_rss_mb": round(peak_rss_mb(), 1),
        "summary": summary,
        "machine": {
            "cpu_count": os.cpu_count(),
            "torch_threads": torch.get_num_threads(),
            "python": platform.python_version(),
            "numpy": np.__version__,
            "torch": torch.__version__,
        },
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(format_paper_table(summary))
    print(json.dumps({k: v for k, v in result.items() if k not in ("summary", "machine")}, indent=2))


if __name__ == "__main__":
    main()
