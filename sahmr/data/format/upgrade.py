"""`upgrade_dataset`: bring a dataset written by an older sahmr to the current ``format_version``, in place.

Format history (what each step changes on disk):

* 1 -> 2: the tight person box ``frames/<split>/bbox_xyxy.npy`` is named ``person_box_xyxy.npy`` (one box
  naming rule, ``<what>_box_xyxy``). The array is copied byte for byte under its new name, ``manifest.json``
  and ``dataset.json`` are rewritten (the file digests are unchanged, so ``content_hash`` is recomputed
  from the manifest without reading the data again), ``dataset.json`` last. The old file is left where it
  was — the kit never deletes what it did not write — and the caller is told it is no longer used.

An interrupted upgrade leaves a readable version-1 dataset (``dataset.json`` is replaced last, atomically);
running it again finishes it.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

from sahmr.atomic import atomic_write

from .files import write_json
from .hashing import content_hash_of
from .schema import DATASET_JSON, FORMAT_NAME, FORMAT_VERSION, MANIFEST_JSON, RENAMED_FIELDS, DatasetFormatError


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: not found — not a sahmr dataset (or its write did not finish)") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise DatasetFormatError(f"{path}: not valid JSON ({e})") from e


def upgrade_dataset(root: str | os.PathLike) -> list[str]:
    """Upgrade ``root`` to :data:`FORMAT_VERSION` in place; returns what was done, one line per change
    (empty when the dataset is already current). DatasetFormatError when it is not a sahmr dataset, is of
    an unknown or newer version, or a file the upgrade needs is missing."""
    root = Path(root)
    meta = _read_json(root / DATASET_JSON)
    if not isinstance(meta, dict) or meta.get("format") != FORMAT_NAME:
        raise DatasetFormatError(f"{root / DATASET_JSON}: not a sahmr dataset (format must be {FORMAT_NAME!r})")
    version = meta.get("format_version")
    if version == FORMAT_VERSION:
        return []
    if not isinstance(version, int) or version not in RENAMED_FIELDS:
        raise DatasetFormatError(
            f"{root / DATASET_JSON}: format_version {version!r} cannot be upgraded by this sahmr "
            f"(it writes {FORMAT_VERSION}; a newer version needs a newer sahmr)"
        )
    manifest = _read_json(root / MANIFEST_JSON)
    done: list[str] = []
    while version != FORMAT_VERSION:
        for split, arrays in meta["arrays"].items():
            for old, new in RENAMED_FIELDS[version].items():
                if old not in arrays:
                    continue
                src, dst = root / "frames" / split / f"{old}.npy", root / "frames" / split / f"{new}.npy"
                if not src.is_file():
                    raise DatasetFormatError(f"{src}: listed in dataset.json but missing; cannot upgrade {root}")
                with src.open("rb") as fin:
                    atomic_write(dst, lambda f, fin=fin: shutil.copyfileobj(fin, f))
                arrays[new] = arrays.pop(old)
                rel_old, rel_new = f"frames/{split}/{old}.npy", f"frames/{split}/{new}.npy"
                if rel_old in manifest:
                    manifest[rel_new] = manifest.pop(rel_old)
                done.append(f"{rel_old} -> {rel_new} (copied; {rel_old} is no longer used and may be deleted)")
        version += 1
    meta["format_version"] = FORMAT_VERSION
    meta["content_hash"] = content_hash_of(manifest)
    write_json(root / MANIFEST_JSON, dict(sorted(manifest.items())))
    write_json(root / DATASET_JSON, meta)
    done.append(f"format_version -> {FORMAT_VERSION}; content hash {meta['content_hash'][:12]}…")
    return done
