"""Bring-your-own-predictions files and the release evaluation over whole splits.

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

:func:`evaluate_arrays` reproduces the release evaluation (spec §6.2) — world-frame meshes, H36M
joints from a regressor, SDF-based PenE/ConFE — and adds PA-MPJPE, the pelvis error and vertex-level
contact precision/recall/F1 (:mod:`sahmr.metrics`).
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np

from sahmr.atomic import atomic_write as _atomic_write
from sahmr import metrics as M
from sahmr.body.regressors import regress_h36m
from sahmr.geometry.sdf import SDFGrid, query_sdf

__all__ = [
    "PREDICTIONS_FORMAT_VERSION",
    "Predictions",
    "validate_predictions",
    "write_predictions",
    "read_predictions",
    "evaluate_arrays",
    "SUMMARY_KEYS",
    "format_paper_table",
    "write_evaluation",
]

PREDICTIONS_FORMAT_VERSION = 1
_HEADER_KEYS = ("format_version", "body_model", "num_vertices", "frame_ids")
_VERTS_KEYS = ("verts_cam", "verts_world")
_OPTIONAL_KEYS = ("pelvis_cam", "pelvis_refined_cam", "contact_vertex")
_ALL_KEYS = _HEADER_KEYS + _VERTS_KEYS + _OPTIONAL_KEYS

# Summary keys always present (mm for positions, m for PenE/ConFE, ratios for contact).
SUMMARY_KEYS = (
    "g_mpjpe", "g_mpve", "mpjpe", "mpve", "pa_mpjpe", "pelvis_error", "c_hscp_l2",
    "pene", "confe", "contact_precision", "contact_recall", "contact_f1", "n_frames",
)  # fmt: skip


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


def _fail(source: str, field: str, msg: str) -> ValueError:
    return ValueError(f"{source}: field '{field}': {msg}")


def _frame_ids(values, source: str, field: str = "frame_ids") -> np.ndarray:
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise _fail(source, field, f"expected a 1-D array of strings, got shape {arr.shape}")
    if arr.dtype.kind == "O" and all(isinstance(x, str) for x in arr.tolist()):
        arr = arr.astype(np.str_)
    if arr.dtype.kind != "U":
        raise _fail(source, field, f"expected strings, got dtype {arr.dtype}")
    if len(arr) == 0:
        raise _fail(source, field, "is empty; at least one frame is required")
    if (np.char.str_len(arr) == 0).any():
        raise _fail(source, field, f"contains {int((np.char.str_len(arr) == 0).sum())} empty id(s)")
    uniq, counts = np.unique(arr, return_counts=True)
    if (counts > 1).any():
        dups = uniq[counts > 1]
        raise _fail(source, field, f"{len(dups)} duplicate id(s), e.g. {dups[:5].tolist()}; ids must be unique")
    return arr


def _float_array(value, source: str, field: str, shape: tuple) -> np.ndarray:
    arr = np.asarray(value)
    if arr.dtype.kind not in "fiu":
        raise _fail(source, field, f"expected float32 numbers, got dtype {arr.dtype}")
    if arr.shape != shape:
        raise _fail(source, field, f"expected shape {shape}, got {arr.shape}")
    arr = arr.astype(np.float32, copy=False)
    bad = ~np.isfinite(arr)
    if bad.any():
        frames = np.unique(np.nonzero(bad.reshape(len(arr), -1))[0])
        raise _fail(
            source, field, f"{int(bad.sum())} NaN/inf value(s) in {len(frames)} frame(s), first at frame index {int(frames[0])}"
        )
    return arr


def validate_predictions(
    pred: Predictions, *, source: str = "<predictions>", expected_num_vertices: int | None = None
) -> Predictions:
    """Check `pred` and return a normalised copy (float32 arrays, str ids, bool contact).

    source: names the file (or origin) in error messages. expected_num_vertices: V of the body model
    used for evaluation; a mismatch is an error. Raises ValueError naming the source and field.
    """
    if pred.format_version != PREDICTIONS_FORMAT_VERSION:
        raise _fail(
            source, "format_version", f"{pred.format_version} is not supported (expected {PREDICTIONS_FORMAT_VERSION})"
        )
    if not isinstance(pred.body_model, str) or not pred.body_model:
        raise _fail(source, "body_model", f"expected a non-empty string id, got {pred.body_model!r}")
    v = pred.num_vertices
    if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, np.integer)) or v < 1:
        raise _fail(source, "num_vertices", f"expected a positive integer, got {v!r}")
    v = int(v)
    if expected_num_vertices is not None and v != expected_num_vertices:
        raise _fail(source, "num_vertices", f"is {v} but the evaluation body model has {expected_num_vertices} vertices")
    ids = _frame_ids(pred.frame_ids, source)
    n = len(ids)
    if pred.verts_cam is None and pred.verts_world is None:
        raise _fail(source, "verts_cam", "neither 'verts_cam' nor 'verts_world' is given; at least one is required")
    out = Predictions(frame_ids=ids, body_model=pred.body_model, num_vertices=v, format_version=pred.format_version)
    for key in _VERTS_KEYS:
        value = getattr(pred, key)
        if value is not None:
            arr = np.asarray(value)
            if arr.ndim == 3 and arr.shape[0] == n and arr.shape[2] == 3 and arr.shape[1] != v:
                raise _fail(source, key, f"has {arr.shape[1]} vertices per mesh but num_vertices = {v}")
            if arr.ndim >= 1 and arr.shape[0] != n:
                raise _fail(source, key, f"has {arr.shape[0]} frames but frame_ids has {n}")
            setattr(out, key, _float_array(arr, source, key, (n, v, 3)))
    for key in ("pelvis_cam", "pelvis_refined_cam"):
        value = getattr(pred, key)
        if value is not None:
            arr = np.asarray(value)
            if arr.ndim >= 1 and arr.shape[0] != n:
                raise _fail(source, key, f"has {arr.shape[0]} frames but frame_ids has {n}")
            setattr(out, key, _float_array(arr, source, key, (n, 3)))
    if pred.contact_vertex is not None:
        arr = np.asarray(pred.contact_vertex)
        if arr.shape != (n, v):
            raise _fail(source, "contact_vertex", f"expected shape {(n, v)}, got {arr.shape}")
        if arr.dtype != np.bool_:
            if arr.dtype.kind not in "iu" or not np.isin(arr, (0, 1)).all():
                raise _fail(source, "contact_vertex", f"expected bool (or 0/1 integers), got dtype {arr.dtype}")
            arr = arr.astype(bool)
        out.contact_vertex = arr
    return out


# ---------------------------------------------------------------------------------------------- files


def write_predictions(
    path: str | os.PathLike, pred: Predictions, *, expected_num_vertices: int | None = None, compress: bool = False
) -> Path:
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
                raise _fail(source, missing[0], f"missing required key(s) {missing}")
            data = {}
            for k in keys:
                try:
                    data[k] = z[k]
                except ValueError as e:  # object arrays need pickle: refused
                    raise _fail(source, k, f"cannot be read without pickle ({e}); store plain numeric/str arrays") from e
    except FileNotFoundError:
        raise
    except (OSError, EOFError) as e:
        raise ValueError(f"{source}: not a readable .npz file ({e})") from e
    except ValueError as e:
        if str(e).startswith(source):
            raise
        raise ValueError(f"{source}: not a readable .npz file ({e})") from e

    header = {}
    for k in ("format_version", "num_vertices"):
        a = data[k]
        if a.shape != () or a.dtype.kind not in "iu":
            raise _fail(source, k, f"expected a scalar integer, got dtype {a.dtype} shape {a.shape}")
        header[k] = int(a)
    bm = data["body_model"]
    if bm.shape != () or bm.dtype.kind != "U":
        raise _fail(source, "body_model", f"expected a scalar string, got dtype {bm.dtype} shape {bm.shape}")
    pred = Predictions(
        frame_ids=data["frame_ids"],
        body_model=str(bm),
        num_vertices=header["num_vertices"],
        format_version=header["format_version"],
        **{k: data[k] for k in _VERTS_KEYS + _OPTIONAL_KEYS if k in data},
    )
    return validate_predictions(pred, source=source, expected_num_vertices=expected_num_vertices)


# ----------------------------------------------------------------------------------------- evaluation


def _match_frames(pred_ids: np.ndarray, gt_ids: np.ndarray, source: str) -> np.ndarray:
    """Index into the predictions for each GT frame, in GT order; missing or extra ids are errors."""
    pos = {fid: i for i, fid in enumerate(pred_ids.tolist())}
    missing = [fid for fid in gt_ids.tolist() if fid not in pos]
    if missing:
        raise ValueError(
            f"{source}: predictions lack {len(missing)} of the {len(gt_ids)} ground-truth frame ids, "
            f"e.g. {missing[:5]}; every GT frame needs a prediction"
        )
    if len(pred_ids) != len(gt_ids):
        gt_set = set(gt_ids.tolist())
        extra = [fid for fid in pred_ids.tolist() if fid not in gt_set]
        raise ValueError(
            f"{source}: predictions contain {len(extra)} frame id(s) not in the ground truth, e.g. {extra[:5]}; "
            "evaluate against the matching split"
        )
    return np.fromiter((pos[fid] for fid in gt_ids.tolist()), dtype=np.int64, count=len(gt_ids))


def _gt_array(value, name: str, shape: tuple, dtype=np.float64) -> np.ndarray:
    arr = np.asarray(value)
    if arr.shape != shape:
        raise ValueError(f"ground truth '{name}': expected shape {shape}, got {arr.shape}")
    if dtype is bool:
        if arr.dtype != np.bool_:
            if arr.dtype.kind not in "iuf" or not np.isin(arr, (0, 1)).all():
                raise ValueError(f"ground truth '{name}': expected a bool mask, got dtype {arr.dtype}")
            arr = arr.astype(bool)
        return arr
    if arr.dtype.kind not in "fiu" or not np.isfinite(arr).all():
        raise ValueError(f"ground truth '{name}': expected finite numbers (dtype {arr.dtype})")
    return arr


def _apply_rigid(T: np.ndarray, points: np.ndarray) -> np.ndarray:
    """T: (B, 4, 4); points: (B, P, 3) -> T applied to each point, (B, P, 3)."""
    return points @ T[:, :3, :3].swapaxes(-1, -2) + T[:, None, :3, 3]


def evaluate_arrays(
    pred: Predictions,
    *,
    gt_frame_ids: Sequence[str] | np.ndarray,
    gt_verts_world: np.ndarray,
    regressor17: np.ndarray,
    scene_ids: Sequence[str] | np.ndarray,
    sdf_grids: Mapping[str, SDFGrid],
    T_world_to_cam: np.ndarray | None = None,
    gt_contact: np.ndarray | None = None,
    contact_threshold: float = M.CONTACT_THRESHOLD_M,
    chunk_frames: int = 128,
    source: str = "<predictions>",
) -> tuple[dict[str, np.ndarray], dict[str, float]]:
    """Evaluate one split: every metric per frame, plus the mean over frames.

    pred: predictions (any order; matched to the GT by frame id; validated again here).
    gt_frame_ids: (N,) str; gt_verts_world: (N, V, 3) metres, world frame; regressor17: (17, V) H36M
        regressor; scene_ids: (N,) str, key into `sdf_grids` (scene id -> SDFGrid in the world frame).
    T_world_to_cam: (N, 4, 4) world->camera; required when `pred` has no ``verts_world`` (the camera
        meshes are mapped with its inverse, as the release evaluation) or carries pelvis predictions.
    gt_contact: (N, V) bool GT contact per vertex; None = no contact annotation (PROX: all False, so
        ConFE = PenE and contact recall is 1 by convention).
    contact_threshold: metres; a predicted vertex with |SDF| ≤ this counts as contact.
    chunk_frames: frames per vectorised step (bounds temporary memory).
    source: names the predictions in error messages (e.g. the file path).

    World-frame meshes come from ``verts_world`` when present, else from ``inverse(T_world_to_cam)`` ·
    ``verts_cam``. Arithmetic is float64.
    Returns (table, summary):
      table: dict of (N,) numpy columns in GT order — ``frame_id``, ``scene_id``, ``g_mpjpe``, ``g_mpve``,
        ``mpjpe``, ``mpve``, ``pa_mpjpe``, ``pelvis_error`` (pelvis of the predicted mesh), ``c_hscp_l2``
        (mm); ``pene``, ``confe`` (m); ``contact_precision/recall/f1``; ``n_contact_gt``, ``n_contact_pred``;
        and, when the predictions carry them, ``pelvis_error_coarse``/``pelvis_error_refined`` (mm, from
        ``pelvis_cam``/``pelvis_refined_cam``) and ``contact_vertex_precision/recall/f1`` (from
        ``contact_vertex``).
      summary: arithmetic mean over frames of every metric column (:data:`SUMMARY_KEYS` + the optional
        ones present) and ``n_frames``.
    Raises ValueError on missing/extra frame ids, unknown scenes, or inconsistent shapes.
    """
    gt_ids = _frame_ids(gt_frame_ids, "ground truth", "gt_frame_ids")
    n = len(gt_ids)
    gt_verts_world = np.asarray(gt_verts_world)
    if gt_verts_world.ndim != 3 or gt_verts_world.shape[2] != 3:
        raise ValueError(f"ground truth 'gt_verts_world': expected shape (N, V, 3), got {gt_verts_world.shape}")
    v = gt_verts_world.shape[1]
    gt_verts_world = _gt_array(gt_verts_world, "gt_verts_world", (n, v, 3))
    reg = np.asarray(regressor17.toarray() if hasattr(regressor17, "toarray") else regressor17, dtype=np.float64)
    if reg.shape != (17, v):
        raise ValueError(f"regressor17: expected shape (17, {v}) (17 H36M joints x V), got {reg.shape}")
    # cheap next to the evaluation; catches in-memory predictions that never went through a file
    pred = validate_predictions(pred, source=source, expected_num_vertices=v)
    scene_ids = np.asarray(scene_ids)
    if scene_ids.shape != (n,):
        raise ValueError(f"scene_ids: expected shape ({n},), got {scene_ids.shape}")
    scene_ids = scene_ids.astype(np.str_)
    unknown = sorted(set(scene_ids.tolist()) - set(sdf_grids))
    if unknown:
        raise ValueError(f"scene_ids: no SDF grid for scene(s) {unknown}; sdf_grids has {sorted(sdf_grids)}")
    needs_T = pred.verts_world is None or pred.pelvis_cam is not None or pred.pelvis_refined_cam is not None
    if T_world_to_cam is not None:
        T_world_to_cam = _gt_array(T_world_to_cam, "T_world_to_cam", (n, 4, 4)).astype(np.float64)
        try:
            T_cam_to_world = np.linalg.inv(T_world_to_cam)
        except np.linalg.LinAlgError as e:
            raise ValueError(f"ground truth 'T_world_to_cam': a matrix is singular ({e})") from e
    elif needs_T:
        raise ValueError(
            "T_world_to_cam is required: the predictions have no 'verts_world' or carry camera-frame pelvis predictions"
        )
    gt_contact = np.zeros((n, v), bool) if gt_contact is None else _gt_array(gt_contact, "gt_contact", (n, v), bool)
    order = _match_frames(pred.frame_ids, gt_ids, source)

    cols: dict[str, list[np.ndarray]] = {}

    def put(name: str, value) -> None:
        cols.setdefault(name, []).append(np.asarray(value))

    for s in range(0, n, max(1, chunk_frames)):
        e = min(n, s + max(1, chunk_frames))
        idx = order[s:e]
        gt_w = gt_verts_world[s:e].astype(np.float64)
        if pred.verts_world is not None:
            pr_w = pred.verts_world[idx].astype(np.float64)
        else:
            pr_w = _apply_rigid(T_cam_to_world[s:e], pred.verts_cam[idx].astype(np.float64))
        pr_j, pr_pel = regress_h36m(pr_w, reg)
        gt_j, gt_pel = regress_h36m(gt_w, reg)
        put("g_mpjpe", M.g_mpjpe(pr_j, gt_j))
        put("g_mpve", M.g_mpve(pr_w, gt_w))
        put("mpjpe", M.mpjpe(pr_j, gt_j, pr_pel, gt_pel))
        put("mpve", M.mpve(pr_w, gt_w, pr_pel, gt_pel))
        put("pa_mpjpe", M.pa_mpjpe(pr_j, gt_j))
        put("pelvis_error", M.pelvis_error(pr_pel, gt_pel))
        contact = gt_contact[s:e]
        put("c_hscp_l2", M.c_hscp_l2(pr_w, gt_w, pr_pel, gt_pel, contact))

        sdf = np.empty(pr_w.shape[:2], np.float64)
        chunk_scenes = scene_ids[s:e]
        for sid in np.unique(chunk_scenes):
            m = chunk_scenes == sid
            sdf[m] = query_sdf(sdf_grids[str(sid)], pr_w[m])
        put("pene", M.pene(sdf))
        put("confe", M.confe(sdf, contact))
        p, r, f1 = M.contact_precision_recall_f1(sdf, contact, contact_threshold)
        put("contact_precision", p)
        put("contact_recall", r)
        put("contact_f1", f1)
        put("n_contact_gt", contact.sum(-1))
        put("n_contact_pred", (np.abs(sdf) <= contact_threshold).sum(-1))

        for key, col in (("pelvis_cam", "pelvis_error_coarse"), ("pelvis_refined_cam", "pelvis_error_refined")):
            value = getattr(pred, key)
            if value is not None:
                gt_pel_cam = _apply_rigid(T_world_to_cam[s:e], gt_pel[:, None, :])[:, 0]
                put(col, M.pelvis_error(value[idx].astype(np.float64), gt_pel_cam))
        if pred.contact_vertex is not None:
            p, r, f1 = M.contact_precision_recall_f1_from_masks(pred.contact_vertex[idx], contact)
            put("contact_vertex_precision", p)
            put("contact_vertex_recall", r)
            put("contact_vertex_f1", f1)

    table: dict[str, np.ndarray] = {"frame_id": gt_ids, "scene_id": scene_ids}
    table.update({k: np.concatenate(vs) for k, vs in cols.items()})
    summary: dict[str, float] = {
        k: float(np.mean(col, dtype=np.float64))
        for k, col in table.items()
        if k not in ("frame_id", "scene_id", "n_contact_gt", "n_contact_pred")
    }
    summary["n_frames"] = n
    return table, summary


# ------------------------------------------------------------------------------------------- reporting


def format_paper_table(summary: Mapping[str, float]) -> str:
    """Markdown tables of a summary: the paper's six columns (spec §6.2, 2 decimals), then the extras."""
    paper = [("G-MPJPE (mm)", "g_mpjpe"), ("G-MPVE (mm)", "g_mpve"), ("MPJPE (mm)", "mpjpe"),
             ("MPVE (mm)", "mpve"), ("PenE (m)", "pene"), ("ConFE (m)", "confe")]  # fmt: skip
    extra = [("PA-MPJPE (mm)", "pa_mpjpe"), ("PelvisE (mm)", "pelvis_error"),
             ("PelvisE refined (mm)", "pelvis_error_refined"), ("C_HSCP_L2 (mm)", "c_hscp_l2"),
             ("Contact P", "contact_precision"), ("Contact R", "contact_recall"), ("Contact F1", "contact_f1"),
             ("Frames", "n_frames")]  # fmt: skip
    missing = [k for _, k in paper if k not in summary]
    if missing:
        raise ValueError(f"summary: missing key(s) {missing}")

    def table(cols):
        cols = [(h, k) for h, k in cols if k in summary]
        fmt = [f"{summary[k]:d}" if isinstance(summary[k], (int, np.integer)) else
               f"{summary[k]:.3f}" if k.startswith("contact") else f"{summary[k]:.2f}" for _, k in cols]  # fmt: skip
        return "\n".join([
            "| " + " | ".join(h for h, _ in cols) + " |",
            "|" + "|".join("---:" for _ in cols) + "|",
            "| " + " | ".join(fmt) + " |",
        ])  # fmt: skip

    return table(paper) + "\n\n" + table(extra) + "\n"


