"""``sahmr dump``: run a trained SAHMR / baseline checkpoint over a dataset split and write a predictions
file (:mod:`sahmr.eval.predictions` format) for ``sahmr evaluate``.

Inference is deterministic: eval mode, no pelvis noise, and contact sets larger than 500 points are
sub-sampled by evenly spaced ranks, or — with contact_sampling "original" (converted release checkpoints)
— drawn with replacement as the original does, from one generator seeded with `seed`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from sahmr.train.tasks import Trained


def dump_predictions(trained: Trained, data: str | Path, split: str, out: str | Path, batch_size: int = 16, progress: bool = True) -> Path:
    """trained: `sahmr.train.tasks.load_trained(...)` (a model whose ``forward_batch`` returns ``verts_cam``,
    ``pelvis_coarse_cam``, ``pelvis_refined_cam``: SAHMR / the baseline; its ``seed`` drives the test-time
    contact draws of contact_sampling "original", unused otherwise)."""
    from tqdm import tqdm

    from sahmr.data.dataset import HumanSceneDataset, collate_human_scene
    from sahmr.eval.predictions import Predictions, write_predictions

    task, model = trained.task, trained.model
    ds = HumanSceneDataset(data, split, crop_size=task.crop_size, train_augment=False)
    # Only the original's contact sampling (contact_sampling "original") draws at test time: one seeded
    # generator for the whole split, so the draws do not depend on the batch size.
    gen = torch.Generator().manual_seed(trained.seed)
    ids, verts, coarse, refined = [], [], [], []
    bar = tqdm(range(0, len(ds), batch_size), desc=f"dump {task.name} {split}", disable=not progress)
    with torch.no_grad():
        for start in bar:
            batch = collate_human_scene([ds[i] for i in range(start, min(start + batch_size, len(ds)))])
            o = model.forward_batch(batch, gen)
            ids += [m["frame_id"] for m in batch["meta"]]
            verts.append(o.verts_cam.numpy())
            coarse.append(o.pelvis_coarse_cam.reshape(-1, 3).numpy())
            refined.append(o.pelvis_refined_cam.reshape(-1, 3).numpy())
    verts = np.concatenate(verts).astype(np.float32)
    from sahmr.data.format import open_dataset

    body_name = open_dataset(data).meta["body_model"]["name"]
    pred = Predictions(
        frame_ids=np.asarray(ids),
        body_model=body_name,
        num_vertices=verts.shape[1],
        verts_cam=verts,
        pelvis_cam=np.concatenate(coarse).astype(np.float32),
        pelvis_refined_cam=np.concatenate(refined).astype(np.float32),
    )
    return Path(write_predictions(out, pred, expected_num_vertices=verts.shape[1]))
