"""`RCNetTask`: what the generic training loop needs to train and validate RCNet (stage 1, spec §5.5).

    task = RCNetTask(RCNetConfig.preset("cpu"))          # or RCNetTask("cpu") / RCNetTask({"name": "cpu", ...})
    model = task.build_model()                            # nn.Module (RCNet)
    loss, stats = task.training_step(model, batch, gen)   # batch from collate_human_scene, on the model's device
    metrics = task.validation_metrics(model, batch)       # {name: (B,) float tensor}, under no_grad

* `training_step` runs the model in whatever mode the loop set (call `model.train()` first: anchors are
  replaced by noisy GT only in training mode), using `generator` (a `torch.Generator` on any device) for
  the anchor noise. Returns the batch-mean weighted loss (scalar, with grad) and float stats
  `loss/<name>` (batch means of the unweighted per-sample losses), `loss/total`, plus the training
  metrics of `rcnet_metrics` as batch means (`pelvis_error_coarse_mm`, ...) and `noisy_gt_anchor_frac`.
* `validation_metrics` (model in eval mode, no noise): per-sample tensors (B,): `pelvis_error_coarse_mm`,
  `pelvis_error_refined_mm`, `pelvis_error_2d_px`, `voxseg_precision`, `voxseg_recall`, `voxseg_iou`,
  `fallback`, and every loss `loss/<name>` and `loss/total`. The dataset's crop size should equal
  `cfg.crop_size` (otherwise images are resized inside the model).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from sahmr.models.rcnet import RCNet, RCNetConfig

from .rcnet_losses import rcnet_losses, rcnet_metrics
from .rcnet_targets import build_rcnet_targets

__all__ = ["RCNetTask", "RCNetTaskParams"]


@dataclass
class RCNetTaskParams:
    """RCNet's own keys of the ``train_rcnet`` section (the loop's are `TrainConfig`'s).

    preset: "cpu" | "paper" (`RCNetConfig.preset`); model: overrides of `RCNetConfig` fields."""

    preset: str = "cpu"
    model: dict[str, Any] = field(default_factory=dict)


class RCNetTask:
    def __init__(self, cfg: RCNetConfig | str | dict[str, Any] | None = None):
        if cfg is None:
            cfg = RCNetConfig.preset("cpu")
        elif isinstance(cfg, str):
            cfg = RCNetConfig.preset(cfg)
        elif isinstance(cfg, dict):
            d = dict(cfg)
            cfg = RCNetConfig.preset(d.pop("name", d.pop("preset", "cpu")), **d)
        if not isinstance(cfg, RCNetConfig):
            raise TypeError(f"RCNetTask: cfg must be an RCNetConfig, a preset name or a dict, got {type(cfg).__name__}")
        self.cfg = cfg
        self.name = "rcnet"
        self.crop_size = cfg.crop_size  # the training loop builds the dataset at the model's crop size

    @classmethod
    def from_params(cls, params: RCNetTaskParams) -> RCNetTask:
        return cls(RCNetConfig.preset(params.preset, **params.model))

    def build_model(self) -> nn.Module:
        return RCNet(self.cfg)

    def _forward(self, model: RCNet, batch: dict, generator: torch.Generator | None):
        out = model.forward_batch(batch, generator)
        tgt = build_rcnet_targets(batch, out, self.cfg)
        total, losses = rcnet_losses(out, tgt, self.cfg.loss_weights, self.cfg.voxel_seg_part_weight)
        return out, tgt, total, losses

    def training_step(self, model: nn.Module, batch: dict, generator: torch.Generator | None) -> tuple[Tensor, dict[str, float]]:
        out, tgt, total, losses = self._forward(model, batch, generator)
        loss = total.mean()
        stats = {f"loss/{k}": float(v.detach().mean()) for k, v in losses.items()}
        stats["loss/total"] = float(loss.detach())
        for k, v in rcnet_metrics(out, tgt).items():
            stats[k] = float(v.mean())
        stats["noisy_gt_anchor_frac"] = float(out.noisy_gt_anchor.float().mean())
        stats["num_voxels_per_sample"] = out.voxel_batch.shape[0] / max(out.batch_size, 1)
        return loss, stats

    @torch.no_grad()
    def validation_metrics(self, model: nn.Module, batch: dict) -> dict[str, Tensor]:
        out, tgt, total, losses = self._forward(model, batch, None)
        m = rcnet_metrics(out, tgt)
        m.update({f"loss/{k}": v.detach().float() for k, v in losses.items()})
        m["loss/total"] = total.detach().float()
        return m
