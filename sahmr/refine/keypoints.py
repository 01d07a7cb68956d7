"""2D keypoint files (the input of the fitting baseline, ``sahmr fit``) and synthetic detector stand-ins.

Keypoints file (``.npz``, no pickles, ``np.load(path, allow_pickle=False)``):

==================  ===========  =======  ==========================================================
key                 shape        dtype    meaning
==================  ===========  =======  ==========================================================
``format_version``  ()           int64    ``KEYPOINTS_FORMAT_VERSION`` (1)
``joint_set``       ()           str      ``"joints14"``: the kit's 14 evaluation joints (spec §2.2, H36M
                                          regressor, LSP order: R ankle, R knee, R hip, L hip, L knee,
                                          L ankle, R wrist, R elbow, R shoulder, L shoulder, L elbow,
                                          L wrist, thorax, head)
``frame_ids``       (N,)         str      unique frame ids of the dataset split
``keypoints``       (N, 14, 3)   float32  [x, y, confidence] in pixels of the dataset's image; confidence
                                          in [0, 1], 0 = not detected (its x, y are ignored)
``source``          ()           str      free text: which detector, or how they were synthesised
==================  ===========  =======  ==========================================================

Real data: convert any detector's output to this joint order (e.g. OpenPose BODY_25 -> joints14 by picking
the matching joints; thorax = neck, head = nose or head top) and write it with :func:`write_keypoints`.

Synthetic benchmark (:func:`synthetic_keypoints`): the GT joints14 projected with the dataset camera, plus
i.i.d. Gaussian pixel noise, random dropout, and confidence 0 outside the image — a documented stand-in
for a 2D detector, not a detector.
"""

from __future__ import annotations

import os
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sahmr.atomic import atomic_write
from sahmr.eval.predictions import frame_ids_array

__all__ = ["KEYPOINTS_FORMAT_VERSION", "JOINT_SET", "Keypoints", "KeypointNoise", "write_keypoints", "read_keypoints", "synthetic_keypoints"]

KEYPOINTS_FORMAT_VERSION = 1
JOINT_SET = "joints14"
NUM_JOINTS = 14
_KEYS = ("format_version", "joint_set", "frame_ids", "keypoints", "source")


@dataclass
class Keypoints:
    """frame_ids (N,) str; keypoints (N, 14, 3) float32 [x px, y px, confidence]; source: free text."""

    frame_ids: np.ndarray
    keypoints: np.ndarray
    source: str = ""


@dataclass
class KeypointNoise:
    """The synthetic detector stand-in (params.yaml section ``keypoints``)."""

    noise_px: float = 4.0  # std of i.i.d. Gaussian noise per pixel coordinate
    dropout: float = 0.1  # probability that a keypoint is missed (confidence 0)
    seed: int = 0

    def __post_init__(self) -> None:
        if not float(self.noise_px) >= 0:
            raise ValueError(f"keypoints.noise_px: expected a non-negative number of pixels, got {self.noise_px}")
        if not 0 <= float(self.dropout) < 1:
            raise ValueError(f"keypoints.dropout: expected a probability in [0, 1), got {self.dropout}")


def _check(kp: Keypoints, source: str) -> Keypoints:
    ids = frame_ids_array(kp.frame_ids, source)
    arr = np.asarray(kp.keypoints)
    if arr.dtype.kind != "f" or arr.shape != (len(ids), NUM_JOINTS, 3):
        raise ValueError(
            f"{source}: field 'keypoints': expected float (N={len(ids)}, {NUM_JOINTS}, 3) [x, y, confidence], got {arr.dtype} {arr.shape}"
        )
    arr = arr.astype(np.float32)
    conf = arr[..., 2]
    if not np.isfinite(conf).all() or (conf < 0).any() or (conf > 1).any():
        raise ValueError(f"{source}: field 'keypoints': confidence (last column) must be finite and in [0, 1]")
    bad = (conf > 0) & ~np.isfinite(arr[..., :2]).all(-1)
    if bad.any():
        f = int(np.nonzero(bad.any(-1))[0][0])
        raise ValueError(f"{source}: field 'keypoints': {int(bad.sum())} keypoint(s) with confidence > 0 have NaN/inf x, y (first in frame {ids[f]})")
    arr[..., :2] = np.where(conf[..., None] > 0, arr[..., :2], 0.0)
    return Keypoints(ids, arr, str(kp.source))


