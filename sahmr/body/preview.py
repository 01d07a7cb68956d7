"""``sahmr body preview``: a PNG of a body model in T-pose and a few poses, contact parts coloured."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from sahmr.body.model import BodyModel
from sahmr.body.parts import NUM_PARTS, PART_COLORS, PART_NAMES
from sahmr.body.poses import NAMED_POSES


def _draw(ax, verts: np.ndarray, faces: np.ndarray, face_colors: np.ndarray, view: str) -> None:
    from matplotlib.collections import PolyCollection

    # Orthographic views in SMPL axes: front looks along -z, back along +z, side along -x.
    axes = {"front": (0, 1, 2, 1.0), "back": (0, 1, 2, -1.0), "side": (2, 1, 0, -1.0)}
    u, v, d, s = axes[view]
    p = verts[:, [u, v]] * np.array([s if view != "side" else 1.0, 1.0])
    tri = verts[faces]
    n = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    n /= np.linalg.norm(n, axis=1, keepdims=True) + 1e-12
    facing = n[:, d] * s > 0  # back-face culling
    depth = tri[:, :, d].mean(1) * s
    order = np.argsort(depth)
    order = order[facing[order]]
    light = np.clip(0.35 + 0.65 * np.abs(n[order, d]), 0, 1)[:, None]
    ax.add_collection(PolyCollection(p[faces[order]], facecolors=face_colors[order] * light, edgecolors="none"))
    ax.set_xlim(p[:, 0].min() - 0.05, p[:, 0].max() + 0.05)
    ax.set_ylim(p[:, 1].min() - 0.05, p[:, 1].max() + 0.05)
    ax.set_aspect("equal")
    ax.axis("off")


def render_preview(model: BodyModel, out: str | Path) -> Path:
    """Write a grid: T-pose front/back/side, then each named pose (front), parts coloured."""
    # Figure objects (no pyplot): no global backend switch, so this also works inside notebooks.
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch

    faces = model.faces.cpu().numpy()
    pid = model.part_ids.cpu().numpy()
    face_pid = pid[faces].max(1)
    face_colors = PART_COLORS[face_pid]
    panels = [("t-pose", "front"), ("t-pose", "back"), ("t-pose", "side")]
    panels += [(name, "front") for name in NAMED_POSES if name != "t-pose"]
    poses = torch.as_tensor(np.stack([NAMED_POSES[name] for name, _ in panels]))
    with torch.no_grad():
        verts = model(body_pose=poses).verts.cpu().numpy()
    fig = Figure(figsize=(2.6 * len(panels), 4.2))
    axes = fig.subplots(1, len(panels))
    for ax, (name, view), v in zip(axes, panels, verts):
        _draw(ax, v, faces, face_colors, view)
        ax.set_title(f"{name} ({view})", fontsize=9)
    handles = [Patch(color=PART_COLORS[i], label=PART_NAMES[i]) for i in range(1, NUM_PARTS + 1)]
    fig.legend(handles=handles, loc="lower center", ncol=7, fontsize=8, frameon=False)
    V, Vm, Vc = model.level_sizes
    fig.suptitle(f"{model.name}: {V} vertices ({Vm} / {Vc} in the hierarchy), contact parts coloured", fontsize=10)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp.png")
    fig.savefig(tmp, dpi=110, bbox_inches="tight")
    tmp.replace(out)
    return out
