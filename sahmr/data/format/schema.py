"""The canonical format's schema: constants, the per-frame fields (`FIELDS`), id and split-name rules,
and the coercion of arrays to the format's dtypes (the format itself: `sahmr.data.format`)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

FORMAT_NAME = "sahmr-dataset"
FORMAT_VERSION = 2  # history and the upgrade of older datasets: sahmr.data.format.upgrade
HASH_ALGORITHM = "sha256-manifest-v1"
DATASET_JSON = "dataset.json"
MANIFEST_JSON = "manifest.json"
NUM_JOINTS14 = 14
# field renames of each format step, {from_version: {old key: new key}} (sahmr.data.format.upgrade applies them)
RENAMED_FIELDS: dict[int, dict[str, str]] = {1: {"bbox_xyxy": "person_box_xyxy"}}
UPGRADABLE = frozenset(RENAMED_FIELDS)  # versions `sahmr data upgrade` brings to FORMAT_VERSION

ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]*$")
SPLIT_RE = re.compile(r"^[a-z][a-z0-9_]*$")
KEY_RE = re.compile(r"^[a-z][a-z0-9_]*$")


class DatasetFormatError(ValueError):
    """A dataset (or arrays handed to the writer) does not follow the format; the message names where."""


@dataclass(frozen=True)
class FieldSpec:
    """One per-frame array: ``shape`` entries are ints or symbols ("N" frames, "V" vertices, others free
    but constant over the split); ``dtype`` one of float32, int32, uint8, bool, str."""

    name: str
    shape: tuple
    dtype: str
    group: str  # "required" | "body_params" | "optional"
    doc: str = ""


FIELDS: dict[str, FieldSpec] = {
    f.name: f
    for f in [
        FieldSpec("frame_id", ("N",), "str", "required", "unique frame id"),
        FieldSpec("image_path", ("N",), "str", "required", "image file relative to root"),
        FieldSpec("scene_id", ("N",), "str", "required", "scene id"),
        FieldSpec("camera_id", ("N",), "str", "required", "camera id within the scene"),
        FieldSpec("K", ("N", 3, 3), "float32", "required", "intrinsics, px of the stored image"),
        FieldSpec("T_world_to_cam", ("N", 4, 4), "float32", "required", "world -> OpenCV camera"),
        FieldSpec("image_size", ("N", 2), "int32", "required", "[W, H]"),
        FieldSpec("person_box_xyxy", ("N", 4), "float32", "required", "tight person box, px"),
        FieldSpec("verts_world", ("N", "V", 3), "float32", "required", "GT vertices, world"),
        FieldSpec("joints14_world", ("N", NUM_JOINTS14, 3), "float32", "required", "GT H36M-14 joints, world"),
        FieldSpec("pelvis_world", ("N", 3), "float32", "required", "GT H36M pelvis, world"),
        FieldSpec("contact", ("N", "V"), "bool", "required", "GT contact per vertex"),
        FieldSpec("contact_part", ("N", "V"), "uint8", "required", "part id 1..7 of contact vertices, else 0"),
        FieldSpec("pose_class", ("N",), "str", "required", "pose tag"),
        FieldSpec("occlusion", ("N",), "float32", "required", "occluded fraction [0, 1], NaN unknown"),
        FieldSpec("distance", ("N",), "float32", "required", "camera-pelvis distance, m"),
        FieldSpec("truncated", ("N",), "bool", "required", "cut by the image border"),
        FieldSpec("betas", ("N", "S"), "float32", "body_params", "shape parameters"),
        FieldSpec("body_pose", ("N", "P"), "float32", "body_params", "body pose, axis-angle"),
        FieldSpec("global_orient", ("N", 3), "float32", "body_params", "root orientation, axis-angle, world"),
        FieldSpec("transl", ("N", 3), "float32", "body_params", "translation, world, m"),
        FieldSpec("left_hand_pose", ("N", "Q"), "float32", "optional", "left hand pose, axis-angle"),
        FieldSpec("right_hand_pose", ("N", "Q"), "float32", "optional", "right hand pose, axis-angle"),
        FieldSpec("gender", ("N",), "str", "optional", "neutral | male | female"),
        FieldSpec("crop_box_xyxy", ("N", 4), "float32", "optional", "fixed eval crop box, NaN = none"),
    ]
}
REQUIRED_KEYS = tuple(k for k, f in FIELDS.items() if f.group == "required")
BODY_PARAM_KEYS = tuple(k for k, f in FIELDS.items() if f.group == "body_params")


def dtype_name(dtype: np.dtype) -> str:
    """The format's dtype name: "str" for unicode strings, else numpy's name (float32, bool, ...)."""
    return "str" if np.dtype(dtype).kind == "U" else np.dtype(dtype).name


def is_valid_id(s: str) -> bool:
    """Frame / scene / camera ids: ``[A-Za-z0-9][A-Za-z0-9_.+-]*`` (safe as file names)."""
    return isinstance(s, str) and bool(ID_RE.match(s))


def check_id(kind: str, s: str) -> None:
    if not is_valid_id(s):
        raise DatasetFormatError(f"{kind} {s!r} is not a valid id: use letters, digits and _ . + - (not first)")


def check_split_name(split: str) -> None:
    if not isinstance(split, str) or not SPLIT_RE.match(split):
        raise DatasetFormatError(f"split name {split!r} is not valid: use [a-z][a-z0-9_]* (e.g. train, val, test)")


# ------------------------------------------------------------------------------------ array coercion


def _coerce(key: str, value: Any, dtype: str) -> np.ndarray:
    a = np.asarray(value)
    kind = a.dtype.kind
    if dtype == "str":
        if kind == "U":
            return a
        if kind == "S":
            return a.astype(str)
        if kind == "O" and all(isinstance(x, str) for x in a.reshape(-1)):
            return np.array(a.tolist(), dtype=str) if a.size else np.zeros(a.shape, dtype="<U1")
        raise DatasetFormatError(f"array '{key}': expected strings, got dtype {a.dtype}")
    if dtype == "float32":
        if kind in "fiu":
            return a.astype(np.float32, copy=False)
        raise DatasetFormatError(f"array '{key}': expected a float array, got dtype {a.dtype}")
    if dtype in ("int32", "uint8"):
        if kind not in "iu":
            raise DatasetFormatError(f"array '{key}': expected an integer array, got dtype {a.dtype}")
        info = np.iinfo(dtype)
        if a.size and (a.min() < info.min or a.max() > info.max):
            raise DatasetFormatError(f"array '{key}': values outside the {dtype} range [{info.min}, {info.max}]")
        return a.astype(dtype, copy=False)
    if dtype == "bool":
        if kind == "b":
            return a
        if kind in "iu" and (a.size == 0 or ((a == 0) | (a == 1)).all()):
            return a.astype(bool)
        raise DatasetFormatError(f"array '{key}': expected a bool array (or 0/1 integers), got dtype {a.dtype}")
    raise AssertionError(dtype)


def coerce_split_arrays(arrays: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """Convert per-frame arrays to the format's dtypes (float -> float32, 0/1 -> bool, str lists -> <U).

    Raises DatasetFormatError for values that cannot be converted safely (object arrays of non-strings,
    out-of-range integers, floats where integers are expected). Shapes are checked by the validator.
    """
    out: dict[str, np.ndarray] = {}
    for key, value in arrays.items():
        if not isinstance(key, str) or (not KEY_RE.match(key) and key not in FIELDS):
            raise DatasetFormatError(f"array key {key!r} is not valid: use [a-z][a-z0-9_]* (or a format key)")
        if key in FIELDS:
            out[key] = _coerce(key, value, FIELDS[key].dtype)
        else:
            a = np.asarray(value)
            if a.dtype.kind not in "biufU":
                if a.dtype.kind == "O" and all(isinstance(x, str) for x in a.reshape(-1)):
                    a = np.array(a.tolist(), dtype=str)
                else:
                    raise DatasetFormatError(f"extra array '{key}': dtype {a.dtype} is not numeric, bool or str")
            out[key] = a
    return out
