"""Run a trained SAHMR (or the image-only baseline) on one frame of a user's own data.

The frame goes through exactly the evaluation path of `sahmr dump`: the square crop (1.15 x the person
box, spec §1.6), the scene points inside the crop box's frustum (spec §1.8, 0.5-12.5 m), RCNet, the mesh
transformer. The mesh comes back in the camera and in the world (scan) frame.

When no scene point lies near the coarse pelvis (the scan does not cover the person, or K / T are wrong)
RCNet's documented fallback applies: the refined pelvis is the coarse one and there are no contact
points. `FramePrediction.fallback` says so and `sahmr predict` prints a warning.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from sahmr.atomic import atomic_write, atomic_write_bytes
from sahmr.body.parts import PART_COLORS_RGB8, PART_NAMES
from sahmr.data.crop import crop_model_input
from sahmr.data.frustum import frustum_points_cam
from sahmr.geometry.camera import invert_rigid, square_crop_box, transform
from sahmr.mesh_io import write_obj, write_ply_mesh, write_ply_points

from .inputs import FrameInputs

__all__ = ["FramePrediction", "Predictor", "load_predictor", "write_prediction"]


@dataclass
class FramePrediction:
    """One frame's result (V vertices, Q contact points), float32 numpy.

    verts_cam / verts_world (V, 3); faces (F, 3) int64; pelvis_coarse_cam, pelvis_refined_cam,
    pelvis_cam (the origin the mesh hangs from), pelvis_world (3,); contact_points_cam / _world (Q, 3),
    contact_parts (Q,) int64 in 1..7 (empty for the baseline or on fallback); crop_box_xyxy (4,) px;
    n_frustum_points: scene points the network saw; fallback: RCNet found no scene point near the pelvis.
    """

    model: str
    verts_cam: np.ndarray
    verts_world: np.ndarray
    faces: np.ndarray
    pelvis_coarse_cam: np.ndarray
    pelvis_refined_cam: np.ndarray
    pelvis_cam: np.ndarray
    pelvis_world: np.ndarray
    contact_points_cam: np.ndarray
    contact_points_world: np.ndarray
    contact_parts: np.ndarray
    crop_box_xyxy: np.ndarray
    n_frustum_points: int
    fallback: bool
    sources: dict = field(default_factory=dict)


class Predictor:
    """A loaded model ready for frames: ``Predictor(model, crop_size, faces, name)(inputs) -> FramePrediction``."""

    def __init__(self, model: torch.nn.Module, crop_size: int, faces: np.ndarray, name: str):
        self.model = model.eval()
        self.crop_size = int(crop_size)
        self.faces = np.asarray(faces, dtype=np.int64)
        self.name = name

    def batch(self, x: FrameInputs) -> dict:
        """The model batch of one frame (the keys of `collate_human_scene` the models read), B = 1."""
        box = square_crop_box(x.box_xyxy)
        image = crop_model_input(x.image, box, self.crop_size)  # the Dataset's crop, to the bit
        pts = frustum_points_cam(x.points_world, x.K, x.T_world_to_cam, box)
        return {
            "image": torch.from_numpy(image)[None],
            "K": torch.from_numpy(x.K.astype(np.float32))[None],
            "crop_box_xyxy": torch.from_numpy(box.astype(np.float32))[None],
            "points_cam": torch.from_numpy(pts),
            "points_batch": torch.zeros(len(pts), dtype=torch.int64),
        }

    @torch.no_grad()
    def __call__(self, x: FrameInputs) -> FramePrediction:
        b = self.batch(x)
        out = self.model.forward_batch(b, None)
        T_cam_to_world = invert_rigid(x.T_world_to_cam)
        to_world = lambda p: transform(T_cam_to_world, np.asarray(p, np.float64)).astype(np.float32)  # noqa: E731
        verts_cam = out.verts_cam[0].numpy()
        if out.contact_points_mask is not None:
            m = out.contact_points_mask[0]
            cp_cam = out.contact_points_cam[0][m].numpy()
            cp_part = out.contact_points_part[0][m].numpy().astype(np.int64)
        else:
            cp_cam, cp_part = np.zeros((0, 3), np.float32), np.zeros(0, np.int64)
        fallback = bool(out.rcnet.fallback[0]) if out.rcnet is not None else False
        pelvis_cam = out.pelvis_cam[0].numpy()
        return FramePrediction(
            model=self.name,
            verts_cam=verts_cam,
            verts_world=to_world(verts_cam),
            faces=self.faces,
            pelvis_coarse_cam=out.pelvis_coarse_cam[0].numpy(),
            pelvis_refined_cam=out.pelvis_refined_cam[0].numpy(),
            pelvis_cam=pelvis_cam,
            pelvis_world=to_world(pelvis_cam[None])[0],
            contact_points_cam=cp_cam,
            contact_points_world=to_world(cp_cam).reshape(-1, 3),
            contact_parts=cp_part,
            crop_box_xyxy=b["crop_box_xyxy"][0].numpy(),
            n_frustum_points=int(len(b["points_cam"])),
            fallback=fallback,
            sources=dict(x.sources),
        )


def load_predictor(
    task_name: str,
    ckpt: str | Path,
    params: str | Path | dict = "params.yaml",
    body_model: str | Path | None = None,
    overrides: list[str] | tuple[str, ...] = (),
) -> Predictor:
    """A Predictor for a stage-2 checkpoint (`runs/<task>/final.ckpt`, RCNet weights included).

    task_name: "sahmr" or "baseline"; params: params.yaml (its ``train_<task>`` section and the global
    ``preset`` size the model; they must be those the checkpoint was trained with) or its parsed mapping;
    overrides: ``key=value`` strings over that section (as ``-S``); body_model: overrides the section's
    ``body_model`` (name or .npz path)."""
    from sahmr.body.model import resolve_model_path
    from sahmr.body.model_file import load_body_model_file
    from sahmr.train.tasks import load_trained

    if task_name not in ("sahmr", "baseline"):
        raise ValueError(f"model {task_name!r}: expected 'sahmr' or 'baseline'")
    overrides = [*overrides, *([f"body_model={body_model}"] if body_model is not None else [])]
    trained = load_trained(task_name, ckpt, params, overrides)
    faces = load_body_model_file(resolve_model_path(trained.task.body_model)).arrays["f"]  # the arrays only, no 2nd BodyModel
    return Predictor(trained.model, trained.task.crop_size, faces, task_name)


MESH_FORMATS = ("ply", "obj")


def check_formats(formats: tuple[str, ...]) -> tuple[str, ...]:
    """The mesh formats, checked (ValueError naming --formats)."""
    bad = set(formats) - set(MESH_FORMATS)
    if bad or not formats:
        raise ValueError(f"--formats: choose from 'ply', 'obj' (comma-separated), got {list(formats)}")
    return formats


def write_prediction(pred: FramePrediction, out_dir: str | Path, formats: tuple[str, ...] = ("ply", "obj")) -> list[Path]:
    """Write one frame's result into `out_dir`, all files together; returns the paths written.

    The files are written into a staging folder beside `out_dir` first: a new `out_dir` appears whole (one
    rename), an existing one gets its files replaced one `os.replace` each, only after every file was written;
    a failure leaves the previous state and removes the staging folder.

    mesh_{world,cam}.{ply,obj}; contact_points_world.ply (coloured by part; empty when none);
    prediction.npz (every array of FramePrediction); prediction.json (pelvis, contact counts per part,
    fallback, inputs)."""
    out = Path(out_dir)
    check_formats(formats)
    out.parent.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.staging-"))
    try:
        names = [p.name for p in _write_files(pred, stage, formats)]
        if not out.exists():
            os.replace(stage, out)
        else:
            for name in names:
                os.replace(stage / name, out / name)
            stage.rmdir()
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)  # ours
        raise
    return [out / name for name in names]


def _write_files(pred: FramePrediction, out: Path, formats: tuple[str, ...]) -> list[Path]:
    written: list[Path] = []
    for frame in ("world", "cam"):
        verts = getattr(pred, f"verts_{frame}")
        if "ply" in formats:
            written.append(write_ply_mesh(out / f"mesh_{frame}.ply", verts, pred.faces))
        if "obj" in formats:
            written.append(write_obj(out / f"mesh_{frame}.obj", verts, pred.faces))
    written.append(write_ply_points(out / "contact_points_world.ply", pred.contact_points_world, PART_COLORS_RGB8[pred.contact_parts]))
    arrays = {k: np.asarray(v) for k, v in pred.__dict__.items() if isinstance(v, np.ndarray)}
    written.append(atomic_write(out / "prediction.npz", lambda f: np.savez(f, **arrays)))
    counts = {PART_NAMES[i]: int((pred.contact_parts == i).sum()) for i in range(1, len(PART_NAMES))}
    summary = {
        "model": pred.model,
        "fallback": pred.fallback,
        "n_frustum_points": pred.n_frustum_points,
        "pelvis_world": pred.pelvis_world.tolist(),
        "pelvis_cam": pred.pelvis_cam.tolist(),
        "pelvis_coarse_cam": pred.pelvis_coarse_cam.tolist(),
        "pelvis_refined_cam": pred.pelvis_refined_cam.tolist(),
        "contact_points_per_part": counts,
        "num_vertices": int(len(pred.verts_cam)),
        "crop_box_xyxy": pred.crop_box_xyxy.tolist(),
        "inputs": pred.sources,
    }
    written.append(atomic_write_bytes(out / "prediction.json", (json.dumps(summary, indent=2) + "\n").encode()))
    return written