def write_keypoints(path: str | os.PathLike, kp: Keypoints) -> Path:
    """Validate and write atomically; returns the path."""
    clean = _check(kp, str(path))
    return atomic_write(
        Path(path),
        lambda f: np.savez(
            f,
            format_version=np.int64(KEYPOINTS_FORMAT_VERSION),
            joint_set=np.str_(JOINT_SET),
            frame_ids=clean.frame_ids,
            keypoints=clean.keypoints,
            source=np.str_(clean.source),
        ),
    )


def read_keypoints(path: str | os.PathLike) -> Keypoints:
    """Read and validate a keypoints file; errors name the file and the field."""
    source = str(path)
    if Path(path).is_dir():
        raise IsADirectoryError(f"{source}: is a folder; --keypoints expects a keypoints .npz file")
    try:
        with np.load(path, allow_pickle=False) as z:
            missing = [k for k in _KEYS if k not in z.files]
            if missing:
                raise ValueError(f"{source}: missing key(s) {missing}; a keypoints file has {list(_KEYS)} (see sahmr/refine/keypoints.py)")
            data = {k: z[k] for k in _KEYS}
    except FileNotFoundError:
        raise
    except (OSError, EOFError, zipfile.BadZipFile) as e:
        raise ValueError(f"{source}: not a readable keypoints .npz, empty or truncated? ({e})") from e
    except ValueError as e:
        if str(e).startswith(source):
            raise
        raise ValueError(f"{source}: not a readable keypoints .npz ({e}); store plain numeric/str arrays") from e
    if data["format_version"].shape != () or int(data["format_version"]) != KEYPOINTS_FORMAT_VERSION:
        raise ValueError(f"{source}: field 'format_version': {data['format_version']} is not supported (expected {KEYPOINTS_FORMAT_VERSION})")
    if str(data["joint_set"]) != JOINT_SET:
        raise ValueError(
            f"{source}: field 'joint_set': {str(data['joint_set'])!r} is not supported; "
            f"convert the keypoints to {JOINT_SET!r} (see sahmr/refine/keypoints.py)"
        )
    return _check(Keypoints(data["frame_ids"], data["keypoints"], str(data["source"])), source)


def synthetic_keypoints(
    joints14_world: np.ndarray, T_world_to_cam: np.ndarray, K: np.ndarray, image_size: np.ndarray, frame_ids, noise: KeypointNoise
) -> Keypoints:
    """Projected GT joints14 (N, 14, 3) world + noise, dropout, and confidence 0 outside the image or behind the camera."""
    rng = np.random.default_rng(noise.seed)
    j = np.asarray(joints14_world, np.float64)
    T = np.asarray(T_world_to_cam, np.float64)
    cam = j @ T[:, :3, :3].swapaxes(-1, -2) + T[:, None, :3, 3]
    z = cam[..., 2:]
    uv = cam[..., :2] / np.where(z > 1e-6, z, 1.0)
    K = np.asarray(K, np.float64)
    px = uv @ K[:, :2, :2].swapaxes(-1, -2) + K[:, None, :2, 2]
    px = px + rng.normal(0.0, noise.noise_px, px.shape)
    size = np.asarray(image_size, np.float64)[:, None, :]
    visible = (z[..., 0] > 1e-6) & (px >= 0).all(-1) & (px < size).all(-1)
    kept = rng.random(visible.shape) >= noise.dropout
    conf = (visible & kept).astype(np.float32)
    src = (
        f"synthetic: GT joints14 projected, + N(0, {noise.noise_px} px) per coordinate, {noise.dropout:.0%} dropped at random, "
        f"outside the image dropped (seed {noise.seed}); a stand-in for a 2D detector"
    )
    return Keypoints(np.asarray(frame_ids), np.concatenate([px, conf[..., None]], -1).astype(np.float32), src)
