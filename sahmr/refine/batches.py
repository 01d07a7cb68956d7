"""Resumable batched work over a split's frames: one scene per batch, each finished batch kept on disk.

`run_batches` splits frame indices into batches of one scene (the SDF grid is per scene), skips the batches a
killed earlier run already finished (same digest), runs the rest, and returns every batch's arrays in frame
order. Finished batches live in ``<out folder>/.<out name>.parts/`` (written atomically, one ``.npz`` each,
with the digest of the inputs and parameters in ``run.json``); the caller removes that folder once its own
output is written. A folder of another digest is replaced — it holds only files this module wrote.
"""

from __future__ import annotations

import json
import shutil
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from sahmr.atomic import atomic_write, atomic_write_bytes

__all__ = ["scene_batches", "parts_dir", "run_batches"]

_PART_PREFIX = "batch_"


def scene_batches(scene_ids: np.ndarray, batch_size: int) -> list[np.ndarray]:
    """Indices 0..N-1 grouped by scene (sorted scene ids, frames in order), chunked to batch_size."""
    scene_ids = np.asarray(scene_ids)
    out = []
    for sid in sorted(set(scene_ids.tolist())):
        idx = np.nonzero(scene_ids == sid)[0]
        out += [idx[i : i + batch_size] for i in range(0, len(idx), batch_size)]
    return out


def parts_dir(out: str | Path) -> Path:
    out = Path(out)
    return out.parent / f".{out.name}.parts"


def _owned(folder: Path) -> bool:
    """Whether every entry is one this module writes: run.json, batch_*.npz and their atomic-write temporaries
    (``.batch_*.tmp`` / ``.run.json.*.tmp``); anything else (a user's file, dotfiles included) is not ours."""

    def ours(name: str) -> bool:
        if name == "run.json" or (name.startswith(_PART_PREFIX) and name.endswith(".npz")):
            return True
        return name.endswith(".tmp") and (name.startswith("." + _PART_PREFIX) or name.startswith(".run.json."))

    return folder.is_dir() and all(p.is_file() and ours(p.name) for p in folder.iterdir())


def run_batches(
    batches: list[np.ndarray],
    work: Callable[[np.ndarray], dict[str, np.ndarray]],
    out: str | Path,
    digest: str,
    *,
    what: str,
    progress: bool = True,
) -> tuple[dict[str, np.ndarray], float]:
    """Run `work(indices) -> {key: (len(indices), ...) array}` on every batch, resuming finished ones.

    Returns (arrays concatenated in the order of `batches`, seconds of work summed over all batches — also
    those of an earlier interrupted run, so seconds per frame stay true after a resume)."""
    folder = parts_dir(out)
    if folder.exists():
        try:
            same = json.loads((folder / "run.json").read_text()).get("digest") == digest
        except (OSError, ValueError):
            same = False
        if not same:
            if not _owned(folder):
                raise FileExistsError(f"{folder}: holds files this command did not write; move them away and re-run")
            shutil.rmtree(folder)
    folder.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(folder / "run.json", json.dumps({"digest": digest, "batches": len(batches)}).encode())
    results: list[dict[str, np.ndarray]] = []
    seconds = 0.0
    n_total = sum(len(b) for b in batches)
    done = 0
    for k, idx in enumerate(batches):
        part = folder / f"{_PART_PREFIX}{k:05d}.npz"
        arrays = None
        if part.is_file():
            try:
                with np.load(part, allow_pickle=False) as z:
                    arrays = {key: z[key] for key in z.files}
                if not np.array_equal(arrays.pop("_indices"), idx):
                    arrays = None
            except (OSError, ValueError, KeyError):
                arrays = None  # a damaged part is simply redone
        if arrays is None:
            t0 = time.perf_counter()
            arrays = work(idx)
            arrays["_seconds"] = np.asarray(time.perf_counter() - t0)
            atomic_write(part, lambda f, a=arrays, i=idx: np.savez(f, _indices=i, **a))
        seconds += float(arrays.pop("_seconds"))
        results.append(arrays)
        done += len(idx)
        if progress:
            print(f"{what}: {done}/{n_total} frames, {seconds / max(done, 1):.2f} s/frame", file=sys.stderr, flush=True)
    keys = results[0].keys() if results else []
    return {key: np.concatenate([r[key] for r in results]) for key in keys}, seconds
