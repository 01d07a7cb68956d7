"""`sahmr convert`'s conversion (sahmr.models.convert): every layout the original distributes, the tensor
accounting, the round trip and the errors. Source dicts are built from the original's key list
(docs/reference/original-state-dict-keys.txt) with meta tensors (shapes only, no memory), except where
values matter. Numerical parity of the converted networks: tests/parity/."""

from __future__ import annotations

import io
import pickle
import re
from collections import OrderedDict
from pathlib import Path

import pytest
import torch

from sahmr.cli import main
from sahmr.models.convert import CheckpointError, convert_state_dict, expected_state_shapes, load_converted, read_checkpoint

KEYS = Path(__file__).resolve().parents[2] / "docs" / "reference" / "original-state-dict-keys.txt"


def original_keys() -> "OrderedDict[str, tuple[int, ...]]":
    out = OrderedDict()
    for line in KEYS.read_text().splitlines():
        m = re.match(r"^(\S+) \((.*)\)$", line.strip())
        if m:
            out[m.group(1)] = tuple(int(s) for s in m.group(2).replace(" ", "").split(",") if s)
    return out


def meta_dict(keys: dict[str, tuple[int, ...]]) -> "OrderedDict[str, torch.Tensor]":
    return OrderedDict((k, torch.empty(s, device="meta")) for k, s in keys.items())


@pytest.fixture(scope="module")
def keys():
    return original_keys()


@pytest.fixture(scope="module")
def shapes():
    return {kind: expected_state_shapes(kind) for kind in ("sahmr", "rcnet", "metro")}


def test_release_layout_every_tensor_loaded_or_dropped(keys, shapes):
    src = {"network": meta_dict({f"net.{k}": s for k, s in keys.items()}), "epoch": 30}
    conv = convert_state_dict(src, "release", shapes["sahmr"])
    acc = conv.accounting()
    assert conv.kind == "sahmr" and conv.prefix == "net." and acc["source_tensors"] == len(keys) == 4437
    assert acc["loaded"] == 4416 and acc["dropped"] == 21 and set(conv.state_dict) == set(shapes["sahmr"])
    reasons = {d["reason"].split(":")[0]: d["count"] for d in acc["dropped_by_reason"]}
    assert reasons == {"BERT word/position/token-type embeddings + LayerNorm": 15, "BERT pooler": 6}
    # 3 encoders: 30522 x H word embeddings + 512 x H + 2 x H + LayerNorm; pooler H x H + H (spec §4.4: 44.8 M)
    assert abs(acc["dropped_values"] / 1e6 - 44.8) < 0.1
    back = conv.to_original()
    assert list(back["network"]) == list(src["network"]) and back["epoch"] == 30
    assert all(back["network"][k] is v for k, v in src["network"].items())


def test_stage1_rcnet_layout(keys, shapes):
    rc = {f"net.{k[len('rcnet.'):]}": s for k, s in keys.items() if k.startswith("rcnet.")}
    conv = convert_state_dict({"network": meta_dict(rc), "epoch": 30}, "stage-1", shapes["rcnet"])
    assert conv.kind == "rcnet" and not conv.dropped and len(conv.state_dict) == len(rc) == len(shapes["rcnet"])


def test_metro_layout_keeps_contact_branch_at_init(keys, shapes):
    """METRO has no linear_cp / loftr_layer (they stay BERT-initialised) and an unused camera head."""
    metro = {k[len("metro_enhanced."):]: s for k, s in keys.items()
             if k.startswith("metro_enhanced.") and not re.search(r"\.(linear_cp|loftr_layer)\.", k)}
    metro.update({"cam_param_fc.weight": (1, 3), "cam_param_fc.bias": (1,), "cam_param_fc2.weight": (250, 431),
                  "cam_param_fc2.bias": (250,), "cam_param_fc3.weight": (3, 250), "cam_param_fc3.bias": (3,)})
    src = meta_dict(metro)
    conv = convert_state_dict(src, "metro", shapes["metro"])
    assert conv.kind == "metro" and conv.wrapper is None
    cam = [k for k, (_, why) in conv.dropped.items() if "camera head" in why]
    assert len(cam) == 6 and len(conv.dropped) == 27
    missing = set(shapes["metro"]) - set(conv.state_dict)
    assert missing and all(re.search(r"\.(linear_cp|loftr_layer)\.", k) for k in missing)
    assert list(conv.to_original()) == list(src)


def test_other_layout_names_unknown_and_missing_keys(keys, shapes):
    src = {f"net.{k}": s for k, s in keys.items()}
    src["net.rcnet.contact_net.extra_layer.weight"] = (3, 3)
    del src["net.metro_enhanced.upsampling.bias"]
    with pytest.raises(CheckpointError, match=r"1 unknown keys \(first: net\.rcnet\.contact_net\.extra_layer\.weight\)"
                       r".*1 missing keys \(first: metro_enhanced\.upsampling\.bias\)"):
        convert_state_dict({"network": meta_dict(src)}, "x.pth", shapes["sahmr"])
    src = {f"net.{k}": s for k, s in keys.items()}
    src["net.rcnet.contact_net.stem.0.kernel"] = (27, 35, 31)
    with pytest.raises(CheckpointError, match=r"shape mismatch.*stem\.0\.kernel \(27, 35, 31\) \(kit \(27, 35, 32\)\)"):
        convert_state_dict({"network": meta_dict(src)}, "x.pth", shapes["sahmr"])
    with pytest.raises(CheckpointError, match="unknown checkpoint layout: top-level names \\['encoder', 'head'\\]"):
        convert_state_dict({"encoder.w": torch.zeros(1), "head.b": torch.zeros(1)}, "x.pth")
    with pytest.raises(CheckpointError, match="expected name -> tensor entries"):
        convert_state_dict({"network": {"net.rcnet.a": 3}}, "x.pth")


