"""The evaluation: predictions against ground truth, every metric, per frame and summarised.

:func:`evaluate_arrays` reproduces the release evaluation (spec §6.2) — world-frame meshes, H36M
joints from a regressor, SDF-based PenE/ConFE — and adds PA-MPJPE, the pelvis error and vertex-level
contact precision/recall/F1 (:mod:`sahmr.metrics`). :func:`evaluate_split` reads the GT (world-frame
vertices, cameras, contact, scenes' SDF grids) from a dataset split in the canonical format, the H36M
evaluation regressor from the body model the dataset was made with, runs :func:`evaluate_arrays`, and adds
the frame metadata (scene, camera, pose class, distance, occlusion, truncation) to the per-frame table so
notebooks can slice errors by them. :func:`run_evaluation` is ``sahmr evaluate``.
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from sahmr import metrics as M
from sahmr.atomic import atomic_write as _atomic_write
from sahmr.body.regressors import regress_h36m
from sahmr.eval.predictions import Predictions, frame_ids_array, read_predictions, validate_predictions
from sahmr.geometry.sdf import SDFGrid, query_sdf

__all__ = [
    "SUMMARY_KEYS",
    "evaluate_arrays",
    "format_paper_table",
    "write_evaluation",
    "evaluate_split",
    "run_evaluation",
    "topology_family",
    "check_topology",
    "FRAME_METADATA",
]

# Summary keys always present (mm for positions, m for PenE/ConFE, ratios for contact).
SUMMARY_KEYS = (
    "g_mpjpe",
    "g_mpve",
    "mpjpe",
    "mpve",
    "pa_mpjpe",
    "pelvis_error",
    "c_hscp_l2",
    "pene",
    "confe",
    "contact_precision",
    "contact_recall",
    "contact_f1",
    "n_frames",
)


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
            f"{source}: predictions contain {len(extra)} frame id(s) not in the ground truth, e.g. {extra[:5]}; evaluate against the matching split"
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
    gt_ids = frame_ids_array(gt_frame_ids, "ground truth", "gt_frame_ids")
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
        raise ValueError("T_world_to_cam is required: the predictions have no 'verts_world' or carry camera-frame pelvis predictions")
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
        k: float(np.mean(col, dtype=np.float64)) for k, col in table.items() if k not in ("frame_id", "scene_id", "n_contact_gt", "n_contact_pred")
    }
    summary["n_frames"] = n
    return table, summary


# ------------------------------------------------------------------------------------------- reporting


def format_paper_table(summary: Mapping[str, float]) -> str:
    """Markdown tables of a summary: the paper's six columns (spec §6.2, 2 decimals), then the extras."""
    paper = [
        ("G-MPJPE (mm)", "g_mpjpe"),
        ("G-MPVE (mm)", "g_mpve"),
        ("MPJPE (mm)", "mpjpe"),
        ("MPVE (mm)", "mpve"),
        ("PenE (m)", "pene"),
        ("ConFE (m)", "confe"),
    ]
    extra = [
        ("PA-MPJPE (mm)", "pa_mpjpe"),
        ("PelvisE (mm)", "pelvis_error"),
        ("PelvisE refined (mm)", "pelvis_error_refined"),
        ("C_HSCP_L2 (mm)", "c_hscp_l2"),
        ("Contact P", "contact_precision"),
        ("Contact R", "contact_recall"),
        ("Contact F1", "contact_f1"),
        ("Frames", "n_frames"),
    ]
    missing = [k for _, k in paper if k not in summary]
    if missing:
        raise ValueError(f"summary: missing key(s) {missing}")

    def table(cols):
        cols = [(h, k) for h, k in cols if k in summary]
        fmt = [
            f"{summary[k]:d}"
            if isinstance(summary[k], (int, np.integer))
            else f"{summary[k]:.3f}"
            if k.startswith("contact")
            else f"{summary[k]:.2f}"
            for _, k in cols
        ]
        return "\n".join(
            [
                "| " + " | ".join(h for h, _ in cols) + " |",
                "|" + "|".join("---:" for _ in cols) + "|",
                "| " + " | ".join(fmt) + " |",
            ]
        )

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


