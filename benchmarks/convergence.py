"""Convergence study: validation metrics of RCNet, SAHMR and the image-only baseline against training steps.

Each task trains with the default recipe of ``params.yaml`` (same model, batch, crops, learning rate) but a
constant learning rate (no decay: ``milestones: [], gamma: 1``) and no per-epoch batch limit, and is
validated on the same validation subset as the default run (``limit_val_batches`` of its section) after
each budget of ``--steps`` (log-spaced). One run per task, continued between budgets through the loop's own
resume (``max_steps`` raised each time), so the point at N steps is exactly the model after N optimiser
steps of one uninterrupted-schedule run (a budget ends an epoch, so the next one starts a new shuffle).
The stage-2 tasks use the default pipeline's frozen RCNet (``train_sahmr.rcnet_ckpt``).

    python benchmarks/convergence.py                                   # all tasks, default budgets
    python benchmarks/convergence.py --tasks rcnet --steps 25 50 100   # a subset
    python benchmarks/convergence.py --summary                         # print the fitted budgets only

Writes ``reports/convergence/<task>.json`` after every point (atomically; resumable: points already there
are skipped, the run continues from ``<work>/<task>/checkpoints/last.ckpt``), and a summary with a
power-law fit per metric (`fit_power_law`: ``metric ≈ a · steps^-b`` on the last points) and the steps
it predicts for the issue's goals (`GOALS`; CPU hours at `benchmarks/bench_train.py`'s s/step), the MPJPE of two
references (`constant_pose_reference`), ``reports/convergence/summary.json``. Training folders go to
``--work`` (default ``runs/convergence``, git-ignored). The report notebook plots these files.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

DEFAULT_STEPS = {"rcnet": [25, 50, 100, 200, 400, 800, 1600], "sahmr": [25, 50, 100, 200, 400, 800, 1600], "baseline": [25, 50, 100, 200, 400, 800]}
# What each curve is plotted and fitted for: (metric, goal, "lower"|"higher" is better); goals from issue 17.
GOALS = {
    "rcnet": [("voxseg_iou", 0.3, "higher"), ("pelvis_error_refined_mm", 200.0, "lower"), ("pelvis_error_coarse_mm", None, "lower")],
    "sahmr": [
        ("MPJPE", 150.0, "lower"),
        ("PA_MPJPE", 100.0, "lower"),
        ("G_MPJPE", 250.0, "lower"),
        ("PelvisE", 200.0, "lower"),
        ("C_HSCP_L2", None, "lower"),
    ],
    "baseline": [("MPJPE", 150.0, "lower"), ("PA_MPJPE", 100.0, "lower"), ("G_MPJPE", None, "lower"), ("PelvisE", None, "lower")],
}
FLAT_FACTOR = 100  # an extrapolation past 100x the measured steps is reported as "flat", not as a budget
# The study's changes to the default recipe (everything else: the params.yaml section).
STUDY_OVERRIDES = [
    "milestones=[]",
    "gamma=1.0",
    "limit_train_batches=null",
    "epochs=100000",
    "keep_checkpoints=1",
    "sanity_val_steps=0",
    "ckpt_every_n_steps=null",
    "progress=none",
]


def _atomic_json(path: Path, obj: dict) -> None:
    from sahmr.atomic import atomic_write_bytes

    atomic_write_bytes(path, (json.dumps(obj, indent=1) + "\n").encode())


def _rel(path: Path) -> str:
    path = Path(path).resolve()
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def _machine() -> dict:
    import torch

    return {"cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(), "torch": torch.__version__, "python": platform.python_version()}


def run_task(task_name: str, steps: list[int], params: Path, data: Path, work: Path, out_dir: Path, extra: list[str]) -> dict:
    """Train `task_name` through the budgets `steps`, validating after each; returns the task's record."""
    from sahmr.train.loop import train
    from sahmr.train.tasks import load_task

    out_file = out_dir / f"{task_name}.json"
    overrides = [*STUDY_OVERRIDES, *extra]
    rec = json.loads(out_file.read_text()) if out_file.is_file() else {}
    if rec.get("overrides") != overrides or rec.get("params_file") != _rel(params):
        rec = {"task": task_name, "params_file": _rel(params), "overrides": overrides, "points": []}
    done = {p["step"] for p in rec["points"]}
    for n in sorted(steps):
        if n in done:
            continue
        cfg, task = load_task(task_name, params, [*overrides, f"max_steps={n}"], data=data, out=work / task_name, source=str(params))
        t0 = time.perf_counter()
        res = train(task, cfg)
        wall = time.perf_counter() - t0
        prev = max((p for p in rec["points"] if p["step"] < n), key=lambda p: p["step"], default=None)
        point = {
            "step": int(res["global_step"]),
            "samples_seen": int(res["global_step"]) * int(cfg.batch_size),
            "wall_s": round(wall, 1),
            "steps_this_call": int(res["global_step"]) - (prev["step"] if prev else 0),
            "num_val_samples": int(res["num_val_samples"]),
            "metrics": res["metrics"],
        }
        rec["points"] = sorted([*rec["points"], point], key=lambda p: p["step"])
        rec["batch_size"], rec["lr"], rec["machine"] = int(cfg.batch_size), float(res["lr"]), _machine()
        _atomic_json(out_file, rec)
        shown = {m: round(res["metrics"].get(m, float("nan")), 3) for m, _, _ in GOALS[task_name]}
        print(f"[convergence] {task_name} step {point['step']}: {shown} ({wall:.0f} s)", flush=True)
    return rec


