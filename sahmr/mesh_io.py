"""The kit's one mesh / point-cloud writer (PLY, OBJ), atomic, with deterministic bytes: dataset scenes
(``scenes/<id>/mesh.ply``, part of a dataset's content hash) and `sahmr predict`'s outputs.

PLY files are binary little-endian (float32 xyz, uint8 rgb, int32 faces); OBJ is text with 1-based
face indices. Both open in MeshLab, Blender and trimesh. A leaf module (numpy only).
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from sahmr.atomic import atomic_write_bytes

__all__ = ["write_ply_mesh", "write_ply_points", "write_obj"]


def _check(verts: np.ndarray, faces: np.ndarray | None = None, colors: np.ndarray | None = None):
    v = np.asarray(verts, dtype=np.float32)
    if v.ndim != 2 or v.shape[1] != 3:
        raise ValueError(f"verts: expected (N, 3), got {v.shape}")
    f = None
    if faces is not None:
        f = np.asarray(faces)
        if f.ndim != 2 or f.shape[1] != 3 or f.dtype.kind not in "iu" or (f.size and (f.min() < 0 or f.max() >= len(v))):
            raise ValueError(f"faces: expected (F, 3) integer indices into {len(v)} vertices, got {f.shape} {f.dtype}")
        f = f.astype(np.int32)
    c = None
    if colors is not None:
        c = np.asarray(colors)
        if c.shape not in ((len(v), 3), (len(v), 4)) or c.dtype != np.uint8:
            raise ValueError(f"colors: expected ({len(v)}, 3) or ({len(v)}, 4) uint8 (alpha dropped), got {c.shape} {c.dtype}")
        c = c[:, :3]
    return v, f, c


def _ply_bytes(v: np.ndarray, f: np.ndarray | None, c: np.ndarray | None) -> bytes:
    head = ["ply", "format binary_little_endian 1.0", f"element vertex {len(v)}", "property float x", "property float y", "property float z"]
    fields = [("xyz", "<f4", (3,))]
    if c is not None:
        head += ["property uchar red", "property uchar green", "property uchar blue"]
        fields.append(("rgb", "u1", (3,)))
    if f is not None:
        head += [f"element face {len(f)}", "property list uchar int vertex_indices"]
    head.append("end_header")
    rows = np.empty(len(v), dtype=fields)
    rows["xyz"] = v
    if c is not None:
        rows["rgb"] = c
    out = io.BytesIO()
    out.write(("\n".join(head) + "\n").encode("ascii"))
    out.write(rows.tobytes())
    if f is not None:
        frows = np.empty(len(f), dtype=[("n", "u1"), ("idx", "<i4", (3,))])
        frows["n"] = 3
        frows["idx"] = f
        out.write(frows.tobytes())
    return out.getvalue()


def write_ply_mesh(path: str | Path, verts: np.ndarray, faces: np.ndarray, colors: np.ndarray | None = None) -> Path:
    """verts (V, 3), faces (F, 3) int, colors optional (V, 3|4) uint8 -> binary PLY at `path`."""
    v, f, c = _check(verts, faces, colors)
    return atomic_write_bytes(path, _ply_bytes(v, f, c))


def write_ply_points(path: str | Path, points: np.ndarray, colors: np.ndarray | None = None) -> Path:
    """points (N, 3), colors optional (N, 3) uint8 -> binary PLY point cloud at `path` (N may be 0)."""
    v, _, c = _check(points, None, colors)
    return atomic_write_bytes(path, _ply_bytes(v, None, c))


def write_obj(path: str | Path, verts: np.ndarray, faces: np.ndarray) -> Path:
    """verts (V, 3), faces (F, 3) int (0-based) -> Wavefront OBJ text at `path` (1-based indices)."""
    v, f, _ = _check(verts, faces)
    buf = io.StringIO()
    np.savetxt(buf, v, fmt="v %.6f %.6f %.6f")
    np.savetxt(buf, f + 1, fmt="f %d %d %d")
    return atomic_write_bytes(path, buf.getvalue().encode("ascii"))
