"""Bring-your-own-predictions files: the format, its checks, reading and writing (the evaluation of a file
is `sahmr.eval.evaluate`).

Prediction file format (one ``.npz`` per split, no pickled objects, readable with
``np.load(path, allow_pickle=False)``):

===================== =============== ======== ===================================================
key                   shape           dtype    meaning
===================== =============== ======== ===================================================
``format_version``    ()              int64    ``PREDICTIONS_FORMAT_VERSION`` (currently 1)
``body_model``        ()              str      body-model id the vertices follow, e.g. ``"smplh"``
``num_vertices``      ()              int64    V, vertices per mesh (6890 for SMPL/SMPL-H topology)
``frame_ids``         (N,)            str      unique frame ids (RICH: ``img_key``), N ≥ 1
``verts_cam``         (N, V, 3)       float32  predicted mesh, OpenCV camera frame, metres
``verts_world``       (N, V, 3)       float32  predicted mesh, world (scene) frame, metres
``pelvis_cam``        (N, 3)          float32  optional: coarse pelvis (RCNet image branch), camera frame
``pelvis_refined_cam`` (N, 3)         float32  optional: refined pelvis (RCNet scene vote), camera frame
``contact_vertex``    (N, V)          bool     optional: per-vertex contact predicted by the model
===================== =============== ======== ===================================================

At least one of ``verts_cam`` / ``verts_world`` is required; all arrays must be finite; no other keys are
allowed (a newer format bumps ``format_version``). Files are written atomically (temporary file in the
target folder + ``os.replace``): a failed write leaves nothing behind.

"""

from __future__ import annotations

import os
import zipfile
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np

from sahmr.atomic import atomic_write as _atomic_write

__all__ = [
    "PREDICTIONS_FORMAT_VERSION",
    "Predictions",
    "validate_predictions",
    "write_predictions",
    "read_predictions",
]

PREDICTIONS_FORMAT_VERSION = 1
_HEADER_KEYS = ("format_version", "body_model", "num_vertices", "frame_ids")
_VERTS_KEYS = ("verts_cam", "verts_world")
_OPTIONAL_KEYS = ("pelvis_cam", "pelvis_refined_cam", "contact_vertex")
_ALL_KEYS = _HEADER_KEYS + _VERTS_KEYS + _OPTIONAL_KEYS


@dataclass
class Predictions:
    """Predictions of one split (see the module docstring for the file layout).

    frame_ids: (N,) str; body_model: str; num_vertices: V;
    verts_cam / verts_world: (N, V, 3) float32 metres, at least one given;
    pelvis_cam, pelvis_refined_cam: (N, 3) float32 camera frame, optional;
    contact_vertex: (N, V) bool, optional.
    """

    frame_ids: np.ndarray
    body_model: str
    num_vertices: int
    verts_cam: np.ndarray | None = None
    verts_world: np.ndarray | None = None
    pelvis_cam: np.ndarray | None = None
    pelvis_refined_cam: np.ndarray | None = None
    contact_vertex: np.ndarray | None = None
    format_version: int = PREDICTIONS_FORMAT_VERSION

    def __len__(self) -> int:
        return len(self.frame_ids)

    def arrays(self) -> dict[str, np.ndarray]:
        """The file's key -> array mapping (absent optional fields omitted)."""
        out = {
            "format_version": np.asarray(self.format_version, dtype=np.int64),
            "body_model": np.asarray(self.body_model, dtype=np.str_),
            "num_vertices": np.asarray(self.num_vertices, dtype=np.int64),
            "frame_ids": self.frame_ids,
        }
        for f in fields(self):
            if f.name in _VERTS_KEYS + _OPTIONAL_KEYS and getattr(self, f.name) is not None:
                out[f.name] = getattr(self, f.name)
        return out


# ------------------------------------------------------------------------------------------ checking


def field_error(source: str, field: str, msg: str) -> ValueError:
    return ValueError(f"{source}: field '{field}': {msg}")


