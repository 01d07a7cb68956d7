"""Benchmark the synthetic-benchmark renderer (and the scene tools) on one CPU core.

Frames: a generated furnished room + one 6,890-vertex body (the `sahmr-open` template from
models/sahmr-open.npz when present, else a synthetic capsule with the same vertex count), 512 x 384,
static camera 1-2.5 m high and 2-7 m from the person, default lights (key light with shadows + fill).
Times the fast path used by the generator (`Renderer(scene).render(..., extra_items=[body])`: static BVH
built once, a new body mesh and BVH per frame), then with the body's BVH cached (the same person seen
by another camera): full, without shadows, masks only (shade=False); the one-shot `render()` (everything
rebuilt) and `render_mask(body)`. Also times the per-scene tools:
`generate_scene`, `scan_points` (default), `scene_sdf_grid` (2 cm). Writes reports/bench/render.json.

The process is pinned to one core (os.sched_setaffinity) unless --no-pin; wall and CPU (process) time
are both reported — on a shared machine CPU time is the steadier number.

    python benchmarks/bench_render.py [--frames 24] [--width 512 --height 384] [--out reports/bench/render.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import time
from pathlib import Path

import numpy as np
import trimesh

from sahmr.data.synth.layout import generate_scene
from sahmr.data.synth.render import Renderer, default_lights, render, render_mask, scene_render_item
from sahmr.data.synth.scan import scan_points
from sahmr.data.synth.sdf import scene_sdf_grid
from sahmr.geometry.camera import look_at

V = 6890


def load_body() -> tuple[np.ndarray, np.ndarray, str]:
    """(verts (V,3) z-up, feet at z = 0, centred; faces; source)."""
    path = Path(os.environ.get("SAHMR_MODELS_DIR", "models")) / "sahmr-open.npz"
    if path.is_file():
        with np.load(path, allow_pickle=False) as z:
            v, f = z["v_template"].astype(np.float64), z["f"].astype(np.int64)
        v = v @ np.array([[-1.0, 0, 0], [0, 0, 1.0], [0, 1.0, 0]]).T  # SMPL axes -> z up, facing +y
        src = str(path)
    else:  # a capsule with exactly V vertices
        m = trimesh.creation.capsule(height=1.2, radius=0.25, count=[57, 122])
        v, f = m.vertices[:V], m.faces[(m.faces < V).all(1)]
        src = "synthetic capsule"
    v = v - [v[:, 0].mean(), v[:, 1].mean(), v[:, 2].min()]
    return v, f, src


def timed(fn, reps: int) -> tuple[list[float], list[float], object]:
    wall, cpu, out = [], [], None
    for _ in range(reps):
        w, c = time.perf_counter(), time.process_time()
        out = fn()
        wall.append(time.perf_counter() - w)
        cpu.append(time.process_time() - c)
    return wall, cpu, out


def stats_ms(xs: list[float]) -> dict:
    a = np.asarray(xs) * 1e3
    return {"median": round(float(np.median(a)), 2), "p90": round(float(np.percentile(a, 90)), 2), "min": round(float(a.min()), 2)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=24)
    ap.add_argument("--scenes", type=int, default=3)
    ap.add_argument("--width", type=int, default=512)
    ap.add_argument("--height", type=int, default=384)
    ap.add_argument("--no-pin", action="store_true", help="do not pin the process to one core")
    ap.add_argument("--out", type=Path, default=Path("reports/bench/render.json"))
    args = ap.parse_args()
    if not args.no_pin and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[-1]})

    W, H = args.width, args.height
    rng = np.random.default_rng(0)
    body_v, body_f, body_src = load_body()
    vc = np.where(body_v[:, 2:3] > 0.9, [0.85, 0.62, 0.52], [0.2, 0.25, 0.55])  # skin above, trousers below

    fast, fast_cpu, noshadow, mask_only, oneshot, mask_alone, second_view = [], [], [], [], [], [], []
    rays, visible = [], []
    scene_times: dict[str, list[float]] = {"generate_scene": [], "scan_points": [], "scene_sdf_grid_2cm": []}
    scan_sizes, grid_mb = [], []
    per_scene = max(1, args.frames // args.scenes)
    for k in range(args.scenes):
        w, _, scene = timed(lambda: generate_scene(np.random.default_rng(100 + k), scene_id=f"bench{k}"), 1)
        scene_times["generate_scene"] += w
        w, _, pts = timed(lambda: scan_points(scene, np.random.default_rng(k)), 1)
        scene_times["scan_points"] += w
        scan_sizes.append(len(pts))
        w, _, grid = timed(lambda: scene_sdf_grid(scene, spacing=0.02), 1)
        scene_times["scene_sdf_grid_2cm"] += w
        grid_mb.append(grid.values.nbytes / 2**20)

        renderer = Renderer([scene_render_item(scene)])
        frames = []
        for pos in scene.sample_stand_points(rng, per_scene, clearance=0.4):
            yaw = rng.uniform(-np.pi, np.pi)
            c, s = np.cos(yaw), np.sin(yaw)
            verts = body_v @ np.array([[c, -s, 0], [s, c, 0], [0, 0, 1.0]]).T + pos
            for _ in range(100):  # a camera inside the room, 1-2.5 m high, 2-7 m away
                ang, dist = rng.uniform(-np.pi, np.pi), rng.uniform(2.0, 7.0)
                eye = np.array([pos[0] + dist * np.cos(ang), pos[1] + dist * np.sin(ang), rng.uniform(1.0, 2.5)])
                if (eye[:2] > scene.room_min[:2] + 0.2).all() and (eye[:2] < scene.room_max[:2] - 0.2).all():
                    break
            T = look_at(eye, pos + [0, 0, 0.9])
            f = 0.9 * W / (2 * np.tan(np.radians(rng.uniform(25, 35))))
            K = np.array([[f, 0, (W - 1) / 2], [0, f, (H - 1) / 2], [0, 0, 1.0]])
            frames.append((trimesh.Trimesh(verts, body_f, process=False), K, T))
        renderer.render(*frames[0][1:], W, H, extra_items=[(frames[0][0], vc, 1000)])  # warm-up: static BVH
        for mesh, K, T in frames:
            item = [(mesh, vc, 1000)]
            # a new body mesh per frame (as in the generator): the cached BVH of the previous call is not reused
            w, c, res = [], [], None
            for _ in range(3):
                fresh = [(trimesh.Trimesh(mesh.vertices + rng.normal(0, 1e-6, mesh.vertices.shape), body_f, process=False), vc, 1000)]
                w1, c1, res = timed(lambda: renderer.render(K, T, W, H, extra_items=fresh), 1)
                w += w1
                c += c1
            fast += w
            fast_cpu += c
            renderer.render(K, T, W, H, extra_items=item, shade=False)  # builds and caches this body's BVH
            second_view += timed(lambda: renderer.render(K, T, W, H, extra_items=item), 1)[0]
            noshadow += timed(lambda: renderer.render(K, T, W, H, extra_items=item, shadows=False), 1)[0]
            mask_only += timed(lambda: renderer.render(K, T, W, H, extra_items=item, shade=False), 1)[0]
            oneshot += timed(lambda: render([scene_render_item(scene), (mesh, vc, 1000)], K, T, W, H), 1)[0]
            mask_alone += timed(lambda: render_mask(mesh, K, T, W, H), 1)[0]
            # rays: primary (every pixel + the body's box) + shadow rays of the key light on lit surfaces
            key = np.asarray(default_lights()[0].direction, float)
            key /= np.linalg.norm(key)
            lit = (res.instance > 0) & ((res.normals @ key) > 0)
            rays.append(W * H + int(res.silhouettes[0].sum()) + int(lit.sum()))
            visible.append(int((res.instance == 1000).sum()))

    med = float(np.median(fast)) * 1e3
    med_cpu = float(np.median(fast_cpu)) * 1e3
    result = {
        "benchmark": "ray-casting renderer (trimesh/embreex), furnished room + one body, one core",
        "image": [W, H],
        "frames": len(rays),
        "body": {"vertices": int(len(body_v)), "faces": int(len(body_f)), "source": body_src},
        "fast_path_ms_per_frame": stats_ms(fast),
        "fast_path_cpu_ms_per_frame": stats_ms(fast_cpu),
        "fast_path_rays_per_s": round(float(np.mean(rays)) / (med / 1e3), 0),
        "primary_rays_per_frame": W * H,
        "mean_rays_per_frame": round(float(np.mean(rays)), 0),
        "same_body_again_ms_per_frame": stats_ms(second_view),
        "no_shadows_ms_per_frame": stats_ms(noshadow),
        "masks_only_ms_per_frame": stats_ms(mask_only),
        "oneshot_render_ms_per_frame": stats_ms(oneshot),
        "render_mask_body_ms": stats_ms(mask_alone),
        "target_ms_per_frame": 80.0,
        "meets_target_wall": bool(med <= 80.0),
        "meets_target_cpu": bool(med_cpu <= 80.0),
        "mean_visible_body_pixels": round(float(np.mean(visible)), 0),
        "scene_tools_s": {k: round(float(np.mean(v)), 3) for k, v in scene_times.items()},
        "scan_points_per_room": [int(n) for n in scan_sizes],
        "sdf_grid_2cm_mb": [round(x, 1) for x in grid_mb],
        "machine": {
            "python": platform.python_version(),
            "processor": platform.processor() or platform.machine(),
            "cpus_available": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
            "pinned_to_one_core": not args.no_pin,
            "load_avg_1min": round(os.getloadavg()[0], 2),
        },
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0, 1),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
