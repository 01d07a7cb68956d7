"""The dataset content hash: per-file digests (.npz by members), the covered files, the manifest."""

from __future__ import annotations

import hashlib
import json
import os
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any


def file_digest(path: str | os.PathLike) -> str:
    """Hex digest of one dataset file: sha256 of the bytes; for ``.npz``, of its members (see module doc)."""
    path = Path(path)
    if path.suffix == ".npz" and zipfile.is_zipfile(path):  # a corrupt archive: digest of its bytes (a mismatch)
        h = hashlib.sha256()
        with zipfile.ZipFile(path) as z:
            for name in sorted(z.namelist()):
                m = hashlib.sha256()
                with z.open(name) as f:
                    for chunk in iter(lambda: f.read(1 << 20), b""):
                        m.update(chunk)
                h.update(name.encode() + b"\0" + m.digest())
        return h.hexdigest()
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def scene_has_sdf(root: Path, scene_id: str) -> bool:
    """False only when the scene's ``scene.json`` says ``"has_sdf": false`` (a source without an SDF)."""
    try:
        return json.loads((Path(root) / "scenes" / scene_id / "scene.json").read_text()).get("has_sdf", True) is not False
    except (OSError, ValueError, AttributeError):
        return True


def dataset_files(root: Path, meta: Mapping[str, Any], image_paths: list[str]) -> list[str]:
    """Sorted relative posix paths of the files covered by the content hash (existing or not)."""
    files: set[str] = set()
    for sid in meta.get("scenes", []):
        names = ("points_world.npy", "scene.json") if not scene_has_sdf(root, sid) else ("points_world.npy", "sdf.npz", "scene.json")
        for name in names:
            files.add(f"scenes/{sid}/{name}")
        if (root / "scenes" / sid / "mesh.ply").is_file():
            files.add(f"scenes/{sid}/mesh.ply")
    for split, keys in meta.get("arrays", {}).items():
        for key in keys:
            files.add(f"frames/{split}/{key}.npy")
    files.update(image_paths)
    return sorted(files)


def compute_manifest(root: Path, rel_paths: list[str], progress: bool = False) -> dict[str, str]:
    """{relative path: digest} for the given files (raises FileNotFoundError naming a missing one)."""
    it: Any = rel_paths
    if progress:
        try:
            from tqdm import tqdm

            it = tqdm(rel_paths, desc="hashing", unit="file", leave=False)
        except ImportError:  # pragma: no cover
            pass
    return {rel: file_digest(root / rel) for rel in it}


def content_hash_of(manifest: Mapping[str, str]) -> str:
    """sha256 over ``"<digest>  <path>\\n"`` lines in sorted path order."""
    h = hashlib.sha256()
    for rel in sorted(manifest):
        h.update(f"{manifest[rel]}  {rel}\n".encode())
    return h.hexdigest()
