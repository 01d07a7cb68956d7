"""``sahmr data …`` subcommands: validate, upgrade, preview (importers register under ``sahmr import``)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from sahmr.cliargs import nonneg_int, positive_int


def _validate(args: argparse.Namespace) -> int:
    from sahmr.data.format.validate import format_problems, validate_dataset

    root = Path(args.dir)
    problems = validate_dataset(root, check_hash=not args.no_hash, check_images=not args.no_images, max_listed=args.max_listed)
    errors = [p for p in problems if p.severity == "error"]
    warnings = [p for p in problems if p.severity != "error"]
    if problems:
        print(f"{root}: {len(errors)} error(s), {len(warnings)} warning(s)")
        print(format_problems(problems))
    if errors:
        print(f"{root}: INVALID — fix the errors above (each names the file, the field and the frames)", file=sys.stderr)
        return 1
    from sahmr.data.format import load_meta

    meta = load_meta(root)
    splits = ", ".join(f"{s} {n}" for s, n in meta["splits"].items())
    hashed = "content hash verified" if not args.no_hash else "content hash NOT checked (--no-hash)"
    print(
        f"{root}: OK — '{meta.get('name')}', splits: {splits}; {len(meta['scenes'])} scenes; "
        f"body model {meta['body_model'].get('name')} (V={meta['body_model'].get('num_verts')}); {hashed}"
    )
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    data = sub.add_parser("data", help="datasets in the canonical format: validate, upgrade, preview")
    dsub = data.add_subparsers(dest="data_cmd", required=True)

    p = dsub.add_parser("validate", help="check a dataset folder; names every problem (file, field, frames); exit 1 when there is an error")
    p.add_argument("dir", help="dataset folder (the one holding dataset.json)")
    p.add_argument("--no-hash", action="store_true", help="skip recomputing file digests and the content hash")
    p.add_argument("--no-images", action="store_true", help="only check that images exist (do not open headers)")
    p.add_argument("--max-listed", type=nonneg_int, default=5, help="frame ids listed per problem (default 5)")
    p.set_defaults(func=_validate)

    p = dsub.add_parser(
        "upgrade",
        help="bring a dataset written by an older sahmr to the current format_version, "
        "in place (nothing is deleted; run `sahmr data validate` after)",
    )
    p.add_argument("dir", help="dataset folder (the one holding dataset.json)")
    p.set_defaults(func=_upgrade)

    p = dsub.add_parser("preview", help="PNG montage of frames: projected GT mesh, contact vertices, scene points")
    p.add_argument("dir", help="dataset folder")
    p.add_argument("--out", required=True, help="output PNG")
    p.add_argument("--split", default="train")
    p.add_argument("--n", type=positive_int, default=12, help="number of frames (covering the pose classes)")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=_preview)


def _preview(args: argparse.Namespace) -> int:
    from sahmr.cliargs import check_out_file
    from sahmr.data.preview import render_montage

    check_out_file(args.out, "--out")
    print(f"wrote {render_montage(args.dir, args.out, split=args.split, n=args.n, seed=args.seed)}")
    return 0


def _upgrade(args: argparse.Namespace) -> int:
    from sahmr.data.format import FORMAT_VERSION, upgrade_dataset

    done = upgrade_dataset(args.dir)
    for line in done:
        print(f"{args.dir}: {line}")
    if not done:
        print(f"{args.dir}: already format_version {FORMAT_VERSION}; nothing to do")
    return 0
