"""Validation of datasets in the canonical format (:mod:`sahmr.data.format`): every check, named precisely.

:func:`validate_dataset` returns a list of :class:`Problem` — severity ("error" / "warning"), where (the
file, relative to the dataset root), the field, a message saying what is wrong and what was expected,
and the offending frame ids. An empty list (or warnings only) means the dataset is usable.
``sahmr data validate <dir>`` prints them and exits 1 when there is an error.

Checks: ``dataset.json`` present and well-formed (format, version, body model, splits, scenes, arrays);
per scene: points (M, 3) float32 finite, SDF grid readable; per split: every required array present, a
plain .npy (no pickles), dtype and shape as specified, length = the split's frame count; values: finite
K / T / boxes / meshes / joints, K upper-triangular with K[2,2] = 1 and positive focal lengths, T rigid
(orthonormal rotation with det +1, last row 0 0 0 1), image sizes positive, person boxes non-empty and
overlapping the image, contact parts in 0..7 and 0 where there is no contact, occlusion in [0, 1] (or NaN),
distance = |T . pelvis_world| and the pelvis in front of the camera, ids well-formed and frame ids unique
over the dataset, scene ids known, frames of one (scene_id, camera_id) sharing one camera; images
present, readable, of the recorded size; the content hash (per file, against ``manifest.json``, and
overall against ``dataset.json``); warnings for unreferenced files and leftovers of interrupted writes.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np

from sahmr.body.parts import NUM_PARTS

from .hashing import compute_manifest, content_hash_of, dataset_files, scene_has_sdf
from .schema import (
    BODY_PARAM_KEYS,
    DATASET_JSON,
    FIELDS,
    FORMAT_NAME,
    FORMAT_VERSION,
    KEY_RE,
    MANIFEST_JSON,
    REQUIRED_KEYS,
    SPLIT_RE,
    UPGRADABLE,
    dtype_name,
    is_valid_id,
)

__all__ = ["Problem", "check_split_arrays", "validate_dataset", "format_problems", "has_errors"]

_TOL_K = 1e-6
_TOL_ROT = 1e-4  # |R^T R - I| for float32 rotations
_GENDERS = ("neutral", "male", "female")


@dataclass(frozen=True)
class Problem:
    """One finding. where: file relative to the dataset root; field: array / JSON field (or None)."""

    severity: str  # "error" | "warning"
    where: str
    field: str | None
    message: str
    frame_ids: tuple[str, ...] = ()  # the first offending frames (ids, or "#<row>" when ids are unusable)
    n_frames: int = 0  # total number of offending frames

    def __str__(self) -> str:
        loc = self.where + (f" [{self.field}]" if self.field else "")
        s = f"{self.severity.upper()}: {loc}: {self.message}"
        if self.frame_ids:
            more = self.n_frames - len(self.frame_ids)
            s += f" — frame{'s' if self.n_frames > 1 else ''} {', '.join(self.frame_ids)}"
            if more > 0:
                s += f" and {more} more"
        return s


def has_errors(problems: list[Problem]) -> bool:
    return any(p.severity == "error" for p in problems)


def format_problems(problems: list[Problem]) -> str:
    """One line per problem, errors first."""
    order = sorted(problems, key=lambda p: p.severity != "error")
    return "\n".join(f"  {p}" for p in order)


class _Collector:
    def __init__(self, max_listed: int):
        self.problems: list[Problem] = []
        self.max_listed = max_listed

    def add(self, severity: str, where: str, field: str | None, message: str, bad: np.ndarray | None = None, labels: Any = None) -> None:
        ids: tuple[str, ...] = ()
        n = 0
        if bad is not None:
            rows = np.flatnonzero(bad)
            n = int(len(rows))
            if n == 0:
                return
            take = rows[: self.max_listed]
            ids = tuple(str(labels[i]) if labels is not None else f"#{i}" for i in take)
        self.problems.append(Problem(severity, where, field, message, ids, n))

    def error(self, *a, **k) -> None:
        self.add("error", *a, **k)

    def warning(self, *a, **k) -> None:
        self.add("warning", *a, **k)


def _rowwise(a: np.ndarray, fn, block_bytes: int = 1 << 26) -> np.ndarray:
    """(N,) bool from fn(block reshaped to (n, -1)) over row blocks (bounded memory for memmaps)."""
    n = a.shape[0]
    out = np.zeros(n, dtype=bool)
    if n == 0:
        return out
    step = max(1, block_bytes // max(1, a[0].nbytes if a.ndim > 1 else a.itemsize))
    for s in range(0, n, step):
        blk = np.asarray(a[s : s + step])
        out[s : s + step] = fn(blk.reshape(len(blk), -1))
    return out


def _nonfinite_rows(a: np.ndarray) -> np.ndarray:
    return _rowwise(a, lambda b: ~np.isfinite(b).all(1))


# --------------------------------------------------------------------------------- split arrays


def check_split_arrays(
    arrays: Mapping[str, np.ndarray],
    *,
    split: str,
    num_verts: int | None,
    n_frames: int | None = None,
    max_listed: int = 5,
) -> list[Problem]:
    """Check the per-frame arrays of one split (shapes, dtypes, lengths, values).

    arrays: {key: array or memmap}; split: its name (for messages); num_verts: V expected for
    verts_world / contact (None: take it from verts_world); n_frames: expected N (None: len(frame_id)).
    Returns the problems (where = ``frames/<split>/<key>.npy``). Frame-level problems list frame ids.
    """
    c = _Collector(max_listed)

    def where(key: str) -> str:
        return f"frames/{split}/{key}.npy"

    if n_frames is None:
        first = arrays.get("frame_id", next(iter(arrays.values()), None))
        n_frames = int(len(first)) if first is not None and np.ndim(first) >= 1 else 0
    N = n_frames
    if N < 1:
        c.error(f"frames/{split}", None, "a split needs at least one frame")
    for key in REQUIRED_KEYS:
        if key not in arrays:
            c.error(where(key), key, f"missing required array '{key}' ({FIELDS[key].dtype} {_shape_str(FIELDS[key].shape)})")
    present_bp = [k for k in BODY_PARAM_KEYS if k in arrays]
    if present_bp and len(present_bp) != len(BODY_PARAM_KEYS):
        missing = [k for k in BODY_PARAM_KEYS if k not in arrays]
        c.error(where(missing[0]), missing[0], f"body-model parameters must be given together: have {present_bp}, missing {missing}")

    V = num_verts
    if V is None and "verts_world" in arrays and np.ndim(arrays["verts_world"]) == 3:
        V = int(arrays["verts_world"].shape[1])
    ok: dict[str, np.ndarray] = {}
    for key, a in arrays.items():
        spec = FIELDS.get(key)
        if spec is None:
            if not (isinstance(key, str) and KEY_RE.match(key)):
                c.error(where(str(key)), str(key), "invalid array name; use [a-z][a-z0-9_]*")
            elif a.ndim < 1 or a.shape[0] != N:
                c.error(where(key), key, f"extra array has leading dimension {a.shape[:1]}, expected N = {N}")
            elif a.dtype.kind not in "biufU":
                c.error(where(key), key, f"extra array dtype {a.dtype} is not numeric, bool or str")
            continue
        got = dtype_name(a.dtype)
        if got != spec.dtype:
            c.error(where(key), key, f"dtype {got}, expected {spec.dtype}")
            continue
        expected: list[Any] = []
        for d in spec.shape:
            expected.append(N if d == "N" else V if d == "V" else d)
        bad_shape = a.ndim != len(spec.shape) or any(isinstance(e, int) and e is not None and s != e for s, e in zip(a.shape, expected))
        if bad_shape:
            exp = _shape_str(tuple(e if isinstance(e, int) else d for e, d in zip(expected, spec.shape)))
            c.error(where(key), key, f"shape {tuple(a.shape)}, expected {exp}")
            continue
        ok[key] = a

    ids = ok.get("frame_id")
    labels = [str(x) for x in ids.tolist()] if ids is not None else None

    def err(key, msg, bad):
        c.error(where(key), key, msg, bad, labels)

    def warn(key, msg, bad):
        c.warning(where(key), key, msg, bad, labels)

    # ids and paths
    if ids is not None:
        err("frame_id", "invalid frame id (use letters, digits and _ . + -, not first)", np.array([not is_valid_id(s) for s in labels], dtype=bool))
        uniq, inv, counts = np.unique(np.asarray(labels, dtype=str), return_inverse=True, return_counts=True)
        err("frame_id", "duplicate frame id within the split", counts[inv] > 1)
    for key in ("scene_id", "camera_id"):
        if key in ok:
            vals = ok[key].tolist()
            bad = np.array([not is_valid_id(s) for s in vals], bool)
            err(key, f"invalid {key} (use letters, digits and _ . + -, not first)", bad)
    if "image_path" in ok:
        err(
            "image_path",
            "image path must be relative, posix, inside the dataset root (no '..')",
            np.array([not _is_safe_rel(p) for p in ok["image_path"].tolist()], bool),
        )
    if "gender" in ok:
        err("gender", f"gender must be one of {_GENDERS}", ~np.isin(np.asarray(ok["gender"]), _GENDERS))

    # cameras
    K = np.asarray(ok["K"], dtype=np.float64) if "K" in ok else None
    if K is not None:
        bad = _nonfinite_rows(K)
        err("K", "non-finite values (NaN/inf) in K", bad)
        good = ~bad
        lower = (np.abs(K[:, 1, 0]) > _TOL_K) | (np.abs(K[:, 2, 0]) > _TOL_K) | (np.abs(K[:, 2, 1]) > _TOL_K)
        err(
            "K",
            "K is not upper-triangular with K[2,2] = 1 ([[fx, s, cx], [0, fy, cy], [0, 0, 1]])",
            good & (lower | (np.abs(K[:, 2, 2] - 1) > _TOL_K)),
        )
        err("K", "K has non-positive focal length(s) fx = K[0,0], fy = K[1,1]", good & ((K[:, 0, 0] <= 0) | (K[:, 1, 1] <= 0)))
        if bad.any() or not good.all():
            K = None
    T = np.asarray(ok["T_world_to_cam"], dtype=np.float64) if "T_world_to_cam" in ok else None
    if T is not None:
        bad = _nonfinite_rows(T)
        err("T_world_to_cam", "non-finite values (NaN/inf) in T_world_to_cam", bad)
        R = T[:, :3, :3]
        ortho = np.abs(np.einsum("nji,njk->nik", R, R) - np.eye(3)).max((1, 2))
        det = np.linalg.det(np.where(bad[:, None, None], np.eye(3), R))
        last = np.abs(T[:, 3] - [0, 0, 0, 1]).max(1)
        nonrigid = ~bad & ((ortho > _TOL_ROT) | (det <= 0) | (last > _TOL_K))
        err("T_world_to_cam", "not a rigid transform: expected [[R, t], [0, 0, 0, 1]] with R orthonormal, det(R) = +1", nonrigid)
        if (bad | nonrigid).any():
            T = None
    size = np.asarray(ok["image_size"], dtype=np.int64) if "image_size" in ok else None
    if size is not None:
        bad = (size <= 0).any(1)
        err("image_size", "image_size [W, H] must be positive", bad)
        if bad.any():
            size = None

    # boxes
    if "person_box_xyxy" in ok:
        b = np.asarray(ok["person_box_xyxy"], dtype=np.float64)
        nonfin = ~np.isfinite(b).all(1)
        err("person_box_xyxy", "non-finite values in person_box_xyxy", nonfin)
        empty = ~nonfin & ((b[:, 2] <= b[:, 0]) | (b[:, 3] <= b[:, 1]))
        err("person_box_xyxy", "empty box: need right > left and bottom > upper ([l, u, r, b] px)", empty)
        if size is not None:
            W, H = size[:, 0] - 0.5, size[:, 1] - 0.5  # pixel centres 0..W-1: the image spans [-0.5, W-0.5]
            fine = ~nonfin & ~empty
            outside = fine & ((b[:, 2] < -0.5) | (b[:, 0] > W) | (b[:, 3] < -0.5) | (b[:, 1] > H))
            if outside.any():
                i = int(np.flatnonzero(outside)[0])
                err(
                    "person_box_xyxy",
                    f"person box lies outside the image (no overlap), e.g. {np.round(b[i], 1).tolist()} in a "
                    f"{int(size[i, 0])}x{int(size[i, 1])} image",
                    outside,
                )
            partial = fine & ~outside & ((b[:, 0] < -0.5) | (b[:, 1] < -0.5) | (b[:, 2] > W) | (b[:, 3] > H))
            if "truncated" in ok:
                warn("person_box_xyxy", "person box extends past the image border but 'truncated' is False", partial & ~np.asarray(ok["truncated"]))
    if "crop_box_xyxy" in ok:
        cb = np.asarray(ok["crop_box_xyxy"], dtype=np.float64)
        none = np.isnan(cb).all(1)
        fin = np.isfinite(cb).all(1)
        err("crop_box_xyxy", "crop box rows must be 4 finite numbers or all NaN (= none)", ~none & ~fin)
        empty_cb = fin & ((cb[:, 2] <= cb[:, 0]) | (cb[:, 3] <= cb[:, 1]))
        err("crop_box_xyxy", "empty crop box (need right > left, bottom > upper)", empty_cb)

    # meshes and parameters
    for key in ("verts_world", "joints14_world", "pelvis_world", *BODY_PARAM_KEYS, "left_hand_pose", "right_hand_pose"):
        if key in ok:
            bad = _nonfinite_rows(ok[key])
            err(key, f"non-finite values (NaN/inf) in {key}", bad)
            if bad.any():
                ok.pop(key)
    if "contact_part" in ok:
        err("contact_part", f"contact_part outside 0..{NUM_PARTS}", _rowwise(ok["contact_part"], lambda p: (p > NUM_PARTS).any(1)))
        if "contact" in ok:
            step = max(1, (1 << 24) // max(1, ok["contact"][0].size)) if N else 1
            bad = np.zeros(N, bool)
            for s in range(0, N, step):
                cp = np.asarray(ok["contact_part"][s : s + step])
                ct = np.asarray(ok["contact"][s : s + step])
                bad[s : s + step] = ((cp != 0) & ~ct).any(1)
            err("contact_part", "contact_part is nonzero where contact is False (part ids are for contact vertices only)", bad)
    if "occlusion" in ok:
        o = np.asarray(ok["occlusion"], dtype=np.float64)
        err("occlusion", "occlusion must be in [0, 1] (NaN = unknown)", ~np.isnan(o) & ~((o >= 0) & (o <= 1)))
    if "distance" in ok:
        d = np.asarray(ok["distance"], dtype=np.float64)
        bad = ~np.isfinite(d) | (d <= 0)
        err("distance", "distance must be finite and > 0 (metres)", bad)
        if T is not None and "pelvis_world" in ok:
            p = np.asarray(ok["pelvis_world"], dtype=np.float64)
            pc = np.einsum("nij,nj->ni", T[:, :3, :3], p) + T[:, :3, 3]
            ref = np.linalg.norm(pc, axis=1)
            err(
                "distance",
                "distance != |T_world_to_cam . pelvis_world| (camera-pelvis distance in metres)",
                ~bad & (np.abs(d - ref) > 1e-3 + 1e-4 * ref),
            )
    if T is not None and "pelvis_world" in ok:
        p = np.asarray(ok["pelvis_world"], dtype=np.float64)
        z = np.einsum("nj,nj->n", T[:, 2, :3], p) + T[:, 2, 3]
        err("pelvis_world", "the pelvis is behind the camera (camera-frame z <= 0)", z <= 0)

    # one camera per (scene_id, camera_id)
    if "scene_id" in ok and "camera_id" in ok and K is not None and T is not None and size is not None:
        first: dict[tuple[str, str], int] = {}
        ref = np.array([first.setdefault(k, i) for i, k in enumerate(zip(ok["scene_id"].tolist(), ok["camera_id"].tolist()))])
        mismatch = (
            (np.abs(K - K[ref]).max((1, 2)) > 1e-5 * np.abs(K[ref]).max((1, 2)))
            | (np.abs(T - T[ref]).max((1, 2)) > 1e-5)
            | (size != size[ref]).any(1)
        )
        err("camera_id", "frames with the same (scene_id, camera_id) have different K / T_world_to_cam / image_size", mismatch)
    return c.problems


def _shape_str(shape: tuple) -> str:
    return "(" + ", ".join(str(d) for d in shape) + (",)" if len(shape) == 1 else ")")


def _is_safe_rel(p: str) -> bool:
    pp = PurePosixPath(p)
    return bool(p) and "\\" not in p and not pp.is_absolute() and ".." not in pp.parts


# ------------------------------------------------------------------------------------- whole dataset


def validate_dataset(
    root: str | Path,
    *,
    check_hash: bool = True,
    check_images: bool = True,
    meta: Mapping[str, Any] | None = None,
    max_listed: int = 5,
) -> list[Problem]:
    """Validate a dataset folder; returns every problem found (empty list = clean).

    check_hash: recompute every file digest and the content hash (reads all data once).
    check_images: open every image header (existence is always checked).
    meta: use this dict instead of reading ``dataset.json`` (the writer validates before writing it).
    """
    root = Path(root)
    c = _Collector(max_listed)
    if not root.is_dir():
        c.error(str(root), None, "not a directory")
        return c.problems
    if meta is None:
        meta = _read_meta(root, c)
        if meta is None:
            return c.problems
    if not _check_meta(meta, c):
        return c.problems

    scenes = list(meta["scenes"])
    for sid in scenes:
        _check_scene(root, sid, c)

    all_ids: dict[str, str] = {}
    image_paths: set[str] = set()
    for split, n in meta["splits"].items():
        loaded = _load_split(root, split, n, meta["arrays"].get(split, {}), c)
        if loaded is None:
            continue
        arrays, listed_mismatch = loaded
        found = check_split_arrays(arrays, split=split, num_verts=int(meta["body_model"]["num_verts"]), n_frames=int(n), max_listed=max_listed)
        c.problems += found
        # a file that contradicts dataset.json but is otherwise valid (spec problems were reported above)
        c.problems += [p for p in listed_mismatch if not any(q.where == p.where for q in found)]
        ok_ids = "frame_id" in arrays and dtype_name(arrays["frame_id"].dtype) == "str" and arrays["frame_id"].shape == (n,)
        labels = [str(x) for x in arrays["frame_id"].tolist()] if ok_ids else None
        if ok_ids:
            dup = np.array([all_ids.get(f, split) != split for f in labels], bool)
            c.error(f"frames/{split}/frame_id.npy", "frame_id", "frame id also used in another split", dup, labels)
            for f in labels:
                all_ids.setdefault(f, split)
        if "scene_id" in arrays and dtype_name(arrays["scene_id"].dtype) == "str" and arrays["scene_id"].shape == (n,):
            unknown = ~np.isin(np.asarray(arrays["scene_id"]), np.asarray(scenes, dtype=str))
            names = sorted(set(np.asarray(arrays["scene_id"])[unknown].tolist()))
            c.error(
                f"frames/{split}/scene_id.npy",
                "scene_id",
                f"unknown scene id(s) {names[:5]} (dataset.json 'scenes' lists {len(scenes)})",
                unknown,
                labels,
            )
        if "image_path" in arrays and dtype_name(arrays["image_path"].dtype) == "str" and arrays["image_path"].shape == (n,):
            paths = arrays["image_path"].tolist()
            image_paths.update(p for p in paths if _is_safe_rel(p))
            size = arrays.get("image_size")
            size_ok = size is not None and size.shape == (n, 2) and size.dtype == np.int32
            _check_images(root, split, paths, np.asarray(size) if size_ok else None, labels, check_images, c)

    files = dataset_files(root, meta, sorted(image_paths))
    if check_hash:
        _check_hash(root, meta, files, c)
    _check_unreferenced(root, set(files), c)
    return c.problems


def _read_meta(root: Path, c: _Collector) -> dict | None:
    path = root / DATASET_JSON
    if not path.is_file():
        c.error(
            DATASET_JSON, None, "missing: not a sahmr dataset, or the write was interrupted (dataset.json is written last by DatasetWriter.finalize)"
        )
        return None
    try:
        meta = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        c.error(DATASET_JSON, None, f"not valid JSON ({e})")
        return None
    if not isinstance(meta, dict):
        c.error(DATASET_JSON, None, "expected a JSON object")
        return None
    return meta


def _check_meta(meta: Mapping[str, Any], c: _Collector) -> bool:
    """Checks dataset.json fields; False when too broken to go on."""
    w = DATASET_JSON
    if meta.get("format") != FORMAT_NAME:
        c.warning(w, "format", f"expected {FORMAT_NAME!r}, got {meta.get('format')!r}")
    if meta.get("format_version") != FORMAT_VERSION:
        hint = "; upgrade it with `sahmr data upgrade <dir>`" if meta.get("format_version") in UPGRADABLE else ""
        c.error(w, "format_version", f"{meta.get('format_version')!r} is not supported (expected {FORMAT_VERSION}){hint}")
        return False
    if not isinstance(meta.get("name"), str) or not meta.get("name"):
        c.error(w, "name", "must be a non-empty string")
    bm = meta.get("body_model")
    fatal = False
    if not isinstance(bm, dict):
        c.error(w, "body_model", "must be an object {name, num_verts, sha256}")
        fatal = True
    else:
        if not isinstance(bm.get("name"), str):
            c.error(w, "body_model.name", "must be a string")
        nv = bm.get("num_verts")
        if not isinstance(nv, int) or isinstance(nv, bool) or nv < 1:
            c.error(w, "body_model.num_verts", f"must be a positive integer (V), got {nv!r}")
            fatal = True
        if not isinstance(bm.get("sha256"), str):
            c.error(w, "body_model.sha256", "must be a string (sha256 of the body-model file, '' if unknown)")
    splits = meta.get("splits")
    if not isinstance(splits, dict) or not splits:
        c.error(w, "splits", "must be a non-empty object {split: n_frames}")
        fatal = True
    else:
        for s, n in splits.items():
            if not SPLIT_RE.match(s):
                c.error(w, f"splits.{s}", "invalid split name; use [a-z][a-z0-9_]*")
                fatal = True
            if not isinstance(n, int) or isinstance(n, bool) or n < 1:
                c.error(w, f"splits.{s}", f"frame count must be a positive integer, got {n!r}")
                fatal = True
    scenes = meta.get("scenes")
    if not isinstance(scenes, list) or not all(isinstance(s, str) for s in scenes):
        c.error(w, "scenes", "must be a list of scene ids")
        fatal = True
    else:
        bad = [s for s in scenes if not is_valid_id(s)]
        if bad:
            c.error(w, "scenes", f"invalid scene id(s) {bad[:5]}")
            fatal = True
        if len(set(scenes)) != len(scenes):
            c.error(w, "scenes", "duplicate scene ids")
    arrays = meta.get("arrays")
    if not isinstance(arrays, dict):
        c.error(w, "arrays", "must be an object {split: {key: {shape, dtype}}}")
        fatal = True
    elif isinstance(splits, dict):
        for s in splits:
            if not isinstance(arrays.get(s), dict):
                c.error(w, f"arrays.{s}", "missing the array list of this split")
                fatal = True
    if not isinstance(meta.get("content_hash"), str):
        c.error(w, "content_hash", "must be a string")
    if not isinstance(meta.get("generator", {}), dict):
        c.error(w, "generator", "must be an object")
    return not fatal


def _check_scene(root: Path, sid: str, c: _Collector) -> None:
    from sahmr.geometry.sdf import load_sdf_npz

    d = root / "scenes" / sid
    rel = f"scenes/{sid}"
    if not d.is_dir():
        c.error(rel, None, f"scene folder missing for scene '{sid}' listed in dataset.json")
        return
    p = d / "points_world.npy"
    try:
        pts = np.load(p, mmap_mode="r", allow_pickle=False)
    except FileNotFoundError:
        c.error(f"{rel}/points_world.npy", "points_world", "missing")
        pts = None
    except (ValueError, EOFError, OSError) as e:
        c.error(f"{rel}/points_world.npy", "points_world", f"empty, truncated or not a plain .npy array ({e})")
        pts = None
    if pts is not None:
        if pts.dtype != np.float32 or pts.ndim != 2 or pts.shape[1] != 3 or pts.shape[0] < 1:
            c.error(f"{rel}/points_world.npy", "points_world", f"expected (M, 3) float32 with M >= 1, got {pts.shape} {pts.dtype}")
        elif _nonfinite_rows(pts).any():
            c.error(f"{rel}/points_world.npy", "points_world", "non-finite point coordinates")
    try:
        if scene_has_sdf(root, sid):
            load_sdf_npz(d / "sdf.npz")
    except FileNotFoundError:
        c.error(f"{rel}/sdf.npz", None, "missing (signed distance grid of the scene)")
    except ValueError as e:
        c.error(f"{rel}/sdf.npz", None, str(e))
    info = d / "scene.json"
    if not info.is_file():
        c.warning(f"{rel}/scene.json", None, "missing (scene metadata)")
    else:
        try:
            json.loads(info.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            c.error(f"{rel}/scene.json", None, f"not valid JSON ({e})")


def _load_split(root: Path, split: str, n: int, listed: Mapping[str, Any], c: _Collector):
    """({key: memmap}, [problems: file vs dataset.json 'arrays' mismatches]) or None."""
    d = root / "frames" / split
    if not d.is_dir():
        c.error(f"frames/{split}", None, f"split folder missing (dataset.json lists split '{split}' with {n} frames)")
        return None
    arrays: dict[str, np.ndarray] = {}
    mismatch: list[Problem] = []
    for key, spec in listed.items():
        path = d / f"{key}.npy"
        rel = f"frames/{split}/{key}.npy"
        try:
            a = np.load(path, mmap_mode="r", allow_pickle=False)
        except FileNotFoundError:
            c.error(rel, key, "missing (listed in dataset.json 'arrays')")
            continue
        except (ValueError, EOFError, OSError) as e:
            c.error(rel, key, f"empty, truncated, not a plain .npy array, or needs pickle ({e})")
            continue
        if isinstance(spec, dict) and (list(a.shape) != spec.get("shape") or dtype_name(a.dtype) != spec.get("dtype")):
            listed_as = f"{_shape_str(tuple(spec.get('shape') or ()))} {spec.get('dtype')}"
            mismatch.append(Problem("error", rel, key, f"file holds {_shape_str(a.shape)} {dtype_name(a.dtype)} but dataset.json lists {listed_as}"))
        arrays[key] = a
    for path in sorted(d.glob("*.npy")):
        if path.stem not in listed:
            c.warning(f"frames/{split}/{path.name}", path.stem, "array not listed in dataset.json (ignored by readers)")
    return arrays, mismatch


def _check_images(root: Path, split: str, paths: list[str], size: np.ndarray | None, labels, check_headers: bool, c: _Collector) -> None:
    from PIL import Image, UnidentifiedImageError

    n = len(paths)
    missing = np.zeros(n, bool)
    unreadable = np.zeros(n, bool)
    wrong_size = np.zeros(n, bool)
    first: dict[str, str] = {}
    for i, rel in enumerate(paths):
        if not _is_safe_rel(rel):
            continue
        path = root / rel
        if not path.is_file():
            missing[i] = True
            first.setdefault("missing", rel)
            continue
        if not check_headers:
            continue
        try:
            with Image.open(path) as im:
                w, h = im.size
                mode = im.mode
        except (UnidentifiedImageError, OSError):
            unreadable[i] = True
            first.setdefault("unreadable", rel)
            continue
        if mode not in ("RGB", "RGBA", "L", "P"):
            unreadable[i] = True
            first.setdefault("unreadable", rel)
        elif size is not None and (w, h) != (int(size[i, 0]), int(size[i, 1])):
            wrong_size[i] = True
            first.setdefault("size", f"{rel}: {w}x{h} vs image_size {int(size[i, 0])}x{int(size[i, 1])}")
    where = f"frames/{split}/image_path.npy"
    if missing.any():
        c.error(
            first["missing"],
            "image_path",
            f"image file missing ({int(missing.sum())} missing in split '{split}', listed in {where})",
            missing,
            labels,
        )
    if unreadable.any():
        c.error(first["unreadable"], "image_path", "image file unreadable or not an RGB/gray image", unreadable, labels)
    if wrong_size.any():
        c.error(f"frames/{split}/image_size.npy", "image_size", f"image size differs from the file, e.g. {first['size']}", wrong_size, labels)


def _check_hash(root: Path, meta: Mapping[str, Any], files: list[str], c: _Collector) -> None:
    existing = [f for f in files if (root / f).is_file()]
    absent = sorted(set(files) - set(existing))
    if absent:
        # missing arrays / images are reported by their own checks; report the rest here
        c.error(absent[0], None, f"{len(absent)} dataset file(s) missing, the content hash cannot match: {absent[:5]}")
    manifest = compute_manifest(root, existing)
    recorded = None
    mpath = root / MANIFEST_JSON
    if mpath.is_file():
        try:
            recorded = json.loads(mpath.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            c.error(MANIFEST_JSON, None, f"not valid JSON ({e})")
    else:
        c.warning(MANIFEST_JSON, None, "missing: changed files cannot be named, only the overall hash is checked")
    if isinstance(recorded, dict):
        changed = sorted(f for f in existing if recorded.get(f) not in (None, manifest[f]))
        unlisted = sorted(f for f in existing if f not in recorded)
        if changed:
            c.error(changed[0], None, f"content differs from manifest.json ({len(changed)} file(s) changed: {changed[:5]})")
        if unlisted:
            c.error(unlisted[0], None, f"not in manifest.json ({len(unlisted)} file(s): {unlisted[:5]})")
    if not absent:
        got = content_hash_of(manifest)
        want = meta.get("content_hash")
        if got != want:
            c.error(
                DATASET_JSON,
                "content_hash",
                f"content hash mismatch: dataset.json records {want!r}, the files give {got!r} "
                "(data changed after it was written; regenerate, or re-finalize if the change is intended)",
            )


def _check_unreferenced(root: Path, files: set[str], c: _Collector) -> None:
    stray, temps = [], []
    for top in ("frames", "scenes", "images"):
        base = root / top
        if not base.is_dir():
            continue
        for p in base.rglob("*"):
            if not p.is_file():
                continue
            rel = p.relative_to(root).as_posix()
            if p.name.startswith(".") and p.name.endswith(".tmp"):
                temps.append(rel)
            elif rel not in files and not rel.startswith("frames/"):  # unlisted arrays are reported per split
                stray.append(rel)
    for rel in root.glob(".*.tmp"):
        temps.append(rel.relative_to(root).as_posix())
    if temps:
        c.warning(temps[0], None, f"{len(temps)} leftover temporary file(s) of an interrupted write: {sorted(temps)[:5]}")
    if stray:
        stray.sort()
        c.warning(stray[0], None, f"{len(stray)} file(s) not referenced by the dataset (not hashed, ignored): {stray[:5]}")