def write_evaluation(
    table: Mapping[str, np.ndarray],
    summary: Mapping[str, float],
    *,
    per_frame_csv: str | os.PathLike | None = None,
    summary_json: str | os.PathLike | None = None,
) -> None:
    """Write the per-frame table (CSV, one row per frame) and/or the summary (JSON), atomically.

    Both files are rendered in memory first, so an invalid table writes nothing.
    """
    lengths = {k: len(np.asarray(v)) for k, v in table.items()}
    if len(set(lengths.values())) > 1:
        raise ValueError(f"table: columns have different lengths {lengths}")
    payloads: list[tuple[Path, bytes]] = []
    if per_frame_csv is not None:
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        keys = list(table)
        w.writerow(keys)
        columns = [np.asarray(table[k]) for k in keys]
        for row in zip(*columns):
            w.writerow([format(x, ".9g") if isinstance(x, (float, np.floating)) else str(x) for x in row])
        payloads.append((Path(per_frame_csv), buf.getvalue().encode()))
    if summary_json is not None:
        clean = {k: (int(x) if isinstance(x, (int, np.integer)) else float(x)) for k, x in summary.items()}
        payloads.append((Path(summary_json), (json.dumps(clean, indent=2, sort_keys=True) + "\n").encode()))
    for path, data in payloads:
        _atomic_write(path, lambda f, data=data: f.write(data))
