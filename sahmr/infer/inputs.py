"""Reading and validating a user's inputs for `sahmr predict` (one frame).

Formats accepted (errors name the file, the field, what was expected and how to fix it):

* image: any RGB/RGBA/greyscale file Pillow reads (PNG, JPEG, …) -> (H, W, 3) uint8.
* scene: the pre-scanned scene as a point cloud in the *world* frame, metres:
  ``.npy`` (N, 3) float array; ``.npz`` with key ``points_world`` (or ``points``), (N, 3);
  ``.ply`` / ``.obj`` / ``.off`` / ``.stl`` / ``.glb`` point cloud or mesh (its vertices are used), read
  by trimesh. Non-finite rows are an error (they would silently vanish from the frustum otherwise).
* camera: a JSON file ``{"K": 3x3, "T_world_to_cam": 4x4, "image_size": [W, H]}``. ``K`` is in pixels
  of the given image; ``T_world_to_cam`` maps world points to the OpenCV camera (x right, y down,
  z forward) and must be rigid (omitted = identity: the scene is given in the camera frame);
  ``image_size`` is optional and, when present, must match the image.
* box: the person's tight box ``[x0, y0, x1, y1]`` in image pixels (from any person detector); it must
  have a positive size and overlap the image.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sahmr.reading import load_npy, load_npz, read_json, read_rgb

__all__ = ["FrameInputs", "load_image", "load_scene_points", "load_camera", "check_box", "load_inputs"]

_MESH_SUFFIXES = (".ply", ".obj", ".off", ".stl", ".glb", ".gltf")


@dataclass
class FrameInputs:
    """One frame. image: (H, W, 3) uint8; points_world: (N, 3) float32; K: (3, 3) float64;
    T_world_to_cam: (4, 4) float64; box_xyxy: (4,) float64 px; sources: where each piece came from."""

    image: np.ndarray
    points_world: np.ndarray
    K: np.ndarray
    T_world_to_cam: np.ndarray
    box_xyxy: np.ndarray
    sources: dict


def load_image(path: str | Path) -> np.ndarray:
    """(H, W, 3) uint8 RGB from an image file; FileNotFoundError / ValueError naming the file."""
    p = Path(path)
    if not p.is_file() and not p.is_dir():
        raise FileNotFoundError(f"image not found: {p} (--image: an RGB photo of the person, PNG or JPEG)")
    return np.asarray(read_rgb(p, "--image: an RGB photo of the person, PNG or JPEG"))


def _as_points(arr, where: str) -> np.ndarray:
    a = np.asarray(arr)
    if a.ndim != 2 or a.shape[1] != 3 or not (np.issubdtype(a.dtype, np.floating) or np.issubdtype(a.dtype, np.integer)):
        raise ValueError(f"{where}: expected an (N, 3) numeric array of world points in metres, got shape {a.shape} dtype {a.dtype}")
    if len(a) == 0:
        raise ValueError(f"{where}: the scene point cloud is empty")
    bad = ~np.isfinite(a).all(1)
    if bad.any():
        rows = np.flatnonzero(bad)
        raise ValueError(f"{where}: {len(rows)} point(s) are NaN/inf (first rows {rows[:5].tolist()}); remove them")
    return np.ascontiguousarray(a, dtype=np.float32)


def load_scene_points(path: str | Path) -> np.ndarray:
    """(N, 3) float32 world-frame scene points from .npy / .npz / a trimesh-readable point cloud or mesh."""
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"scene not found: {p} (--scene: the scanned scene as a point cloud, .npy (N,3), .npz with 'points_world', or .ply)")
    suffix = p.suffix.lower()
    if suffix == ".npy":
        return _as_points(load_npy(p, "--scene: an (N, 3) array of world points"), str(p))
    if suffix == ".npz":
        z = load_npz(p, "--scene: an archive with a 'points_world' (N, 3) array")
        for key in ("points_world", "points"):
            if key in z:
                return _as_points(z[key], f"{p}['{key}']")
        raise ValueError(f"{p}: no 'points_world' or 'points' array (it has {sorted(z)}); save the scene points under one of those names")
    if suffix in _MESH_SUFFIXES:
        import trimesh

        try:
            geom = trimesh.load(p, process=False)
        except Exception as e:  # trimesh raises many types for corrupt files
            raise ValueError(f"{p}: trimesh could not read it ({type(e).__name__}: {e})") from None
        if isinstance(geom, trimesh.Scene):
            geom = geom.to_geometry() if hasattr(geom, "to_geometry") else geom.dump(concatenate=True)
        verts = getattr(geom, "vertices", None)
        if verts is None:
            raise ValueError(f"{p}: holds no vertices (a point cloud or mesh was expected)")
        return _as_points(verts, str(p))
    raise ValueError(f"{p}: unknown scene format '{suffix}'; use .npy, .npz or one of {', '.join(_MESH_SUFFIXES)}")


def _matrix(obj: dict, key: str, shape: tuple[int, int], where: str) -> np.ndarray:
    try:
        m = np.asarray(obj[key], dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{where}: '{key}' must be a {shape[0]}x{shape[1]} list of numbers") from None
    if m.shape != shape:
        raise ValueError(f"{where}: '{key}' must have shape {shape}, got {m.shape}")
    if not np.isfinite(m).all():
        raise ValueError(f"{where}: '{key}' contains NaN/inf")
    return m


def load_camera(path: str | Path, image_size: tuple[int, int] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(K (3, 3), T_world_to_cam (4, 4)) float64 from a camera JSON (see the module docstring).

    image_size: (W, H) of the image, checked against the file's optional ``image_size``."""
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"camera file not found: {p} (--camera: JSON with 'K' (3x3, px) and 'T_world_to_cam' (4x4))")
    obj = read_json(p, "--camera: JSON with 'K' (3x3, px) and 'T_world_to_cam' (4x4)")
    if not isinstance(obj, dict) or "K" not in obj:
        raise ValueError(f"{p}: expected a JSON object with 'K' (3x3 intrinsics in px) and 'T_world_to_cam' (4x4)")
    K = _matrix(obj, "K", (3, 3), str(p))
    if K[0, 0] <= 0 or K[1, 1] <= 0:
        raise ValueError(f"{p}: 'K' focal lengths fx={K[0, 0]}, fy={K[1, 1]} must be positive")
    if not np.allclose(K[2], [0, 0, 1]) or K[1, 0] != 0:
        raise ValueError(f"{p}: 'K' must be upper-triangular with last row [0, 0, 1], got {K.tolist()}")
    T = _matrix(obj, "T_world_to_cam", (4, 4), str(p)) if "T_world_to_cam" in obj else np.eye(4)
    R = T[:3, :3]
    if not np.allclose(T[3], [0, 0, 0, 1]) or not np.allclose(R @ R.T, np.eye(3), atol=1e-4) or np.linalg.det(R) < 0:
        raise ValueError(
            f"{p}: 'T_world_to_cam' must be a rigid transform (orthonormal rotation with det +1, "
            "last row [0, 0, 0, 1]) mapping world points to the OpenCV camera frame"
        )
    if image_size is not None and "image_size" in obj:
        given = tuple(int(v) for v in obj["image_size"])
        if given != tuple(image_size):
            raise ValueError(
                f"{p}: 'image_size' {list(given)} (W, H) differs from the image's {list(image_size)}; "
                "K must be in pixels of the image you pass (rescale K or the image)"
            )
    return K, T


