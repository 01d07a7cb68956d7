"""`HumanSceneDataModule`: the train split (augmented, sharded, resumable `EpochSampler` order) and the val
split as Lightning loaders."""

from __future__ import annotations

from typing import Any

import pytorch_lightning as pl
import torch

from sahmr.data.dataset import HumanSceneDataset, collate_human_scene, worker_init_fn
from sahmr.data.sampler import EpochSampler

from .config import TrainConfig


class _ResumableLoader(torch.utils.data.DataLoader):
    """A DataLoader that Lightning checkpoints (``state_dict``/``load_state_dict``): the epoch and how many
    of its batches were trained, so a resumed run continues at the right place in the sampler's order."""

    def __init__(self, *args, progress=None, **kwargs):
        super().__init__(*args, **kwargs)
        self._progress = progress

    def state_dict(self) -> dict[str, Any]:
        done, finished = self._progress() if self._progress is not None else (0, False)
        return {"epoch": int(self.sampler.epoch), "batches": int(done), "batch_size": int(self.batch_size), "finished": bool(finished)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        sampler = self.sampler
        if state.get("finished", False):
            sampler.set_epoch(int(state["epoch"]) + 1)
        else:
            sampler.set_epoch(int(state["epoch"]))
            sampler.skip(int(state["batches"]) * int(state.get("batch_size", self.batch_size)))


class HumanSceneDataModule(pl.LightningDataModule):
    """Train/val loaders over :class:`HumanSceneDataset` (datasets opened at construction: clear errors early)."""

    def __init__(self, cfg: TrainConfig, crop_size: int, dataset_kwargs: dict[str, Any] | None = None):
        super().__init__()
        self.cfg = cfg
        kw = dict(dataset_kwargs or {})
        self.train_set = open_split(cfg.data, cfg.train_split, crop_size, True, cfg.seed, kw)
        if len(self.train_set) == 0:
            raise ValueError(f"{cfg.data}: split '{cfg.train_split}' has no frames to train on")
        self.val_set = None
        if cfg.val_split:
            self.val_set = open_split(cfg.data, cfg.val_split, crop_size, False, cfg.seed, kw)
            if len(self.val_set) == 0:
                raise ValueError(f"{cfg.data}: validation split '{cfg.val_split}' has no frames (set val_split to another split or null)")

    def _world(self) -> tuple[int, int]:
        t = self._trainer if hasattr(self, "_trainer") else None
        t = t if t is not None else getattr(self, "trainer", None)
        return (int(t.world_size), int(t.global_rank)) if t is not None else (1, 0)

    def _loader_kwargs(self) -> dict[str, Any]:
        nw = int(self.cfg.num_workers)
        return dict(
            num_workers=nw,
            collate_fn=collate_human_scene,
            worker_init_fn=worker_init_fn if nw > 0 else None,
            persistent_workers=nw > 0,
            pin_memory=False,
        )

    def _train_progress(self) -> tuple[int, bool]:
        t = self.trainer
        done = int(t.fit_loop.epoch_loop.batch_progress.current.processed)
        return done, done >= t.num_training_batches

    def train_dataloader(self):
        world, rank = self._world()
        sampler = EpochSampler(len(self.train_set), shuffle=True, seed=self.cfg.seed, num_replicas=world, rank=rank, pad=True)
        return _ResumableLoader(
            self.train_set,
            batch_size=int(self.cfg.batch_size),
            sampler=sampler,
            drop_last=False,
            progress=self._train_progress,
            **self._loader_kwargs(),
        )

    def val_dataloader(self):
        if self.val_set is None:
            return []
        world, rank = self._world()
        sampler = EpochSampler(len(self.val_set), shuffle=False, seed=self.cfg.seed, num_replicas=world, rank=rank, pad=True)
        bs = int(self.cfg.val_batch_size or self.cfg.batch_size)
        return torch.utils.data.DataLoader(self.val_set, batch_size=bs, sampler=sampler, **self._loader_kwargs())


def open_split(root, split, crop_size, augment, seed, kw) -> HumanSceneDataset:
    try:
        return HumanSceneDataset(root, split, crop_size, train_augment=augment, seed=seed, **kw)
    except KeyError as e:
        raise ValueError(f"{root}: cannot open split '{split}': {e.args[0] if e.args else e}") from None
    except TypeError as e:
        raise ValueError(f"TrainConfig.dataset / task dataset_kwargs: {e}") from None
