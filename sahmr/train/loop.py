"""The kit's generic training loop: a Lightning wrapper around a *task* (spec §5.1).

A task bundles a model with its supervision and metrics (see :class:`Task`); this module supplies the rest:

* :class:`TaskModule` (LightningModule): Adam (or AdamW; fused kernels on CPU/CUDA) with the spec's learning-rate rule
  ``lr = canonical_lr * global_batch / canonical_bs`` when ``lr == 0`` (global batch = ``batch_size`` x
  number of processes), MultiStepLR stepped once per epoch (milestones, gamma; the original) or a per-step
  warm-up + cosine schedule (``schedule: cosine``), gradient clipping
  (default: ``clip_grad_value_`` 0.5, as the original), per-epoch training statistics, validation
  metrics averaged over *samples* (gathered over ranks, padded duplicates removed by dataset index).
* :class:`HumanSceneDataModule`: ``HumanSceneDataset`` train split with augmentation and a shuffled
  :class:`~sahmr.data.sampler.EpochSampler`, val split without; configurable workers
  (0 = main process; > 0 = persistent workers with ``worker_init_fn``).
* :func:`train`: runs ``pytorch_lightning.Trainer`` and writes, under ``cfg.out``::

      checkpoints/epoch_000.ckpt ...   full Lightning checkpoint after each epoch (0-based epoch in the name)
      checkpoints/last.ckpt            newest checkpoint (every epoch; every N steps with ckpt_every_n_steps)
      train_config.json                the config the checkpoints belong to (resume refuses a different one)
      dvclive/metrics.json             latest logged values (DVCLive summary)
      dvclive/plots/metrics/**.tsv     one row per epoch; ``step`` = number of completed epochs (1, 2, ...)
      dvclive/params.yaml              the TrainConfig
      final.ckpt                       ``model.state_dict()`` only (``torch.load(weights_only=True)``)
      metrics.json                     final validation metrics averaged over samples (+ epochs, num_val_samples)

  final.ckpt and metrics.json are written atomically (temporary file + ``os.replace``).

Resume (``cfg.resume``, default on): when ``checkpoints/last.ckpt`` exists, training continues from it (from
the newest readable checkpoint, with a warning, when last.ckpt is truncated or corrupt: `resume_checkpoint`).
The run's fingerprint (``train_config.json``: parameters, data path and content hash) must match, or resume is
refused.
Restored: model weights, optimiser (Adam moments) and LR-scheduler state, epoch and global-step counters,
ModelCheckpoint state, the task generator's and torch's global CPU RNG states (per rank), and the data
position — the train loader is resumable (Lightning's ``state_dict``/``load_state_dict`` loader protocol):
after an end-of-epoch checkpoint the next epoch starts; after a mid-epoch checkpoint
(``ckpt_every_n_steps``) the same epoch's sampler order continues after the batches already trained.
With ``deterministic`` and 0 workers an interrupted-and-resumed run reproduces the uninterrupted run's
weights and metrics. Not restored: CUDA RNG states, numpy/python global RNGs (the dataset draws from
its own per-item generators), DataLoader worker state (items are a pure function of seed, epoch, index).
DVCLive appends to its files on resume (``Live(resume=True)``); rows of epochs after the checkpoint
(written before a crash) are dropped so each epoch appears once.

Modules: `sahmr.train.config` (Task, TrainConfig), `.module` (TaskModule), `.datamodule`
(HumanSceneDataModule), `.callbacks` (DVCLive, checkpoint helpers); this one holds :func:`train`.

Distributed: ``strategy="ddp"`` with ``accelerator="gpu", devices=G, num_nodes=M`` trains on G x M GPUs (NCCL;
under SLURM or torchrun Lightning reads ranks and addresses from the environment: docs/gpu.md);
with ``accelerator="cpu", devices=N`` it uses the gloo backend; Lightning's
``ddp`` launcher re-executes the current command for ranks 1..N-1 (so call :func:`train` from a script or
``sahmr train``, not from an interactive session; ``ddp_spawn`` works for picklable tasks). Every rank
trains on an interleaved shard of the same epoch order (see :mod:`sahmr.train.samplers`).
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import Callback, ModelCheckpoint

from sahmr.atomic import atomic_write_bytes

from .callbacks import (
    ValidateLastEpoch,
    checkpoint_progress,
    dvclive_logger_cls,
    truncate_dvclive,
)
from .config import Task, TrainConfig
from .datamodule import HumanSceneDataModule
from .module import TaskModule

__all__ = ["Task", "TrainConfig", "TaskModule", "HumanSceneDataModule", "train"]


def _atomic_torch_save(obj: Any, path: Path) -> None:
    import io

    buf = io.BytesIO()
    torch.save(obj, buf)
    atomic_write_bytes(path, buf.getvalue())


def _set_offline_env() -> None:
    # DVCLive: never talk to Studio, no analytics; the env only affects this process and its children.
    os.environ.setdefault("DVC_STUDIO_OFFLINE", "true")
    os.environ.setdefault("DVC_NO_ANALYTICS", "1")


def _fingerprint(cfg: TrainConfig, task: Task) -> dict[str, Any]:
    d = {k: v for k, v in cfg.to_dict().items() if k not in TrainConfig.RESUME_FREE}
    d["data"] = str(Path(cfg.data).resolve())
    # the data's content, not only its path: a regenerated dataset must not resume an old run silently
    meta = Path(cfg.data) / "dataset.json"
    d["data_content_hash"] = json.loads(meta.read_text()).get("content_hash") if meta.is_file() else None
    d["task"] = str(getattr(task, "name", type(task).__name__))
    params = getattr(task, "params", None)
    if params is None and dataclasses.is_dataclass(getattr(task, "cfg", None)):
        params = dataclasses.asdict(task.cfg)
    if isinstance(params, dict):
        d["task_params"] = json.loads(json.dumps(params, default=str))
    return d


def resume_checkpoint(ckpt_dir: Path) -> tuple[Path | None, tuple[int, int]]:
    """The checkpoint to resume from and its (completed epochs, global step): ``last.ckpt`` when it reads,
    else the readable checkpoint with the most progress (a warning names both files); (None, (0, 0)) when
    there is none. A run killed while writing ``last.ckpt`` thus loses one checkpoint interval, not the run."""
    last = ckpt_dir / "last.ckpt"
    if not last.is_file():
        return None, (0, 0)
    try:
        return last, checkpoint_progress(last)
    except Exception as e:  # torch/zip/pickle errors of a truncated or corrupt file
        reason = f"{type(e).__name__}: {' '.join(str(e).split())[:160]}"
    readable = []
    for p in sorted(ckpt_dir.glob("*.ckpt")):
        if p == last:
            continue
        try:
            readable.append((checkpoint_progress(p)[::-1], p))
        except Exception:
            continue
    if not readable:
        raise ValueError(
            f"{last}: unreadable ({reason}) and no other readable checkpoint in {ckpt_dir}; delete the folder or pass --no-resume to start over"
        )
    (step, epoch), path = max(readable)
    print(f"sahmr train: warning: {last} is unreadable ({reason}); resuming from {path} instead", file=sys.stderr)
    return path, (epoch, step)


def train(task: Task, cfg: TrainConfig) -> dict[str, Any]:
    """Train `task` as configured; returns ``{"metrics", "epochs", "global_step", "resumed_from",
    "resume_epoch", "resume_step", "final_ckpt", "metrics_file", "lr", "world_size"}``.

    Writes the files listed in the module docstring (rank 0). Raises FileNotFoundError / ValueError
    with the offending field for a bad config, and ValueError when ``checkpoints/last.ckpt`` belongs to a
    different configuration (pass ``resume=False`` or delete ``<out>/checkpoints`` to start over).
    """
    cfg.validate()
    _set_offline_env()
    out = Path(cfg.out)
    ckpt_dir = out / "checkpoints"
    last = ckpt_dir / "last.ckpt"
    fp_file = out / "train_config.json"

    pl.seed_everything(int(cfg.seed), workers=True, verbose=False)
    crop = int(cfg.crop_size or getattr(task, "crop_size", None) or 224)
    ds_kw = {**dict(getattr(task, "dataset_kwargs", None) or {}), **dict(cfg.dataset or {})}
    dm = HumanSceneDataModule(cfg, crop, ds_kw)
    module = TaskModule(task, cfg)

    fp = _fingerprint(cfg, task)
    resume_path, resume_progress = resume_checkpoint(ckpt_dir) if cfg.resume else (None, (0, 0))
    if resume_path is not None and fp_file.is_file():
        old = json.loads(fp_file.read_text())
        # a field added to TrainConfig after the checkpoint was written matches when it has its default value
        defaults = {f.name: f.default for f in dataclasses.fields(TrainConfig) if f.default is not dataclasses.MISSING}
        defaults["milestones"] = list(defaults.get("milestones", ()))
        diff = sorted(k for k in set(old) | set(fp) if old.get(k, defaults.get(k)) != fp.get(k))
        if diff:
            raise ValueError(
                f"{last} was written by a different training configuration (differs in {diff}); "
                f"delete {ckpt_dir} or disable resume (resume=false / --no-resume) to start over"
            )
    resume_epoch, resume_step = resume_progress

    # ---- trainer
    callbacks: list[Callback] = []
    keep = int(cfg.keep_checkpoints)
    callbacks.append(
        ModelCheckpoint(
            dirpath=ckpt_dir,
            filename="epoch_{epoch:03d}",
            auto_insert_metric_name=False,
            save_last=True,
            every_n_epochs=1,
            save_on_train_epoch_end=True,
            enable_version_counter=False,
            save_top_k=-1 if keep < 0 else keep,
            monitor=None if keep < 0 else "epoch",
            mode="max",
        )
    )
    if cfg.ckpt_every_n_steps:
        callbacks.append(
            ModelCheckpoint(
                dirpath=ckpt_dir,
                save_last=True,
                save_top_k=0,
                every_n_train_steps=int(cfg.ckpt_every_n_steps),
                save_on_train_epoch_end=False,
                enable_version_counter=False,
            )
        )
    callbacks.append(ValidateLastEpoch(cfg.val_every))
    if cfg.progress == "rich":
        from pytorch_lightning.callbacks import RichProgressBar

        callbacks.append(RichProgressBar(refresh_rate=max(1, min(int(cfg.log_every_n_steps), 10))))
    elif cfg.progress == "tqdm":
        from pytorch_lightning.callbacks import TQDMProgressBar

        callbacks.append(TQDMProgressBar(refresh_rate=max(1, min(int(cfg.log_every_n_steps), 10))))

    strategy: Any = cfg.strategy
    if cfg.strategy in ("ddp", "ddp_spawn", "ddp_fork") and cfg.accelerator == "cpu":
        from pytorch_lightning.strategies import DDPStrategy

        start = {"ddp": "popen", "ddp_spawn": "spawn", "ddp_fork": "fork"}[cfg.strategy]
        strategy = DDPStrategy(process_group_backend="gloo", start_method=start)

    # DVCLive: offline, no git/DVC side effects (no experiment, no dvc.yaml edits, no Studio)
    logger = dvclive_logger_cls()(dir=str(out / "dvclive"), resume=resume_path is not None, save_dvc_exp=False, dvcyaml=False, report=None)
    prev_det = (torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled())
    trainer = pl.Trainer(
        accelerator=cfg.accelerator,
        devices=int(cfg.devices),
        strategy=strategy,
        precision=cfg.precision,
        max_epochs=int(cfg.epochs),
        max_steps=int(cfg.max_steps),
        deterministic=cfg.deterministic,
        gradient_clip_val=(float(cfg.grad_clip) if cfg.grad_clip else None),
        gradient_clip_algorithm=cfg.grad_clip_algorithm if cfg.grad_clip else None,
        limit_train_batches=cfg.limit_train_batches,
        limit_val_batches=cfg.limit_val_batches if dm.val_set is not None else 0,
        check_val_every_n_epoch=int(cfg.val_every),
        num_sanity_val_steps=int(cfg.sanity_val_steps) if dm.val_set is not None else 0,
        log_every_n_steps=int(cfg.log_every_n_steps),
        callbacks=callbacks,
        logger=logger,
        enable_progress_bar=cfg.progress != "none",
        enable_model_summary=cfg.progress != "none",
        use_distributed_sampler=False,
        default_root_dir=str(out),
        num_nodes=int(cfg.num_nodes),
    )
    rank0 = trainer.global_rank == 0
    try:
        if rank0:
            out.mkdir(parents=True, exist_ok=True)
            ckpt_dir.mkdir(parents=True, exist_ok=True)
            if resume_path is None:
                for old_ckpt in ckpt_dir.glob("*.ckpt"):  # a fresh start: our own stale checkpoints only
                    old_ckpt.unlink()
            else:
                truncate_dvclive(out / "dvclive", resume_epoch)
                print(f"sahmr train: resuming from {resume_path} (completed epochs {resume_epoch}, global step {resume_step})")
            atomic_write_bytes(fp_file, (json.dumps(fp, indent=2) + "\n").encode())
            logger.log_hyperparams({**cfg.to_dict(), "task": fp["task"], "resolved_lr": cfg.resolved_lr(trainer.world_size)})
        trainer.fit(module, datamodule=dm, ckpt_path=str(resume_path) if resume_path is not None else None, weights_only=True)
        if dm.val_set is not None and (module.final_val_metrics is None or module.last_val_step != trainer.global_step):
            trainer.validate(module, datamodule=dm, verbose=False)  # final weights not validated yet (resumed a
            # finished run, or stopped by max_steps mid-epoch)
    finally:
        torch.use_deterministic_algorithms(prev_det[0], warn_only=prev_det[1])

    metrics = dict(module.final_val_metrics or {})
    result = {
        "metrics": metrics,
        "epochs": int(trainer.current_epoch),
        "global_step": int(trainer.global_step),
        "resumed_from": str(resume_path) if resume_path is not None else None,
        "resume_epoch": resume_epoch,
        "resume_step": resume_step,
        "final_ckpt": str(out / "final.ckpt"),
        "metrics_file": str(out / "metrics.json"),
        "lr": cfg.resolved_lr(trainer.world_size),
        "world_size": int(trainer.world_size),
        "num_val_samples": int(module.num_val_samples),
    }
    if trainer.global_rank == 0:
        state = {k: v.detach().cpu().clone() for k, v in module.model.state_dict().items()}
        _atomic_torch_save(state, out / "final.ckpt")
        payload = {"epochs": result["epochs"], "num_val_samples": result["num_val_samples"], **metrics}
        atomic_write_bytes(out / "metrics.json", (json.dumps(payload, indent=2, sort_keys=False) + "\n").encode())
    return result
