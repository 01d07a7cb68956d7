"""``sahmr data preview``: a PNG montage of dataset frames to check the data by eye.

Each panel: the image, the projected GT mesh (light overlay), contact vertices coloured by part,
scene points of the box frustum (small dots, coloured by depth) and the person box.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from sahmr.body.parts import PART_COLORS
from sahmr.data.format import open_dataset
from sahmr.data.frustum import frustum_points_cam
from sahmr.geometry.camera import project, transform


def pick_frames(pose_class: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """n frame indices covering the pose classes round-robin (deterministic for the generator)."""
    by_class = {c: rng.permutation(np.flatnonzero(pose_class == c)).tolist() for c in sorted(set(pose_class.tolist()))}
    out: list[int] = []
    while len(out) < n and any(by_class.values()):
        for c in list(by_class):
            if by_class[c] and len(out) < n:
                out.append(by_class[c].pop())
    return np.array(out, dtype=np.int64)


def render_montage(
    root: str | Path, out: str | Path, split: str = "train", n: int = 12, cols: int = 4, seed: int = 0, max_points: int = 4000
) -> Path:
    # Figure objects (no pyplot): no global backend switch, so this also works inside notebooks.
    from matplotlib.figure import Figure
    from matplotlib.patches import Rectangle

    ds = open_dataset(root)
    if split not in ds.splits:
        raise ValueError(f"{root}: no split {split!r}; available: {sorted(ds.splits)}")
    arr = ds.split(split)
    rng = np.random.default_rng(seed)
    idx = pick_frames(np.asarray(arr["pose_class"]), n, rng)
    rows = int(np.ceil(len(idx) / cols))
    fig = Figure(figsize=(4.2 * cols, 3.4 * rows))
    axes = fig.subplots(rows, cols, squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for ax, i in zip(axes.ravel(), idx):
        img = ds.image(split, int(i))
        K, T = np.asarray(arr["K"][i], np.float64), np.asarray(arr["T_world_to_cam"][i], np.float64)
        verts_cam = transform(T, np.asarray(arr["verts_world"][i], np.float64))
        uv = project(verts_cam, K)
        box = np.asarray(arr["person_box_xyxy"][i], np.float64)
        # what the network would see of the scene (spec §1.8), here in the tight person box
        pts = frustum_points_cam(np.asarray(ds.scene_points(str(arr["scene_id"][i])), np.float32), K, T, box).astype(np.float64)
        if len(pts) > max_points:
            pts = pts[rng.choice(len(pts), max_points, replace=False)]
        puv = project(pts, K)
        ax.imshow(img)
        ax.scatter(uv[:, 0], uv[:, 1], s=0.15, c="white", alpha=0.25, linewidths=0)
        ax.scatter(puv[:, 0], puv[:, 1], s=0.4, c=pts[:, 2], cmap="viridis", alpha=0.5, linewidths=0)
        contact = np.asarray(arr["contact"][i])
        part = np.asarray(arr["contact_part"][i])
        ax.scatter(uv[contact, 0], uv[contact, 1], s=1.5, c=PART_COLORS[part[contact]], linewidths=0)
        ax.add_patch(Rectangle(box[:2], box[2] - box[0], box[3] - box[1], fill=False, ec="yellow", lw=0.8))
        W, H = np.asarray(arr["image_size"][i])
        ax.set_xlim(0, W)
        ax.set_ylim(H, 0)
        ax.set_title(
            f"{arr['frame_id'][i]}  {arr['pose_class'][i]}  {float(arr['distance'][i]):.1f} m  occl {float(arr['occlusion'][i]):.2f}", fontsize=7
        )
    fig.suptitle(f"{ds.name} / {split}: projected GT mesh (white), contact vertices by part, scene points in the box frustum (by depth)", fontsize=9)
    fig.tight_layout()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp.png")
    fig.savefig(tmp, dpi=100)
    tmp.replace(out)
    return out
