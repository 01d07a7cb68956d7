"""``sahmr convert SRC --out DIR [--check]``: an original SA-HMR / METRO checkpoint -> a kit checkpoint + its params.

SRC is one of (detected from its keys, `sahmr.models.convert`):
  sahmr_rich_e30.pth / sahmr_prox_e30.pth   the released SA-HMR networks   -> DIR/sahmr.ckpt
  an original stage-1 RCNet checkpoint      (out/rich/rcnet/checkpoints/N.pth) -> DIR/rcnet.ckpt
  metro_3dpw_state_dict.bin                 METRO, the original's stage-2 init -> DIR/metro_init.ckpt

DIR also gets params.yaml (the paper preset with the parity switches on: RCNet quirks + torchsparse-1.4
truncating coarse coordinates, the mesh transformer's part-token quirk, the original's test-time contact
draw) and conversion.json (every source tensor loaded or dropped with its reason, source sha256). Use them as

  sahmr dump sahmr --ckpt DIR/sahmr.ckpt --params DIR/params.yaml --data D --split test --out P.npz
  sahmr predict --model sahmr --ckpt DIR/sahmr.ckpt --params DIR/params.yaml ...
  sahmr train sahmr --params DIR/params.yaml --data D --out RUN      (fine-tune; RCNet + mesh init from it)

The body model (`--body-model`, default smpl_neutral) is the user's SMPL neutral model imported with the
original's companion assets: `sahmr body import basicModel_neutral_lbs_10_207_0_v1.0.0.pkl --assets DIR`.
Loading is safe (weights_only); --check prints the accounting and writes nothing. Existing output files are
kept unless --force.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

from sahmr.cliargs import check_out_dir

OUT_NAMES = {"sahmr": "sahmr.ckpt", "rcnet": "rcnet.ckpt", "metro": "metro_init.ckpt"}


def converted_params(kind: str, ckpt: Path, body_model: str, seed: int = 0) -> dict[str, Any]:
    """The params.yaml content that rebuilds the model a `kind` checkpoint loads into (paper preset, parity on)."""
    rc = {"quirks": True, "rounding": "trunc"}
    if kind == "rcnet":
        return {"seed": seed, "preset": "paper", "train_rcnet": {"model": dict(rc)},
                "train_sahmr": {"rcnet_ckpt": str(ckpt), "body_model": body_model, "rcnet": dict(rc),
                                "model": {"quirks": True}, "contact_sampling": "original", "init_backbone": "rcnet"}}
    if kind == "metro":
        return {"seed": seed, "preset": "paper",
                "train_sahmr": {"rcnet_ckpt": None, "body_model": body_model, "rcnet": dict(rc), "model": {"quirks": True},
                                "contact_sampling": "original", "init_backbone": "none", "init_mesh_ckpt": str(ckpt)}}
    return {"seed": seed, "preset": "paper",
            "train_sahmr": {"rcnet_ckpt": str(ckpt), "init_mesh_ckpt": str(ckpt), "init_backbone": "none",
                            "body_model": body_model, "rcnet": dict(rc), "model": {"quirks": True},
                            "contact_sampling": "original"}}


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 24), b""):
            h.update(chunk)
    return h.hexdigest()


def _params_text(kind: str, src: Path, params: dict[str, Any]) -> str:
    import yaml

    head = (f"# Written by `sahmr convert {src.name}` ({kind} checkpoint): the parameters that rebuild the converted\n"
            "# model — the paper preset with the parity switches of the released weights (RCNet quirks and truncating\n"
            "# coarse voxel coordinates, the part-token quirk, the original's test-time contact draw). Pass this file\n"
            "# as --params to sahmr dump / predict / train. body_model: your imported SMPL neutral model.\n")
    return head + yaml.safe_dump(params, sort_keys=False)


def convert_file(src: str | Path, out: str | Path | None, *, body_model: str = "smpl_neutral", check: bool = False,
                 force: bool = False) -> dict[str, Any]:
    """Convert `src` into the folder `out` (see the module docstring); returns the accounting dict.
    check=True: accounting only, nothing written. Files appear together (staged, then renamed)."""
    import torch

    from sahmr.models.convert import convert_state_dict, read_checkpoint

    src = Path(src)
    if not check and out is not None:
        check_out_dir(out, "--out")
    conv = convert_state_dict(read_checkpoint(src), str(src))
    acc = conv.accounting()
    acc["source"] = {"path": str(src), "sha256": _sha256(src), "bytes": src.stat().st_size}
    if check:
        return acc
    if out is None:
        raise ValueError("--out DIR is required (or pass --check to only print the accounting)")
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out}: exists and is not a folder; choose a folder path")
    names = [OUT_NAMES[conv.kind], "params.yaml", "conversion.json"]
    clash = [n for n in names if (out / n).exists()]
    if clash and not force:
        raise ValueError(f"--out {out}: already holds {', '.join(clash)}; pass --force to replace them, or choose another folder")
    out.mkdir(parents=True, exist_ok=True)
    ckpt = out / OUT_NAMES[conv.kind]
    acc["written"] = {"checkpoint": str(ckpt), "params": str(out / "params.yaml")}
    params = converted_params(conv.kind, ckpt, body_model)
    stage = Path(tempfile.mkdtemp(prefix=".convert-", dir=out))
    try:
        torch.save({"state_dict": dict(conv.state_dict), "source": acc["source"], "kind": conv.kind}, stage / names[0])
        (stage / "params.yaml").write_text(_params_text(conv.kind, src, params))
        (stage / "conversion.json").write_text(json.dumps(acc, indent=1) + "\n")
        for n in names:  # the checkpoint last-but-two; all three are in place when this loop ends
            os.replace(stage / n, out / n)
    finally:
        for p in stage.glob("*"):
            p.unlink()
        stage.rmdir()
    return acc


def _summary(acc: dict[str, Any]) -> str:
    lines = [f"{acc['source']['path']}: {acc['kind']} checkpoint, {acc['source_tensors']} tensors "
             f"({acc['loaded_values'] + acc['dropped_values']:,} values)",
             f"  loaded : {acc['loaded']} tensors, {acc['loaded_values']:,} values"]
    for d in acc["dropped_by_reason"]:
        lines.append(f"  dropped: {d['count']} tensors — {d['reason']} (e.g. {d['keys'][0]})")
    if not acc["dropped_by_reason"]:
        lines.append("  dropped: none")
    if acc.get("written"):
        lines.append(f"  wrote  : {acc['written']['checkpoint']} and {acc['written']['params']} (+ conversion.json)")
    return "\n".join(lines)


def _convert(args: argparse.Namespace) -> int:
    acc = convert_file(args.src, args.out, body_model=args.body_model, check=args.check, force=args.force)
    print(json.dumps(acc, indent=1) if args.json else _summary(acc))
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("convert", help="convert a released SA-HMR / stage-1 RCNet / METRO checkpoint to the kit (with its params)",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("src", help="the original checkpoint (.pth / .bin)")
    p.add_argument("--out", default=None, help="output folder (checkpoint, params.yaml, conversion.json)")
    p.add_argument("--check", action="store_true", help="print the parameter accounting; write nothing")
    p.add_argument("--body-model", default="smpl_neutral", help="body model name/path written into params.yaml (default smpl_neutral)")
    p.add_argument("--force", action="store_true", help="replace output files already in --out")
    p.add_argument("--json", action="store_true", help="print the full accounting as JSON")
    p.set_defaults(func=_convert)
