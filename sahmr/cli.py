"""The ``sahmr`` command: one subcommand per pipeline stage (``sahmr --help``)."""

from __future__ import annotations

import argparse
import os
import pickle
import sys
from pathlib import Path


def _set_cache_defaults() -> None:
    # Anny/warp build caches inside the project so a fresh clone stays self-contained.
    os.environ.setdefault("ANNY_CACHE_DIR", str(Path(".cache/anny").resolve()))
    os.environ.setdefault("WARP_CACHE_PATH", str(Path(".cache/warp").resolve()))


def build_parser() -> argparse.ArgumentParser:
    from sahmr.body import cli as body_cli
    from sahmr.data import cli as data_cli
    from sahmr.data.importers import cli as import_cli
    from sahmr.data.synth import cli as synth_cli
    from sahmr.eval import cli as eval_cli
    from sahmr.infer import cli as infer_cli
    from sahmr.models import cli as models_cli
    from sahmr.train import cli as train_cli
    from sahmr.viz import cli as viz_cli

    parser = argparse.ArgumentParser(prog="sahmr", description="sahmr: scene-aware human mesh recovery research kit")
    sub = parser.add_subparsers(dest="cmd", required=True)
    body_cli.register(sub)
    data_cli.register(sub)
    import_cli.register(sub)
    synth_cli.register(sub)
    eval_cli.register(sub)
    eval_cli.register_dump(sub)
    train_cli.register(sub)
    infer_cli.register(sub)
    models_cli.register(sub)
    viz_cli.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    from sahmr.errors import UserError

    _set_cache_defaults()
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (
        FileNotFoundError,
        FileExistsError,
        PermissionError,
        IsADirectoryError,
        NotADirectoryError,
        ValueError,
        UserError,
        pickle.UnpicklingError,
    ) as e:  # user-facing: one clear line
        print(f"sahmr: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
