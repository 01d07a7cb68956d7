"""``sahmr import rich|prox``: the original SA-HMR data packages -> canonical datasets."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from sahmr.cliargs import positive_int

DEFAULT_BODY = "models/smpl_neutral.npz"
DEFAULT_SMPLX2SMPLH = "models/model_transfer/smplx2smplh_deftrafo_setup.pkl"


def _intervals(values: list[str] | None) -> dict[str, int]:
    from sahmr.data.importers.rich import DEFAULT_INTERVALS

    out = dict(DEFAULT_INTERVALS)
    for v in values or []:
        split, _, n = v.partition("=")
        if split not in out or not n.isdigit() or int(n) < 1:
            raise ValueError(f"--sample-interval {v!r}: expected train=N or val=N with an integer N >= 1")
        out[split] = int(n)
    return out


def _summary(meta: dict, out: Path, t0: float) -> None:
    splits = ", ".join(f"{s} {n}" for s, n in meta["splits"].items())
    print(f"wrote {out}: splits {splits}; {len(meta['scenes'])} scene(s); content hash {meta['content_hash'][:12]}; {time.perf_counter() - t0:.1f} s")


def _rich(args: argparse.Namespace) -> int:
    from sahmr.data.importers.rich import RichImportConfig, import_rich

    cfg = RichImportConfig(
        splits=[s.strip() for s in args.splits.split(",") if s.strip()],
        body_model=Path(args.body_model),
        smplx2smplh=Path(args.smplx2smplh) if args.smplx2smplh else None,
        smplh={"male": Path(args.smplh_male), "female": Path(args.smplh_female)},
        sample_interval=_intervals(args.sample_interval),
        limit=args.limit,
        progress=not args.quiet and sys.stderr.isatty(),
    )
    t0 = time.perf_counter()
    _summary(import_rich(args.root, args.out, cfg, force=args.force), Path(args.out), t0)
    return 0


def _prox(args: argparse.Namespace) -> int:
    from sahmr.data.importers.prox import ProxImportConfig, import_prox

    cfg = ProxImportConfig(
        body_model=Path(args.body_model),
        smplx2smplh=Path(args.smplx2smplh) if args.smplx2smplh else None,
        limit=args.limit,
        progress=not args.quiet and sys.stderr.isatty(),
    )
    t0 = time.perf_counter()
    _summary(import_prox(args.root, args.out, cfg, force=args.force), Path(args.out), t0)
    return 0


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", required=True, help="dataset folder to create (must be new, empty, or with --force a sahmr dataset)")
    p.add_argument(
        "--body-model",
        default=DEFAULT_BODY,
        help=f"the SMPL neutral imported with the original's companion files (H36M regressor, contact parts); default {DEFAULT_BODY}",
    )
    p.add_argument(
        "--smplx2smplh",
        default=DEFAULT_SMPLX2SMPLH,
        help="smplx2smplh_deftrafo_setup.pkl (SMPL-X model-transfer tool): maps the SMPL-X GT to the 6890-vertex "
        f"evaluation mesh as the release evaluation does; default {DEFAULT_SMPLX2SMPLH}",
    )
    p.add_argument("--limit", type=positive_int, default=None, help="import only the first N frames of each split (trials)")
    p.add_argument("--force", action="store_true", help="replace an existing sahmr dataset at --out")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def register(sub: argparse._SubParsersAction) -> None:
    imp = sub.add_parser("import", help="import RICH / PROX quantitative as the original SA-HMR distributes them")
    isub = imp.add_subparsers(dest="import_cmd", required=True)

    p = isub.add_parser(
        "rich",
        help="RICH_ROOT (sahmr_support/ [+ images_ds4/, bodies/]) -> a canonical dataset",
        description="Import RICH as the original SA-HMR reads it (spec §1.2-§1.4). The test split needs "
        "--smplx2smplh; train/val need the imported SMPL-H models.",
    )
    p.add_argument("root", metavar="RICH_ROOT", help="folder holding sahmr_support/ (and images_ds4/, bodies/ for train/val)")
    p.add_argument("--splits", default="test", help="comma-separated subset of train,val,test (default: test)")
    p.add_argument(
        "--sample-interval",
        action="append",
        metavar="SPLIT=N",
        help="frame sampling interval of a training split (spec §1.4 rule 1; default train=15, val=30); repeatable",
    )
    p.add_argument("--smplh-male", default="models/smplh_male.npz", help="imported SMPL-H male model (train/val GT)")
    p.add_argument("--smplh-female", default="models/smplh_female.npz", help="imported SMPL-H female model (train/val GT)")
    _common(p)
    p.set_defaults(func=_rich)

    p = isub.add_parser(
        "prox",
        help="PROX_QUANT_ROOT (sahmr_support/) -> a canonical dataset (split test)",
        description="Import PROX quantitative as the original SA-HMR reads it (spec §1.5).",
    )
    p.add_argument("root", metavar="PROX_QUANT_ROOT", help="folder holding PROX quantitative's sahmr_support/")
    _common(p)
    p.set_defaults(func=_prox)
