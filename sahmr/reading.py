"""Reading the files users hand the kit — arrays, archives, JSON, images — with one clear error each.

numpy, zipfile, json and Pillow fail on empty, truncated or foreign files with messages that name neither
the file nor what was expected ("No data left in file", "File is not a zip file", "Truncated File Read"),
and numpy's advise ``allow_pickle=True``. These wrappers raise :class:`FileFormatError` (a ValueError, so
`sahmr` prints it as one line) naming the file, what it should have been and how to fix it; they never
unpickle. A leaf module: importable from every layer.
"""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["FileFormatError", "load_npy", "load_npz", "read_json", "read_rgb"]


class FileFormatError(ValueError):
    """A file that exists but cannot be read as what it should be; the message names it."""


def _exists(path: Path, what: str) -> None:
    if path.is_dir():
        raise IsADirectoryError(f"{path}: is a folder; expected {what}")
    if not path.is_file():
        raise FileNotFoundError(f"{path}: not found ({what})")


def load_npy(path: str | os.PathLike, what: str = "a .npy array", mmap: bool = False) -> np.ndarray:
    """A plain .npy array (memory-mapped read-only with ``mmap``); FileFormatError for empty, truncated,
    pickled or foreign files."""
    path = Path(path)
    _exists(path, what)
    try:
        return np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)
    except (EOFError, OSError) as e:
        if isinstance(e, (FileNotFoundError, PermissionError)):
            raise
        raise FileFormatError(f"{path}: empty or truncated ({what}): {e}") from None
    except ValueError as e:
        if "pickle" in str(e):
            raise FileFormatError(f"{path}: holds Python objects, not plain numbers ({what}); the kit never unpickles") from None
        raise FileFormatError(f"{path}: not a readable .npy file ({what}): {e}") from None


def load_npz(path: str | os.PathLike, what: str = "a .npz archive") -> dict[str, np.ndarray]:
    """All arrays of a plain .npz archive, read into memory; FileFormatError for empty, truncated, pickled
    or foreign files (the member that failed is named)."""
    path = Path(path)
    _exists(path, what)
    try:
        z = np.load(path, allow_pickle=False)
    except (EOFError, zipfile.BadZipFile, OSError, ValueError) as e:
        if isinstance(e, (FileNotFoundError, PermissionError)):
            raise
        raise FileFormatError(f"{path}: not a readable .npz archive, empty or truncated? ({what})") from None
    if not isinstance(z, np.lib.npyio.NpzFile):  # np.load also reads a bare .npy under any name
        raise FileFormatError(f"{path}: a single .npy array, not a .npz archive ({what})")
    out = {}
    with z:
        for key in z.files:
            try:
                out[key] = z[key]
            except ValueError as e:
                if "pickle" in str(e):
                    raise FileFormatError(f"{path}: member '{key}' holds Python objects ({what}); the kit never unpickles") from None
                raise FileFormatError(f"{path}: member '{key}' is not a readable array ({what}): {e}") from None
            except (EOFError, zipfile.BadZipFile, OSError) as e:
                raise FileFormatError(f"{path}: member '{key}' is truncated or corrupt ({what}): {e}") from None
    return out


def read_json(path: str | os.PathLike, what: str = "a JSON file") -> Any:
    """The parsed JSON; FileFormatError for binary, empty or malformed files."""
    path = Path(path)
    _exists(path, what)
    try:
        return json.loads(path.read_text())
    except UnicodeDecodeError:
        raise FileFormatError(f"{path}: not a text file ({what})") from None
    except json.JSONDecodeError as e:
        raise FileFormatError(f"{path}: not valid JSON ({what}): {e}") from None


def read_rgb(path: str | os.PathLike, what: str = "an image"):
    """The decoded Pillow image of ``path`` in RGB (fully read, so a truncated file fails here)."""
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    _exists(path, what)
    try:
        with Image.open(path) as im:
            im.load()
            return im if im.mode == "RGB" else im.convert("RGB")
    except (UnidentifiedImageError, OSError, SyntaxError) as e:
        if isinstance(e, (FileNotFoundError, PermissionError)):
            raise
        raise FileFormatError(f"{path}: not a readable image, truncated or corrupt? ({what}): {e}") from None