FRAME_METADATA = ("camera_id", "pose_class", "distance", "occlusion", "truncated", "sequence")  # "sequence": RICH


def topology_family(body_model: str) -> str:
    """The mesh topology a body-model id stands for, so that vertex i means the same point.

    SMPL and SMPL-H share one topology ("smpl": 6890 vertices, the same faces), whatever the gender
    ("smpl_neutral", "smplh_male"…); SMPL-X is "smplx"; the open model is "sahmr-open" (6890 vertices too,
    but other faces: its vertex i is not SMPL's). Any other id is its own family.
    """
    n = str(body_model).strip().lower().replace("+", "").replace("-", "_")
    if n.startswith("smplx") or n.startswith("smpl_x"):
        return "smplx"
    if n == "smpl" or n.startswith(("smpl_", "smplh", "basicmodel")):
        return "smpl"
    if n.startswith("sahmr_open"):
        return "sahmr-open"
    return n


def check_topology(pred_body_model: str, dataset_body_model: str, source: str) -> None:
    """ValueError unless the predictions follow the dataset's mesh topology (same vertex count is not enough)."""
    fp, fd = topology_family(pred_body_model), topology_family(dataset_body_model)
    if fp != fd:
        raise ValueError(
            f"{source}: body_model {pred_body_model!r} (topology {fp!r}) differs from the dataset's "
            f"{dataset_body_model!r} (topology {fd!r}): vertex i is a different point on each mesh, so "
            "per-vertex errors would be meaningless. Predict with the dataset's body model (or convert your "
            "meshes to it) and write its id as body_model."
        )


def evaluate_split(pred_path: str | Path, data_root: str | Path, split: str, body_model: str | Path | None = None):
    """(table, summary) for one split. body_model: name/path; default: the dataset's body model."""
    from sahmr.body.model import resolve_model_path
    from sahmr.body.model_file import load_body_model_file
    from sahmr.data.format import open_dataset

    ds = open_dataset(data_root)
    if split not in ds.splits:
        raise ValueError(f"{data_root}: no split {split!r} (available: {sorted(ds.splits)})")
    arr = ds.split(split)
    body = load_body_model_file(resolve_model_path(body_model or ds.meta["body_model"]["name"]))
    if body.num_verts != ds.num_verts:
        raise ValueError(
            f"body model {body.meta.get('name')} has {body.num_verts} vertices but dataset {data_root} "
            f"has {ds.num_verts}: evaluate with the body model the dataset was made with"
        )
    pred = read_predictions(pred_path, expected_num_vertices=ds.num_verts)
    check_topology(pred.body_model, ds.meta["body_model"]["name"], str(pred_path))
    scene_ids = np.asarray(arr["scene_id"])
    grids = {sid: ds.scene_sdf(sid) for sid in sorted(set(scene_ids.tolist()))}
    table, summary = evaluate_arrays(
        pred,
        gt_frame_ids=np.asarray(arr["frame_id"]),
        gt_verts_world=arr["verts_world"],
        regressor17=body.arrays["sahmr_eval_regressor"],
        scene_ids=scene_ids,
        sdf_grids=grids,
        T_world_to_cam=np.asarray(arr["T_world_to_cam"]),
        gt_contact=np.asarray(arr["contact"]),
        source=str(pred_path),
    )
    table = dict(table)
    for key in FRAME_METADATA:
        if key in arr.keys():
            table[key] = np.asarray(arr[key])
    return table, summary


def run_evaluation(pred_path, data_root, split, out_json, frames_out=None, body_model=None, quiet=False) -> dict:
    table, summary = evaluate_split(pred_path, data_root, split, body_model)
    write_evaluation(table, summary, per_frame_csv=frames_out, summary_json=out_json)
    if not quiet:
        print(format_paper_table(summary))
    return summary
