"""Pinhole cameras, rigid transforms and the square person crop (spec §1.6).

Conventions (DESIGN.md §3):

* Camera frame: OpenCV — x right, y down, z forward, metres. ``T_world_to_cam`` is a (4, 4) rigid matrix
  ``[[R, t], [0, 0, 0, 1]]`` with ``p_cam = R @ p_world + t``.
* ``K`` (3, 3) intrinsics in pixels of the full image: ``[[fx, s, cx], [0, fy, cy], [0, 0, 1]]``. A pixel
  coordinate ``u`` is the continuous position whose integer values are pixel centres (OpenCV).
* Boxes are ``[left, upper, right, bottom]`` (= ``xyxy`` = the original's ``bbx_lurb``) in full-image px.
* Crop convention (spec §1.6, the original's ``cv2.warpAffine``): the box edges map to the crop's pixel
  **centres** 0 and ``S - 1``; a point at box-normalised coordinate ``t = (u - l) / (r - l)`` lands at crop
  pixel ``t * (S - 1)``.

Every function is pure and batched over leading dimensions; :func:`project`, :func:`transform` and
:func:`invert_rigid` accept numpy arrays or torch tensors (the result has the input's library, device and
dtype). The crop itself is `sahmr.data.crop` and the frustum rule (which scene points the network sees,
spec §1.8) `sahmr.data.frustum`; their float references are in ``tests/helpers/reference_camera.py``.
"""

from __future__ import annotations

import numpy as np
import torch

__all__ = [
    "BBX_BASE_SCALE",
    "project",
    "transform",
    "invert_rigid",
    "square_crop_box",
    "crop_affine",
]

# Square side = max(w, h) * (1 + BBX_BASE_SCALE + zoom * U(0, 1))  (spec §1.6)
BBX_BASE_SCALE = 0.15


def _is_torch(x) -> bool:
    return isinstance(x, torch.Tensor)


def _mT(x):
    """Swap the last two axes (numpy or torch).

    numpy: returns a C-contiguous copy. numpy 2.4 ``matmul`` only reaches BLAS when the right operand
    is C-contiguous: ``(100k, 3) @ R.T`` with the transposed view is ~200x slower (24 ms vs 0.13 ms).
    """
    return x.transpose(-1, -2) if _is_torch(x) else np.ascontiguousarray(np.swapaxes(x, -1, -2))


def _check_last(name: str, x, size: int) -> None:
    if x.ndim < 1 or x.shape[-1] != size:
        raise ValueError(f"{name}: expected shape (..., {size}), got {tuple(x.shape)}")


def _check_mat(name: str, x, rows: int, cols: int) -> None:
    if x.ndim < 2 or tuple(x.shape[-2:]) != (rows, cols):
        raise ValueError(f"{name}: expected shape (..., {rows}, {cols}), got {tuple(x.shape)}")


# ------------------------------------------------------------------------------------ transforms


def look_at(eye, target, up=(0.0, 0.0, 1.0)) -> np.ndarray:
    """(4, 4) T_world_to_cam of an OpenCV camera at `eye` looking at `target` (image up ≈ world `up`)."""
    eye, target, up = (np.asarray(a, dtype=np.float64) for a in (eye, target, up))
    z = target - eye
    if np.linalg.norm(z) == 0:
        raise ValueError("look_at: eye and target coincide")
    z /= np.linalg.norm(z)
    x = np.cross(z, up)
    if np.linalg.norm(x) < 1e-9:
        raise ValueError("look_at: viewing direction is parallel to `up`")
    x /= np.linalg.norm(x)
    y = np.cross(z, x)
    T = np.eye(4)
    T[:3, :3] = np.stack([x, y, z])
    T[:3, 3] = -T[:3, :3] @ eye
    return T


def transform(T, points):
    """Apply rigid (or any affine) 4x4 transforms to points.

    T: (..., 4, 4); points: (..., N, 3) with leading dims broadcastable against T's.
    Returns: (..., N, 3) ``points @ R^T + t``.
    """
    _check_mat("transform: T", T, 4, 4)
    _check_last("transform: points", points, 3)
    R = T[..., :3, :3]
    t = T[..., None, :3, 3]
    return points @ _mT(R) + t


