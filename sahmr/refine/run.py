"""Split-level entry points: ``sahmr refine`` (any method's predictions file -> refined predictions file) and
``sahmr fit`` (2D keypoints file -> predictions file), both in the kit's predictions format, so
``sahmr evaluate``, the reports and the failure explorer take their outputs unchanged.

Both run in batches of one scene, resume after a kill (`sahmr.refine.batches`), write the output atomically
and, with ``stats``, a JSON of seconds per frame and the mean energy terms (before/after).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import platform
import shutil
from pathlib import Path

import numpy as np
import torch

from sahmr.atomic import atomic_write_bytes
from sahmr.body.model import BodyModel, resolve_model_path
from sahmr.body.model_file import sha256_file
from sahmr.eval.evaluate import check_topology
from sahmr.eval.predictions import Predictions, read_predictions, write_predictions
from sahmr.refine.batches import parts_dir, run_batches, scene_batches
from sahmr.refine.prior import PosePrior, prior_from_dataset

__all__ = ["refine_predictions", "fit_keypoints_file", "code_digest"]


def code_digest() -> str:
    """sha256 over this package's sources: a resumed run never mixes batches of two code versions."""
    h = hashlib.sha256()
    for p in sorted(Path(__file__).parent.glob("*.py")):
        h.update(p.name.encode() + p.read_bytes())
    return h.hexdigest()


def _digest(*parts) -> str:
    h = hashlib.sha256()
    for p in parts:
        h.update(json.dumps(p, sort_keys=True, default=str).encode())
    return h.hexdigest()


def _open_split(data_root, split: str):
    from sahmr.data.format import open_dataset

    ds = open_dataset(data_root)
    if split not in ds.splits:
        raise ValueError(f"--split {split!r}: {data_root} has no such split; it has {sorted(ds.splits)}")
    return ds, ds.split(split)


def _frame_rows(ids: np.ndarray, gt_ids: np.ndarray, source: str) -> np.ndarray:
    """Row of each id in the dataset split; ids the split lacks are an error naming a few."""
    pos = {f: i for i, f in enumerate(gt_ids.tolist())}
    missing = [f for f in ids.tolist() if f not in pos]
    if missing:
        raise ValueError(
            f"{source}: {len(missing)} frame id(s) are not in the dataset split, e.g. {missing[:5]}; "
            "refine/fit against the split the file was made for"
        )
    return np.fromiter((pos[f] for f in ids.tolist()), dtype=np.int64, count=len(ids))


def _check_sdf(ds, scene_ids, data_root) -> None:
    lacking = sorted(s for s in set(scene_ids.tolist()) if not ds.has_sdf(s))
    if lacking:
        raise ValueError(f"{data_root}: scene(s) {lacking[:5]} have no SDF grid (scenes/<id>/sdf.npz); scene-constrained optimisation needs one")


def _load_body_and_prior(ds, data_root, prior_split: str, device: str, body_model=None) -> tuple[BodyModel, PosePrior, str]:
    path = resolve_model_path(body_model or ds.meta["body_model"]["name"])
    body = BodyModel.load(path).to(device)
    if body.num_verts != ds.num_verts:
        raise ValueError(f"body model {path} has {body.num_verts} vertices, dataset {data_root} {ds.num_verts}")
    prior = prior_from_dataset(data_root, prior_split, body.pose_dim)
    return body, prior, sha256_file(path)


def _tensor(a, device) -> torch.Tensor:
    return torch.as_tensor(np.ascontiguousarray(a), dtype=torch.float32, device=device)


def _write_stats(path, stats: dict) -> None:
    if path is not None:
        atomic_write_bytes(path, (json.dumps(stats, indent=2, sort_keys=True) + "\n").encode())


def _energy_arrays(prefix: str, energy: dict[str, torch.Tensor]) -> dict[str, np.ndarray]:
    """A batch's energy terms as arrays named ``<prefix>/<term>`` (kept in the resumable batch files)."""
    return {f"{prefix}/{k}": v.cpu().numpy() for k, v in energy.items()}


def _stats(command: str, source, n_frames: int, seconds: float, res: dict, params, prior: PosePrior, device: str, **extra) -> dict:
    """The ``--stats`` record: timing, mean energy terms (``before``/``after``) and what produced them."""
    stats = {"command": command, "input": str(source), "frames": int(n_frames), "seconds": round(seconds, 3)}
    stats["seconds_per_frame"] = round(seconds / n_frames, 4)
    for when in ("before", "after"):
        terms = {k.split("/", 1)[1]: float(v.mean()) for k, v in res.items() if k.startswith(f"{when}/")}
        if terms:
            stats[f"energy_{when}"] = terms
    stats.update(extra, params=dataclasses.asdict(params), prior=prior.source, device=device, torch_threads=torch.get_num_threads())
    stats.update(cpu=platform.processor() or platform.machine(), torch=torch.__version__)
    return stats


