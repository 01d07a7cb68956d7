"""Benchmark: one training step of RCNet, SAHMR and the baseline on CPU — its profile, and speed-ups that
leave the method unchanged, as ratios measured in one run.

A step is what the training loop does per batch: ``task.training_step`` (forward, targets, losses, stats),
``backward``, gradient clipping (value 0.5) and the fused Adam step, on real batches of the synthetic
benchmark's train split (``--data``, crops/augmentation as the ``train_<task>`` section of ``--params``).
Batches are read once before timing (the data loading is timed on its own: does one worker keep up?).

Variants (each in a fresh subprocess, rounds interleaved so drift hits all alike; median step time):
  fp32           the default
  channels_last  convolution weights and images in NHWC (oneDNN's native layout)
  bf16           ``torch.autocast("cpu", torch.bfloat16)`` around the forward (losses in fp32; weights fp32)
  bf16_cl        both
  compile        ``torch.compile`` of the image trunks (the default inductor backend)
  before         (with ``--before DIR``) fp32 with the kit's code imported from DIR, an older checkout:
                 a code change's before/after in the same run

    python benchmarks/bench_train.py                        # writes reports/bench/train_step.json
    python benchmarks/bench_train.py --tasks rcnet --variants fp32 bf16 --steps 5
    python benchmarks/bench_train.py --profile-only         # the step profile (forward/backward/optimiser, top ops)
    python benchmarks/bench_train.py --before /tmp/before   # + the fp32 step of an older checkout (before/after)
    python benchmarks/bench_train.py --device cuda --preset paper --variants fp32 bf16   # GPU steps/s, peak memory
    python benchmarks/bench_train.py --device cuda --agreement                          # CPU vs GPU forward
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import nullcontext
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VARIANTS = ("fp32", "channels_last", "bf16", "bf16_cl", "compile")


def _to(batch: dict, device: str) -> dict:
    return {k: (v.to(device) if hasattr(v, "to") else v) for k, v in batch.items()}


def _setup(task_name: str, params: Path, data: Path, n_batches: int, threads: int, device: str = "cpu", preset: str | None = None):
    """(task, model in train mode on `device`, optimizer, batches on `device`, seconds to load one batch, batch size).

    preset: another model preset than the params' (e.g. "paper"); a stage-2 task then gets a random RCNet of
    that preset (the timing does not depend on its weights)."""
    import torch

    from sahmr.data.dataset import collate_human_scene
    from sahmr.train.datamodule import open_split
    from sahmr.train.module import _fused_optimizer_ok
    from sahmr.train.tasks import load_task

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as tmp:
        overrides = []
        if preset:
            overrides.append(f"preset={preset}")
            if task_name != "rcnet":
                from sahmr.models.rcnet import RCNet, RCNetConfig

                torch.save(RCNet(RCNetConfig.preset(preset)).state_dict(), Path(tmp) / "rcnet.ckpt")
                overrides.append(f"rcnet_ckpt={Path(tmp) / 'rcnet.ckpt'}")
        cfg, task = load_task(task_name, params, overrides, data=data, out=tmp, source=str(params))
        model = task.build_model()
    crop = int(cfg.crop_size or task.crop_size)
    ds = open_split(cfg.data, cfg.train_split, crop, True, cfg.seed, {**dict(getattr(task, "dataset_kwargs", None) or {}), **dict(cfg.dataset)})
    bs = int(cfg.batch_size)
    t = time.perf_counter()
    batches = [collate_human_scene([ds[(i * bs + j) * 37 % len(ds)] for j in range(bs)]) for i in range(n_batches)]
    load_s = (time.perf_counter() - t) / n_batches
    batches = [_to(b, device) for b in batches]
    model.to(device).train()
    groups = task.optimizer_groups(model) if hasattr(task, "optimizer_groups") else [{"params": [p for p in model.parameters() if p.requires_grad]}]
    opt = torch.optim.Adam(groups, lr=cfg.resolved_lr(1), fused=_fused_optimizer_ok(groups))
    return task, model, opt, batches, load_s, bs


def _trunks(model):
    """The convolutional image trunks of a model (RCNet's HRNet; stage 2: the mesh transformer's too)."""
    out = []
    rc = getattr(model, "rcnet", model)
    if hasattr(rc, "root_net"):
        out.append((rc.root_net, "hrnet"))
    mt = getattr(model, "metro_enhanced", None)
    if mt is not None and hasattr(mt, "backbone"):
        out.append((mt, "backbone"))
    return out


def _sync(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()


def measure(
    task_name: str, variant: str, params: Path, data: Path, steps: int, warmup: int, threads: int, device: str = "cpu", preset: str | None = None
) -> dict:
    import torch

    task, model, opt, batches, load_s, bs = _setup(task_name, params, data, 3, threads, device, preset)
    dev = torch.device(device).type
    cl = variant in ("channels_last", "bf16_cl")
    if cl:
        model.to(memory_format=torch.channels_last)
        for b in batches:
            b["image"] = b["image"].contiguous(memory_format=torch.channels_last)
    if variant == "compile":
        for owner, attr in _trunks(model):
            setattr(owner, attr, torch.compile(getattr(owner, attr)))
    amp = (lambda: torch.autocast(dev, dtype=torch.bfloat16)) if variant.startswith("bf16") else nullcontext
    gen = torch.Generator(device=device).manual_seed(0)
    if dev == "cuda":
        torch.cuda.reset_peak_memory_stats()
    params_ = [p for g in opt.param_groups for p in g["params"]]
    times, losses = [], []
    t_first = None
    for i in range(warmup + steps):
        batch = batches[i % len(batches)]
        t = time.perf_counter()
        with amp():
            loss, _ = task.training_step(model, batch, gen)
        opt.zero_grad(set_to_none=True)
        loss.float().backward()
        torch.nn.utils.clip_grad_value_(params_, 0.5)
        opt.step()
        _sync(device)
        dt = time.perf_counter() - t
        if i == 0:
            t_first = dt
        if i >= warmup:
            times.append(dt)
            losses.append(float(loss))
    med = statistics.median(times)
    return {
        "task": task_name,
        "variant": variant,
        "device": device,
        "preset": preset or "params",
        "batch_size": bs,
        "peak_gpu_mem_gb": (torch.cuda.max_memory_allocated() / 2**30) if dev == "cuda" else None,
        "step_s_median": med,
        "step_s_min": min(times),
        "first_step_s": t_first,
        "steps_per_s": 1.0 / med,
        "samples_per_s": bs / med,
        "data_s_per_batch": load_s,
        "loss_mean": statistics.fmean(losses),
    }


def agreement(task_name: str, params: Path, data: Path, threads: int, device: str) -> dict:
    """One validation forward of the same model and batch on CPU and on `device`: per-sample metrics
    (pelvis errors, MPJPE, ...) and their largest absolute difference."""
    import copy

    task, model, _, batches, _, _ = _setup(task_name, params, data, 1, threads, "cpu")
    model.eval()
    ref = task.validation_metrics(model, batches[0])
    other = copy.deepcopy(model).to(device)
    got = task.validation_metrics(other, _to(batches[0], device))
    diff = {k: float((got[k].float().cpu() - ref[k].float()).abs().max()) for k in ref}
    return {"task": task_name, "device": device, "max_abs_diff": diff, "cpu_values": {k: ref[k].float().tolist() for k in ref}}


def profile(task_name: str, params: Path, data: Path, steps: int, threads: int) -> dict:
    """Split a step into forward (+targets, losses), backward and optimiser; the top ops by self CPU time."""
    import torch
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as tprofile

    task, model, opt, batches, load_s, bs = _setup(task_name, params, data, 2, threads)
    gen = torch.Generator().manual_seed(0)
    params_ = [p for g in opt.param_groups for p in g["params"]]
    parts: dict[str, list[float]] = {"forward": [], "backward": [], "optimizer": []}

    def step(batch):
        t0 = time.perf_counter()
        loss, _ = task.training_step(model, batch, gen)
        t1 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        t2 = time.perf_counter()
        torch.nn.utils.clip_grad_value_(params_, 0.5)
        opt.step()
        t3 = time.perf_counter()
        return t1 - t0, t2 - t1, t3 - t2

    step(batches[0])  # warm-up
    for i in range(steps):
        for k, v in zip(parts, step(batches[i % len(batches)])):
            parts[k].append(v)
    with tprofile(activities=[ProfilerActivity.CPU]) as prof:
        step(batches[1])
    total = sum(e.self_cpu_time_total for e in prof.key_averages())
    top = sorted(prof.key_averages(), key=lambda e: -e.self_cpu_time_total)[:15]
    return {
        "task": task_name,
        "batch_size": bs,
        "data_s_per_batch": load_s,
        "median_s": {k: statistics.median(v) for k, v in parts.items()},
        "top_ops_self_cpu_share": {e.key: round(e.self_cpu_time_total / total, 4) for e in top},
        "trainable_params": sum(p.numel() for p in params_),
        "all_params": sum(p.numel() for p in model.parameters()),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tasks", nargs="+", default=["rcnet", "sahmr", "baseline"])
    ap.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=VARIANTS)
    ap.add_argument("--steps", type=int, default=8, help="timed steps per measurement")
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=2, help="interleaved repetitions of every (task, variant)")
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--params", type=Path, default=ROOT / "params.yaml")
    ap.add_argument("--data", type=Path, default=ROOT / "datasets" / "synth")
    ap.add_argument("--out", type=Path, default=ROOT / "reports" / "bench" / "train_step.json")
    ap.add_argument("--profile-only", action="store_true")
    ap.add_argument("--device", default="cpu", help="cpu or cuda (timings synchronise the GPU)")
    ap.add_argument("--preset", default=None, help="model preset instead of the params' (e.g. paper)")
    ap.add_argument("--agreement", action="store_true", help="only compare one validation forward on CPU and --device")
    ap.add_argument(
        "--before",
        type=Path,
        default=None,
        help="a checkout of older kit code (e.g. `git worktree add /tmp/before REV`): adds its fp32 step as variant 'before'",
    )
    ap.add_argument("--worker", nargs=2, metavar=("TASK", "VARIANT"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    os.chdir(ROOT)
    if args.worker:
        task, variant = args.worker
        if variant == "profile":
            res = profile(task, args.params, args.data, args.steps, args.threads)
        elif variant == "agreement":
            res = agreement(task, args.params, args.data, args.threads, args.device)
        else:
            res = measure(task, variant, args.params, args.data, args.steps, args.warmup, args.threads, args.device, args.preset)
        print("RESULT " + json.dumps(res))
        return 0

    def run(task: str, variant: str) -> dict:
        env = dict(os.environ)
        if variant == "before":  # the same fp32 step with the kit's code from another checkout (--before DIR)
            env["PYTHONPATH"] = os.pathsep.join([str(args.before.resolve()), env.get("PYTHONPATH", "")])
            variant_arg = "fp32"
        else:
            variant_arg = variant
        cmd = [sys.executable, __file__, "--worker", task, variant_arg, "--steps", str(args.steps), "--warmup", str(args.warmup)]
        cmd += ["--threads", str(args.threads), "--params", str(args.params), "--data", str(args.data), "--device", args.device]
        cmd += ["--preset", args.preset] if args.preset else []
        p = subprocess.run(cmd, capture_output=True, text=True, env=env)
        line = next((ln for ln in p.stdout.splitlines() if ln.startswith("RESULT ")), None)
        if p.returncode != 0 or line is None:
            err = (p.stderr.strip().splitlines() or ["?"])[-1]
            print(f"[bench_train] {task} {variant}: failed: {err}", flush=True)
            return {"task": task, "variant": variant, "error": err}
        res = json.loads(line[len("RESULT ") :])
        res["variant"] = variant
        print(f"[bench_train] {task} {variant}: {json.dumps(res)}", flush=True)
        return res

    import torch

    out: dict = {"benchmark": f"training step on {args.device} (bench_train.py)", "preset": args.preset or "params"}
    if args.agreement:
        out["agreement"] = {t: run(t, "agreement") for t in args.tasks}
    elif args.device == "cpu":
        out["profiles"] = {t: run(t, "profile") for t in args.tasks}
    if not (args.profile_only or args.agreement):
        variants = [*args.variants, *(["before"] if args.before else [])]
        rows: dict[tuple[str, str], list[dict]] = {}
        for _ in range(args.rounds):
            for t in args.tasks:
                for v in variants:
                    rows.setdefault((t, v), []).append(run(t, v))
        table = []
        for t in args.tasks:
            base = [r["step_s_median"] for r in rows.get((t, "fp32"), []) if "error" not in r]
            for v in variants:
                ok = [r for r in rows[(t, v)] if "error" not in r]
                if not ok:
                    table.append({"task": t, "variant": v, "error": rows[(t, v)][-1]["error"]})
                    continue
                s = statistics.median(r["step_s_median"] for r in ok)
                row = {
                    k: ok[-1][k]
                    for k in ("task", "variant", "device", "batch_size", "data_s_per_batch", "first_step_s", "loss_mean", "peak_gpu_mem_gb")
                }
                row.update(step_s=s, steps_per_s=1 / s, samples_per_s=ok[-1]["batch_size"] / s)
                if base:
                    row["speedup_vs_fp32"] = statistics.median(base) / s
                table.append(row)
        out["variants"] = table
    out["machine"] = {
        "cpu_count": os.cpu_count(),
        "threads": args.threads,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "cpu": platform.processor(),
    }
    from sahmr.atomic import atomic_write_bytes

    atomic_write_bytes(args.out, (json.dumps(out, indent=1) + "\n").encode())
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
