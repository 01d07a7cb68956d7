"""Benchmark: pure-torch sparse conv vs spconv vs dense conv3d on an RCNet-like workload.

Workload (spec §3.3–3.4): a cluttered synthetic scene (random planar patches, 2 cm sampling, 5 mm noise)
cropped to points within 1.25 m of three anchors 0.5 m apart along z, voxelised at 5 cm (≈20k voxels per
sample), 35 input channels, and the voxel path of SPVCNN: stem (2 × k3), 4 × [k2 s2 down, 2 residual
blocks], 4 × [k2 s2 transposed, concat skip, 2 residual blocks], Linear head; BN + ReLU everywhere.
Widths: `paper` = 32,32,64,128,256,256,128,96,96; `cpu` = half. The dense baseline runs the same network
with conv3d / conv_transpose3d on the zero-filled bounding grid (padded to a multiple of 16): the cost
the sparse backends avoid.

Measured per (preset, implementation, torch thread count), each in a fresh subprocess: forward+backward
wall time (median and min of `--reps` after one warm-up, including kernel-map construction, which happens
every forward), process CPU time, and peak memory of one step (CUDA: max allocated; CPU: peak growth of
the bytes malloc has handed out, polled with glibc's mallinfo2 — see `CpuPeakMemory`). The spconv
backend runs its CPU kernels single-threaded (see `sahmr/sparse/spconv_backend.py`: its CPU submanifold
conv races with more threads). On oversubscribed shared cores multi-threaded medians swing by 10x (every
one of the torch backend's ~10^4 small ops per step can wait for a descheduled OpenMP worker): read the
min, or the 1-thread rows, and the load average stored with the results.

    python benchmarks/bench_sparse.py                      # writes reports/bench/sparse.json
    python benchmarks/bench_sparse.py --reps 7 --threads 2 1
    python benchmarks/bench_sparse.py --presets cpu --impls torch spconv --reps 5
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import platform
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sahmr.sparse import (
    SparseBatchNorm,
    SparseConv3d,
    SparseConvTranspose3d,
    SparseReLU,
    SparseVoxelTensor,
    set_backend,
    sparse_add,
    sparse_cat,
    voxelize,
)

WIDTHS = {
    "paper": [32, 32, 64, 128, 256, 256, 128, 96, 96],
    "cpu": [16, 16, 32, 64, 128, 128, 64, 48, 48],
}
VOXEL = 0.05
C_IN, C_OUT = 35, 12


# ---- workload ---------------------------------------------------------------------------------------


def make_scene(seed: int, n_planes: int = 60, spacing: float = 0.02, radius: float = 1.25) -> torch.Tensor:
    """Points (P, 3) metres: random planar patches within `radius` of anchors (0,0,-0.5),(0,0,0),(0,0,0.5),
    shifted to a typical camera-frame position (z ≈ 3 m, some negative x/y coordinates)."""
    g = torch.Generator().manual_seed(seed)
    anchors = torch.tensor([[0.0, 0.0, -0.5], [0.0, 0.0, 0.0], [0.0, 0.0, 0.5]])
    pts = []
    for _ in range(n_planes):
        n = torch.randn(3, generator=g)
        n = n / n.norm()
        u = torch.linalg.cross(n, torch.randn(3, generator=g))
        u = u / u.norm()
        v = torch.linalg.cross(n, u)
        c = (torch.rand(3, generator=g) - 0.5) * 2.5
        su, sv = (0.3 + 1.5 * torch.rand(2, generator=g)).tolist()
        a, b = torch.meshgrid(torch.arange(-su / 2, su / 2, spacing), torch.arange(-sv / 2, sv / 2, spacing), indexing="ij")
        pts.append(c + a.reshape(-1, 1) * u + b.reshape(-1, 1) * v)
    p = torch.cat(pts)
    p = p + 0.005 * torch.randn(p.shape, generator=g)
    p = p[torch.cdist(p, anchors).min(1).values < radius]
    return p + torch.tensor([0.3, 0.2, 3.0])


def make_batch(batch_size: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """(points (P, 3), batch (P,)) for `batch_size` different scenes."""
    scenes = [make_scene(seed) for seed in range(batch_size)]
    b = torch.cat([torch.full((len(s),), i, dtype=torch.long) for i, s in enumerate(scenes)])
    return torch.cat(scenes).to(device), b.to(device)


# ---- networks -----------------------------------------------------------------------------------------


class SparseRes(nn.Module):
    def __init__(self, ci: int, co: int):
        super().__init__()
        self.net = nn.Sequential(SparseConv3d(ci, co, 3), SparseBatchNorm(co), SparseReLU(True), SparseConv3d(co, co, 3), SparseBatchNorm(co))
        self.skip = None if ci == co else nn.Sequential(SparseConv3d(ci, co, 1), SparseBatchNorm(co))
        self.relu = SparseReLU(True)

    def forward(self, x):
        s = x if self.skip is None else self.skip(x)
        return self.relu(sparse_add(self.net(x), s))


def _sparse_block(kind, ci, co):
    conv = SparseConv3d(ci, co, 2, 2) if kind == "down" else SparseConvTranspose3d(ci, co)
    return nn.Sequential(conv, SparseBatchNorm(co), SparseReLU(True))


class SparseUNet(nn.Module):
    """Voxel path of SPVCNN on SparseVoxelTensor (the backend is switched with `set_backend`)."""

    def __init__(self, cs: list[int]):
        super().__init__()
        self.stem = nn.Sequential(
            SparseConv3d(C_IN, cs[0], 3),
            SparseBatchNorm(cs[0]),
            SparseReLU(True),
            SparseConv3d(cs[0], cs[0], 3),
            SparseBatchNorm(cs[0]),
            SparseReLU(True),
        )
        self.down = nn.ModuleList(
            nn.Sequential(_sparse_block("down", cs[i], cs[i]), SparseRes(cs[i], cs[i + 1]), SparseRes(cs[i + 1], cs[i + 1])) for i in range(4)
        )
        skips = [cs[3], cs[2], cs[1], cs[0]]
        ins = [cs[4], cs[5], cs[6], cs[7]]
        self.up = nn.ModuleList(_sparse_block("up", ins[i], cs[5 + i]) for i in range(4))
        self.up_res = nn.ModuleList(nn.Sequential(SparseRes(cs[5 + i] + skips[i], cs[5 + i]), SparseRes(cs[5 + i], cs[5 + i])) for i in range(4))
        self.head = nn.Linear(cs[8], C_OUT)

    def forward(self, x: SparseVoxelTensor) -> torch.Tensor:
        feats = [self.stem(x)]
        for d in self.down:
            feats.append(d(feats[-1]))
        y = feats[-1]
        for i in range(4):
            y = self.up_res[i](sparse_cat([self.up[i](y), feats[3 - i]]))
        return self.head(y.feats)


class DenseRes(nn.Module):
    def __init__(self, ci: int, co: int):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv3d(ci, co, 3, padding=1, bias=False),
            nn.BatchNorm3d(co),
            nn.ReLU(True),
            nn.Conv3d(co, co, 3, padding=1, bias=False),
            nn.BatchNorm3d(co),
        )
        self.skip = nn.Identity() if ci == co else nn.Sequential(nn.Conv3d(ci, co, 1, bias=False), nn.BatchNorm3d(co))

    def forward(self, x):
        return F.relu(self.net(x) + self.skip(x))


class DenseUNet(nn.Module):
    """The same network with dense ops on a (B, C, X, Y, Z) grid."""

    def __init__(self, cs: list[int]):
        super().__init__()

        def blk(conv, co):
            return nn.Sequential(conv, nn.BatchNorm3d(co), nn.ReLU(True))

        self.stem = nn.Sequential(
            blk(nn.Conv3d(C_IN, cs[0], 3, padding=1, bias=False), cs[0]), blk(nn.Conv3d(cs[0], cs[0], 3, padding=1, bias=False), cs[0])
        )
        self.down = nn.ModuleList(
            nn.Sequential(blk(nn.Conv3d(cs[i], cs[i], 2, 2, bias=False), cs[i]), DenseRes(cs[i], cs[i + 1]), DenseRes(cs[i + 1], cs[i + 1]))
            for i in range(4)
        )
        skips = [cs[3], cs[2], cs[1], cs[0]]
        ins = [cs[4], cs[5], cs[6], cs[7]]
        self.up = nn.ModuleList(blk(nn.ConvTranspose3d(ins[i], cs[5 + i], 2, 2, bias=False), cs[5 + i]) for i in range(4))
        self.up_res = nn.ModuleList(nn.Sequential(DenseRes(cs[5 + i] + skips[i], cs[5 + i]), DenseRes(cs[5 + i], cs[5 + i])) for i in range(4))
        self.head = nn.Conv3d(cs[8], C_OUT, 1)

    def forward(self, grid):
        feats = [self.stem(grid)]
        for d in self.down:
            feats.append(d(feats[-1]))
        y = feats[-1]
        for i in range(4):
            y = self.up_res[i](torch.cat([self.up[i](y), feats[3 - i]], 1))
        return self.head(y)


# ---- one measurement (runs in its own process) -----------------------------------------------------------


class _MallInfo2(ctypes.Structure):
    _fields_ = [
        (n, ctypes.c_size_t) for n in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")
    ]


class CpuPeakMemory:
    """Peak bytes in use by malloc (glibc `mallinfo2`: heap in use + mmapped blocks), polled every ~0.5 ms
    by a thread while torch ops run without the GIL — the CPU analogue of `torch.cuda.max_memory_allocated`.
    mallinfo2 sees the main arena only, so the subprocess runs with MALLOC_ARENA_MAX=1."""

    def __init__(self):
        self._libc = ctypes.CDLL("libc.so.6")
        self._libc.mallinfo2.restype = _MallInfo2
        self.peak = 0
        self._stop = threading.Event()

    def in_use(self) -> int:
        m = self._libc.mallinfo2()
        return m.uordblks + m.hblkhd

    def __enter__(self):
        self.base = self.peak = self.in_use()
        self._stop.clear()
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self._thread.start()
        return self

    def _poll(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, self.in_use())
            time.sleep(0.0005)

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self.in_use())

    @property
    def peak_growth_mb(self) -> float:
        return (self.peak - self.base) / 2**20


def measure(preset: str, impl: str, batch_size: int, reps: int, device: str) -> dict:
    dev = torch.device(device)
    torch.manual_seed(0)
    points, batch = make_batch(batch_size, dev)
    x0, _, _ = voxelize(points, batch, VOXEL, batch_size=batch_size)
    coords = x0.coords
    n_vox = coords.shape[0]
    feats = torch.randn(n_vox, C_IN, device=dev)
    info = {
        "preset": preset,
        "impl": impl,
        "batch_size": batch_size,
        "num_voxels": n_vox,
        "num_points": int(points.shape[0]),
        "device": device,
        "threads": torch.get_num_threads(),
    }
    cs = WIDTHS[preset]
    if impl == "dense":
        lo = coords[:, 1:].amin(0)
        shape = ((coords[:, 1:].amax(0) - lo) // 16 + 1) * 16
        info["dense_grid"] = shape.tolist()
        net = DenseUNet(cs).to(dev)

        def step():
            grid = torch.zeros(batch_size, *shape.tolist(), C_IN, device=dev)
            c = coords[:, 1:] - lo
            grid[coords[:, 0], c[:, 0], c[:, 1], c[:, 2]] = feats
            out = net(grid.permute(0, 4, 1, 2, 3))
            out[coords[:, 0], :, c[:, 0], c[:, 1], c[:, 2]].square().mean().backward()
    else:
        net = set_backend(SparseUNet(cs), impl).to(dev)

        def step():
            x = SparseVoxelTensor(feats, coords, batch_size=batch_size)  # new hierarchy: maps rebuilt
            net(x).square().mean().backward()

    info["params_M"] = sum(p.numel() for p in net.parameters()) / 1e6

    def sync():
        if dev.type == "cuda":
            torch.cuda.synchronize()

    step()  # warm-up (allocator, spconv/JIT caches)
    net.zero_grad(set_to_none=True)
    sync()
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    mem = None
    times, cpu_times = [], []
    for i in range(reps):
        t, c = time.perf_counter(), time.process_time()
        if i == 0 and dev.type == "cpu":  # memory polled in the first timed step only (it costs a little)
            with CpuPeakMemory() as mem:
                step()
        else:
            step()
        sync()
        times.append(time.perf_counter() - t)
        cpu_times.append(time.process_time() - c)
        net.zero_grad(set_to_none=True)
    info["fwd_bwd_s"] = statistics.median(times)
    info["fwd_bwd_s_min"] = min(times)
    info["fwd_bwd_s_all"] = times
    info["cpu_s_median"] = statistics.median(cpu_times)  # process CPU time: less sensitive to shared cores
    if dev.type == "cuda":
        info["peak_mem_MB"] = torch.cuda.max_memory_allocated() / 2**20
        info["peak_mem_kind"] = "cuda_max_allocated"
    else:
        info["peak_mem_MB"] = mem.peak_growth_mb
        info["peak_mem_kind"] = "cpu_malloc_in_use_peak_growth"
    return info


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--presets", nargs="+", default=["cpu", "paper"], choices=list(WIDTHS))
    ap.add_argument("--impls", nargs="+", default=["torch", "spconv", "dense"], choices=["torch", "spconv", "dense"])
    ap.add_argument("--batch-size", type=int, default=1)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--dense-reps", type=int, default=1, help="dense conv is slow on CPU")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--out", default=str(Path(__file__).resolve().parents[1] / "reports/bench/sparse.json"))
    ap.add_argument(
        "--threads", nargs="+", type=int, default=[torch.get_num_threads()], help="torch intra-op thread counts to measure (dense only at the first)"
    )
    ap.add_argument("--one", nargs=2, metavar=("PRESET", "IMPL"), help=argparse.SUPPRESS)
    args = ap.parse_args()

    if args.one:
        torch.set_num_threads(args.threads[0])
        reps = args.dense_reps if args.one[1] == "dense" else args.reps
        print(json.dumps(measure(args.one[0], args.one[1], args.batch_size, reps, args.device)))
        return

    results = []
    load_before = os.getloadavg()
    for preset in args.presets:
        for ti, threads in enumerate(args.threads):
            for impl in args.impls:
                if impl == "dense" and ti > 0:
                    continue
                cmd = [
                    sys.executable,
                    __file__,
                    "--one",
                    preset,
                    impl,
                    "--batch-size",
                    str(args.batch_size),
                    "--reps",
                    str(args.reps),
                    "--dense-reps",
                    str(args.dense_reps),
                    "--device",
                    args.device,
                    "--threads",
                    str(threads),
                ]
                env = dict(os.environ, MALLOC_ARENA_MAX="1")  # all threads in the arena mallinfo2 reports
                r = subprocess.run(cmd, capture_output=True, text=True, env=env)
                if r.returncode != 0:
                    tail = r.stderr.strip().splitlines()[-1:] or ["?"]
                    res = {"preset": preset, "impl": impl, "threads": threads, "error": tail[0]}
                else:
                    res = json.loads(r.stdout.strip().splitlines()[-1])
                print(json.dumps(res), flush=True)
                results.append(res)
    # ratios within this run (never compare absolute times across machines)
    for preset in args.presets:
        ref = [r for r in results if r["preset"] == preset and r["impl"] == "torch" and "error" not in r and r["threads"] == args.threads[0]]
        for r in results:
            if ref and r["preset"] == preset and "error" not in r:
                r["time_vs_torch_median"] = r["fwd_bwd_s"] / ref[0]["fwd_bwd_s"]
                r["time_vs_torch_min"] = r["fwd_bwd_s_min"] / ref[0]["fwd_bwd_s_min"]
    print(f"{'preset':7} {'impl':7} {'thr':>3} {'voxels':>7} {'median s':>9} {'min s':>7} {'cpu s':>7} {'peak MB':>8}")
    for r in results:
        if "error" in r:
            print(f"{r['preset']:7} {r['impl']:7} {r['threads']:>3} ERROR {r['error']}")
        else:
            print(
                f"{r['preset']:7} {r['impl']:7} {r['threads']:>3} {r['num_voxels']:>7} {r['fwd_bwd_s']:>9.3f} "
                f"{r['fwd_bwd_s_min']:>7.3f} {r['cpu_s_median']:>7.3f} {r['peak_mem_MB']:>8.1f}"
            )
    report = {
        "benchmark": "sparse conv U-Net forward+backward (RCNet-like workload)",
        "machine": {
            "platform": platform.platform(),
            "cpu_count": os.cpu_count(),
            "torch": torch.__version__,
            "device": args.device,
            "loadavg_before": load_before,
            "loadavg_after": os.getloadavg(),
        },
        "notes": "CPU timings on shared cores are noisy: compare fwd_bwd_s_min (least disturbed) and the "
        "median; spconv runs its CPU kernels single-threaded (race in spconv 2.3.8 otherwise).",
        "results": results,
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
