"""Compare our RCNet's state dict with the original's `rcnet.*` keys and load converted checkpoints.

`original-state-dict-keys.txt` (the project's reference folder, generated from the original code) lists `name (shape)` per line;
the RCNet part is prefixed `rcnet.` (release checkpoints: `net.rcnet.*` under ckpt["network"]; stage-1
RCNet checkpoints: `net.*`). Our RCNet (paper preset) uses the same module names (`root_net.hrnet` =
timm's HRNet-W64 trunk, whose names equal the official HRNet code's; `contact_net` = SPVCNN with
torchsparse-v1.4 kernel layouts), so the map is the identity on names.

* `compare_rcnet_state_dict(model, keys_file)` -> report dict: matched (same name and shape),
  shape_mismatch, missing (in the original, not ours), extra (ours only), renamed (matched through
  `RENAMES`), counts and the matched fraction.
* `load_original_rcnet_state_dict(model, sd)`: strips `net.` / `rcnet.` prefixes, maps names, checks
  shapes, loads strictly on the mapped keys; raises ValueError listing what is missing / mismatched.
"""

from __future__ import annotations

import re
from pathlib import Path

import torch
from torch import nn

__all__ = ["RENAMES", "read_original_keys", "compare_rcnet_state_dict", "load_original_rcnet_state_dict",
           "original_to_ours"]  # fmt: skip

# original name pattern -> ours (regex, applied in order). Empty: the layouts coincide.
RENAMES: tuple[tuple[str, str], ...] = ()

_LINE = re.compile(r"^(\S+)\s+\(([\d,\s]*)\)\s*$")


def read_original_keys(path: str | Path, prefix: str = "rcnet.") -> dict[str, tuple[int, ...]]:
    """{name without `prefix`: shape} for the lines of `path` that start with `prefix`."""
    out: dict[str, tuple[int, ...]] = {}
    for line in Path(path).read_text().splitlines():
        m = _LINE.match(line.strip())
        if not m or not m.group(1).startswith(prefix):
            continue
        shape = tuple(int(s) for s in m.group(2).replace(" ", "").split(",") if s)
        out[m.group(1)[len(prefix):]] = shape
    if not out:
        raise ValueError(f"{path}: no '{prefix}' keys found (expected lines 'name (d0, d1, ...)')")
    return out


def original_to_ours(name: str) -> str:
    for pat, rep in RENAMES:
        name = re.sub(pat, rep, name)
    return name


def compare_rcnet_state_dict(model: nn.Module, keys_file: str | Path) -> dict:
    """Name/shape comparison of `model.state_dict()` with the original `rcnet.*` keys."""
    return compare_mapped_state_dict(model, read_original_keys(keys_file), original_to_ours)


def compare_mapped_state_dict(model: nn.Module, orig: dict[str, tuple], key_map, is_dropped=lambda k: False) -> dict:
    """Compare `model.state_dict()` with original keys -> shapes, renaming them with `key_map`.

    Returns lists ``matched`` (same name and shape), ``renamed`` ((orig, ours) pairs), ``shape_mismatch``,
    ``missing`` (original keys we lack), ``dropped`` (original keys `is_dropped` says we omit on purpose),
    ``extra`` (ours only), the matched fractions (of all keys, of the keys not dropped) and element counts.
    """
    ours = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    matched, renamed, mismatch, missing, dropped = [], [], [], [], []
    used = set()
    for k, shp in orig.items():
        k2 = key_map(k)
        if k2 in ours:
            used.add(k2)
            if ours[k2] == shp:
                (matched if k2 == k else renamed).append(k if k2 == k else (k, k2))
            else:
                mismatch.append((k, shp, ours[k2]))
        elif is_dropped(k):
            dropped.append((k, shp))
        else:
            missing.append((k, shp))
    extra = [(k, s) for k, s in ours.items() if k not in used]
    n_ok = len(matched) + len(renamed)
    numel = lambda s: int(torch.Size(s).numel())  # noqa: E731
    return {
        "n_original": len(orig), "n_ours": len(ours), "matched": matched, "renamed": renamed,
        "shape_mismatch": mismatch, "missing": missing, "dropped": dropped, "extra": extra,
        "matched_fraction": n_ok / len(orig),
        "matched_fraction_used": n_ok / max(len(orig) - len(dropped), 1),
        "original_numel": sum(numel(s) for k, s in orig.items() if not k.endswith("num_batches_tracked")),
        "dropped_numel": sum(numel(s) for _, s in dropped),
        "ours_numel": sum(p.numel() for p in model.parameters()) + sum(
            b.numel() for n, b in model.named_buffers() if n.endswith(("running_mean", "running_var"))),
    }  # fmt: skip


def load_original_rcnet_state_dict(model: nn.Module, sd: dict[str, torch.Tensor], strict: bool = True) -> dict:
    """Load an original RCNet/SAHMR state dict (`net.`, `rcnet.`, `module.` prefixes stripped; METRO keys
    of a full SAHMR checkpoint ignored). strict: every parameter of `model` must be provided with the right
    shape (ValueError otherwise). Returns {"loaded": n, "ignored": [...], "missing": [...]}."""
    return load_mapped_state_dict(model, sd, ("module.", "net.", "rcnet."), original_to_ours, "RCNet", strict)


def load_mapped_state_dict(model: nn.Module, sd: dict[str, torch.Tensor], prefixes: tuple[str, ...], key_map,
                           what: str, strict: bool = True) -> dict:
    """Load an original checkpoint's tensors into `model`: strip `prefixes`, rename with `key_map`, keep
    what fits. Keys `model` does not have are ignored (e.g. the other network of a SAHMR checkpoint); a
    shape mismatch, or (strict) a parameter left unset, raises ValueError naming them."""
    if "network" in sd and isinstance(sd["network"], dict):
        sd = sd["network"]
    ours = model.state_dict()
    mapped, ignored, bad = {}, [], []
    for k, v in sd.items():
        key = k
        for p in prefixes:
            if key.startswith(p):
                key = key[len(p):]
        key = key_map(key)
        if key not in ours:
            ignored.append(k)
        elif tuple(v.shape) != tuple(ours[key].shape):
            bad.append(f"{k}: {tuple(v.shape)} vs ours {tuple(ours[key].shape)}")
        else:
            mapped[key] = v
    missing = [k for k in ours if k not in mapped]
    if bad or (strict and missing):
        raise ValueError(f"original {what} state dict does not fit: {len(bad)} shape mismatches {bad[:5]}, "
                         f"{len(missing)} missing {missing[:5]}")  # fmt: skip
    model.load_state_dict(mapped, strict=False)
    return {"loaded": len(mapped), "ignored": ignored, "missing": missing}
