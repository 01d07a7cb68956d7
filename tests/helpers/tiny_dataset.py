"""A tiny dataset in the canonical format, built with the writer (random but valid arrays, small images).

World z up; people are ellipsoidal point shells standing on the floor; cameras 3-4 m away at 1.2-1.8 m
height looking at them; the tight box is the box of the projected vertices.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from sahmr.data.format import DatasetWriter, write_image
from sahmr.geometry.camera import look_at
from sahmr.geometry.sdf import SDFGrid

V = 50
W, H = 160, 120
SCENES = ("scene_a", "scene_b")
BODY_META = {"name": "toy-body", "num_verts": V, "sha256": "0" * 64, "model_type": "smpl"}


def scene_points(rng: np.random.Generator, n: int = 3000) -> np.ndarray:
    """Floor, two walls and a box, as a noisy point cloud (world, z up)."""
    k = n // 4
    floor = np.c_[rng.uniform(-4, 4, (k, 2)), np.zeros(k)]
    wall1 = np.c_[rng.uniform(-4, 4, k), np.full(k, 4.0), rng.uniform(0, 2.5, k)]
    wall2 = np.c_[np.full(k, -4.0), rng.uniform(-4, 4, k), rng.uniform(0, 2.5, k)]
    box = rng.uniform([0.5, 0.5, 0.0], [1.2, 1.0, 0.45], (n - 3 * k, 3))
    return (np.concatenate([floor, wall1, wall2, box]) + rng.normal(0, 0.002, (n, 3))).astype(np.float32)


def floor_sdf() -> SDFGrid:
    axis_z = np.linspace(-0.5, 2.5, 7)
    values = np.broadcast_to(axis_z[None, None, :], (6, 6, 7)).astype(np.float32)
    return SDFGrid(values.copy(), [-4.0, -4.0, -0.5], [4.0, 4.0, 2.5])


def split_arrays(rng: np.random.Generator, split: str, n: int, shared_camera: bool = True) -> dict:
    u = rng.normal(size=(V, 3))
    u /= np.linalg.norm(u, axis=1, keepdims=True)
    body = u * [0.25, 0.15, 0.85] + [0, 0, 0.85]
    ids, paths, scenes, cams = [], [], [], []
    K = np.zeros((n, 3, 3))
    T = np.zeros((n, 4, 4))
    verts = np.zeros((n, V, 3))
    for i in range(n):
        fid = f"{split}_{i:06d}"
        ids.append(fid)
        paths.append(f"images/{split}/{fid}.png")
        scenes.append(SCENES[i % 2])
        pos = np.array([*rng.uniform(-1, 1, 2), 0.0])
        verts[i] = body * rng.uniform(0.9, 1.1) + pos
        if shared_camera and i == 2:  # frames 0 and 2: same scene, same camera
            cams.append(cams[0])
            K[i], T[i] = K[0], T[0]
            verts[i] = verts[0] + [0.05, 0.0, 0.0]
            continue
        cams.append(f"cam_{split}_{i}")
        f = rng.uniform(140, 160)
        K[i] = [[f, 0, W / 2 + rng.uniform(-3, 3)], [0, f, H / 2 + rng.uniform(-3, 3)], [0, 0, 1]]
        ang = rng.uniform(0, 2 * np.pi)
        eye = pos + [3.5 * np.cos(ang), 3.5 * np.sin(ang), rng.uniform(1.2, 1.8)]
        T[i] = look_at(eye, pos + [0, 0, 0.9])
    R, t = T[:, :3, :3], T[:, :3, 3]
    vc = np.einsum("nij,nvj->nvi", R, verts) + t[:, None]
    uv = np.einsum("nij,nvj->nvi", K, vc)
    uv = uv[..., :2] / uv[..., 2:]
    bbox = np.concatenate([uv.min(1), uv.max(1)], 1)
    pelvis = verts.mean(1)
    contact = verts[..., 2] < 0.15
    part = np.where(contact, rng.integers(1, 8, contact.shape), 0)
    return {
        "frame_id": ids,
        "image_path": paths,
        "scene_id": scenes,
        "camera_id": cams,
        "K": K,
        "T_world_to_cam": T,
        "image_size": np.tile([W, H], (n, 1)),
        "person_box_xyxy": bbox,
        "verts_world": verts,
        "joints14_world": verts[:, :14],
        "pelvis_world": pelvis,
        "contact": contact,
        "contact_part": part,
        "pose_class": ["stand"] * n,
        "occlusion": rng.uniform(0, 1, n),
        "distance": np.linalg.norm(np.einsum("nij,nj->ni", R, pelvis) + t, axis=1),
        "truncated": np.zeros(n, bool),
        "betas": rng.normal(size=(n, 10)),
        "body_pose": rng.normal(size=(n, 69)) * 0.1,
        "global_orient": rng.normal(size=(n, 3)),
        "transl": pelvis,
    }


def image_for(rng: np.random.Generator) -> np.ndarray:
    y, x = np.mgrid[0:H, 0:W]
    base = np.stack([x * 1.5, y * 2.0, (x + y) % 64 * 4.0], -1)
    return (base + rng.integers(0, 20, (H, W, 3))).clip(0, 255).astype(np.uint8)


def make_tiny_dataset(root: Path, seed: int = 0, splits: dict | None = None, with_mesh: bool = True) -> dict:
    """Write the tiny dataset at `root`; returns {"meta": ..., "arrays": {split: arrays}, "images": {rel: rgb},
    "points": {scene: points}}."""
    rng = np.random.default_rng(seed)
    splits = splits or {"train": 6, "val": 3}
    w = DatasetWriter(root, "tiny", BODY_META, {"seed": seed, "kind": "test fixture"})
    points = {}
    for sid in SCENES:
        points[sid] = scene_points(rng)
        mesh = (np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1]], float), np.array([[0, 1, 2], [0, 1, 3]])) if with_mesh else None
        w.write_scene(sid, points[sid], floor_sdf(), mesh=mesh, meta={"pitch": 0.02})
    all_arrays, images = {}, {}
    for split, n in splits.items():
        arrays = split_arrays(rng, split, n)
        for rel in arrays["image_path"]:
            images[rel] = image_for(rng)
            write_image(root, rel, images[rel])
        w.write_split(split, arrays)
        all_arrays[split] = arrays
    meta = w.finalize()
    return {"meta": meta, "arrays": all_arrays, "images": images, "points": points}
