"""Original SA-HMR / METRO checkpoints <-> the kit's layout: safe reading, key accounting, round trip.

Three kinds of source file (spec §4.4), detected from their keys:

* ``sahmr``  — the released ``sahmr_{rich,prox}_e30.pth``: ``{"network": {"net.rcnet.*", "net.metro_enhanced.*"},
  "epoch": 30}`` -> the kit's ``SAHMR`` state dict (``rcnet.*``, ``metro_enhanced.*``).
* ``rcnet``  — a stage-1 RCNet checkpoint of the original training (``out/rich/rcnet/checkpoints/30.pth``):
  ``{"network": {"net.root_net.*", "net.contact_net.*"}}`` -> the kit's ``RCNet`` state dict.
* ``metro``  — METRO's ``metro_3dpw_state_dict.bin`` (a plain state dict of ``METRO_Body_Network``, the
  original's initialisation for stage-2 training) -> the kit's ``MeshTransformer`` state dict; its new
  layers (``linear_cp``, ``loftr_layer``) are absent from METRO and keep their BERT init, as in the original.

The kit's modules carry the original's parameter names and torchsparse-1.4 kernel layouts, so every kept
tensor keeps its name and its values bit for bit; what differs is only what the kit never builds. Every
source tensor is accounted for: *loaded*, or *dropped* with the reason (`DROP_RULES`); anything else is an
error naming the first unknown and missing keys. ``Conversion.to_original()`` rebuilds the source layout
(with the dropped tensors kept in memory): the round trip is the identity on every tensor.

Reading never executes code: ``torch.load(weights_only=True)`` (a pickle naming any other global is refused).
"""

from __future__ import annotations

import pickle
import re
import zipfile
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

__all__ = ["KINDS", "DROP_RULES", "CheckpointError", "Conversion", "read_checkpoint", "detect_kind", "convert_state_dict",
           "expected_state_shapes", "load_converted"]

KINDS = ("sahmr", "rcnet", "metro")

# (kind, regex on the source key without its file prefix, reason) for tensors the kit deliberately drops.
DROP_RULES: tuple[tuple[str, str, str], ...] = (
    ("sahmr", r"^metro_enhanced\.trans_encoder\.\d+\.bert\.embeddings\.",
     "BERT word/position/token-type embeddings + LayerNorm: built by the original but never called (spec §4.2)"),
    ("sahmr", r"^metro_enhanced\.trans_encoder\.\d+\.bert\.pooler\.", "BERT pooler: never called (spec §4.2)"),
    ("metro", r"^trans_encoder\.\d+\.bert\.embeddings\.",
     "BERT word/position/token-type embeddings + LayerNorm: never called by METRO or SA-HMR (spec §4.2)"),
    ("metro", r"^trans_encoder\.\d+\.bert\.pooler\.", "BERT pooler: never called (spec §4.2)"),
    ("metro", r"^cam_param_fc\d?\.", "METRO's orthographic camera head: SA-HMR predicts camera-frame meshes (spec §4.4)"),
)


class CheckpointError(ValueError):
    """A checkpoint file that cannot be converted (unreadable, unsafe, or of another layout)."""


@dataclass
class Conversion:
    """The result of converting one source file.

    kind: one of KINDS. state_dict: kit key -> tensor (the values of the source, not copied).
    dropped: source key (without prefix) -> (tensor, reason). prefix: the prefix stripped from every source
    key ("net." or "" or "module."). wrapper: the top-level key the source held its tensors under
    ("network", "state_dict") or None (a plain state dict). extra: the source's other top-level entries
    (e.g. {"epoch": 30}).
    """

    kind: str
    state_dict: "OrderedDict[str, Tensor]"
    dropped: "OrderedDict[str, tuple[Tensor, str]]"
    prefix: str = ""
    wrapper: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    order: list[str] = field(default_factory=list)  # source keys (without prefix), in file order

    def accounting(self) -> dict[str, Any]:
        """Counts and the per-reason list of dropped keys (JSON-ready)."""
        numel = lambda ts: int(sum(t.numel() for t in ts))  # noqa: E731
        reasons: dict[str, list[str]] = {}
        for k, (_, why) in self.dropped.items():
            reasons.setdefault(why, []).append(k)
        return {
            "kind": self.kind, "source_tensors": len(self.order), "loaded": len(self.state_dict),
            "dropped": len(self.dropped), "loaded_values": numel(self.state_dict.values()),
            "dropped_values": numel(t for t, _ in self.dropped.values()),
            "dropped_by_reason": [{"reason": r, "count": len(ks), "keys": ks} for r, ks in reasons.items()],
            "extra_entries": {k: v for k, v in self.extra.items() if isinstance(v, (int, float, str, bool))},
        }

    def to_original(self) -> dict[str, Any]:
        """The source layout again: {"network": OrderedDict(prefix + key -> tensor), **extra} or the plain
        dict. Needs the dropped tensors (all present after `convert_state_dict`)."""
        back = OrderedDict()
        for k in self.order:
            t = self.state_dict[_to_kit_key(self.kind, k)] if k not in self.dropped else self.dropped[k][0]
            back[self.prefix + k] = t
        return {self.wrapper: back, **self.extra} if self.wrapper else back


