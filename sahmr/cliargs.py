"""Checks of command-line values, written once for every subcommand: argparse types for counts and sizes,
and the output-path check that runs before any work (so a bad ``--out`` fails in the first second, not
after an hour of training). A leaf module."""

from __future__ import annotations

import argparse
import math
import os
import tempfile
from pathlib import Path

__all__ = ["positive_int", "nonneg_int", "positive_float", "check_out_file", "check_out_dir"]


def _int_at_least(low: int):
    def parse(text: str) -> int:
        try:
            v = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number >= {low}, got {text!r}") from None
        if v < low:
            raise argparse.ArgumentTypeError(f"must be >= {low}, got {v}")
        return v

    return parse


positive_int = _int_at_least(1)  # argparse type: an integer >= 1
nonneg_int = _int_at_least(0)  # argparse type: an integer >= 0


def positive_float(text: str) -> float:
    """argparse type: a finite number > 0."""
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number > 0, got {text!r}") from None
    if not math.isfinite(v) or v <= 0:
        raise argparse.ArgumentTypeError(f"must be a finite number > 0, got {text}")
    return v


def _writable_parent(path: Path, option: str) -> None:
    """The nearest existing ancestor of ``path`` must be a folder we can create entries in."""
    anc = path.parent
    while not anc.exists():
        if anc.parent == anc:
            break
        anc = anc.parent
    if not anc.is_dir():
        raise NotADirectoryError(f"{option} {path}: {anc} is a file, not a folder; choose another path")
    try:  # the real test (os.access says yes to root on /proc or a read-only mount): a file of ours, removed
        fd, tmp = tempfile.mkstemp(dir=anc, prefix=".sahmr-write-test-")
        os.close(fd)
        os.unlink(tmp)
    except OSError as e:
        raise PermissionError(f"{option} {path}: cannot write in {anc} ({e.strerror}); choose another path") from None


def check_out_file(path: str | os.PathLike, option: str = "--out") -> Path:
    """``path`` can be written as a file: not a folder, and its folder exists or can be created. Returns it."""
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(f"{option} {path}: is a folder; pass a file path")
    _writable_parent(path, option)
    return path


def check_out_dir(path: str | os.PathLike, option: str = "--out") -> Path:
    """``path`` can be used as an output folder: not a file, and it exists or can be created. Returns it."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise NotADirectoryError(f"{option} {path}: exists and is not a folder; choose a folder path")
    if not path.exists():
        _writable_parent(path, option)
    return path
