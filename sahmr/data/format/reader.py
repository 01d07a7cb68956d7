"""`open_dataset` / `DatasetReader`: lazy, memory-mapped access to a dataset in the canonical format."""

from __future__ import annotations

import json
import os
from collections import OrderedDict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from sahmr.geometry.sdf import SDFGrid, load_sdf_npz
from sahmr.reading import FileFormatError, load_npy

from .files import read_image, resolve_rel
from .hashing import scene_has_sdf
from .schema import DATASET_JSON, FORMAT_VERSION, UPGRADABLE, DatasetFormatError


def load_meta(root: str | os.PathLike) -> dict[str, Any]:
    """Parse ``root/dataset.json`` (FileNotFoundError / DatasetFormatError naming the file)."""
    path = Path(root) / DATASET_JSON
    if not path.is_file():
        raise FileNotFoundError(
            f"{path}: not found — {root} is not a sahmr dataset, or its write did not finish "
            "(dataset.json is written last); run `sahmr data validate` on it"
        )
    try:
        meta = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise DatasetFormatError(f"{path}: not valid JSON ({e})") from e
    if not isinstance(meta, dict):
        raise DatasetFormatError(f"{path}: expected a JSON object")
    version = meta.get("format_version")
    if version != FORMAT_VERSION:
        raise DatasetFormatError(
            f"{path}: format_version {version!r} is not supported (this sahmr reads {FORMAT_VERSION})"
            + (f"; upgrade it in place with `sahmr data upgrade {root}`" if version in UPGRADABLE else "")
        )
    for key, typ in (("splits", dict), ("scenes", list), ("arrays", dict), ("body_model", dict)):
        if not isinstance(meta.get(key), typ):
            raise DatasetFormatError(f"{path}: field '{key}' must be a {typ.__name__}")
    return meta


class SplitArrays:
    """Per-frame arrays of one split, memory-mapped lazily (``np.load(mmap_mode="r")``), read-only.

    ``split["K"]`` -> (N, 3, 3) float32 memmap; ``split.n_frames`` = N; ``split.keys()`` the array names;
    ``split.index(frame_id)`` -> i; ``split.frame(i)`` -> {key: in-memory value of frame i}.
    """

    def __init__(self, root: Path, name: str, n_frames: int, keys: list[str]):
        self.root = root
        self.name = name
        self.n_frames = n_frames
        self._keys = list(keys)
        self._cache: dict[str, np.ndarray] = {}
        self._index: dict[str, int] | None = None

    def path(self, key: str) -> Path:
        return self.root / "frames" / self.name / f"{key}.npy"

    def __getitem__(self, key: str) -> np.ndarray:
        if key not in self._cache:
            if key not in self._keys:
                raise KeyError(f"split '{self.name}' has no array '{key}'; it has {self._keys}")
            path = self.path(key)
            if not path.exists():
                raise FileNotFoundError(f"{path}: listed in dataset.json but missing; run `sahmr data validate {self.root}`")
            try:
                a = load_npy(path, f"per-frame array '{key}' of split '{self.name}'", mmap=True)
            except FileFormatError as e:
                raise DatasetFormatError(f"{e}; run `sahmr data validate {self.root}`") from None
            if a.ndim < 1 or a.shape[0] != self.n_frames:
                raise DatasetFormatError(f"{path}: leading dimension {a.shape[:1]} != n_frames {self.n_frames}")
            self._cache[key] = a
        return self._cache[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._keys)

    def __contains__(self, key: object) -> bool:
        return key in self._keys

    def keys(self) -> list[str]:
        return list(self._keys)

    def items(self) -> Iterator[tuple[str, np.ndarray]]:
        return ((k, self[k]) for k in self._keys)

    def get(self, key: str, default: Any = None) -> Any:
        return self[key] if key in self._keys else default

    def index(self, frame_id: str) -> int:
        """Row of `frame_id` in this split (KeyError if absent)."""
        if self._index is None:
            self._index = {str(f): i for i, f in enumerate(self["frame_id"].tolist())}
        return self._index[frame_id]

    def frame(self, i: int) -> dict[str, Any]:
        """All arrays of frame `i` (copied into memory; strings as str)."""
        out = {}
        for k in self._keys:
            v = self[k][i]
            out[k] = str(v) if isinstance(v, np.str_) else np.array(v)
        return out


