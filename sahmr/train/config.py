"""What the training loop is given: the `Task` protocol and `TrainConfig` (its fields, checks and the
learning-rate rule). No Lightning here, so params can be checked without importing it."""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import torch


@runtime_checkable
class Task(Protocol):
    """What :func:`train` needs from a task (RCNet, SAHMR, ...).

    ``training_step`` returns the scalar loss (batch mean of the per-sample losses) and statistics to log
    (floats, averaged per epoch); ``validation_metrics`` returns per-sample ``(B,)`` tensors, averaged over
    all validation samples by the loop. Optional: ``optimizer_groups(model) -> list[dict]`` (torch param
    groups; default: all parameters with ``requires_grad``), ``crop_size: int`` (used when
    ``TrainConfig.crop_size`` is None), ``dataset_kwargs: dict`` (extra ``HumanSceneDataset`` arguments,
    overridden by ``TrainConfig.dataset``).
    """

    name: str

    def build_model(self) -> torch.nn.Module: ...

    def training_step(self, model: torch.nn.Module, batch: dict, generator: torch.Generator) -> tuple[torch.Tensor, dict[str, float]]: ...

    def validation_metrics(self, model: torch.nn.Module, batch: dict) -> dict[str, torch.Tensor]: ...


@dataclass
class TrainConfig:
    """Everything the loop needs besides the task. Paths may be str or Path.

    Fields (defaults = the original recipe, spec §5.1, except the data-dependent ones):
      data, out: dataset folder (canonical format) and output folder.
      train_split / val_split: split names; val_split None = no validation (metrics.json then holds
        only ``epochs``).
      crop_size: square crop side in px (None: the task's ``crop_size``, else 224).
      dataset: extra ``HumanSceneDataset`` keyword arguments (bbx_center_px, bbx_zoom, max_scene_points,
        z_near, z_far) for both splits (augmentation arguments only matter for training).
      batch_size: per process; val_batch_size: None = batch_size.
      epochs; max_steps (-1 = no limit; stops mid-epoch when reached — Lightning then treats that epoch as
        ended, so resuming such a run starts the next epoch; an interrupted/crashed run resumes mid-epoch).
      optimizer: "adam" (weight_decay) or "adamw"; lr: 0 = ``canonical_lr * batch_size * world_size /
        canonical_bs`` (the original's rule), > 0 = used as is.
      schedule: "multistep" (the original: MultiStepLR per epoch with milestones / gamma) or "cosine" (per
        optimiser step: linear warm-up from 0 over warmup_steps, then half a cosine down to
        min_lr_ratio x lr at the run's last step, `max_steps` or epochs x batches).
      grad_clip: None/0 = off; grad_clip_algorithm "value" (original: clip_grad_value_ 0.5) or "norm".
      num_workers: DataLoader workers (0 = in the main process; > 0 persistent).
      seed; deterministic: True / False / "warn" (Lightning's ``deterministic``; "warn" only warns about
        non-deterministic kernels, e.g. CUDA scatter-adds).
      accelerator "cpu" | "gpu" | "auto"; devices (per node); num_nodes (DDP across machines: Lightning
        reads the SLURM / torchrun environment, see docs/gpu.md); strategy "auto" | "ddp" | "ddp_spawn" | ...;
        precision (Lightning string: "32-true", or "bf16-mixed" = bf16 autocast with fp32 weights, CPU or CUDA).
      limit_train_batches / limit_val_batches: None = all; int = batches; float = fraction.
      val_every: validate every N epochs (the last epoch is always validated).
      log_every_n_steps: progress-bar/logging refresh interval in steps.
      ckpt_every_n_steps: also refresh last.ckpt every N optimiser steps (mid-epoch resume points).
      keep_checkpoints: number of newest per-epoch checkpoints kept (-1 = all; the original keeps 5).
      resume: continue from checkpoints/last.ckpt when present (False: start over, deleting the old
        ``checkpoints/*.ckpt``).
      progress: "tqdm" | "rich" | "none"; sanity_val_steps: validation batches run before training.
    """

    data: str | os.PathLike
    out: str | os.PathLike
    train_split: str = "train"
    val_split: str | None = "val"
    crop_size: int | None = None
    dataset: dict[str, Any] = field(default_factory=dict)
    batch_size: int = 24
    val_batch_size: int | None = None
    epochs: int = 30
    max_steps: int = -1
    optimizer: str = "adam"
    lr: float = 0.0
    canonical_lr: float = 1e-4
    canonical_bs: int = 32
    weight_decay: float = 0.0
    schedule: str = "multistep"
    milestones: tuple[int, ...] = (15,)
    gamma: float = 0.5
    warmup_steps: int = 0
    min_lr_ratio: float = 0.0
    grad_clip: float | None = 0.5
    grad_clip_algorithm: str = "value"
    num_workers: int = 0
    seed: int = 0
    deterministic: bool | str = True
    accelerator: str = "cpu"
    devices: int = 1
    num_nodes: int = 1
    strategy: str = "auto"
    precision: str = "32-true"
    limit_train_batches: int | float | None = None
    limit_val_batches: int | float | None = None
    val_every: int = 1
    log_every_n_steps: int = 50
    ckpt_every_n_steps: int | None = None
    keep_checkpoints: int = -1
    resume: bool = True
    progress: str = "tqdm"
    sanity_val_steps: int = 1

    # fields that do not change what is trained: allowed to differ when resuming
    RESUME_FREE = (
        "out",
        "epochs",
        "max_steps",
        "num_workers",
        "limit_val_batches",
        "val_every",
        "log_every_n_steps",
        "ckpt_every_n_steps",
        "keep_checkpoints",
        "resume",
        "progress",
        "sanity_val_steps",
        "val_batch_size",
    )

    @classmethod
    def fields(cls) -> list[str]:
        return [f.name for f in dataclasses.fields(cls)]

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainConfig:
        """Build from a mapping (params.yaml section); unknown keys -> ValueError naming them."""
        unknown = set(d) - set(cls.fields())
        if unknown:
            raise ValueError(f"unknown TrainConfig keys {sorted(unknown)}; known: {cls.fields()}")
        kw = dict(d)
        if "milestones" in kw and kw["milestones"] is not None:
            kw["milestones"] = tuple(int(m) for m in kw["milestones"])
        return cls(**kw)

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["data"], d["out"] = str(self.data), str(self.out)
        d["milestones"] = list(self.milestones)
        return d

    def validate(self) -> None:
        """Clear errors for bad values (and a missing data folder) before any work starts."""
        data = Path(self.data)
        if not data.is_dir():
            raise FileNotFoundError(
                f"training data folder not found: {data} (TrainConfig.data / --data); "
                "generate the synthetic benchmark with `sahmr synth` or point it at a dataset "
                "in the canonical format"
            )

        def need(cond: bool, what: str) -> None:
            if not cond:
                raise ValueError(f"TrainConfig: {what}")

        need(int(self.batch_size) >= 1, f"batch_size must be >= 1, got {self.batch_size}")
        need(self.val_batch_size is None or int(self.val_batch_size) >= 1, f"val_batch_size must be >= 1, got {self.val_batch_size}")
        need(int(self.epochs) >= 1, f"epochs must be >= 1, got {self.epochs}")
        need(self.optimizer in ("adam", "adamw"), f"optimizer must be 'adam' or 'adamw', got {self.optimizer!r}")
        need(float(self.lr) >= 0, f"lr must be >= 0 (0 = canonical rule), got {self.lr}")
        need(
            float(self.lr) > 0 or (float(self.canonical_lr) > 0 and int(self.canonical_bs) >= 1),
            f"with lr == 0 need canonical_lr > 0 and canonical_bs >= 1, got {self.canonical_lr}, {self.canonical_bs}",
        )
        need(self.schedule in ("multistep", "cosine"), f"schedule must be 'multistep' or 'cosine', got {self.schedule!r}")
        need(list(self.milestones) == sorted(self.milestones), f"milestones must be increasing, got {list(self.milestones)}")
        need(int(self.warmup_steps) >= 0, f"warmup_steps must be >= 0, got {self.warmup_steps}")
        need(self.schedule == "cosine" or int(self.warmup_steps) == 0, "warmup_steps needs schedule: cosine (multistep steps per epoch)")
        need(0.0 <= float(self.min_lr_ratio) <= 1.0, f"min_lr_ratio must be in [0, 1], got {self.min_lr_ratio}")
        need(0 < float(self.gamma) <= 1, f"gamma must be in (0, 1], got {self.gamma}")
        need(self.grad_clip_algorithm in ("value", "norm"), f"grad_clip_algorithm must be 'value' or 'norm', got {self.grad_clip_algorithm!r}")
        need(int(self.num_workers) >= 0, f"num_workers must be >= 0, got {self.num_workers}")
        need(int(self.seed) >= 0, f"seed must be >= 0, got {self.seed}")
        need(self.deterministic in (True, False, "warn"), f"deterministic must be true, false or 'warn', got {self.deterministic!r}")
        need(self.accelerator in ("cpu", "gpu", "cuda", "auto", "mps"), f"accelerator must be cpu, gpu or auto, got {self.accelerator!r}")
        need(int(self.devices) >= 1, f"devices must be >= 1, got {self.devices}")
        need(int(self.num_nodes) >= 1, f"num_nodes must be >= 1, got {self.num_nodes}")
        need(int(self.val_every) >= 1, f"val_every must be >= 1, got {self.val_every}")
        need(
            self.ckpt_every_n_steps is None or int(self.ckpt_every_n_steps) >= 1,
            f"ckpt_every_n_steps must be >= 1 or null, got {self.ckpt_every_n_steps}",
        )
        need(int(self.keep_checkpoints) == -1 or int(self.keep_checkpoints) >= 1, f"keep_checkpoints must be -1 or >= 1, got {self.keep_checkpoints}")
        need(self.progress in ("tqdm", "rich", "none"), f"progress must be tqdm, rich or none, got {self.progress!r}")
        need(isinstance(self.dataset, dict), f"dataset must be a mapping of HumanSceneDataset arguments, got {type(self.dataset).__name__}")
        if self.accelerator in ("gpu", "cuda") and not torch.cuda.is_available():
            raise ValueError("TrainConfig: accelerator='gpu' but CUDA is not available (use accelerator=cpu or auto)")

    def resolved_lr(self, world_size: int = 1) -> float:
        """The peak learning rate: ``lr`` if > 0, else canonical_lr * batch_size * world_size / canonical_bs."""
        if float(self.lr) > 0:
            return float(self.lr)
        return float(self.canonical_lr) * int(self.batch_size) * int(world_size) / int(self.canonical_bs)


def lr_factor(step: int, total_steps: int, warmup_steps: int, min_lr_ratio: float) -> float:
    """The cosine schedule's multiplier of the peak lr before optimiser step `step` (0-based):
    ``(step + 1) / warmup_steps`` during warm-up, then ``r + (1 - r) * (1 + cos(pi * t)) / 2`` with
    ``t = (step - warmup) / (total - warmup)`` clamped to [0, 1] and r = min_lr_ratio."""
    import math

    if step < warmup_steps:
        return (step + 1) / warmup_steps
    span = max(total_steps - warmup_steps, 1)
    t = min(max((step - warmup_steps) / span, 0.0), 1.0)
    return min_lr_ratio + (1.0 - min_lr_ratio) * 0.5 * (1.0 + math.cos(math.pi * t))