def invert_rigid(T):
    """Inverse of rigid transforms without a general matrix inverse.

    T: (..., 4, 4) ``[[R, t], [0, 1]]`` with R a rotation. Returns (..., 4, 4) ``[[R^T, -R^T t], [0, 1]]``.
    """
    _check_mat("invert_rigid: T", T, 4, 4)
    Rt = _mT(T[..., :3, :3])
    t = T[..., :3, 3:4]
    if _is_torch(T):
        out = torch.zeros_like(T)
    else:
        out = np.zeros_like(T)
    out[..., :3, :3] = Rt
    out[..., :3, 3:4] = -(Rt @ t)
    out[..., 3, 3] = 1
    return out


def project(points_cam, K):
    """Perspective projection to pixels.

    points_cam: (..., N, 3) camera frame (z > 0 in front of the camera); K: (..., 3, 3).
    Returns: (..., N, 2) pixel coordinates ``(u, v)`` (inf/nan where z == 0).
    """
    _check_last("project: points_cam", points_cam, 3)
    _check_mat("project: K", K, 3, 3)
    h = points_cam @ _mT(K)
    return h[..., :2] / h[..., 2:3]


# ------------------------------------------------------------------------------------------ crops


def square_crop_box(person_box_xyxy, center_jitter_px: float = 0.0, zoom: float = 0.0, rng: np.random.Generator | None = None):
    """The square crop box around a person box, exactly as the original (spec §1.6).

    person_box_xyxy: (..., 4) tight person box [l, u, r, b] in px (numpy).
    center_jitter_px: the original's ``BBX_CENTER``: the centre moves by ``center_jitter_px * U(-1, 1)``
        independently in x and y (train: 10 px at the original's ds4 resolution; eval: 0).
    zoom: the original's ``BBX_ZOOM``: ``half = max(w, h) / 2 * (1 + 0.15 + zoom * U(0, 1))`` (train 0.4,
        i.e. side 1.15-1.55 x; eval 0 -> 1.15 x).
    rng: the generator drawing the uniforms, in the order U_x, U_y (centre) then U_zoom, one set per box
        (for a batch: arrays of shape (..., ) each, drawn in that order). Required when jitter or zoom > 0.
    Returns: (..., 4) float64 square box ``[cx - half, cy - half, cx + half, cy + half]``.
    """
    b = np.asarray(person_box_xyxy, dtype=np.float64)
    _check_last("square_crop_box: person_box_xyxy", b, 4)
    batch = b.shape[:-1]
    cx = (b[..., 0] + b[..., 2]) * 0.5
    cy = (b[..., 1] + b[..., 3]) * 0.5
    size = np.maximum(b[..., 2] - b[..., 0], b[..., 3] - b[..., 1])
    if center_jitter_px < 0 or zoom < 0:
        raise ValueError(f"square_crop_box: center_jitter_px and zoom must be >= 0, got {center_jitter_px}, {zoom}")
    if rng is None:
        if center_jitter_px > 0 or zoom > 0:
            raise ValueError("square_crop_box: pass rng (np.random.Generator) when center_jitter_px or zoom > 0")
        ux = uy = np.zeros(batch)
        uz = np.zeros(batch)
    else:
        ux = rng.uniform(-1.0, 1.0, batch)
        uy = rng.uniform(-1.0, 1.0, batch)
        uz = rng.uniform(0.0, 1.0, batch)
    cx = cx + center_jitter_px * ux
    cy = cy + center_jitter_px * uy
    half = size * 0.5 * (1.0 + BBX_BASE_SCALE + zoom * uz)
    return np.stack([cx - half, cy - half, cx + half, cy + half], -1)


def crop_affine(box_xyxy, size: int) -> np.ndarray:
    """The affine map from full-image px to crop px (the original's ``cv2.getAffineTransform``).

    box_xyxy: (..., 4) crop box; size: crop side S (pixels). Maps ``l -> 0`` and ``r -> S - 1`` in x,
    ``u -> 0`` and ``b -> S - 1`` in y (box edges onto pixel centres).
    Returns: (..., 2, 3) float64 ``A`` with ``[u_crop, v_crop] = A @ [u, v, 1]``.
    """
    b = np.asarray(box_xyxy, dtype=np.float64)
    _check_last("crop_affine: box_xyxy", b, 4)
    if size < 2:
        raise ValueError(f"crop_affine: size must be >= 2, got {size}")
    sx = (size - 1) / (b[..., 2] - b[..., 0])
    sy = (size - 1) / (b[..., 3] - b[..., 1])
    A = np.zeros(b.shape[:-1] + (2, 3))
    A[..., 0, 0] = sx
    A[..., 0, 2] = -sx * b[..., 0]
    A[..., 1, 1] = sy
    A[..., 1, 2] = -sy * b[..., 1]
    return A


# ----------------------------------------------------------------------------------------- frustum
