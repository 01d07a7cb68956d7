"""Logging and checkpoint helpers of the loop: DVCLive with one row per epoch, the last-epoch validation,
trimming DVCLive rows past a resumed checkpoint, reading a checkpoint's progress."""

from __future__ import annotations

import csv
from pathlib import Path

import torch
from pytorch_lightning.callbacks import Callback
from pytorch_lightning.utilities import rank_zero_only


def dvclive_logger_cls():
    from dvclive.lightning import DVCLiveLogger

    class EpochDVCLiveLogger(DVCLiveLogger):
        """DVCLive with one row per epoch: step = completed epochs (Lightning's ``epoch`` key + 1)."""

        @rank_zero_only
        def log_metrics(self, metrics, step=None, sync=False):
            metrics = dict(metrics)
            epoch = metrics.pop("epoch", None)
            if epoch is not None:
                step = int(epoch) + 1
            if metrics:
                super().log_metrics(metrics, step=step, sync=True)

    return EpochDVCLiveLogger


def metric_name(key: str) -> str:
    """A task's stat name as one DVCLive metric (no nesting): ``loss/pelvis_hm`` -> ``loss_pelvis_hm``."""
    return key.replace("/", "_")


class ValidateLastEpoch(Callback):
    """Validate every ``every`` epochs and always on the last one (Lightning alone would skip it)."""

    def __init__(self, every: int):
        self.every = int(every)

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        last = trainer.max_epochs is not None and trainer.current_epoch + 1 >= trainer.max_epochs
        trainer.check_val_every_n_epoch = 1 if last else self.every


def truncate_dvclive(dvclive_dir: Path, max_step: int) -> None:
    """Drop rows with step > max_step from DVCLive's tsv plots (written after the checkpoint we resume from)."""
    plots = dvclive_dir / "plots" / "metrics"
    if not plots.is_dir():
        return
    for tsv in plots.rglob("*.tsv"):
        with tsv.open(newline="") as f:
            rows = list(csv.reader(f, delimiter="\t"))
        if not rows or "step" not in rows[0]:
            continue
        j = rows[0].index("step")
        keep = [rows[0]] + [r for r in rows[1:] if len(r) > j and int(float(r[j])) <= max_step]
        if len(keep) != len(rows):
            with tsv.open("w", newline="") as f:
                csv.writer(f, delimiter="\t", lineterminator="\n").writerows(keep)


def checkpoint_progress(path: Path) -> tuple[int, int]:
    """(completed epochs, global step) stored in a Lightning checkpoint."""
    ck = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    epoch = int(ck.get("epoch", 0))
    try:  # epoch-end checkpoints are saved before the epoch counter is incremented
        state = ck["loops"]["fit_loop"]["state_dict"]["combined_loader"][0]
        if state.get("finished"):
            epoch = int(state["epoch"]) + 1
    except (KeyError, IndexError, TypeError):
        pass
    return epoch, int(ck.get("global_step", 0))
