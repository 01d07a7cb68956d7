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


def load_stage2_model(task, ckpt: str | Path) -> torch.nn.Module:
    """The task's model (SAHMRTask / BaselineTask) in eval mode with a stage-2 checkpoint loaded strictly.

    ckpt: the loop's ``final.ckpt`` (a state dict, or one under "state_dict"); it holds RCNet's weights
    too, so the stage-1 file is not read. Clear errors for a missing file or weights of another preset."""
    ckpt = Path(ckpt)
    if not ckpt.is_file():
        raise FileNotFoundError(f"checkpoint not found: {ckpt}. Train it first (`sahmr train {task.name}`, or `make "
                                f"repro`, which writes runs/{task.name}/final.ckpt)")  # fmt: skip
    from sahmr.models.convert import load_converted

    model = task.build_model(load_rcnet=False)
    load_converted(model, ckpt, what=f"{task.name} model of preset {task.rcnet_cfg.name!r}")
    return model.eval()


def dump_predictions(task, ckpt: str | Path, data: str | Path, split: str, out: str | Path, batch_size: int = 16,
                     progress: bool = True, seed: int = 0) -> Path:
    """task: a Task whose model has ``forward_batch`` returning ``verts_cam``, ``pelvis_coarse_cam``,
    ``pelvis_refined_cam`` (SAHMRTask / BaselineTask). ckpt: the loop's ``final.ckpt`` or a converted
    checkpoint (state dict, or one under "state_dict"). seed: the test-time contact draws of
    contact_sampling "original" (unused otherwise)."""
    from tqdm import tqdm

    from sahmr.data.dataset import HumanSceneDataset, collate_human_scene
    from sahmr.eval.predictions import Predictions, write_predictions

    model = load_stage2_model(task, ckpt)
    ds = HumanSceneDataset(data, split, crop_size=task.crop_size, train_augment=False)
    # Only the original's contact sampling (contact_sampling "original") draws at test time: one seeded
    # generator for the whole split, so the draws do not depend on the batch size.
    gen = torch.Generator().manual_seed(seed)
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
    pred = Predictions(frame_ids=np.asarray(ids), body_model=body_name, num_vertices=verts.shape[1], verts_cam=verts, pelvis_cam=np.concatenate(coarse).astype(np.float32),
                       pelvis_refined_cam=np.concatenate(refined).astype(np.float32))
    return Path(write_predictions(out, pred, expected_num_vertices=verts.shape[1]))
