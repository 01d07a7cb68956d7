"""Importing a repository script (tools/*.py, benchmarks/*.py: not packages) as a module for its tests."""

import importlib.util
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[2]


def load_script(rel_path: str) -> ModuleType:
    """The module of ROOT/`rel_path` (e.g. "tools/pene_breakdown.py"), executed fresh."""
    path = ROOT / rel_path
    spec = importlib.util.spec_from_file_location(path.stem, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod
