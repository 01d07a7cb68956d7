"""File I/O of the canonical format: JSON, .npy, images (PNG) and scenes (points, SDF, mesh, meta), each
written atomically; paths inside a dataset are checked relative posix paths."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np

from sahmr.atomic import atomic_write
from sahmr.geometry.sdf import SDFGrid, save_sdf_npz
from sahmr.mesh_io import write_ply_mesh
from sahmr.reading import read_rgb

from .schema import DatasetFormatError, check_id

_NUM_LIST_RE = re.compile(r"\[\s+([-+0-9.eE,\s]+?)\s+\]")


def dumps_json(obj: Any) -> str:
    """Indented, key-sorted JSON with short numeric lists on one line (shapes, boxes)."""
    text = json.dumps(obj, indent=2, sort_keys=True)
    return _NUM_LIST_RE.sub(lambda m: "[" + ", ".join(x.strip() for x in m.group(1).split(",")) + "]", text) + "\n"


def write_json(path: Path, obj: Any) -> Path:
    data = dumps_json(obj).encode()
    return atomic_write(path, lambda f: f.write(data))


def write_npy(path: Path, array: np.ndarray) -> Path:
    return atomic_write(path, lambda f: np.save(f, np.ascontiguousarray(array), allow_pickle=False))


def resolve_rel(root: Path, rel_path: str, what: str = "path") -> Path:
    """root / rel_path, refusing absolute paths and paths escaping root."""
    p = PurePosixPath(rel_path)
    if p.is_absolute() or ".." in p.parts or not p.parts or "\\" in rel_path:
        raise DatasetFormatError(f"{what} {rel_path!r} must be a relative posix path inside the dataset root")
    return root / Path(*p.parts)


def write_image(root: str | os.PathLike, rel_path: str, rgb_uint8: np.ndarray, *, compress_level: int = 1) -> Path:
    """Write an RGB image atomically to ``root / rel_path`` (PNG, or JPEG by extension). Returns the path.

    rgb_uint8: (H, W, 3) uint8. compress_level: PNG zlib level (1 = fast writes, ~2x larger than 9; decode
    speed is about the same). Output bytes are a pure function of the pixels (no timestamps).
    Safe to call from worker processes (each call is independent).
    """
    from PIL import Image

    rgb = np.asarray(rgb_uint8)
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise DatasetFormatError(f"write_image({rel_path}): expected (H, W, 3) uint8 RGB, got {rgb.shape} {rgb.dtype}")
    path = resolve_rel(Path(root), rel_path, "image path")
    suffix = path.suffix.lower()
    if suffix == ".png":
        kwargs = dict(format="PNG", compress_level=compress_level)
    elif suffix in (".jpg", ".jpeg"):
        kwargs = dict(format="JPEG", quality=95)
    else:
        raise DatasetFormatError(f"write_image({rel_path}): unsupported extension {suffix!r}; use .png or .jpg")
    im = Image.fromarray(np.ascontiguousarray(rgb))
    return atomic_write(path, lambda f: im.save(f, **kwargs))


def read_image(root: str | os.PathLike, rel_path: str) -> np.ndarray:
    """(H, W, 3) uint8 RGB of ``root / rel_path``."""
    path = resolve_rel(Path(root), rel_path, "image path")
    return np.asarray(read_rgb(path, f"image '{rel_path}' of the dataset"))


def write_scene(
    root: str | os.PathLike,
    scene_id: str,
    points_world: np.ndarray,
    sdf_grid: SDFGrid | None,
    mesh: Any = None,
    meta: Mapping[str, Any] | None = None,
) -> Path:
    """Write one scene's files under ``root/scenes/<scene_id>/`` (atomically, file by file).

    points_world: (M, 3) float, M >= 1, world frame, metres (stored float32).
    sdf_grid: the scene's SDF (:class:`sahmr.geometry.sdf.SDFGrid`), or None when the source has none
        (evaluation's PenE / ConFE then refuse the scene; training does not need it).
    mesh: optional ``trimesh.Trimesh`` (vertex colours kept) or ``(vertices (Nv, 3), faces (F, 3)[, vertex
        colours (Nv, 3) uint8])`` -> ``mesh.ply`` (world frame).
    meta: optional JSON-serialisable dict stored in ``scene.json`` under "meta" (e.g. RICH voxel pitch).
    Returns the scene folder. Usable from worker processes; the scene becomes part of the dataset when
    a split references it or it was written through :meth:`DatasetWriter.write_scene`.
    """
    check_id("scene id", scene_id)
    pts = np.asarray(points_world)
    if pts.ndim != 2 or pts.shape[1] != 3 or len(pts) == 0 or pts.dtype.kind not in "fiu":
        raise DatasetFormatError(f"scene {scene_id}: points_world must be a non-empty (M, 3) float array, got {pts.shape} {pts.dtype}")
    pts = pts.astype(np.float32)
    if not np.isfinite(pts).all():
        raise DatasetFormatError(f"scene {scene_id}: points_world has {int((~np.isfinite(pts)).any(1).sum())} non-finite points")
    if sdf_grid is not None and not isinstance(sdf_grid, SDFGrid):
        raise DatasetFormatError(f"scene {scene_id}: sdf_grid must be a sahmr.geometry.sdf.SDFGrid or None, got {type(sdf_grid).__name__}")
    d = Path(root) / "scenes" / scene_id
    d.mkdir(parents=True, exist_ok=True)
    write_npy(d / "points_world.npy", pts)
    if sdf_grid is not None:
        save_sdf_npz(d / "sdf.npz", sdf_grid)
    else:
        (d / "sdf.npz").unlink(missing_ok=True)
    has_mesh = mesh is not None
    if has_mesh:
        if isinstance(mesh, tuple):
            write_ply_mesh(d / "mesh.ply", *mesh)  # (vertices, faces[, vertex_colors])
        elif hasattr(mesh, "vertices") and hasattr(mesh, "faces"):
            visual = getattr(mesh, "visual", None)
            colors = None
            if getattr(visual, "kind", None) == "vertex":
                colors = np.asarray(visual.vertex_colors, dtype=np.uint8)
            write_ply_mesh(d / "mesh.ply", np.asarray(mesh.vertices), np.asarray(mesh.faces), colors)
        else:
            raise DatasetFormatError(f"scene {scene_id}: mesh must be a trimesh.Trimesh or (vertices, faces[, colors]), got {type(mesh).__name__}")
    else:
        (d / "mesh.ply").unlink(missing_ok=True)
    info = {
        "scene_id": scene_id,
        "num_points": int(len(pts)),
        "has_sdf": sdf_grid is not None,
        "sdf_dims": list(sdf_grid.dims) if sdf_grid is not None else None,
        "sdf_min_world": [float(x) for x in sdf_grid.min_world] if sdf_grid is not None else None,
        "sdf_max_world": [float(x) for x in sdf_grid.max_world] if sdf_grid is not None else None,
        "has_mesh": has_mesh,
        "meta": dict(meta or {}),
    }
    write_json(d / "scene.json", info)
    return d
