"""``sahmr synth``: generate the synthetic benchmark (parameters from params.yaml, section ``synth``)."""

from __future__ import annotations

import argparse
import os

from sahmr.cliargs import positive_float, positive_int
from sahmr.config import add_params_arguments, load_section


def _synth(args: argparse.Namespace) -> int:
    from sahmr.data.synth.generate import SynthParams, generate_dataset

    overrides = [*args.set_overrides, *([f"seed={args.seed}"] if args.seed is not None else [])]
    params = load_section(args.params, "synth", SynthParams, overrides)
    if args.scale != 1.0:  # quick smaller/larger sets with the same proportions
        params.scenes = {k: max(1, round(v * args.scale)) for k, v in params.scenes.items()}
    generate_dataset(args.out, params, args.body_model, workers=args.workers, progress=not args.quiet, force=args.force)
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("synth", help="generate the synthetic human-in-scene benchmark (resumable)")
    p.add_argument("--out", default="datasets/synth", help="output dataset folder")
    add_params_arguments(p, "synth")
    p.add_argument("--body-model", default="models/sahmr-open.npz", help="body model name or .npz")
    p.add_argument("--workers", type=positive_int, default=min(2, os.cpu_count() or 1), help="worker processes (one scene each)")
    p.add_argument("--seed", type=int, default=None, help="override synth.seed (as -S seed=N)")
    p.add_argument("--scale", type=positive_float, default=1.0, help="multiply the number of scenes per split (e.g. 0.1)")
    p.add_argument(
        "--force",
        action="store_true",
        help="replace a dataset synth did not generate, or write beside files it did not write (those are never removed)",
    )
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=_synth)