def fit_power_law(steps: list[float], values: list[float], last: int = 4) -> tuple[float, float] | None:
    """Least-squares line through (log steps, log value) of the `last` points: value ≈ a · steps^(-b).
    Returns (a, b) or None with fewer than 3 positive points."""
    pts = [(math.log(s), math.log(v)) for s, v in zip(steps, values) if s > 0 and v > 0][-last:]
    if len(pts) < 3:
        return None
    mx = sum(x for x, _ in pts) / len(pts)
    my = sum(y for _, y in pts) / len(pts)
    sxx = sum((x - mx) ** 2 for x, _ in pts)
    slope = sum((x - mx) * (y - my) for x, y in pts) / sxx
    return math.exp(my - slope * mx), -slope


def steps_to_goal(fit: tuple[float, float] | None, goal: float, better: str) -> float | None:
    """Steps at which the fitted power law reaches `goal`; None when it never does (flat or wrong way)."""
    if fit is None:
        return None
    a, b = fit
    if (better == "lower" and b <= 1e-6) or (better == "higher" and b >= -1e-6):
        return None
    return (goal / a) ** (-1.0 / b)


def constant_pose_reference(data: Path, train_split: str, val_split: str, n_val: int) -> dict:
    """MPJPE / PA-MPJPE (mm) of a network that has learned nothing but the mean: every val frame predicted as
    the train split's mean pelvis-relative 14 joints in the camera frame, on the first `n_val` val frames (the
    loop's validation subset: unshuffled, in order). A curve at this level has not learned pose yet."""
    import numpy as np
    import torch

    from sahmr import metrics as M
    from sahmr.data.format import open_dataset
    from sahmr.geometry.camera import transform

    ds = open_dataset(data)

    def rel_cam(split: str, n: int | None) -> np.ndarray:
        a = ds.split(split)
        T = np.asarray(a["T_world_to_cam"], np.float64)[:n]
        return transform(T, np.asarray(a["joints14_world"], np.float64)[:n]) - transform(T, np.asarray(a["pelvis_world"], np.float64)[:n, None])

    gt = torch.from_numpy(rel_cam(val_split, n_val))
    const = torch.from_numpy(rel_cam(train_split, None).mean(0)).expand_as(gt).contiguous()
    zero = torch.zeros(len(gt), 3, dtype=gt.dtype)
    # The crop hides the direction of the ray through the person: a network that sees only the crop predicts
    # the pose in the ray's frame. Its error if that pose is taken as the camera-frame pose (perfect otherwise):
    a = ds.split(val_split)
    pelvis_cam = transform(np.asarray(a["T_world_to_cam"], np.float64)[:n_val], np.asarray(a["pelvis_world"], np.float64)[:n_val, None])[:, 0]
    R_ray = rotation_to_ray(pelvis_cam)
    in_ray = torch.from_numpy(np.einsum("nji,nkj->nki", R_ray, gt.numpy()))  # R_rayᵀ · pose
    ang = np.degrees(np.arccos(np.clip(pelvis_cam[:, 2] / np.linalg.norm(pelvis_cam, axis=1), -1, 1)))
    return {
        "what": f"every {val_split} frame predicted as the {train_split} split's mean pelvis-relative pose (camera frame)",
        "num_val_samples": len(gt),
        "MPJPE": float(M.mpjpe(const, gt, zero, zero).mean()),
        "PA_MPJPE": float(M.pa_mpjpe(const, gt).mean()),
        "ray_frame_MPJPE": float(M.mpjpe(in_ray, gt, zero, zero).mean()),
        "ray_angle_deg_mean": float(ang.mean()),
        "ray_angle_deg_max": float(ang.max()),
    }


def rotation_to_ray(points_cam):
    """(N, 3, 3) rotations taking the optical axis (0, 0, 1) to the unit ray through each point (N, 3) (Rodrigues)."""
    import numpy as np

    z = points_cam / np.linalg.norm(points_cam, axis=1, keepdims=True)
    out = np.repeat(np.eye(3)[None], len(z), 0)
    for i, r in enumerate(z):
        v = np.cross([0.0, 0.0, 1.0], r)
        s = np.linalg.norm(v)
        if s < 1e-12:
            continue
        vx = np.array([[0, -v[2], v[1]], [v[2], 0, -v[0]], [-v[1], v[0], 0]])
        out[i] = np.eye(3) + vx + vx @ vx * ((1 - r[2]) / s**2)
    return out


def step_seconds_from_bench(bench_file: Path) -> dict[str, float]:
    """{task: seconds per fp32 training step} from `benchmarks/bench_train.py`'s output ({} when absent): a
    clean per-step time (no validation, no start-up, nothing else running), unlike the study's wall times."""
    if not bench_file.is_file():
        return {}
    rows = json.loads(bench_file.read_text()).get("variants", [])
    return {r["task"]: float(r["step_s"]) for r in rows if r.get("variant") == "fp32" and "step_s" in r}