def refine_predictions(
    pred_path, data_root, split: str, out, params, *, device: str = "cpu", body_model=None, stats_out=None, progress: bool = True
) -> dict:
    """Refine every frame of a predictions file against its dataset split; returns the stats dict.

    params: `sahmr.refine.optimize.RefineParams`; body_model: name or .npz (default: the dataset's). The
    output has the input's keys: refined ``verts_cam`` / ``verts_world``, pelvis and contact predictions copied."""
    from sahmr.geometry.camera import invert_rigid
    from sahmr.refine.optimize import refine_batch

    ds, arr = _open_split(data_root, split)
    pred = read_predictions(pred_path, expected_num_vertices=ds.num_verts)
    check_topology(pred.body_model, ds.meta["body_model"]["name"], str(pred_path))
    rows = _frame_rows(pred.frame_ids, np.asarray(arr["frame_id"]), str(pred_path))
    scene_ids = np.asarray(arr["scene_id"])[rows]
    _check_sdf(ds, scene_ids, data_root)
    T = np.asarray(arr["T_world_to_cam"], dtype=np.float64)[rows]
    K = np.asarray(arr["K"], dtype=np.float64)[rows]
    if pred.verts_world is not None:
        verts_world = pred.verts_world
    else:
        Tinv = invert_rigid(T)
        verts_world = (pred.verts_cam.astype(np.float64) @ Tinv[:, :3, :3].swapaxes(-1, -2) + Tinv[:, None, :3, 3]).astype(np.float32)
    body, prior, body_sha = _load_body_and_prior(ds, data_root, params.prior_split, device, body_model)

    def work(idx: np.ndarray) -> dict[str, np.ndarray]:
        r = refine_batch(
            body,
            prior,
            _tensor(verts_world[idx], device),
            _tensor(T[idx], device),
            _tensor(K[idx], device),
            ds.scene_sdf(scene_ids[idx[0]]),
            params,
            contact_vertex=None if pred.contact_vertex is None else torch.as_tensor(pred.contact_vertex[idx], device=device),
        )
        out = {"verts_world": r.verts_world.cpu().numpy(), "contact_used": r.contact_mask.cpu().numpy()}
        return out | _energy_arrays("before", r.energy_before) | _energy_arrays("after", r.energy_after)

    digest = _digest(
        "refine", sha256_file(pred_path), ds.meta.get("content_hash"), split, dataclasses.asdict(params), body_sha, device, code_digest()
    )
    batches = scene_batches(scene_ids, params.batch_size)
    res, seconds = run_batches(batches, work, out, digest, what="refine", progress=progress)
    order = np.concatenate(batches)
    refined_world = np.empty_like(verts_world)
    refined_world[order] = res["verts_world"]
    refined = Predictions(
        frame_ids=pred.frame_ids,
        body_model=pred.body_model,
        num_vertices=pred.num_vertices,
        pelvis_cam=pred.pelvis_cam,
        pelvis_refined_cam=pred.pelvis_refined_cam,
        contact_vertex=pred.contact_vertex,
    )
    if pred.verts_world is not None:
        refined.verts_world = refined_world
    if pred.verts_cam is not None:
        refined.verts_cam = (refined_world.astype(np.float64) @ T[:, :3, :3].swapaxes(-1, -2) + T[:, None, :3, 3]).astype(np.float32)
    contact_source = params.contact_source
    if contact_source == "auto":
        contact_source = "predicted" if pred.contact_vertex is not None else "parts"
    contact_mean = float(res["contact_used"].sum(-1).mean())
    stats = _stats(
        "refine", pred_path, len(rows), seconds, res, params, prior, device, contact_source=contact_source, contact_vertices_mean=contact_mean
    )
    write_predictions(out, refined)
    _write_stats(stats_out, stats)
    shutil.rmtree(parts_dir(out))
    return stats


def fit_keypoints_file(
    keypoints_path, data_root, split: str, out, params, *, device: str = "cpu", body_model=None, stats_out=None, progress: bool = True
) -> dict:
    """The PROX-style fitting baseline on every frame of a keypoints file; returns the stats dict.

    params: `sahmr.refine.fitting.FitParams`. Writes a predictions file (``verts_cam``) of the dataset's body model."""
    from sahmr.refine.fitting import fit_batch
    from sahmr.refine.keypoints import read_keypoints

    ds, arr = _open_split(data_root, split)
    kp = read_keypoints(keypoints_path)
    rows = _frame_rows(kp.frame_ids, np.asarray(arr["frame_id"]), str(keypoints_path))
    scene_ids = np.asarray(arr["scene_id"])[rows]
    _check_sdf(ds, scene_ids, data_root)
    T = np.asarray(arr["T_world_to_cam"], dtype=np.float64)[rows]
    K = np.asarray(arr["K"], dtype=np.float64)[rows]
    body, prior, body_sha = _load_body_and_prior(ds, data_root, params.prior_split, device, body_model)

    def work(idx: np.ndarray) -> dict[str, np.ndarray]:
        r = fit_batch(
            body, prior, _tensor(kp.keypoints[idx], device), _tensor(T[idx], device), _tensor(K[idx], device), ds.scene_sdf(scene_ids[idx[0]]), params
        )
        return {"verts_world": r.verts_world.cpu().numpy()} | _energy_arrays("after", r.energy)

    digest = _digest(
        "fit", sha256_file(keypoints_path), ds.meta.get("content_hash"), split, dataclasses.asdict(params), body_sha, device, code_digest()
    )
    batches = scene_batches(scene_ids, params.batch_size)
    res, seconds = run_batches(batches, work, out, digest, what="fit", progress=progress)
    order = np.concatenate(batches)
    world = np.empty((len(rows), ds.num_verts, 3), np.float32)
    world[order] = res["verts_world"]
    verts_cam = (world.astype(np.float64) @ T[:, :3, :3].swapaxes(-1, -2) + T[:, None, :3, 3]).astype(np.float32)
    name = ds.meta["body_model"]["name"]
    write_predictions(out, Predictions(frame_ids=kp.frame_ids, body_model=name, num_vertices=ds.num_verts, verts_cam=verts_cam))
    stats = _stats("fit", keypoints_path, len(rows), seconds, res, params, prior, device, keypoints_source=kp.source)
    _write_stats(stats_out, stats)
    shutil.rmtree(parts_dir(out))
    return stats
