"""Benchmark the dataset format and the training Dataset on one CPU core.

Synthesises a dataset with the writer (default: 4 scenes of 100k points, 192 frames of 512x384
images, V = 6890), then measures:

* the writer (arrays + finalize with the content hash) and `validate_dataset` (with the hash);
* `HumanSceneDataset` items/s in the main process with one torch thread (the goal is >= 200 samples/s at
  the cpu preset's crop size 128), training augmentation on, collated in batches of 16, and the time
  per stage (image decode, crop, frustum culling of the scene, mesh transform);
* the same through a DataLoader with 2 workers (for reference; the dev machines have 2 cores).

Both image formats the format supports are measured (PNG, lossless; JPEG quality 95). Writes JSON to
reports/bench/dataset.json.

    python benchmarks/bench_dataset.py [--frames 192] [--points 100000] [--crop 128] [--image-formats png,jpg]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the float crop reference lives with the tests
from sahmr.data.dataset import HumanSceneDataset, collate_human_scene, frustum_points_cam, worker_init_fn
from sahmr.data.format import DatasetWriter, write_image
from sahmr.data.format.validate import validate_dataset
from sahmr.geometry.camera import look_at, square_crop_box
from sahmr.geometry.sdf import SDFGrid
from tests.helpers.reference_camera import crop_image

V = 6890
W, H = 512, 384
N_SCENES = 4


def room_points(rng, n):
    """An 8 x 8 x 2.7 m room (floor, 4 walls, ceiling, 6 boxes) as a noisy surface cloud."""
    parts = []
    k = n // 12
    parts.append(np.c_[rng.uniform(-4, 4, (3 * k, 2)), np.zeros(3 * k)])
    parts.append(np.c_[rng.uniform(-4, 4, (k, 2)), np.full(k, 2.7)])
    for axis, val in ((0, -4), (0, 4), (1, -4), (1, 4)):
        p = np.c_[rng.uniform(-4, 4, k), rng.uniform(-4, 4, k), rng.uniform(0, 2.7, k)]
        p[:, axis] = val
        parts.append(p)
    rest = n - sum(len(p) for p in parts)
    lo = rng.uniform(-3.5, 2.5, (6, 3)) * [1, 1, 0]
    hi = lo + rng.uniform([0.4, 0.4, 0.4], [1.5, 1.5, 1.0], (6, 3))
    which = rng.integers(0, 6, rest)
    parts.append(rng.uniform(lo[which], hi[which]))
    return (np.concatenate(parts) + rng.normal(0, 0.003, (n, 3))).astype(np.float32)


def render_like_image(rng, uv, bbox):
    """A textured room-like background with a flat-shaded 'person' silhouette from the projected verts."""
    y, x = np.mgrid[0:H, 0:W].astype(np.float32)
    img = np.stack([60 + 0.2 * x, 80 + 0.25 * y, 120 + 40 * np.sin(x / 23) * np.cos(y / 17)], -1)
    for _ in range(4):  # furniture blocks with a texture
        x0, y0 = rng.integers(0, W - 80), rng.integers(H // 3, H - 40)
        img[y0 : y0 + 60, x0 : x0 + 120] = rng.uniform(40, 220, 3) + 10 * np.sin(x[y0 : y0 + 60, x0 : x0 + 120, None] / 3)
    img += rng.normal(0, 3, img.shape)
    u = np.clip(uv[:, 0].astype(int), 0, W - 1)
    v = np.clip(uv[:, 1].astype(int), 0, H - 1)
    img[v, u] = [200, 150, 120]
    return img.clip(0, 255).astype(np.uint8)


def synthesise(root: Path, frames: int, points: int, seed: int = 0, image_ext: str = ".png") -> dict:
    rng = np.random.default_rng(seed)
    t0 = time.perf_counter()
    w = DatasetWriter(root, "bench", {"name": "toy", "num_verts": V, "sha256": ""}, {"seed": seed})
    axis = np.linspace(-0.5, 3.0, 32, dtype=np.float32)
    sdf = SDFGrid(np.broadcast_to(axis, (32, 32, 32)).copy(), [-4.0, -4.0, -0.5], [4.0, 4.0, 3.0])
    for s in range(N_SCENES):
        w.write_scene(f"scene_{s:03d}", room_points(rng, points), sdf)
    scene_s = time.perf_counter() - t0

    u = rng.normal(size=(V, 3))
    u /= np.linalg.norm(u, axis=1, keepdims=True)
    body = u * [0.25, 0.15, 0.85] + [0, 0, 0.85]
    arrays: dict[str, list] = {
        k: []
        for k in ("frame_id", "image_path", "scene_id", "camera_id", "K", "T_world_to_cam", "bbox_xyxy", "verts_world", "pelvis_world", "distance")
    }
    t0 = time.perf_counter()
    img_s = 0.0
    for i in range(frames):
        fid = f"train_{i:06d}"
        pos = np.array([*rng.uniform(-2, 2, 2), 0.0])
        verts = body + pos
        f = rng.uniform(400, 600)
        K = np.array([[f, 0, W / 2], [0, f, H / 2], [0, 0, 1]])
        ang = rng.uniform(0, 2 * np.pi)
        dist = rng.uniform(2.5, 6.0)
        T = look_at(pos + [dist * np.cos(ang), dist * np.sin(ang), rng.uniform(1.0, 2.5)], pos + [0, 0, 0.9])
        vc = verts @ T[:3, :3].T + T[:3, 3]
        uv = (vc @ K.T)[:, :2] / vc[:, 2:]
        bbox = np.r_[uv.min(0), uv.max(0)]
        rel = w.image_path("train", fid, ext=image_ext)
        t1 = time.perf_counter()
        write_image(root, rel, render_like_image(rng, uv, bbox))
        img_s += time.perf_counter() - t1
        pelvis = verts.mean(0)
        for k, v in (
            ("frame_id", fid),
            ("image_path", rel),
            ("scene_id", f"scene_{i % N_SCENES:03d}"),
            ("camera_id", f"cam_{i}"),
            ("K", K),
            ("T_world_to_cam", T),
            ("bbox_xyxy", bbox),
            ("verts_world", verts),
            ("pelvis_world", pelvis),
            ("distance", np.linalg.norm(T[:3, :3] @ pelvis + T[:3, 3])),
        ):
            arrays[k].append(v)
    out = {k: np.asarray(v) for k, v in arrays.items()}
    out["image_size"] = np.tile([W, H], (frames, 1))
    out["joints14_world"] = out["verts_world"][:, :14]
    out["contact"] = out["verts_world"][..., 2] < 0.05
    out["contact_part"] = np.where(out["contact"], 1, 0)
    out["pose_class"] = ["stand"] * frames
    out["occlusion"] = np.zeros(frames)
    out["truncated"] = np.zeros(frames, bool)
    t1 = time.perf_counter()
    w.write_split("train", out)
    split_s = time.perf_counter() - t1
    t1 = time.perf_counter()
    meta = w.finalize()
    finalize_s = time.perf_counter() - t1
    return {
        "scenes_write_s": round(scene_s, 3),
        "images_write_s": round(img_s, 3),
        "image_file_kb": round(np.mean([p.stat().st_size for p in (root / "images/train").iterdir()]) / 1024, 1),
        "write_split_s": round(split_s, 3),
        "finalize_s (validate + hash)": round(finalize_s, 3),
        "frames_total_s": round(time.perf_counter() - t0, 3),
        "content_hash": meta["content_hash"],
    }


def time_items(ds: HumanSceneDataset, n_items: int, batch: int = 16) -> float:
    """Samples/s of ds[i] + collate, in the main process."""
    idx = np.random.default_rng(0).permutation(len(ds))
    idx = np.resize(idx, n_items)
    t0 = time.perf_counter()
    for s in range(0, n_items, batch):
        collate_human_scene([ds[int(i)] for i in idx[s : s + batch]])
    return n_items / (time.perf_counter() - t0)


def stage_times(ds: HumanSceneDataset, n: int) -> dict:
    """Median ms per item of each stage of __getitem__, timed in isolation."""
    from PIL import Image

    reader = ds.reader
    a = reader.split("train")
    rng = np.random.default_rng(0)
    acc: dict[str, list] = {"image_decode": [], "crop": [], "frustum": [], "mesh_transform": [], "getitem_total": [], "collate_per_item": []}
    for _j in range(n):
        i = int(rng.integers(len(ds)))
        t = time.perf_counter()
        with Image.open(reader.image_file(str(a["image_path"][i]))) as im:
            img = np.asarray(im.convert("RGB") if im.mode != "RGB" else im)
        acc["image_decode"].append(time.perf_counter() - t)
        box = square_crop_box(a["bbox_xyxy"][i], 10.0, 0.4, rng)
        t = time.perf_counter()
        crop_image(img, box, ds.crop_size)
        acc["crop"].append(time.perf_counter() - t)
        pts = reader.scene_points(str(a["scene_id"][i]))
        t = time.perf_counter()
        frustum_points_cam(pts, a["K"][i], a["T_world_to_cam"][i], box)
        acc["frustum"].append(time.perf_counter() - t)
        T = np.asarray(a["T_world_to_cam"][i])
        t = time.perf_counter()
        np.asarray(a["verts_world"][i]) @ np.ascontiguousarray(T[:3, :3].T) + T[:3, 3]
        acc["mesh_transform"].append(time.perf_counter() - t)
        t = time.perf_counter()
        items = [ds[i]]
        acc["getitem_total"].append(time.perf_counter() - t)
        items = items * 16
        t = time.perf_counter()
        collate_human_scene(items)
        acc["collate_per_item"].append((time.perf_counter() - t) / 16)
    return {k: round(float(np.median(v)) * 1e3, 3) for k, v in acc.items()}


def bench_format(args, image_format: str) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "bench"
        write = synthesise(root, args.frames, args.points, image_ext="." + image_format)
        t0 = time.perf_counter()
        problems = validate_dataset(root)
        validate_s = time.perf_counter() - t0
        assert not [p for p in problems if p.severity == "error"], problems

        train = HumanSceneDataset(root, "train", args.crop, train_augment=True, seed=0)
        time_items(train, min(64, args.items))  # warm the page cache and allocator
        results = {
            "train_crop": round(time_items(train, args.items), 1),
            "eval_crop": round(time_items(HumanSceneDataset(root, "train", args.crop), args.items), 1),
            "train_crop_224": round(time_items(HumanSceneDataset(root, "train", 224, train_augment=True), args.items), 1),
        }
        stages = stage_times(train, 200)
        mean_points = float(np.mean([len(train[i]["points_cam"]) for i in range(0, len(train), 8)]))

        loader_sps = None
        if args.workers > 0:
            loader = torch.utils.data.DataLoader(
                train,
                batch_size=16,
                shuffle=True,
                num_workers=args.workers,
                collate_fn=collate_human_scene,
                worker_init_fn=worker_init_fn,
                persistent_workers=True,
                generator=torch.Generator().manual_seed(0),
            )
            next(iter(loader))
            t0 = time.perf_counter()
            n = 0
            while n < args.items:
                for b in loader:
                    n += len(b["meta"])
                    if n >= args.items:
                        break
            loader_sps = round(n / (time.perf_counter() - t0), 1)
            del loader
        data_mb = sum(p.stat().st_size for p in root.rglob("*") if p.is_file()) / 2**20
    return {
        "samples_per_s_main_process": results,
        "samples_per_s_dataloader": {"workers": args.workers, "train_crop": loader_sps},
        "stage_ms_median": stages,
        "mean_frustum_points": round(mean_points, 1),
        "write": write,
        "validate_with_hash_s": round(validate_s, 3),
        "dataset_mb": round(data_mb, 1),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=192)
    ap.add_argument("--points", type=int, default=100_000)
    ap.add_argument("--crop", type=int, default=128)
    ap.add_argument("--items", type=int, default=768, help="items timed per configuration")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument(
        "--image-formats",
        default="png,jpg",
        help="comma list of how the synthesised frames are stored (png: lossless, zlib level 1; jpg: quality 95); each is benchmarked",
    )
    ap.add_argument("--out", type=Path, default=Path("reports/bench/dataset.json"))
    args = ap.parse_args()
    torch.set_num_threads(1)
    formats = [f.strip() for f in args.image_formats.split(",") if f.strip()]
    if not formats or any(f not in ("png", "jpg") for f in formats):
        raise SystemExit(f"--image-formats: use png and/or jpg, got {args.image_formats!r}")

    per_format = {f: bench_format(args, f) for f in formats}
    result = {
        "benchmark": "canonical dataset format + HumanSceneDataset (CPU, main process, one torch thread)",
        "frames": args.frames,
        "image_size": [W, H],
        "num_vertices": V,
        "scene_points": args.points,
        "scenes": N_SCENES,
        "crop_size": args.crop,
        "goal_samples_per_s": 200,
        "by_image_format": per_format,
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0, 1),
        "machine": {
            "cpu_count": os.cpu_count(),
            "loadavg_1min_at_end": round(os.getloadavg()[0], 2),
            "torch_threads": torch.get_num_threads(),
            "python": platform.python_version(),
            "numpy": np.__version__,
            "torch": torch.__version__,
        },
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
