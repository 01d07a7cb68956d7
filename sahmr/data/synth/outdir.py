"""Which files in a ``sahmr synth --out`` folder synth writes, and the rule that it never removes others.

Synth generates in place and resumes (finished rooms are kept), so it must tell its own files from a user's.
Its files follow fixed patterns (:data:`OWN_PATTERNS`, relative posix paths); everything else in the folder
is *foreign*. Synth

* starts in a folder that is new, empty, or holds only its own files (a finished or interrupted synth run);
* refuses a folder with foreign files, or a dataset it did not generate (no ``.staging/params.json``), unless
  ``force`` — and even then removes only files of its own patterns: foreign files always survive;
* removes stale temporaries of a killed run (``.<name>.<random>.tmp``, never listed in a manifest, so never
  hashed) before it writes anything.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

__all__ = ["OWN_PATTERNS", "STAMP", "claim_out_dir", "foreign_files", "is_own", "remove_own_files"]

STAMP = ".staging/params.json"  # written first by synth: the folder is synth's (its run digest: parameters, body model, code)

_ID = r"[A-Za-z0-9][A-Za-z0-9_.+-]*"
_KEY = r"[a-z][a-z0-9_]*"
OWN_PATTERNS = tuple(
    re.compile(p)
    for p in (
        r"dataset\.json",
        r"manifest\.json",
        r"\.staging/params\.json",
        rf"\.staging/{_ID}\.npz",
        rf"frames/{_KEY}/[A-Za-z][A-Za-z0-9_]*\.npy",  # K, T_world_to_cam, extras
        rf"scenes/{_ID}/(points_world\.npy|sdf\.npz|scene\.json|mesh\.ply)",
        rf"images/{_KEY}/{_ID}\.(jpg|png)",
    )
)
_TEMP = re.compile(r"\..+\.tmp")  # sahmr.atomic's ".<name>.<random>.tmp" and the staging ".<name>.tmp"
_TOP_TEMP = re.compile(r"\.(dataset|manifest)\.json\..+\.tmp")
_OWN_DIRS = (".staging", "frames", "scenes", "images")


def is_own(rel: str) -> bool:
    """True when ``rel`` (posix path relative to the out folder) is a file synth writes (or its temporary)."""
    if any(p.fullmatch(rel) for p in OWN_PATTERNS):
        return True
    head, _, name = rel.rpartition("/")
    if head == "":
        return bool(_TOP_TEMP.fullmatch(name))
    return bool(_TEMP.fullmatch(name)) and head.split("/")[0] in _OWN_DIRS


def _files(out: Path) -> list[str]:
    found = []
    for dirpath, dirnames, filenames in os.walk(out):
        dirnames.sort()
        rel_dir = Path(dirpath).relative_to(out).as_posix()
        for name in sorted(filenames) + [d for d in dirnames if os.path.islink(os.path.join(dirpath, d))]:
            found.append(name if rel_dir == "." else f"{rel_dir}/{name}")
    return found


def foreign_files(out: Path) -> list[str]:
    """Files (and symlinks) under ``out`` that synth does not write, sorted."""
    return [f for f in _files(out) if not is_own(f)] if out.is_dir() else []


def remove_own_files(out: Path, temporaries_only: bool = False) -> int:
    """Remove synth's own files under ``out`` (only its temporaries with ``temporaries_only``), then the
    folders of its layout left empty; foreign files and the folders holding them stay. Returns the count."""
    n = 0
    for rel in _files(out):
        path = out / rel
        if is_own(rel) and not path.is_symlink() and (not temporaries_only or _TEMP.fullmatch(path.name)):
            path.unlink()
            n += 1
    for top in _OWN_DIRS:
        for dirpath, _, _ in sorted(os.walk(out / top), key=lambda t: -len(t[0])):  # deepest first
            if not os.listdir(dirpath):
                os.rmdir(dirpath)
    return n


def claim_out_dir(out: Path, stamp_digest: str | None, digest: str, force: bool) -> str:
    """Decide what synth does with ``out`` before it writes; returns "new", "resume", "complete" or "replace".

    stamp_digest: the run digest in ``out/.staging/params.json`` (None when absent); digest: this run's
    (parameters, body-model file and code: :func:`sahmr.data.synth.generate.run_digest`).
    Raises FileExistsError (one line: the folder, what is in the way, how to proceed) when synth may not
    write there. With "replace" the caller's earlier outputs are already removed (only its own files)."""
    if out.is_symlink() and not out.is_dir():
        raise FileExistsError(f"--out {out}: is a symbolic link to nothing; remove it or choose another path")
    if out.exists() and not out.is_dir():
        raise FileExistsError(f"--out {out}: exists and is not a folder; choose another path")
    if not out.exists() or not any(out.iterdir()):
        return "new"
    foreign = foreign_files(out)
    if foreign and not force:
        shown = ", ".join(foreign[:3]) + (f" and {len(foreign) - 3} more" if len(foreign) > 3 else "")
        raise FileExistsError(
            f"--out {out}: holds {len(foreign)} file(s) sahmr synth did not write ({shown}); it never deletes "
            "what it did not write: choose a new or empty folder, or pass --force to write beside them (they are kept)"
        )
    if stamp_digest is None and not force:
        raise FileExistsError(
            f"--out {out}: holds a dataset (or files) that sahmr synth did not generate; choose another folder, or pass --force to replace it"
        )
    remove_own_files(out, temporaries_only=True)  # a killed run's half-written files
    if stamp_digest == digest:
        return "complete" if (out / "dataset.json").is_file() else "resume"
    remove_own_files(out)  # other parameters, body model or code (or --force): nothing of the old run is reusable
    return "replace"
