"""The code base is clean under the ruff configuration in pyproject.toml (`make lint`): linted and formatted
(`make format` fixes what the formatter can)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_ruff_check_is_clean():
    res = subprocess.run(
        [sys.executable, "-m", "ruff", "check", "--output-format", "concise", "sahmr", "tests", "tools", "benchmarks", "notebooks"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert res.returncode == 0, res.stdout + res.stderr


def test_ruff_format_is_clean():
    res = subprocess.run(
        [sys.executable, "-m", "ruff", "format", "--check", "sahmr", "tests", "tools", "benchmarks", "notebooks"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert res.returncode == 0, "run `make format`:\n" + res.stdout + res.stderr