class _Evil:
    def __reduce__(self):
        return (print, ("this would run",))


def test_unreadable_and_unsafe_files_are_refused(tmp_path):
    good = tmp_path / "good.pth"
    torch.save({"network": {"net.root_net.out_conv.bias": torch.zeros(41)}}, good)
    trunc = tmp_path / "truncated.pth"
    trunc.write_bytes(good.read_bytes()[:200])
    with pytest.raises(CheckpointError, match=r"truncated\.pth: not a readable PyTorch checkpoint"):
        read_checkpoint(trunc)
    evil = tmp_path / "evil.pth"
    torch.save({"network": _Evil()}, evil)
    with pytest.raises(CheckpointError, match=r"evil\.pth: refused — the file would run code") as e:
        read_checkpoint(evil)
    assert "weights_only=False" not in str(e.value)
    raw = tmp_path / "plain.pkl"
    buf = io.BytesIO()
    pickle.dump({"a": _Evil()}, buf)
    raw.write_bytes(buf.getvalue())
    with pytest.raises(CheckpointError, match="plain.pkl"):
        read_checkpoint(raw)
    with pytest.raises(CheckpointError, match="no such checkpoint file"):
        read_checkpoint(tmp_path / "absent.pth")


def test_cli_errors_are_one_line(tmp_path, capsys):
    trunc = tmp_path / "sahmr_rich_e30.pth"
    trunc.write_bytes(b"PK\x03\x04 truncated")
    assert main(["convert", str(trunc), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "sahmr_rich_e30.pth" in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()  # nothing written on failure
    other = tmp_path / "other.pth"
    torch.save({"state_dict": {"encoder.weight": torch.zeros(2)}}, other)
    assert main(["convert", str(other), "--check"]) == 2
    assert "unknown checkpoint layout" in capsys.readouterr().err


def test_converted_checkpoint_with_mismatched_params(tmp_path):
    """A converted paper-preset file loaded into a model of other params: one error naming the file."""
    from sahmr.models.rcnet import RCNet, RCNetConfig

    ckpt = tmp_path / "rcnet.ckpt"
    torch.save({"state_dict": {"root_net.out_conv.weight": torch.zeros(41, 64, 1, 1),
                               "root_net.out_conv.bias": torch.zeros(41)}}, ckpt)
    with pytest.raises(CheckpointError, match=r"rcnet\.ckpt does not fit this RCNet.*shape mismatches.*out_conv\.weight"
                       r".*params it was converted/trained with"):
        load_converted(RCNet(RCNetConfig.preset("cpu")), ckpt, what="RCNet")


def test_converted_files_initialise_training(tmp_path, open_model_path):
    """A converted release (a full SAHMR state dict) serves as rcnet_ckpt and init_mesh_ckpt; a converted METRO
    file (no contact branch) initialises everything but linear_cp / loftr_layer."""
    import re

    from sahmr.train.sahmr_task import SAHMRTask

    kw = dict(preset="cpu", body_model=str(open_model_path), model={"num_layers": 1}, init_backbone="none")
    torch.manual_seed(1)
    src = SAHMRTask(**kw).build_model(load_rcnet=False)
    full = tmp_path / "sahmr.ckpt"
    torch.save({"state_dict": src.state_dict(), "kind": "sahmr"}, full)
    torch.manual_seed(2)
    model = SAHMRTask(**kw, rcnet_ckpt=str(full), init_mesh_ckpt=str(full)).build_model()
    for k, v in src.state_dict().items():
        assert torch.equal(model.state_dict()[k], v), k

    mesh_sd = {k: v for k, v in src.metro_enhanced.state_dict().items() if not re.search(r"\.(linear_cp|loftr_layer)\.", k)}
    metro = tmp_path / "metro_init.ckpt"
    torch.save({"state_dict": mesh_sd}, metro)
    torch.manual_seed(3)
    model = SAHMRTask(**kw, rcnet_ckpt=str(full), init_mesh_ckpt=str(metro)).build_model()
    own = model.metro_enhanced.state_dict()
    assert all(torch.equal(own[k], v) for k, v in mesh_sd.items())
    kept = [k for k in own if k not in mesh_sd]
    assert kept and not any(torch.equal(own[k], src.metro_enhanced.state_dict()[k]) for k in kept if k.endswith("q_proj.weight"))

    del mesh_sd["conv_learn_tokens.weight"]
    torch.save({"state_dict": mesh_sd}, metro)
    with pytest.raises(ValueError, match=r"metro_init\.ckpt does not fit.*missing outside the contact branch \['conv_learn_tokens\.weight'\]"):
        SAHMRTask(**kw, rcnet_ckpt=str(full), init_mesh_ckpt=str(metro)).build_model()
    with pytest.raises(ValueError, match="init_backbone: none"):
        SAHMRTask(preset="cpu", init_mesh_ckpt=str(metro))
