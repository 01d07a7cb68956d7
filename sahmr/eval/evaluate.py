"""Evaluate a predictions file against a dataset split in the canonical format.

``evaluate_split`` reads the GT (world-frame vertices, cameras, contact, scenes' SDF grids) from the
dataset, the H36M evaluation regressor from the body model the dataset was made with, runs
:func:`sahmr.eval.predictions.evaluate_arrays`, and adds the frame metadata (scene, camera, pose class,
distance, occlusion, truncation) to the per-frame table so notebooks can slice errors by them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from sahmr.eval.predictions import evaluate_arrays, format_paper_table, read_predictions, write_evaluation

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
        raise ValueError(f"{source}: body_model {pred_body_model!r} (topology {fp!r}) differs from the dataset's "
                         f"{dataset_body_model!r} (topology {fd!r}): vertex i is a different point on each mesh, so "
                         "per-vertex errors would be meaningless. Predict with the dataset's body model (or convert your "
                         "meshes to it) and write its id as body_model.")  # fmt: skip


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
        raise ValueError(f"body model {body.meta.get('name')} has {body.num_verts} vertices but dataset {data_root} "
                         f"has {ds.num_verts}: evaluate with the body model the dataset was made with")
    pred = read_predictions(pred_path, expected_num_vertices=ds.num_verts)
    check_topology(pred.body_model, ds.meta["body_model"]["name"], str(pred_path))
    scene_ids = np.asarray(arr["scene_id"])
    grids = {sid: ds.scene_sdf(sid) for sid in sorted(set(scene_ids.tolist()))}
    table, summary = evaluate_arrays(
        pred, gt_frame_ids=np.asarray(arr["frame_id"]), gt_verts_world=arr["verts_world"],
        regressor17=body.arrays["sahmr_eval_regressor"], scene_ids=scene_ids, sdf_grids=grids,
        T_world_to_cam=np.asarray(arr["T_world_to_cam"]), gt_contact=np.asarray(arr["contact"]), source=str(pred_path),
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