class DatasetReader:
    """Read access to a dataset folder (see the module docstring).

    root: dataset folder. sdf_cache_size: how many SDF grids to keep in memory (LRU; a 256³ grid is 64 MB).
    Attributes: ``root``, ``meta`` (dataset.json), ``name``, ``splits`` ({split: n_frames}), ``scenes``,
    ``num_verts`` (V).
    """

    def __init__(self, root: str | os.PathLike, *, sdf_cache_size: int = 8):
        self.root = Path(root)
        self.meta = load_meta(self.root)
        self.name: str = self.meta.get("name", "")
        self.splits: dict[str, int] = dict(self.meta["splits"])
        self.scenes: list[str] = list(self.meta["scenes"])
        self.num_verts: int = int(self.meta["body_model"].get("num_verts", 0))
        self._split_cache: dict[str, SplitArrays] = {}
        self._points_cache: dict[str, np.ndarray] = {}
        self._sdf_cache: OrderedDict[str, SDFGrid] = OrderedDict()
        self._sdf_cache_size = max(1, int(sdf_cache_size))
        self._frame_index: dict[str, tuple[str, int]] | None = None

    def __repr__(self) -> str:
        return f"DatasetReader({str(self.root)!r}, name={self.name!r}, splits={self.splits}, scenes={len(self.scenes)})"

    def split(self, name: str) -> SplitArrays:
        """The split's arrays (memory-mapped). KeyError naming the available splits."""
        if name not in self._split_cache:
            if name not in self.splits:
                raise KeyError(f"{self.root}: no split '{name}'; available: {sorted(self.splits)}")
            keys = list(self.meta["arrays"].get(name, {}))
            self._split_cache[name] = SplitArrays(self.root, name, int(self.splits[name]), keys)
        return self._split_cache[name]

    def _scene_path(self, scene_id: str, name: str) -> Path:
        if scene_id not in self.scenes:
            raise KeyError(f"{self.root}: unknown scene id {scene_id!r} (dataset.json lists {len(self.scenes)} scenes)")
        return self.root / "scenes" / scene_id / name

    def scene_points(self, scene_id: str) -> np.ndarray:
        """(M, 3) float32 world-frame scene points (memory-mapped, cached)."""
        if scene_id not in self._points_cache:
            path = self._scene_path(scene_id, "points_world.npy")
            try:
                a = load_npy(path, f"the point cloud of scene '{scene_id}'", mmap=True)
            except FileFormatError as e:
                raise DatasetFormatError(f"{e}; run `sahmr data validate {self.root}`") from None
            if a.ndim != 2 or a.shape[1] != 3 or a.dtype != np.float32:
                raise DatasetFormatError(f"{path}: expected (M, 3) float32, got {a.shape} {a.dtype}")
            self._points_cache[scene_id] = a
        return self._points_cache[scene_id]

    def has_sdf(self, scene_id: str) -> bool:
        """Whether the scene has an SDF grid (RICH training scans have none)."""
        return scene_has_sdf(self.root, scene_id)

    def scene_sdf(self, scene_id: str) -> SDFGrid:
        """The scene's SDF grid (LRU-cached). Raises DatasetFormatError for a scene without one."""
        if scene_id in self._sdf_cache:
            self._sdf_cache.move_to_end(scene_id)
            return self._sdf_cache[scene_id]
        if not self.has_sdf(scene_id):
            raise DatasetFormatError(
                f"{self.root}: scene '{scene_id}' has no SDF grid (its source ships none, e.g. RICH training scans): "
                "PenE, ConFE and the contact metrics cannot be computed for its frames"
            )
        grid = load_sdf_npz(self._scene_path(scene_id, "sdf.npz"))
        self._sdf_cache[scene_id] = grid
        while len(self._sdf_cache) > self._sdf_cache_size:
            self._sdf_cache.popitem(last=False)
        return grid

    def scene_mesh(self, scene_id: str):
        """The scene mesh as ``trimesh.Trimesh`` (process=False), or None when the dataset has none."""
        path = self._scene_path(scene_id, "mesh.ply")
        if not path.is_file():
            return None
        import trimesh

        return trimesh.load(path, process=False, force="mesh")

    def scene_info(self, scene_id: str) -> dict[str, Any]:
        """Contents of the scene's ``scene.json`` ({} if absent)."""
        path = self._scene_path(scene_id, "scene.json")
        return json.loads(path.read_text()) if path.is_file() else {}

    def frame_index(self, frame_id: str) -> tuple[str, int]:
        """(split, row) of a frame id (KeyError if unknown)."""
        if self._frame_index is None:
            self._frame_index = {}
            for s in self.splits:
                for i, f in enumerate(self.split(s)["frame_id"].tolist()):
                    self._frame_index[str(f)] = (s, i)
        try:
            return self._frame_index[frame_id]
        except KeyError:
            raise KeyError(f"{self.root}: unknown frame id {frame_id!r}") from None

    def image(self, split: str, i: int) -> np.ndarray:
        """(H, W, 3) uint8 RGB image of frame `i` of `split`."""
        return read_image(self.root, str(self.split(split)["image_path"][i]))

    def image_file(self, rel_path: str) -> Path:
        return resolve_rel(self.root, rel_path, "image path")


def open_dataset(root: str | os.PathLike, **kwargs: Any) -> DatasetReader:
    """Open a finished dataset folder for reading (see :class:`DatasetReader`)."""
    return DatasetReader(root, **kwargs)
