"""`DatasetWriter`: writes a dataset split by split, validates, hashes and writes `dataset.json` last."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from sahmr.geometry.sdf import SDFGrid

from .files import resolve_rel, write_image, write_json, write_npy, write_scene
from .hashing import compute_manifest, content_hash_of, dataset_files, scene_has_sdf
from .schema import (
    DATASET_JSON,
    FORMAT_NAME,
    FORMAT_VERSION,
    HASH_ALGORITHM,
    MANIFEST_JSON,
    DatasetFormatError,
    check_id,
    check_split_name,
    coerce_split_arrays,
    dtype_name,
)


class DatasetWriter:
    """Write a dataset in the canonical format.

    Usage::

        w = DatasetWriter(root, "synth-v1", {"name": "sahmr-open", "num_verts": V, "sha256": ...}, params)
        w.write_scene("scene_000", points_world, sdf_grid, mesh=(verts, faces))
        rel = w.image_path("train", "train_000000"); write_image(root, rel, rgb)   # any process
        w.write_split("train", {"frame_id": ..., "image_path": ..., ...})      # all frames of the split
        w.finalize()                                                              # hash + dataset.json

    root: output folder (created). name: dataset name. body_model_meta: at least ``name`` (str),
    ``num_verts`` (int, = V of verts_world) and ``sha256`` (str, of the body-model file; "" if none).
    generator_meta: JSON-serialisable parameters of the producer (seed, sizes, ...).
    overwrite: an existing finished dataset at root is refused unless True; then its ``dataset.json``
    is removed at once (the folder no longer looks complete until :meth:`finalize`).
    """

    def __init__(
        self,
        root: str | os.PathLike,
        name: str,
        body_model_meta: Mapping[str, Any],
        generator_meta: Mapping[str, Any] | None = None,
        *,
        overwrite: bool = False,
    ):
        self.root = Path(root)
        if not isinstance(name, str) or not name:
            raise DatasetFormatError(f"dataset name must be a non-empty string, got {name!r}")
        bm = dict(body_model_meta)
        for key, typ in (("name", str), ("num_verts", int), ("sha256", str)):
            if key not in bm or not isinstance(bm[key], typ) or isinstance(bm[key], bool):
                raise DatasetFormatError(f"body_model_meta: field '{key}' ({typ.__name__}) is required, got {bm.get(key)!r}")
        if bm["num_verts"] < 1:
            raise DatasetFormatError(f"body_model_meta: num_verts must be >= 1, got {bm['num_verts']}")
        self.name = name
        self.body_model_meta = bm
        self.generator_meta = dict(generator_meta or {})
        json.dumps(self.generator_meta)  # fail early if not serialisable
        json.dumps(self.body_model_meta)
        ds_json = self.root / DATASET_JSON
        if ds_json.exists():
            if not overwrite:
                raise DatasetFormatError(f"{ds_json}: a finished dataset exists here; pass overwrite=True to rewrite it")
            ds_json.unlink()
        self.root.mkdir(parents=True, exist_ok=True)
        self._scenes: set[str] = set()
        self._splits: dict[str, dict[str, Any]] = {}  # split -> {"n": int, "arrays": {key: spec}, "scene_ids", "image_paths"}

    # scenes ---------------------------------------------------------------------------------
    def scene_dir(self, scene_id: str) -> Path:
        """Folder of a scene: ``root/scenes/<scene_id>``."""
        check_id("scene id", scene_id)
        return self.root / "scenes" / scene_id

    def write_scene(
        self, scene_id: str, points_world: np.ndarray, sdf_grid: SDFGrid | None, mesh: Any = None, meta: Mapping[str, Any] | None = None
    ) -> Path:
        """See :func:`write_scene`; also registers the scene (listed even if no frame uses it)."""
        d = write_scene(self.root, scene_id, points_world, sdf_grid, mesh=mesh, meta=meta)
        self._scenes.add(scene_id)
        return d

    # images ---------------------------------------------------------------------------------
    def image_path(self, split: str, frame_id: str, ext: str = ".png") -> str:
        """Relative path where frame `frame_id` of `split` stores its image: ``images/<split>/<frame_id>.png``."""
        check_split_name(split)
        check_id("frame id", frame_id)
        return f"images/{split}/{frame_id}{ext}"

    def write_image(self, split: str, frame_id: str, rgb_uint8: np.ndarray) -> str:
        """Write the frame's image (PNG) at :meth:`image_path`; returns the relative path."""
        rel = self.image_path(split, frame_id)
        write_image(self.root, rel, rgb_uint8)
        return rel

    # frames ---------------------------------------------------------------------------------
    def write_split(self, split: str, arrays: Mapping[str, Any]) -> None:
        """Validate and write all per-frame arrays of one split (see the module docstring for keys).

        arrays: {key: array with leading dimension N}; dtypes are converted where safe (float64 ->
        float32, 0/1 -> bool, lists of str -> <U). Checks shapes, dtypes, lengths and values (finite
        cameras and meshes, rigid T, valid K, boxes overlapping the image, contact parts, distances, ids)
        and raises DatasetFormatError listing every problem, writing nothing, when any is found.
        Rewriting a split replaces it (stale arrays of that split are removed).
        """
        from .validate import check_split_arrays, format_problems

        check_split_name(split)
        clean = coerce_split_arrays(arrays)
        problems = [p for p in check_split_arrays(clean, split=split, num_verts=self.body_model_meta["num_verts"]) if p.severity == "error"]
        if problems:
            raise DatasetFormatError(f"write_split('{split}'): {len(problems)} problem(s):\n" + format_problems(problems))
        ids = set(clean["frame_id"].tolist())
        for other, info in self._splits.items():
            if other != split and ids & info["frame_ids"]:
                dup = sorted(ids & info["frame_ids"])
                raise DatasetFormatError(f"write_split('{split}'): frame ids also in split '{other}': {dup[:5]}")
        d = self.root / "frames" / split
        d.mkdir(parents=True, exist_ok=True)
        for stale in d.glob("*.npy"):
            if stale.stem not in clean:
                stale.unlink()
        for key, a in clean.items():
            write_npy(d / f"{key}.npy", a)
        self._splits[split] = {
            "n": int(len(clean["frame_id"])),
            "arrays": {k: {"shape": list(a.shape), "dtype": dtype_name(a.dtype)} for k, a in sorted(clean.items())},
            "frame_ids": ids,
            "scene_ids": sorted(set(clean["scene_id"].tolist())),
            "image_paths": sorted(set(clean["image_path"].tolist())),
        }

    def finalize(self, *, validate: bool = True, progress: bool = False) -> dict[str, Any]:
        """Check completeness, hash the content, write ``manifest.json`` then ``dataset.json``.

        validate: run the full validator (without re-hashing) first and raise DatasetFormatError on any
        error (nothing marks the dataset complete then). Returns the dataset meta (``dataset.json``).
        """
        if not self._splits:
            raise DatasetFormatError(f"{self.root}: finalize() needs at least one split written with write_split()")
        referenced = set().union(*(set(s["scene_ids"]) for s in self._splits.values()))
        scenes = sorted(self._scenes | referenced)
        missing = [
            s
            for s in scenes
            if not (self.root / "scenes" / s / "points_world.npy").is_file()
            or (scene_has_sdf(self.root, s) and not (self.root / "scenes" / s / "sdf.npz").is_file())
        ]
        if missing:
            raise DatasetFormatError(f"{self.root}: frames reference scene(s) never written with write_scene(): {missing[:10]}")
        image_paths = sorted(set().union(*(set(s["image_paths"]) for s in self._splits.values())))
        missing_img = [p for p in image_paths if not resolve_rel(self.root, p, "image path").is_file()]
        if missing_img:
            raise DatasetFormatError(
                f"{self.root}: {len(missing_img)} referenced image(s) missing, e.g. {missing_img[:3]}; write them "
                "with write_image() before finalize()"
            )
        from sahmr import __version__

        meta: dict[str, Any] = {
            "format": FORMAT_NAME,
            "format_version": FORMAT_VERSION,
            "name": self.name,
            "body_model": self.body_model_meta,
            "splits": {s: info["n"] for s, info in sorted(self._splits.items())},
            "scenes": scenes,
            "arrays": {s: info["arrays"] for s, info in sorted(self._splits.items())},
            "hash_algorithm": HASH_ALGORITHM,
            "content_hash": "",
            "generator": self.generator_meta,
            "created_by": f"sahmr {__version__}",
        }
        if validate:
            from .validate import format_problems, validate_dataset

            errors = [p for p in validate_dataset(self.root, check_hash=False, meta=meta) if p.severity == "error"]
            if errors:
                raise DatasetFormatError(f"{self.root}: finalize() found {len(errors)} problem(s):\n" + format_problems(errors))
        manifest = compute_manifest(self.root, dataset_files(self.root, meta, image_paths), progress=progress)
        meta["content_hash"] = content_hash_of(manifest)
        write_json(self.root / MANIFEST_JSON, manifest)
        write_json(self.root / DATASET_JSON, meta)
        return meta