def check_box(box_xyxy, image_size: tuple[int, int]) -> np.ndarray:
    """(4,) float64 person box, checked: finite, positive size, overlapping the (W, H) image."""
    b = np.asarray(box_xyxy, dtype=np.float64).reshape(-1)
    if b.shape != (4,) or not np.isfinite(b).all():
        raise ValueError(f"--box: expected four finite numbers x0,y0,x1,y1 (pixels), got {np.asarray(box_xyxy).tolist()}")
    if b[2] <= b[0] or b[3] <= b[1]:
        raise ValueError(f"--box {b.tolist()}: needs x1 > x0 and y1 > y0 (pixels, [x0, y0, x1, y1])")
    w, h = image_size
    if b[2] <= 0 or b[3] <= 0 or b[0] >= w or b[1] >= h:
        raise ValueError(f"--box {b.tolist()} lies outside the {w}x{h} image; give the person's box in image pixels")
    return b


def load_inputs(image: str | Path, scene: str | Path, camera: str | Path, box_xyxy) -> FrameInputs:
    """Read and check every input of one frame (see the module docstring)."""
    img = load_image(image)
    size = (img.shape[1], img.shape[0])
    K, T = load_camera(camera, size)
    box = check_box(box_xyxy, size)
    points = load_scene_points(scene)
    return FrameInputs(img, points, K, T, box, {"image": str(image), "scene": str(scene), "camera": str(camera)})