def frame_ids_array(values, source: str, field: str = "frame_ids") -> np.ndarray:
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise field_error(source, field, f"expected a 1-D array of strings, got shape {arr.shape}")
    if arr.dtype.kind == "O" and all(isinstance(x, str) for x in arr.tolist()):
        arr = arr.astype(np.str_)
    if arr.dtype.kind != "U":
        raise field_error(source, field, f"expected strings, got dtype {arr.dtype}")
    if len(arr) == 0:
        raise field_error(source, field, "is empty; at least one frame is required")
    if (np.char.str_len(arr) == 0).any():
        raise field_error(source, field, f"contains {int((np.char.str_len(arr) == 0).sum())} empty id(s)")
    uniq, counts = np.unique(arr, return_counts=True)
    if (counts > 1).any():
        dups = uniq[counts > 1]
        raise field_error(source, field, f"{len(dups)} duplicate id(s), e.g. {dups[:5].tolist()}; ids must be unique")
    return arr


def _float_array(value, source: str, field: str, shape: tuple) -> np.ndarray:
    arr = np.asarray(value)
    if arr.dtype.kind != "f":
        raise field_error(source, field, f"expected float32 numbers (metres), got dtype {arr.dtype}")
    if arr.shape != shape:
        raise field_error(source, field, f"expected shape {shape}, got {arr.shape}")
    arr = arr.astype(np.float32, copy=False)
    bad = ~np.isfinite(arr)
    if bad.any():
        frames = np.unique(np.nonzero(bad.reshape(len(arr), -1))[0])
        raise field_error(source, field, f"{int(bad.sum())} NaN/inf value(s) in {len(frames)} frame(s), first at frame index {int(frames[0])}")
    return arr


def validate_predictions(pred: Predictions, *, source: str = "<predictions>", expected_num_vertices: int | None = None) -> Predictions:
    """Check `pred` and return a normalised copy (float32 arrays, str ids, bool contact).

    source: names the file (or origin) in error messages. expected_num_vertices: V of the body model
    used for evaluation; a mismatch is an error. Raises ValueError naming the source and field.
    """
    if pred.format_version != PREDICTIONS_FORMAT_VERSION:
        raise field_error(source, "format_version", f"{pred.format_version} is not supported (expected {PREDICTIONS_FORMAT_VERSION})")
    if not isinstance(pred.body_model, str) or not pred.body_model:
        raise field_error(source, "body_model", f"expected a non-empty string id, got {pred.body_model!r}")
    v = pred.num_vertices
    if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, np.integer)) or v < 1:
        raise field_error(source, "num_vertices", f"expected a positive integer, got {v!r}")
    v = int(v)
    if expected_num_vertices is not None and v != expected_num_vertices:
        raise field_error(source, "num_vertices", f"is {v} but the evaluation body model has {expected_num_vertices} vertices")
    ids = frame_ids_array(pred.frame_ids, source)
    n = len(ids)
    if pred.verts_cam is None and pred.verts_world is None:
        raise field_error(source, "verts_cam", "neither 'verts_cam' nor 'verts_world' is given; at least one is required")
    out = Predictions(frame_ids=ids, body_model=pred.body_model, num_vertices=v, format_version=pred.format_version)
    for key in _VERTS_KEYS:
        value = getattr(pred, key)
        if value is not None:
            arr = np.asarray(value)
            if arr.ndim == 3 and arr.shape[0] == n and arr.shape[2] == 3 and arr.shape[1] != v:
                raise field_error(source, key, f"has {arr.shape[1]} vertices per mesh but num_vertices = {v}")
            if arr.ndim >= 1 and arr.shape[0] != n:
                raise field_error(source, key, f"has {arr.shape[0]} frames but frame_ids has {n}")
            setattr(out, key, _float_array(arr, source, key, (n, v, 3)))
    for key in ("pelvis_cam", "pelvis_refined_cam"):
        value = getattr(pred, key)
        if value is not None:
            arr = np.asarray(value)
            if arr.ndim >= 1 and arr.shape[0] != n:
                raise field_error(source, key, f"has {arr.shape[0]} frames but frame_ids has {n}")
            setattr(out, key, _float_array(arr, source, key, (n, 3)))
    if pred.contact_vertex is not None:
        arr = np.asarray(pred.contact_vertex)
        if arr.shape != (n, v):
            raise field_error(source, "contact_vertex", f"expected shape {(n, v)}, got {arr.shape}")
        if arr.dtype != np.bool_:
            if arr.dtype.kind not in "iu" or not np.isin(arr, (0, 1)).all():
                raise field_error(source, "contact_vertex", f"expected bool (or 0/1 integers), got dtype {arr.dtype}")
            arr = arr.astype(bool)
        out.contact_vertex = arr
    return out