def summarize(out_dir: Path, reference: dict | None = None, step_seconds: dict[str, float] | None = None) -> dict:
    """Per task and metric: the last value, the power-law fit, and the steps / CPU hours it predicts for the
    goal; `reference` (`constant_pose_reference`) is stored as is. Two clocks: `cpu_hours_to_goal` at
    `step_seconds[task]` when given (`step_seconds_from_bench`: the bare step, a lower bound), else at the
    study's wall time per step; `wall_hours_to_goal` always at the study's wall time per step of its longest
    call (the training loop as run: data loading, validation and start-up included; what a user waits)."""
    summary: dict = {"note": "power law metric = a * steps^-b fitted on the last 4 points; an extrapolation, not a measurement", "tasks": {}}
    if reference:
        summary["constant_pose_reference"] = reference
    step_seconds = step_seconds or {}
    for task_name, goals in GOALS.items():
        f = out_dir / f"{task_name}.json"
        if not f.is_file():
            continue
        rec = json.loads(f.read_text())
        pts = rec["points"]
        if not pts:
            continue
        # seconds per step of the longest call (validation and start-up included: an upper bound)
        longest = max(pts, key=lambda p: p["steps_this_call"])
        wall_s_per_step = longest["wall_s"] / max(longest["steps_this_call"], 1)
        s_per_step = step_seconds.get(task_name, wall_s_per_step)
        source = "bench_train fp32 step" if task_name in step_seconds else "study wall time / steps (upper bound)"
        t = {
            "last_step": pts[-1]["step"],
            "s_per_step": round(s_per_step, 3),
            "s_per_step_source": source,
            "wall_s_per_step": round(wall_s_per_step, 3),
            "metrics": {},
        }
        for metric, goal, better in goals:
            xs = [p["step"] for p in pts if metric in p["metrics"]]
            ys = [p["metrics"][metric] for p in pts if metric in p["metrics"]]
            if not ys:
                continue
            fit = fit_power_law(xs, ys)
            entry = {"last": ys[-1], "best": (min(ys) if better == "lower" else max(ys)), "goal": goal, "better": better}
            if fit is not None:
                entry["fit_a"], entry["fit_b"] = fit
            if goal is not None:
                reached = (ys[-1] <= goal) if better == "lower" else (ys[-1] >= goal)
                n = None if reached else steps_to_goal(fit, goal, better)
                if n is not None and n > FLAT_FACTOR * t["last_step"]:  # a curve this flat says "not by budget"
                    entry["note"] = f"the fit reaches the goal only beyond {FLAT_FACTOR}x the measured budget ({n:.3g} steps)"
                    n = None
                entry["reached"] = bool(reached)
                entry["steps_to_goal"] = None if n is None else round(n)
                entry["cpu_hours_to_goal"] = None if n is None else round(n * s_per_step / 3600, 1)
                entry["wall_hours_to_goal"] = None if n is None else round(n * wall_s_per_step / 3600, 1)
            t["metrics"][metric] = entry
        summary["tasks"][task_name] = t
    return summary


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tasks", nargs="+", default=list(DEFAULT_STEPS), choices=list(DEFAULT_STEPS))
    ap.add_argument("--steps", nargs="+", type=int, default=None, help="budgets (optimiser steps); default per task: DEFAULT_STEPS")
    ap.add_argument("--params", type=Path, default=ROOT / "params.yaml")
    ap.add_argument("--data", type=Path, default=ROOT / "datasets" / "synth")
    ap.add_argument("--work", type=Path, default=ROOT / "runs" / "convergence")
    ap.add_argument("--out", type=Path, default=ROOT / "reports" / "convergence")
    ap.add_argument("-S", dest="extra", action="append", default=[], help="extra key=value override of every task's section")
    ap.add_argument(
        "--bench", type=Path, default=ROOT / "reports" / "bench" / "train_step.json", help="bench_train.py output: s/step for the CPU-hour estimates"
    )
    ap.add_argument("--summary", action="store_true", help="only (re)write summary.json from the points already measured")
    args = ap.parse_args(argv)
    os.chdir(ROOT)  # the params' relative paths (rcnet_ckpt, body model) are repo-relative
    if not args.summary:
        for name in args.tasks:
            run_task(name, args.steps or DEFAULT_STEPS[name], args.params, args.data, args.work, args.out, args.extra)
    reference = None
    stage2 = [json.loads((args.out / f"{t}.json").read_text()) for t in ("sahmr", "baseline") if (args.out / f"{t}.json").is_file()]
    if stage2 and stage2[0]["points"] and args.data.is_dir():
        reference = constant_pose_reference(args.data, "train", "val", stage2[0]["points"][-1]["num_val_samples"])
    summary = summarize(args.out, reference, step_seconds_from_bench(args.bench))
    _atomic_json(args.out / "summary.json", summary)
    print(json.dumps(summary, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
