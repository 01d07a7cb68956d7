"""Shared fixtures. The open body model is built once per code version and cached under .cache/."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("ANNY_CACHE_DIR", str(ROOT / ".cache" / "anny"))
os.environ.setdefault("WARP_CACHE_PATH", str(ROOT / ".cache" / "warp"))
os.environ.setdefault("MPLBACKEND", "Agg")

_BUILD_SOURCES = ["open_model.py", "hierarchy.py", "parts.py", "regressors.py", "model_file.py"]


def _builder_digest() -> str:
    h = hashlib.sha256()
    for name in _BUILD_SOURCES:
        h.update((ROOT / "sahmr" / "body" / name).read_bytes())
    return h.hexdigest()[:16]


@pytest.fixture(scope="session")
def open_model_path() -> Path:
    """sahmr-open with default parameters, built by the code under test (cached per code digest)."""
    from sahmr.body.open_model import build_and_save

    path = ROOT / ".cache" / "test-models" / f"sahmr-open-{_builder_digest()}.npz"
    if not path.is_file():
        build_and_save(path)
    return path


@pytest.fixture(scope="session")
def open_model(open_model_path):
    from sahmr.body.model import BodyModel

    return BodyModel.load(open_model_path)