# ---------------------------------------------------------------------------------------------- files


def write_predictions(path: str | os.PathLike, pred: Predictions, *, expected_num_vertices: int | None = None, compress: bool = False) -> Path:
    """Validate `pred` and write it to `path` (.npz) atomically. Returns the path.

    compress: zip-deflate the arrays (smaller, ~10x slower to write). Raises ValueError (nothing written)
    when `pred` is invalid — see :func:`validate_predictions`.
    """
    path = Path(path)
    clean = validate_predictions(pred, source=str(path), expected_num_vertices=expected_num_vertices)
    saver = np.savez_compressed if compress else np.savez
    return _atomic_write(path, lambda f: saver(f, **clean.arrays()))


def read_predictions(path: str | os.PathLike, *, expected_num_vertices: int | None = None) -> Predictions:
    """Read and validate a predictions ``.npz``. Raises ValueError naming the file and field."""
    path = Path(path)
    source = str(path)
    try:
        with np.load(path, allow_pickle=False) as z:
            keys = list(z.files)
            unknown = sorted(set(keys) - set(_ALL_KEYS))
            if unknown:
                raise ValueError(f"{source}: unknown key(s) {unknown}; allowed keys are {list(_ALL_KEYS)}")
            missing = [k for k in _HEADER_KEYS if k not in keys]
            if missing:
                raise field_error(source, missing[0], f"missing required key(s) {missing}")
            data = {}
            for k in keys:
                try:
                    data[k] = z[k]
                except ValueError as e:  # object arrays need pickle: refused
                    raise field_error(source, k, f"cannot be read without pickle ({e}); store plain numeric/str arrays") from e
    except (FileNotFoundError, IsADirectoryError):
        if path.is_dir():
            raise IsADirectoryError(f"{source}: is a folder; --pred expects a predictions .npz file") from None
        raise
    except (OSError, EOFError, zipfile.BadZipFile) as e:
        raise ValueError(f"{source}: not a readable predictions .npz, empty or truncated? ({e})") from e
    except ValueError as e:
        if str(e).startswith(source):
            raise
        raise ValueError(f"{source}: not a readable .npz file ({e})") from e

    header = {}
    for k in ("format_version", "num_vertices"):
        a = data[k]
        if a.shape != () or a.dtype.kind not in "iu":
            raise field_error(source, k, f"expected a scalar integer, got dtype {a.dtype} shape {a.shape}")
        header[k] = int(a)
    bm = data["body_model"]
    if bm.shape != () or bm.dtype.kind != "U":
        raise field_error(source, "body_model", f"expected a scalar string, got dtype {bm.dtype} shape {bm.shape}")
    pred = Predictions(
        frame_ids=data["frame_ids"],
        body_model=str(bm),
        num_vertices=header["num_vertices"],
        format_version=header["format_version"],
        **{k: data[k] for k in _VERTS_KEYS + _OPTIONAL_KEYS if k in data},
    )
    return validate_predictions(pred, source=source, expected_num_vertices=expected_num_vertices)
