"""The kit's user-facing error type: what `sahmr` prints as one line (no traceback) besides the built-in
file/value errors it also catches (`sahmr.cli.main`). A leaf module, importable from every layer."""

from __future__ import annotations

__all__ = ["UserError"]


class UserError(Exception):
    """An error the user can fix (bad input, a failed notebook cell, ...); the message says what and how."""
