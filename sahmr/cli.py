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
    from sahmr.refine import cli as refine_cli
    from sahmr.train import cli as train_cli
    from sahmr.viz import cli as viz_cli

    parser = argparse.ArgumentParser(
        prog="sahmr",
        description="sahmr: scene-aware human mesh recovery research kit",
        epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--debug", action="store_true", help="print the traceback of every error (also SAHMR_DEBUG=1)")
    sub = parser.add_subparsers(dest="cmd", required=True)
    body_cli.register(sub)
    data_cli.register(sub)
    import_cli.register(sub)
    synth_cli.register(sub)
    eval_cli.register(sub)
    eval_cli.register_dump(sub)
    train_cli.register(sub)
    refine_cli.register(sub)
    infer_cli.register(sub)
    models_cli.register(sub)
    viz_cli.register(sub)
    return parser


EXIT_CODES = """exit status:
  0    success
  1    the command ran and found problems (e.g. `sahmr data validate` on an invalid dataset)
  2    bad input: a file, option or parameter; one line on stderr names it and says how to fix it
  3    an internal error (a bug): the traceback is printed; please report it
  130  interrupted (Ctrl-C); commands that resume (synth, train, import) continue on the next run

  --debug (or SAHMR_DEBUG=1) prints the traceback for bad input too."""


def _describe(e: BaseException) -> str:
    """One line for a user-facing error: OSErrors as '<file>: <reason>' (no errno noise)."""
    if isinstance(e, OSError) and e.filename is not None and e.strerror:
        where = f"{e.filename} -> {e.filename2}" if e.filename2 is not None else str(e.filename)
        return f"{where}: {e.strerror}"
    return str(e).strip() or e.__class__.__name__


def main(argv: list[str] | None = None) -> int:
    """Run one subcommand; returns the exit status (see EXIT_CODES)."""
    import traceback
    import zipfile

    from sahmr.errors import UserError

    _set_cache_defaults()
    parser = build_parser()
    args = parser.parse_args(argv)
    debug = args.debug or os.environ.get("SAHMR_DEBUG", "") not in ("", "0")
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("sahmr: interrupted", file=sys.stderr)
        return 130
    except (OSError, ValueError, UserError, pickle.UnpicklingError, zipfile.BadZipFile, EOFError) as e:
        if debug:
            traceback.print_exc()
        print(f"sahmr: error: {_describe(e)}", file=sys.stderr)
        return 2
    except Exception:
        traceback.print_exc()
        print("sahmr: internal error (a bug, not your input): please report the traceback above", file=sys.stderr)
        return 3


if __name__ == "__main__":
    sys.exit(main())
