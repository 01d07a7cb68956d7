"""``sahmr dump``: run a trained SAHMR / baseline checkpoint over a dataset split and write a predictions
file (:mod:`sahmr.eval.predictions` format) for ``sahmr evaluate``.

Inference is deterministic: eval mode, no pelvis noise, and contact sets larger than 500 points are
sub-sampled by evenly spaced ranks (no random generator).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch


def dump_predictions(task, ckpt: str | Path, data: str | Path, split: str, out: str | Path, batch_size: int = 16,
                     progress: bool = True) -> Path:
    """task: a Task whose model has ``forward_batch`` returning ``verts_cam``, ``pelvis_coarse_cam``,
    ``pelvis_refined_cam`` (SAHMRTask / BaselineTask). ckpt: the loop's ``final.ckpt`` (state dict)."""
    from tqdm import tqdm

    from sahmr.data.dataset import HumanSceneDataset, collate_human_scene
    from sahmr.eval.predictions import Predictions, write_predictions

    ckpt = Path(ckpt)
    if not ckpt.is_file():
        raise FileNotFoundError(f"checkpoint {ckpt} not found: train it first (sahmr train {task.name})")
    model = task.build_model(load_rcnet=False)  # the checkpoint holds RCNet's weights too
    state = torch.load(ckpt, map_location="cpu", weights_only=True)
    model.load_state_dict(state.get("state_dict", state) if isinstance(state, dict) else state, strict=True)
    model.eval()
    ds = HumanSceneDataset(data, split, crop_size=task.crop_size, train_augment=False)
    ids, verts, coarse, refined = [], [], [], []
    bar = tqdm(range(0, len(ds), batch_size), desc=f"dump {task.name} {split}", disable=not progress)
    with torch.no_grad():
        for start in bar:
            batch = collate_human_scene([ds[i] for i in range(start, min(start + batch_size, len(ds)))])
            o = model.forward_batch(batch, None)
            ids += [m["frame_id"] for m in batch["meta"]]
            verts.append(o.verts_cam.numpy())
            coarse.append(o.pelvis_coarse_cam.reshape(-1, 3).numpy())
            refined.append(o.pelvis_refined_cam.reshape(-1, 3).numpy())
    verts = np.concatenate(verts).astype(np.float32)
    from sahmr.data.format import open_dataset

    body_name = open_dataset(data).meta["body_model"]["name"]
    pred = Predictions(frame_ids=np.asarray(ids), body_model=body_name, num_vertices=verts.shape[1], verts_cam=verts, pelvis_cam=np.concatenate(coarse).astype(np.float32),
                       pelvis_refined_cam=np.concatenate(refined).astype(np.float32))
    return Path(write_predictions(out, pred, expected_num_vertices=verts.shape[1]))
