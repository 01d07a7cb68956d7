"""``sahmr body …`` subcommands: build-open, import, preview, info."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from sahmr.cliargs import check_out_dir, check_out_file
from sahmr.config import add_params_arguments, load_section


def _build_open(args: argparse.Namespace) -> int:
    from sahmr.body.open_model import OpenModelParams, build_and_save

    params = load_section(args.params or {}, "body_open", OpenModelParams, args.set_overrides)
    check_out_file(args.out, "--out")
    path = build_and_save(args.out, params)
    print(f"wrote {path} and {path.with_suffix('.json')}")
    return 0


def _import(args: argparse.Namespace) -> int:
    from sahmr.body.importer import import_official

    if args.assets is not None and not Path(args.assets).is_dir():
        raise NotADirectoryError(f"--assets {args.assets}: not a folder (expected the folder holding J_regressor_h36m_correct.npy, ...)")
    check_out_dir(args.out_dir, "--out-dir")
    path = import_official(args.file, out_dir=args.out_dir, name=args.name, gender=args.gender, assets_dir=args.assets)
    meta = json.loads(path.with_suffix(".json").read_text())
    used = ", ".join(meta["companion_assets"]) or "none (the kit computed its own regressor, parts, hierarchy)"
    print(f"wrote {path} ({meta['model_type']}, {meta['gender']}, levels {meta['level_sizes']}); companion assets: {used}")
    return 0


def _preview(args: argparse.Namespace) -> int:
    from sahmr.body.model import BodyModel
    from sahmr.body.preview import render_preview

    check_out_file(args.out, "--out")
    out = render_preview(BodyModel.load(args.model), args.out)
    print(f"wrote {out}")
    return 0


def _info(args: argparse.Namespace) -> int:
    import numpy as np

    from sahmr.body.model import BodyModel

    m = BodyModel.load(args.model)
    counts = np.bincount(m.part_ids.numpy(), minlength=8).tolist()
    print(
        json.dumps(
            {
                "name": m.name,
                "model_type": m.model_type,
                "level_sizes": m.level_sizes,
                "num_joints": m.num_joints,
                "num_betas": m.num_betas,
                "part_counts": counts,
            },
            indent=2,
        )
    )
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    body = sub.add_parser("body", help="body models: build the open model, import official SMPL files, preview")
    bsub = body.add_subparsers(dest="body_cmd", required=True)

    p = bsub.add_parser("build-open", help="build the open SMPL-format model sahmr-open from Anny")
    p.add_argument("--out", default="models/sahmr-open.npz", help="output .npz (a .json sidecar is written next to it)")
    add_params_arguments(p, "body_open", default=None)
    p.set_defaults(func=_build_open)

    p = bsub.add_parser("import", help="convert an official SMPL/SMPL-H/SMPL-X .pkl into the kit's .npz (no chumpy)")
    p.add_argument("file", help="official model pickle, e.g. basicModel_neutral_lbs_10_207_0_v1.0.0.pkl")
    p.add_argument(
        "--assets",
        default=None,
        help="folder with the original project's J_regressor_h36m_correct.npy, "
        "mesh_downsampling.npz, seg_part_info.npy (SMPL topology); missing ones are computed",
    )
    p.add_argument("--out-dir", default="models", help="where to write <name>.npz/.json (default: models)")
    p.add_argument("--name", default=None, help="model name (default: <model_type>_<gender>)")
    p.add_argument("--gender", choices=["neutral", "male", "female"], default=None, help="default: from the file name")
    p.set_defaults(func=_import)

    p = bsub.add_parser("preview", help="PNG of the model in T-pose and a few poses, contact parts coloured")
    p.add_argument("--model", default="sahmr-open", help="model name or .npz path")
    p.add_argument("--out", default="reports/body/sahmr-open-preview.png")
    p.set_defaults(func=_preview)

    p = bsub.add_parser("info", help="print sizes, part counts and metadata of a model")
    p.add_argument("--model", default="sahmr-open")
    p.set_defaults(func=_info)
