"""The oracle of the original SA-HMR networks (tests/fixtures/oracle/, see its README): the seed-0 checkpoint
in the released layout, generated in memory by the oracle's own `make_weights.py`, its inputs, and the kit's
paper-preset SAHMR with the parity switches on. Shared by tests/parity and benchmarks/bench_converted.py."""

from __future__ import annotations

import importlib.util
from collections import OrderedDict
from pathlib import Path

import torch

from sahmr.models.mesh_transformer import MeshTopology, MeshTransformer, MeshTransformerConfig
from sahmr.models.rcnet import RCNet, RCNetConfig
from sahmr.models.sahmr import SAHMR

ROOT = Path(__file__).resolve().parents[2]
ORACLE = ROOT / "tests" / "fixtures" / "oracle"
NET = ORACLE / "original-net-seed0"
KEYS = ROOT / "docs" / "reference" / "original-state-dict-keys.txt"
REL_TOL = 1e-5
MODES = ("trunc", "floor")


def make_weights_module():
    """The oracle's make_weights.py (a copy of ../shared/oracle/make_weights.py), imported by path."""
    spec = importlib.util.spec_from_file_location("oracle_make_weights", ORACLE / "make_weights.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def original_checkpoint(seed: int = 0) -> dict:
    """The object `torch.load(sahmr_*_e30.pth)` returns, for make_weights.py's synthetic weights."""
    mw = make_weights_module()
    keys = mw.parse_keys(str(KEYS))
    all_keys = {k for k, _ in keys}
    sd = OrderedDict()
    for k, shape in keys:
        t = mw.make_tensor(k, shape, all_keys, seed).contiguous()
        sd["net." + k] = t if t.dtype == torch.int64 else t.float()
    return {"network": sd, "epoch": 30}


def oracle_topology(inputs) -> MeshTopology:
    """The original's template tokens and coarse part ids, as saved by the oracle run."""
    return MeshTopology(
        (6890, 1723, 431),
        torch.as_tensor(inputs["init_joints14"][0]),
        torch.as_tensor(inputs["init_verts431"][0]),
        torch.as_tensor(inputs["verts431_pids"]),
    )


def build_parity_model(state_dict: dict, inputs, rounding: str = "trunc") -> SAHMR:
    """The converted checkpoint's model (params of `sahmr convert`), with the oracle's template tokens."""
    rc = RCNet(RCNetConfig.preset("paper", quirks=True, rounding=rounding))
    mesh = MeshTransformer(MeshTransformerConfig.preset("paper", quirks=True), topology=oracle_topology(inputs))
    # the regressor only feeds joints14 / verts_root, which the oracle's mirror regressor (absent) defines
    model = SAHMR(rc, mesh, eval_regressor=torch.full((17, 6890), 1.0 / 6890), contact_sampling="original")
    model.load_state_dict(state_dict, strict=True)
    return model.eval()


def oracle_batch(inputs, device="cpu") -> tuple[torch.Tensor, ...]:
    """(image (2, 3, 224, 224) in [0, 1], K (2, 3, 3), crop_box_xyxy (2, 4), points (P, 3), points_batch (P,))."""
    img = torch.as_tensor(inputs["image_uint8"]).float() / 255.0
    pts = [torch.as_tensor(inputs[f"c_pcFst_all_{b}"]) for b in range(2)]
    P = torch.cat(pts)
    Pb = torch.cat([torch.full((len(p),), b) for b, p in enumerate(pts)])
    return tuple(t.to(device) for t in (img, torch.as_tensor(inputs["K"]), torch.as_tensor(inputs["bbx_lurb"]), P, Pb))
