"""Compare our mesh transformer (paper preset) with the original's `metro_enhanced.*` keys; load converted weights.

`original-state-dict-keys.txt` lists `name (shape)` per line; the mesh network's keys are prefixed
`metro_enhanced.` (release checkpoints: `net.metro_enhanced.*` under ckpt["network"]). Our `MeshTransformer`
uses the same module names (`backbone.*` = timm's HRNet-W64-C, whose names equal the official HRNet
classification code's, `trans_encoder.{e}.bert.encoder.layer.{l}.*`, `...linear_cp.{0,1}.*`,
`...loftr_layer.*`, `.bert.position_embeddings`, `.bert.img_embedding`, `.cls_head`, `.residual`,
`conv_learn_tokens`, `upsampling`, `upsampling2`), so the map is the identity on names.

Intentional differences: the BERT `embeddings.*` (word/position/token-type + LayerNorm) and `pooler.*`
of every encoder are never called by the original (spec §4.2, ~45 M parameters) and are not built here:
`DROPPED` lists them; the loader ignores them. With an open body model whose hierarchy sizes differ from
SMPL's (e.g. 1722/432 instead of 1723/431), the token/upsampling shapes differ — expected, not a bug.
To load the released weights, build with `MeshTransformerConfig(quirks=True)` (part positional tokens
indexed without the +14 offset, spec §4.2).

* `compare_metro_state_dict(model, keys_file)` -> report dict (matched, renamed, shape_mismatch, missing,
  dropped (missing on purpose), extra, matched_fraction over all original keys and over the non-dropped ones).
* `load_original_metro_state_dict(model, sd, strict=True)`: strips `net.`/`metro_enhanced.`/`module.`,
  ignores `DROPPED` keys and `rcnet.*`, checks shapes, loads; ValueError listing what does not fit.
"""

from __future__ import annotations

import re
from pathlib import Path

import torch
from torch import nn

from .checkpoint_map import compare_mapped_state_dict, load_mapped_state_dict, read_original_keys

__all__ = ["METRO_RENAMES", "DROPPED", "compare_metro_state_dict", "load_original_metro_state_dict", "metro_original_to_ours",
           "is_dropped"]  # fmt: skip

PREFIX = "metro_enhanced."
# original name pattern -> ours (regex, applied in order). Empty: the layouts coincide.
METRO_RENAMES: tuple[tuple[str, str], ...] = ()
# original keys we do not build (never used in the original's forward pass)
DROPPED = (r"^trans_encoder\.\d+\.bert\.embeddings\.", r"^trans_encoder\.\d+\.bert\.pooler\.")


def is_dropped(name: str) -> bool:
    return any(re.search(p, name) for p in DROPPED)


def metro_original_to_ours(name: str) -> str:
    for pat, rep in METRO_RENAMES:
        name = re.sub(pat, rep, name)
    return name


def compare_metro_state_dict(model: nn.Module, keys_file: str | Path) -> dict:
    """Name/shape comparison of `model.state_dict()` (a MeshTransformer) with the original `metro_enhanced.*`."""
    return compare_mapped_state_dict(model, read_original_keys(keys_file, prefix=PREFIX), metro_original_to_ours, is_dropped)


def load_original_metro_state_dict(model: nn.Module, sd: dict[str, torch.Tensor], strict: bool = True) -> dict:
    """Load original METRO_enhanced weights (a full SAHMR checkpoint or its `metro_enhanced.*` part) into a
    MeshTransformer. strict: every parameter of `model` must be provided with the right shape (ValueError
    otherwise). Returns {"loaded": n, "ignored": [...], "missing": [...]}."""
    return load_mapped_state_dict(model, sd, ("module.", "net.", PREFIX), metro_original_to_ours, "METRO_enhanced", strict)
