"""Image backbones through timm, offline (DESIGN.md §4, spec §3.2 / §4.1).

`build_image_backbone(name, pretrained, weights_path) -> (module, out_channels, stride)`; the module maps
`(B, 3, S, S)` ImageNet-normalised images to one feature map `(B, out_channels, S/stride, S/stride)`.

Backbones (all stride 4, the highest-resolution HRNet branch after stage 4, i.e. timm's
`features_only=True, feature_location="", out_indices=(1,)`):

============== ============ ======== ==================================================================
name           channels     params   use
============== ============ ======== ==================================================================
hrnet_w64      64           115.7 M  `paper` preset: the original's HRNet-W64 `featmap4s_only` trunk;
                                     its state-dict keys equal the original's `root_net.hrnet.*` keys
hrnet_w18_small 16          1.5 M    `cpu` preset (~0.2 s forward+backward for 2 crops of 128 px, 2 cores)
============== ============ ======== ==================================================================

The returned module *is* the timm feature network (its class is swapped for a subclass whose forward
returns the single feature tensor instead of a list), so parameter names are timm's own (`conv1.weight`,
`stage4.2.fuse_layers...`) — identical to the official HRNet code's names.

Weights never download: `pretrained=False` is random init (timm's init: kaiming-normal fan_out convs, BN
1/0, as the original's `metro_wo_pretrained`); `pretrained=True` needs `weights_path`, a local
`torch.save`d state dict (timm keys, or keys with a prefix such as `backbone.`, `root_net.hrnet.`,
`module.` — stripped), loaded with `weights_only=True`.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

__all__ = ["BACKBONES", "build_image_backbone", "load_backbone_weights", "copy_trunk_weights"]

# name -> (timm model name, timm kwargs)
BACKBONES: dict[str, tuple[str, dict]] = {
    "hrnet_w64": ("hrnet_w64", dict(feature_location="")),
    "hrnet_w18_small": ("hrnet_w18_small", dict(feature_location="")),
    "hrnet_w18_small_v2": ("hrnet_w18_small_v2", dict(feature_location="")),
}

_SINGLE_CLASSES: dict[type, type] = {}


def _single_output_class(cls: type) -> type:
    """Subclass of a timm feature net whose forward returns the one requested feature map."""
    sub = _SINGLE_CLASSES.get(cls)
    if sub is None:

        def forward(self, x):
            return cls.forward(self, x)[0]

        sub = type(f"{cls.__name__}Stride4", (cls,), {"forward": forward, "__module__": __name__})
        _SINGLE_CLASSES[cls] = sub
    return sub


_PREFIXES = ("module.", "net.", "rcnet.", "root_net.", "hrnet.", "backbone.")


def _strip_prefixes(sd: dict[str, torch.Tensor], own: set[str]) -> dict[str, torch.Tensor]:
    out = {}
    for k, v in sd.items():
        key = k
        while key not in own and key.startswith(_PREFIXES):
            key = key.split(".", 1)[1]
        out[key] = v
    return out


def load_backbone_weights(module: nn.Module, weights_path: str | Path) -> dict[str, list[str]]:
    """Load a local state dict into `module` (prefixes stripped; shapes must match).

    Returns {"missing": [...], "unexpected": [...]}. Raises FileNotFoundError / ValueError naming the
    file when it is absent, not a state dict, or matches none of the backbone's parameters.
    """
    path = Path(weights_path)
    if not path.is_file():
        raise FileNotFoundError(f"backbone weights file not found: {path}")
    obj = torch.load(path, map_location="cpu", weights_only=True)
    for key in ("state_dict", "model", "network"):
        if isinstance(obj, dict) and key in obj and isinstance(obj[key], dict):
            obj = obj[key]
    if not isinstance(obj, dict):
        raise ValueError(f"{path}: expected a state dict (name -> tensor), got {type(obj).__name__}")
    own = module.state_dict()
    sd = _strip_prefixes(obj, set(own))
    usable = {k: v for k, v in sd.items() if k in own and tuple(v.shape) == tuple(own[k].shape)}
    if not usable:
        raise ValueError(f"{path}: none of its {len(sd)} tensors matches the backbone's parameter names/shapes")
    res = module.load_state_dict(usable, strict=False)
    return {"missing": list(res.missing_keys), "unexpected": sorted(set(sd) - set(usable))}


def copy_trunk_weights(src: nn.Module, dst: nn.Module) -> list[str]:
    """Copy every tensor of `src` (an HRNet feature trunk, e.g. RCNet's `root_net.hrnet`) into the
    same-named tensor of `dst` (the same HRNet built as a classification net, e.g. the mesh transformer's
    backbone), in place; `dst`'s extra head modules (incre/downsamp/final layers) are left as they are.

    After the copy `dst`'s stem and stages compute exactly `src`'s stride-4 features. Raises ValueError
    naming the tensors when `src` holds a tensor `dst` lacks or one of another shape (different
    architectures, e.g. presets mixed). Returns the copied names.
    """
    src_sd, dst_sd = src.state_dict(), dst.state_dict()
    missing = [k for k in src_sd if k not in dst_sd]
    bad = [f"{k}: {tuple(v.shape)} vs {tuple(dst_sd[k].shape)}" for k, v in src_sd.items() if k in dst_sd and v.shape != dst_sd[k].shape]
    if missing or bad:
        raise ValueError(f"cannot copy the image trunk: {len(missing)} tensors absent from the target {missing[:3]}, "
                         f"{len(bad)} of another shape {bad[:3]}. Source and target must be the same HRNet "
                         "(e.g. RCNet and mesh transformer of one preset).")
    with torch.no_grad():
        for k, v in src_sd.items():
            dst_sd[k].copy_(v)
    return list(src_sd)


def freeze_unused_fuse_layers(module: nn.Module) -> list[str]:
    """Set requires_grad=False on the parameters that cannot influence the stride-4 output.

    The last HRNet module fuses every branch into every output resolution, but only branch 0 (stride 4)
    is returned, so its `fuse_layers.{i>=1}` get no gradient (the original has them too, and its
    checkpoint stores them). Freezing them keeps optimisers and DDP (no `find_unused_parameters`) clean;
    they stay in the state dict. Returns the frozen parameter names.
    """
    stages = sorted(n for n, _ in module.named_children() if n.startswith("stage"))
    if not stages:
        return []
    last_stage = getattr(module, stages[-1])
    last = list(last_stage.children())[-1]
    prefix = f"{stages[-1]}.{len(last_stage) - 1}.fuse_layers."
    frozen = []
    fuse = getattr(last, "fuse_layers", None)
    if fuse is None:
        return []
    for i, layer in enumerate(fuse):
        if i == 0:
            continue
        for n, p in layer.named_parameters():
            p.requires_grad_(False)
            frozen.append(f"{prefix}{i}.{n}")
    return frozen


def build_image_backbone(name: str, pretrained: bool = False, weights_path: str | Path | None = None):
    """Build an image backbone (offline).

    name: one of `BACKBONES`; pretrained: False = random init (never downloads); True = load
    `weights_path` (required). A `weights_path` given with pretrained=False is loaded too.
    Returns (module, out_channels, stride): module(x: (B, 3, S, S)) -> (B, out_channels, S/stride, S/stride).
    """
    import timm

    if name not in BACKBONES:
        raise ValueError(f"unknown image backbone {name!r}; choose one of {sorted(BACKBONES)}")
    if pretrained and weights_path is None:
        raise ValueError(
            f"pretrained=True for backbone {name!r} needs weights_path (a local state-dict file): weights are "
            "never downloaded. Pass weights_path=... or pretrained=False (random init)."
        )
    timm_name, kwargs = BACKBONES[name]
    m = timm.create_model(timm_name, pretrained=False, features_only=True, out_indices=(1,), **kwargs)
    channels = int(m.feature_info.channels()[0])
    stride = int(m.feature_info.reduction()[0])
    m.__class__ = _single_output_class(type(m))
    freeze_unused_fuse_layers(m)
    if weights_path is not None:
        load_backbone_weights(m, weights_path)
    return m, channels, stride
