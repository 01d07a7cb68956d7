"""`SAHMRTask` / `BaselineTask`: stage-2 training of the mesh transformer with RCNet frozen (spec §5.5).

    task = SAHMRTask(preset="cpu", rcnet_ckpt="runs/rcnet/final.ckpt")     # or SAHMRTask.from_params({...})
    model = task.build_model()                               # SAHMR (RCNet loaded from rcnet_ckpt, frozen)
    loss, stats = task.training_step(model, batch, gen)      # batch from collate_human_scene
    metrics = task.validation_metrics(model, batch)          # {name: (B,) float tensor}, under no_grad

Parameters:
  preset: "cpu" | "paper" — both RCNet and the mesh transformer (`RCNetConfig.preset`,
    `MeshTransformerConfig.preset`); `rcnet` / `model`: dicts of overrides of those configs.
  rcnet_ckpt: the stage-1 RCNet weights: a plain `state_dict` as written by the loop (`<out>/final.ckpt`),
    or a dict holding one under "state_dict" / "network" (prefixes `net.`, `model.`, `rcnet.` stripped),
    loaded with `torch.load(weights_only=True)` and strictly: a missing file, or weights of another preset,
    raise a clear error at `build_model()`.
  body_model: name or path of the body model (`sahmr.body.model.resolve_model_path`); sizes, template,
    joint regressor, parts come from it. Default "sahmr-open".
  loss_weights: {vertex, joint, vertex_c, corr_points} (default 1 each; ≤ 0 drops a loss).
  corr_points_quirk: True (default) = the original's denominator N incl. padding (spec §5.4).
  pelvis_noise_thr / pelvis_noise_std: the training origin replacement (0.5 m / 0.08 m, spec §5.5).
  init_backbone: "rcnet" (default) starts the mesh transformer's image trunk (HRNet stem + stages) from
    the stage-1 RCNet's trunk, the same architecture in both presets; "none" keeps the config's init
    (random, or `model.backbone_weights`). The original starts both networks from METRO's pretrained
    HRNet (spec §5.5), which the open kit does not have; RCNet's trunk, trained on pelvis and contact-part
    heatmaps, is the nearest substitute (on 125 baseline steps: val PA-MPJPE 223 -> 192 mm).

  contact_sampling: "kit" (default) or "original" (the original's with-replacement draw, seeded, also at
    test time; what converted release checkpoints use, see `sahmr convert`).
  init_mesh_ckpt: start the mesh transformer from a converted METRO file or a full SAHMR checkpoint
    (`load_mesh_init`; with init_backbone "none"). `rcnet_ckpt` may also be a full SAHMR checkpoint (its
    `rcnet.*` part is used).

`training_step` needs `model.train()` (the loop does it; RCNet stays in eval); the generator drives the
noisy-GT origin and the random contact subsets. Stats: `loss/<name>`, `loss/total`, `noisy_gt_pelvis_frac`,
`contact_points_per_sample`, and the metrics below as batch means. `validation_metrics`: MPJPE, MPVE,
PA_MPJPE, G_MPJPE, G_MPVE, PelvisE, PelvisE_mesh, PelvisE_coarse, C_HSCP_L2 (mm, per sample) and the losses.
`optimizer_groups(model)`: only the mesh transformer (`metro_enhanced.*`) is trained.

`BaselineTask`: the same with `ImageOnlyBaseline` (no scene branch, RCNet's coarse pelvis; no corr_points).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from sahmr.models.mesh_transformer import MeshTransformerConfig
from sahmr.models.rcnet import RCNet, RCNetConfig
from sahmr.models.sahmr import SAHMR, ImageOnlyBaseline

from .sahmr_losses import SAHMR_LOSS_WEIGHTS, sahmr_losses, sahmr_metrics

__all__ = ["SAHMRTask", "BaselineTask", "Stage2Params", "load_rcnet_checkpoint", "load_mesh_init"]


@dataclass
class Stage2Params:
    """The stage-2 tasks' own keys of ``train_sahmr`` / ``train_baseline`` (meanings: the module docstring;
    the loop's keys are `TrainConfig`'s)."""

    preset: str = "cpu"
    rcnet_ckpt: str | None = None
    body_model: str = "sahmr-open"
    model: dict[str, Any] = field(default_factory=dict)
    rcnet: dict[str, Any] = field(default_factory=dict)
    loss_weights: dict[str, float] = field(default_factory=dict)
    corr_points_quirk: bool = True
    pelvis_noise_thr: float = 0.5
    pelvis_noise_std: float = 0.08
    init_backbone: str = "rcnet"
    contact_sampling: str = "kit"
    init_mesh_ckpt: str | None = None


def load_rcnet_checkpoint(rcnet: RCNet, path: str | Path | None) -> None:
    """Strictly load stage-1 RCNet weights from `path` (see the module docstring); clear errors."""
    if path is None or str(path) == "":
        raise ValueError(
            "rcnet_ckpt is required: train RCNet first (`sahmr train rcnet`, which writes "
            "runs/rcnet/final.ckpt) and pass its path as the task parameter rcnet_ckpt"
        )
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(
            f"RCNet checkpoint not found: {p} (task parameter rcnet_ckpt). Train RCNet first "
            "(`sahmr train rcnet`, output <out>/final.ckpt) or fix the path."
        )
    obj = _state_dict_of(p, "RCNet")
    if any(k.startswith("metro_enhanced.") for k in obj):  # a full SAHMR checkpoint: take its RCNet
        obj = {k[len("rcnet.") :]: v for k, v in obj.items() if k.startswith("rcnet.")}
    own = rcnet.state_dict()
    sd = {}
    for k, v in obj.items():
        key = k
        while key not in own and key.startswith(("net.", "model.", "rcnet.", "module.")):
            key = key.split(".", 1)[1]
        sd[key] = v
    missing = [k for k in own if k not in sd]
    unexpected = [k for k in sd if k not in own]
    bad = [f"{k}: file {tuple(sd[k].shape)} vs model {tuple(own[k].shape)}" for k in own if k in sd and sd[k].shape != own[k].shape]
    if missing or unexpected or bad:
        raise ValueError(
            f"{p} does not fit RCNet preset {rcnet.cfg.name!r}: {len(missing)} missing {missing[:3]}, "
            f"{len(unexpected)} unexpected {unexpected[:3]}, {len(bad)} shape mismatches {bad[:3]}. "
            "Was it trained with another preset?"
        )
    rcnet.load_state_dict(sd, strict=True)


def _state_dict_of(path: Path, what: str) -> dict[str, Tensor]:
    """The state dict in `path` (plain, or under "state_dict" / "network" / "model"), read safely."""
    from sahmr.models.convert import read_checkpoint

    obj = read_checkpoint(path)
    for key in ("state_dict", "network", "model"):
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
    if not isinstance(obj, dict) or not obj or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise ValueError(f"{path}: expected a state dict (name -> tensor) of {what}")
    return obj


def load_mesh_init(mesh: nn.Module, path: str | Path) -> list[str]:
    """Initialise the mesh transformer from `path`: a converted METRO file (`sahmr convert
    metro_3dpw_state_dict.bin`: the contact-branch layers `linear_cp`/`loftr_layer` are absent and keep
    their init, as in the original, spec §4.4) or a full SAHMR checkpoint (its `metro_enhanced.*`).
    Returns the keys left at their init; anything else that does not fit raises ValueError."""
    import re

    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(
            f"mesh-transformer init not found: {p} (task parameter init_mesh_ckpt); convert "
            "METRO's weights with `sahmr convert metro_3dpw_state_dict.bin --out DIR`"
        )
    sd = _state_dict_of(p, "the mesh transformer")
    if any(k.startswith("metro_enhanced.") for k in sd):
        sd = {k[len("metro_enhanced.") :]: v for k, v in sd.items() if k.startswith("metro_enhanced.")}
    own = mesh.state_dict()
    unexpected = [k for k in sd if k not in own]
    bad = [f"{k}: file {tuple(v.shape)} vs model {tuple(own[k].shape)}" for k, v in sd.items() if k in own and v.shape != own[k].shape]
    missing = [k for k in own if k not in sd]
    not_new = [k for k in missing if not re.search(r"\.(linear_cp|loftr_layer)\.", k)]
    if unexpected or bad or not_new:
        raise ValueError(
            f"{p} does not fit the mesh transformer of preset {mesh.cfg.name!r}: {len(unexpected)} unexpected "
            f"{unexpected[:3]}, {len(bad)} shape mismatches {bad[:2]}, {len(not_new)} missing outside the "
            f"contact branch {not_new[:3]}"
        )
    mesh.load_state_dict(sd, strict=False)
    return missing


class SAHMRTask:
    model_cls = SAHMR
    task_name = "sahmr"

    def __init__(
        self,
        preset: str = "cpu",
        rcnet_ckpt: str | Path | None = None,
        body_model: str | Path = "sahmr-open",
        model: dict[str, Any] | None = None,
        rcnet: dict[str, Any] | None = None,
        loss_weights: dict[str, float] | None = None,
        corr_points_quirk: bool = True,
        pelvis_noise_thr: float = 0.5,
        pelvis_noise_std: float = 0.08,
        init_backbone: str = "rcnet",
        contact_sampling: str = "kit",
        init_mesh_ckpt: str | Path | None = None,
    ):
        self.name = self.task_name
        # what built the task: recorded in train_config.json, so a resume with other task params is refused
        self.params = {k: v for k, v in locals().items() if k not in ("self", "__class__")}
        self.rcnet_cfg = RCNetConfig.preset(preset, **(rcnet or {}))
        self.mesh_cfg = MeshTransformerConfig.preset(preset, **(model or {}))
        self.mesh_cfg = replace(self.mesh_cfg, use_scene=self.model_cls.use_scene)
        self.rcnet_ckpt = rcnet_ckpt
        self.body_model = body_model
        w = dict(SAHMR_LOSS_WEIGHTS)
        unknown = sorted(set(loss_weights or {}) - set(w))
        if unknown:
            raise ValueError(f"loss_weights.{unknown[0]}: unknown loss (a typo?); known: {sorted(w)}")
        w.update(loss_weights or {})
        if not self.model_cls.use_scene:
            w.pop("corr_points", None)
        self.loss_weights = w
        self.corr_points_quirk = bool(corr_points_quirk)
        self.pelvis_noise_thr = float(pelvis_noise_thr)
        self.pelvis_noise_std = float(pelvis_noise_std)
        self.crop_size = self.rcnet_cfg.crop_size
        if init_backbone not in ("rcnet", "none"):
            raise ValueError(f"init_backbone: expected 'rcnet' or 'none', got {init_backbone!r}")
        if init_backbone == "rcnet" and self.mesh_cfg.backbone_weights is not None:
            raise ValueError(
                "model.backbone_weights is set and init_backbone is 'rcnet': the trunk would be "
                "overwritten by RCNet's. Set init_backbone: none to use the weights file."
            )
        self.init_backbone = init_backbone
        from sahmr.models.sahmr import CONTACT_SAMPLING_MODES

        if contact_sampling not in CONTACT_SAMPLING_MODES:
            raise ValueError(f"contact_sampling: expected one of {CONTACT_SAMPLING_MODES}, got {contact_sampling!r}")
        self.contact_sampling = contact_sampling
        if init_mesh_ckpt and init_backbone == "rcnet":
            raise ValueError(
                "init_mesh_ckpt is set and init_backbone is 'rcnet': the trunk would be overwritten by "
                "RCNet's. Set init_backbone: none to start from the init_mesh_ckpt weights."
            )
        self.init_mesh_ckpt = init_mesh_ckpt or None

    @classmethod
    def from_params(cls, params: Stage2Params | dict[str, Any]) -> SAHMRTask:
        """Build from `Stage2Params` (or a mapping checked against it: an unknown key is an error)."""
        if not isinstance(params, Stage2Params):
            from sahmr.config import from_mapping

            params = from_mapping(Stage2Params, params, where=f"{cls.task_name} task params")
        return cls(**asdict(params))

    def build_model(self, load_rcnet: bool = True) -> nn.Module:
        """The model with RCNet loaded from `rcnet_ckpt` (frozen) and, with init_backbone "rcnet", the mesh
        transformer's image trunk copied from it. load_rcnet=False leaves both randomly initialised, for
        loading a full stage-2 checkpoint (which holds `rcnet.*` too) right after."""
        from sahmr.body.model import BodyModel
        from sahmr.models.backbones import copy_trunk_weights

        rcnet = RCNet(self.rcnet_cfg)
        if load_rcnet:
            load_rcnet_checkpoint(rcnet, self.rcnet_ckpt)
        body = BodyModel.load(self.body_model)
        model = self.model_cls(rcnet, self.mesh_cfg, body, self.pelvis_noise_thr, self.pelvis_noise_std, contact_sampling=self.contact_sampling)
        if load_rcnet and self.init_backbone == "rcnet":
            copy_trunk_weights(rcnet.root_net.hrnet, model.metro_enhanced.backbone)
        if load_rcnet and self.init_mesh_ckpt is not None:
            load_mesh_init(model.metro_enhanced, self.init_mesh_ckpt)
        return model

    def optimizer_groups(self, model: nn.Module) -> list[dict]:
        return [{"params": [p for p in model.metro_enhanced.parameters() if p.requires_grad]}]

    def _forward(self, model: SAHMR, batch: dict, generator: torch.Generator | None):
        out = model.forward_batch(batch, generator)
        total, losses = sahmr_losses(out, batch, self.loss_weights, self.corr_points_quirk)
        return out, total, losses

    def training_step(self, model: nn.Module, batch: dict, generator: torch.Generator | None) -> tuple[Tensor, dict[str, float]]:
        out, total, losses = self._forward(model, batch, generator)
        loss = total.mean()
        stats = {f"loss/{k}": float(v.detach().mean()) for k, v in losses.items()}
        stats["loss/total"] = float(loss.detach())
        for k, v in sahmr_metrics(out, batch).items():
            stats[k] = float(v.mean())
        stats["noisy_gt_pelvis_frac"] = float(out.noisy_gt_pelvis.float().mean())
        if out.contact_points_mask is not None:
            stats["contact_points_per_sample"] = float(out.contact_points_mask.sum(1).float().mean())
        return loss, stats

    @torch.no_grad()
    def validation_metrics(self, model: nn.Module, batch: dict) -> dict[str, Tensor]:
        out, total, losses = self._forward(model, batch, None)
        m = sahmr_metrics(out, batch)
        m.update({f"loss/{k}": v.detach().float() for k, v in losses.items()})
        m["loss/total"] = total.detach().float()
        return m


class BaselineTask(SAHMRTask):
    model_cls = ImageOnlyBaseline
    task_name = "baseline"