def _to_kit_key(kind: str, key: str) -> str:
    """Source key (prefix stripped) -> kit key. The names coincide (see the module docstring)."""
    return key


def read_checkpoint(path: str | Path) -> Any:
    """torch.load(path, weights_only=True) with one clear error for a missing, truncated or unsafe file."""
    p = Path(path)
    if not p.is_file():
        raise CheckpointError(f"{p}: no such checkpoint file")
    try:
        return torch.load(p, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        first = str(e).strip().splitlines()
        hint = next((ln.strip() for ln in first if "GLOBAL" in ln or "global" in ln), first[0] if first else "")
        raise CheckpointError(f"{p}: refused — the file would run code or build objects a weights file does not "
                              f"need ({hint[:200]}). Only plain tensors are read; get the file from its "
                              "original source.") from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError, ValueError) as e:
        msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise CheckpointError(f"{p}: not a readable PyTorch checkpoint (truncated or corrupt? {msg[:200]}). "
                              "Download it again.") from None


def _tensors(obj: Any, where: str) -> tuple[dict[str, Tensor], str | None, dict[str, Any]]:
    """(the tensor dict, the top-level key holding it or None, other top-level entries)."""
    wrapper = next((k for k in ("network", "state_dict") if isinstance(obj, dict) and isinstance(obj.get(k), dict)), None)
    if wrapper is not None:
        sd, extra = obj[wrapper], {k: v for k, v in obj.items() if k != wrapper}
    elif isinstance(obj, dict):
        sd, extra = obj, {}
    else:
        raise CheckpointError(f"{where}: expected a state dict (or {{'network': state dict}}), got {type(obj).__name__}")
    bad = [k for k, v in sd.items() if not isinstance(v, Tensor)]
    if bad or not sd:
        raise CheckpointError(f"{where}: expected name -> tensor entries, got {'no entries' if not sd else repr(bad[:3])}")
    return sd, wrapper, extra


def detect_kind(keys: list[str]) -> tuple[str, str]:
    """(kind, prefix) from the source keys; CheckpointError naming the keys when the layout is unknown."""
    prefix = ""
    for p in ("module.", "net."):
        if all(k.startswith(p) for k in keys):
            prefix = p
            break
    tops = {k[len(prefix):].split(".", 1)[0] for k in keys}
    if tops & {"rcnet", "metro_enhanced"}:
        return "sahmr", prefix
    if tops & {"root_net", "contact_net"}:
        return "rcnet", prefix
    if tops & {"backbone", "trans_encoder"}:
        return "metro", prefix
    raise CheckpointError(f"unknown checkpoint layout: top-level names {sorted(tops)[:6]} (first keys {keys[:3]}); "
                          "expected the released SA-HMR file (net.rcnet.*, net.metro_enhanced.*), a stage-1 RCNet "
                          "checkpoint (net.root_net.*, net.contact_net.*) or METRO's state dict (backbone.*, "
                          "trans_encoder.*)")


def expected_state_shapes(kind: str) -> dict[str, tuple[int, ...]]:
    """Kit key -> shape of the paper-preset module a `kind` file loads into (built on the meta device: no
    memory, no weights). SMPL sizes (6890 / 1723 / 431)."""
    from .mesh_transformer import MeshTransformer, MeshTransformerConfig, MeshTopology
    from .rcnet import RCNet, RCNetConfig
    from .sahmr import SAHMR

    topo = MeshTopology((6890, 1723, 431), torch.zeros(14, 3), torch.zeros(431, 3), torch.zeros(431, dtype=torch.long))
    with torch.device("meta"):
        if kind == "rcnet":
            m = RCNet(RCNetConfig.preset("paper", quirks=True))
        elif kind == "metro":
            m = MeshTransformer(MeshTransformerConfig.preset("paper", quirks=True), topology=topo)
        else:
            m = SAHMR(RCNet(RCNetConfig.preset("paper", quirks=True)),
                      MeshTransformer(MeshTransformerConfig.preset("paper", quirks=True), topology=topo),
                      eval_regressor=torch.zeros(17, 6890))
    return {k: tuple(v.shape) for k, v in m.state_dict().items()}


