"""Static cameras like RICH/PROX: 1–2.5 m high, looking into the room, realistic focal lengths."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sahmr.geometry.camera import look_at


@dataclass
class Camera:
    """OpenCV camera: K (3, 3) pixels, T_world_to_cam (4, 4), image (width, height)."""

    camera_id: str
    K: np.ndarray
    T_world_to_cam: np.ndarray
    width: int
    height: int

    @property
    def center_world(self) -> np.ndarray:
        R, t = self.T_world_to_cam[:3, :3], self.T_world_to_cam[:3, 3]
        return -R.T @ t


def intrinsics(width: int, height: int, hfov_deg: float, rng: np.random.Generator | None = None) -> np.ndarray:
    """K for a horizontal field of view; the principal point jittered by up to 2% of the size."""
    f = width / 2 / np.tan(np.deg2rad(hfov_deg) / 2)
    jx, jy = rng.uniform(-0.02, 0.02, 2) if rng is not None else (0.0, 0.0)
    return np.array([[f, 0, width / 2 + jx * width], [0, f, height / 2 + jy * height], [0, 0, 1.0]])


def project(points_world: np.ndarray, cam: Camera) -> tuple[np.ndarray, np.ndarray]:
    """Pixels (N, 2) and camera depth (N,) of world points."""
    pc = points_world @ cam.T_world_to_cam[:3, :3].T + cam.T_world_to_cam[:3, 3]
    uv = pc @ cam.K.T
    return uv[:, :2] / uv[:, 2:3], pc[:, 2]


def sample_static_cameras(
    scene_sdf,
    room_min: np.ndarray,
    room_max: np.ndarray,
    targets: np.ndarray,
    n: int,
    width: int,
    height: int,
    rng: np.random.Generator,
    scene_id: str,
    height_range=(1.0, 2.5),
    hfov_range=(50.0, 75.0),
    margin: float = 0.25,
) -> list[Camera]:
    """``n`` static cameras inside the room, away from furniture, each looking at one of ``targets``.

    scene_sdf: callable (N, 3) -> (N,) signed distance; targets: (M, 3) interaction points.
    """
    cams: list[Camera] = []
    for _i in range(200 * n):
        if len(cams) == n:
            break
        target = targets[rng.integers(len(targets))] + rng.normal(0, 0.3, 3) * [1, 1, 0.2]
        eye = np.array(
            [
                rng.uniform(room_min[0] + margin, room_max[0] - margin),
                rng.uniform(room_min[1] + margin, room_max[1] - margin),
                rng.uniform(*height_range),
            ]
        )
        d = np.linalg.norm(eye[:2] - target[:2])
        if not 2.0 <= d <= 7.0 or scene_sdf(eye[None])[0] < 0.4:
            continue
        if any(np.linalg.norm(eye - c.center_world) < 1.0 for c in cams):
            continue
        K = intrinsics(width, height, rng.uniform(*hfov_range), rng)
        cams.append(Camera(f"{scene_id}_cam{len(cams)}", K, look_at(eye, target), width, height))
    return cams
