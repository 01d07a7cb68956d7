"""Per-frame views for the failure explorer: projected meshes on the crop, and the 3D scene."""

from __future__ import annotations

import numpy as np

from sahmr.geometry.camera import invert_rigid, project, transform
from sahmr.geometry.sdf import query_sdf
from sahmr.viz.scene3d import contact_points, scene_figure

CONTACT_THRESHOLD = 0.07


def crop_overlay(ax, image: np.ndarray, K: np.ndarray, box_xyxy: np.ndarray, meshes: list[tuple[np.ndarray, str, str]], margin: float = 0.15):
    """Show the square crop around ``box_xyxy`` with projected vertices of each (verts_cam, colour, label)."""
    x0, y0, x1, y1 = box_xyxy
    cx, cy, half = (x0 + x1) / 2, (y0 + y1) / 2, max(x1 - x0, y1 - y0) / 2 * (1 + margin)
    ax.imshow(image)
    for verts_cam, colour, label in meshes:
        uv = project(verts_cam, K)
        ax.scatter(uv[::3, 0], uv[::3, 1], s=0.6, c=colour, alpha=0.5, linewidths=0, label=label)
    ax.set_xlim(cx - half, cx + half)
    ax.set_ylim(cy + half, cy - half)
    ax.legend(loc="lower right", fontsize=7, markerscale=8)
    ax.axis("off")
    return ax


def predicted_contact(verts_world: np.ndarray, sdf_grid) -> np.ndarray:
    """(V,) bool: predicted vertices within 7 cm of the scene surface (inside counts), as the metrics."""
    return np.asarray(query_sdf(sdf_grid, verts_world.astype(np.float32))) <= CONTACT_THRESHOLD


def per_part_contact(pred_contact: np.ndarray, gt_contact: np.ndarray, part_ids: np.ndarray, part_names) -> list[dict]:
    """Precision/recall per contact part (vertices of that part only); NaN where undefined."""
    rows = []
    for p in range(1, len(part_names)):
        sel = part_ids == p
        tp = int((pred_contact & gt_contact & sel).sum())
        n_pred, n_gt = int((pred_contact & sel).sum()), int((gt_contact & sel).sum())
        rows.append(
            {
                "part": part_names[p],
                "gt": n_gt,
                "pred": n_pred,
                "tp": tp,
                "precision": tp / n_pred if n_pred else np.nan,
                "recall": tp / n_gt if n_gt else np.nan,
            }
        )
    return rows


def frame_scene_figure(
    scene_points_world,
    faces,
    gt_world,
    pred_world,
    gt_contact,
    gt_part,
    pred_contact,
    gt_pelvis,
    pred_pelvis,
    radius: float = 2.5,
    title: str = "",
    other_world=None,
    other_name: str = "refined mesh",
):
    """3D view around the person: scene points within ``radius`` of the GT pelvis, GT and predicted
    meshes (and `other_world`, e.g. the refined prediction, in blue), GT contacts (by part) and predicted
    contacts, pelvis markers — each toggleable."""
    near = np.linalg.norm(scene_points_world - gt_pelvis, axis=1) < radius
    meshes = [
        {"verts": gt_world, "faces": faces, "name": "GT mesh", "color": "#2ca02c", "opacity": 0.45},
        {"verts": pred_world, "faces": faces, "name": "predicted mesh", "color": "#d62728", "opacity": 0.45},
    ]
    if other_world is not None:
        meshes.append({"verts": other_world, "faces": faces, "name": other_name, "color": "#1f77b4", "opacity": 0.45})
    pts = [
        contact_points(gt_world, gt_contact, gt_part, name="GT contact vertices"),
        {"xyz": pred_world[pred_contact], "name": "predicted contact vertices", "color": "#000000", "size": 2},
        {"xyz": gt_pelvis, "name": "GT pelvis", "color": "#2ca02c", "size": 7, "symbol": "diamond"},
        {"xyz": pred_pelvis, "name": "predicted pelvis", "color": "#d62728", "size": 7, "symbol": "diamond"},
    ]
    return scene_figure(scene_points_world[near], meshes, pts, title=title)


def world_from_cam(T_world_to_cam: np.ndarray, verts_cam: np.ndarray) -> np.ndarray:
    return transform(invert_rigid(np.asarray(T_world_to_cam, np.float64)), np.asarray(verts_cam, np.float64))


__all__ = ["crop_overlay", "predicted_contact", "per_part_contact", "frame_scene_figure", "world_from_cam"]