def convert_state_dict(obj: Any, where: str = "checkpoint", expected: dict[str, tuple[int, ...]] | None = None) -> Conversion:
    """Convert a loaded source object (see `read_checkpoint`) to the kit layout, accounting for every tensor.

    expected: kit key -> shape to check against (default: `expected_state_shapes(kind)`). Raises
    CheckpointError naming the first unknown keys, missing keys and shape mismatches.
    """
    sd, wrapper, extra = _tensors(obj, where)
    keys = list(sd)
    kind, prefix = detect_kind(keys)
    expected = expected_state_shapes(kind) if expected is None else expected
    rules = [(re.compile(rx), why) for k, rx, why in DROP_RULES if k == kind]
    kit: OrderedDict[str, Tensor] = OrderedDict()
    dropped: OrderedDict[str, tuple[Tensor, str]] = OrderedDict()
    unknown, mismatch, order = [], [], []
    for full in keys:
        k = full[len(prefix):]
        order.append(k)
        why = next((w for rx, w in rules if rx.search(k)), None)
        if why is not None:
            dropped[k] = (sd[full], why)
            continue
        kk = _to_kit_key(kind, k)
        if kk not in expected:
            unknown.append(full)
        elif tuple(sd[full].shape) != expected[kk]:
            mismatch.append(f"{full} {tuple(sd[full].shape)} (kit {expected[kk]})")
        else:
            kit[kk] = sd[full]
    optional = _optional_missing(kind)
    missing = [k for k in expected if k not in kit and not optional(k)]
    if unknown or missing or mismatch:
        parts = []
        if unknown:
            parts.append(f"{len(unknown)} unknown keys (first: {', '.join(unknown[:3])})")
        if missing:
            parts.append(f"{len(missing)} missing keys (first: {', '.join(missing[:3])})")
        if mismatch:
            parts.append(f"{len(mismatch)} shape mismatches (first: {'; '.join(mismatch[:2])})")
        raise CheckpointError(f"{where}: a '{kind}' checkpoint of another layout: {'; '.join(parts)}. The kit reads the "
                              "original SA-HMR release layout (spec §4.4, docs/reference/original-state-dict-keys.txt)")
    return Conversion(kind, kit, dropped, prefix, wrapper, extra, order)


def _optional_missing(kind: str):
    """Kit keys a `kind` file may lack: METRO has no contact branch (BERT-initialised, spec §4.4)."""
    if kind == "metro":
        rx = re.compile(r"\.(linear_cp|loftr_layer)\.")
        return lambda k: rx.search(k) is not None
    return lambda k: False


def load_converted(model: torch.nn.Module, path: str | Path, *, strict: bool = True, what: str = "model") -> dict[str, list[str]]:
    """Load a kit checkpoint written by `sahmr convert` (or the training loop: a plain state dict or one under
    "state_dict") into `model`, with errors naming the file. strict=False allows missing keys (returned)."""
    obj = read_checkpoint(path)
    state = obj.get("state_dict", obj) if isinstance(obj, dict) else obj
    if not isinstance(state, dict):
        raise CheckpointError(f"{path}: expected a state dict, got {type(state).__name__}")
    own = model.state_dict()
    unexpected = [k for k in state if k not in own]
    missing = [k for k in own if k not in state]
    bad = [f"{k} {tuple(state[k].shape)} (model {tuple(own[k].shape)})" for k in own if k in state
           and tuple(state[k].shape) != tuple(own[k].shape)]
    if unexpected or bad or (strict and missing):
        raise CheckpointError(f"{path} does not fit this {what}: {len(missing)} missing (first: {missing[:2]}), "
                              f"{len(unexpected)} unexpected (first: {unexpected[:2]}), {len(bad)} shape mismatches "
                              f"(first: {bad[:1]}). Load it with the params it was converted/trained with "
                              "(the params.yaml next to it).")
    model.load_state_dict(state, strict=False)
    return {"missing": missing}
