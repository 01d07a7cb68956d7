"""The torch Dataset producing the model batch from a canonical dataset (spec §1.4-1.8, Appendix A).

Per item (S = crop size, V = vertices, N_i = scene points in the box frustum of this frame):

================  ===========  =======  ===============================================================
key               shape        dtype    meaning
================  ===========  =======  ===============================================================
image             (3, S, S)    float32  RGB crop in [0, 1] (square box resized, bilinear, zero border, 8-bit:
                                        sahmr.data.crop)
K                 (3, 3)       float32  intrinsics, full-image px
crop_box_xyxy     (4,)         float32  the square crop box [l, u, r, b] in full-image px (spec §1.6;
                                        the original's ``bbx_lurb``)
person_box_xyxy   (4,)         float32  the tight person box it was derived from
T_world_to_cam    (4, 4)       float32  world -> camera
points_cam        (N_i, 3)     float32  scene points inside the crop-box frustum, z in [z_near, z_far],
                                        camera frame (spec §1.8; ``c_pcFst``)
verts_cam         (V, 3)       float32  GT mesh, camera frame
joints14_cam      (14, 3)      float32  GT H36M-14 joints, camera frame
pelvis_cam        (3,)         float32  GT H36M pelvis, camera frame
contact           (V,)         bool     GT contact
contact_part      (V,)         int64    part id 0..7
index             ()           int64    row in the split
meta              dict                  frame_id, scene_id, camera_id, pose_class, distance, occlusion,
                                        truncated
================  ===========  =======  ===============================================================

Crop: train (``train_augment=True``) = the original's augmentation — centre jitter
``bbx_center_px * U(-1, 1)`` per axis (px of the stored image) and side ``max(w, h) * (1.15 + bbx_zoom *
U(0, 1))`` (1.15-1.55 for zoom 0.4); eval = side 1.15 x, no jitter, or the frame's ``crop_box_xyxy``
when the dataset has one. No flips or colour augmentation (as the original).

Determinism: all randomness of item ``i`` comes from ``np.random.default_rng([seed, epoch, i])`` in
training and ``np.random.default_rng([seed, i])`` otherwise, so an item depends only on (seed, epoch,
index) — not on worker count, order or process. Two ways to give the epoch:

* :class:`~sahmr.data.sampler.EpochSampler` (recommended with DataLoaders): yields ``(epoch, index)`` keys, which
  ``dataset[(epoch, index)]`` accepts; the trainer (Lightning does it by itself) calls
  ``sampler.set_epoch(e)``. The epoch travels with each index from the main process, so prefetching or
  persistent workers can never mix epochs.
* :meth:`HumanSceneDataset.set_epoch` for plain integer indexing: stored in shared memory, so it also
  reaches persistent DataLoader workers — but call it before the epoch's iterator is created (workers
  prefetch as soon as it exists).

:func:`collate_human_scene` stacks the fixed-size entries and packs the ragged scene points:
``points_cam (sum N_i, 3)``, ``points_batch (sum N_i,)`` int64 sample index, ``points_offsets (B + 1,)``
int64 (sample b owns rows ``offsets[b]:offsets[b+1]``); ``meta`` becomes a list of dicts.

DataLoader: ``DataLoader(ds, batch_size, sampler=EpochSampler(len(ds), shuffle, seed), num_workers,
collate_fn=collate_human_scene, worker_init_fn=worker_init_fn)`` — the init function limits each worker
to one torch thread (element-wise
ops slow down ~10x when threads oversubscribe the cores). The dataset never pickles its memory maps:
workers open the files themselves.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from sahmr.data.crop import crop_model_input, open_rgb
from sahmr.data.format import DatasetFormatError, DatasetReader
from sahmr.data.frustum import CameraFrustumIndex, frustum_points_cam
from sahmr.geometry.camera import square_crop_box

__all__ = ["HumanSceneDataset", "collate_human_scene", "worker_init_fn", "frustum_points_cam", "FIXED_KEYS"]

# Keys stacked by the collate (everything else: points_* packed, meta listed).
FIXED_KEYS = (
    "image",
    "K",
    "crop_box_xyxy",
    "person_box_xyxy",
    "T_world_to_cam",
    "verts_cam",
    "joints14_cam",
    "pelvis_cam",
    "contact",
    "contact_part",
    "index",
)


def worker_init_fn(worker_id: int) -> None:
    """DataLoader worker init: one torch (and BLAS) thread per worker."""
    torch.set_num_threads(1)


def _rigid_apply(points: np.ndarray, T: np.ndarray) -> np.ndarray:
    """(n, 3) float32 ``R p + t`` element-wise per output column (no BLAS threads, see frustum_points_cam)."""
    p = np.asarray(points, dtype=np.float32)
    out = np.empty(p.shape, dtype=np.float32)
    for i in range(3):
        out[:, i] = p[:, 0] * T[i, 0] + p[:, 1] * T[i, 1] + p[:, 2] * T[i, 2] + T[i, 3]
    return out


def _check_split(reader: DatasetReader, split: str) -> None:
    """Refuse a split whose arrays or scene points are broken (wrong shapes, NaN/Inf GT, unknown scenes ...)
    before the first epoch, naming the file and the frame ids — not as a NaN loss hours later."""
    from sahmr.data.format.validate import check_split_arrays, format_problems

    arrays = reader.split(split)
    problems = [
        p for p in check_split_arrays({k: arrays[k] for k in arrays.keys()}, split=split, num_verts=reader.num_verts) if p.severity == "error"
    ]
    for scene_id in sorted(set(arrays["scene_id"].tolist()) & set(reader.scenes)):
        if not np.isfinite(reader.scene_points(scene_id)).all():
            problems.append(f"scenes/{scene_id}/points_world.npy: NaN/Inf scene points")
    if problems:
        lines = [format_problems([p]) if not isinstance(p, str) else p for p in problems]
        raise DatasetFormatError(
            f"{reader.root}: split '{split}' cannot be used ({len(problems)} problem(s)); `sahmr data validate` lists them all:\n" + "\n".join(lines)
        )


class HumanSceneDataset(Dataset):
    """Items of one split of a canonical dataset (see the module docstring for keys and shapes).

    root: dataset folder; split: split name; crop_size: S (the preset's crop: 224 paper, 128 cpu);
    train_augment: random square-crop jitter / zoom (the original's training augmentation);
    bbx_center_px: centre jitter amplitude in px of the stored image (the original: 10 px at its ds4
    resolution ~1028 x 752); bbx_zoom: extra side scale range (0.4 -> 1.15-1.55 x);
    z_near / z_far: the frustum depth range (0.5 / 12.5 m); max_scene_points: keep at most this many
    frustum points per item (random subset, sorted, from the item's generator; None = all);
    seed: base seed (>= 0).
    """

    def __init__(
        self,
        root: str | os.PathLike,
        split: str,
        crop_size: int = 224,
        train_augment: bool = False,
        *,
        bbx_center_px: float = 10.0,
        bbx_zoom: float = 0.4,
        z_near: float = 0.5,
        z_far: float = 12.5,
        max_scene_points: int | None = None,
        seed: int = 0,
    ):
        self.root = Path(root)
        self.split = split
        self.crop_size = int(crop_size)
        if self.crop_size < 2:
            raise ValueError(f"HumanSceneDataset: crop_size must be >= 2, got {crop_size}")
        self.train_augment = bool(train_augment)
        self.bbx_center_px = float(bbx_center_px)
        self.bbx_zoom = float(bbx_zoom)
        if self.bbx_center_px < 0 or self.bbx_zoom < 0:
            raise ValueError(f"HumanSceneDataset: bbx_center_px and bbx_zoom must be >= 0, got {bbx_center_px}, {bbx_zoom}")
        if not 0 < z_near < z_far:
            raise ValueError(f"HumanSceneDataset: need 0 < z_near < z_far, got {z_near}, {z_far}")
        self.z_near, self.z_far = float(z_near), float(z_far)
        if max_scene_points is not None and max_scene_points < 1:
            raise ValueError(f"HumanSceneDataset: max_scene_points must be >= 1 or None, got {max_scene_points}")
        self.max_scene_points = max_scene_points
        if int(seed) < 0:
            raise ValueError(f"HumanSceneDataset: seed must be >= 0, got {seed}")
        self.seed = int(seed)
        reader = DatasetReader(self.root)
        self.n_frames = reader.split(split).n_frames  # KeyError naming the splits if absent
        _check_split(reader, split)
        self.num_verts = reader.num_verts
        self.has_crop_box = "crop_box_xyxy" in reader.split(split)
        self._reader: DatasetReader | None = reader
        self._pid = os.getpid()
        self._points_T: dict[str, np.ndarray] = {}
        self._frustum: dict[tuple, CameraFrustumIndex] = {}
        # Cameras seen by one frame only (e.g. RICH test: every pre-cropped frame is its own camera) get no
        # index: building one costs as much as the direct query, and caching thousands would hold GBs.
        split_arrays = reader.split(split)
        cams = [f"{s}\0{c}" for s, c in zip(split_arrays["scene_id"].tolist(), split_arrays["camera_id"].tolist())]
        _, inverse, counts = np.unique(np.asarray(cams), return_inverse=True, return_counts=True)
        self._shared_camera = counts[inverse] > 1  # (N,) bool
        self._epoch = torch.zeros((), dtype=torch.int64).share_memory_()

    # process-local state: memory maps are reopened in each worker, never pickled
    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_reader"] = None
        state["_points_T"] = {}
        state["_frustum"] = {}
        return state

    @property
    def reader(self) -> DatasetReader:
        if self._reader is None or self._pid != os.getpid():
            self._reader = DatasetReader(self.root)
            self._pid = os.getpid()
            self._points_T = {}
            self._frustum = {}
        return self._reader

    def _scene_points_T(self, scene_id: str) -> np.ndarray:
        """(3, M) float32 contiguous scene points (per-process cache; 12 bytes per point)."""
        cache = self._points_T
        if scene_id not in cache:
            cache[scene_id] = np.ascontiguousarray(self.reader.scene_points(scene_id).T)
        return cache[scene_id]

    def _frustum_index(self, scene_id: str, K: np.ndarray, T: np.ndarray) -> CameraFrustumIndex:
        """The frustum index of a static camera (per-process cache keyed by scene, K and T; 20 bytes per
        scene point in the depth range, built once in ~20 ms)."""
        key = (scene_id, K.tobytes(), T.tobytes())
        idx = self._frustum.get(key)
        if idx is None:
            idx = CameraFrustumIndex(self._scene_points_T(scene_id), K, T, self.z_near, self.z_far)
            self._frustum[key] = idx
        return idx

    def __len__(self) -> int:
        return self.n_frames

    @property
    def epoch(self) -> int:
        return int(self._epoch.item())

    def set_epoch(self, epoch: int) -> None:
        """Select the augmentation draw of an epoch (shared with worker processes)."""
        if int(epoch) < 0:
            raise ValueError(f"set_epoch: epoch must be >= 0, got {epoch}")
        self._epoch.fill_(int(epoch))

    def item_rng(self, index: int, epoch: int | None = None) -> np.random.Generator:
        """The generator of item `index`: seeded by (seed, epoch, index) in training, (seed, index) otherwise.

        epoch: None = the epoch of :meth:`set_epoch`."""
        if self.train_augment:
            return np.random.default_rng([self.seed, self.epoch if epoch is None else int(epoch), int(index)])
        return np.random.default_rng([self.seed, int(index)])

    def crop_box(self, index: int, rng: np.random.Generator | None = None) -> np.ndarray:
        """(4,) float64 square crop box of item `index` (draws from `rng` when augmenting)."""
        arrays = self.reader.split(self.split)
        if self.train_augment:
            rng = rng if rng is not None else self.item_rng(index)
            return square_crop_box(arrays["person_box_xyxy"][index], self.bbx_center_px, self.bbx_zoom, rng)
        if self.has_crop_box:
            cb = np.asarray(arrays["crop_box_xyxy"][index], dtype=np.float64)
            if np.isfinite(cb).all():
                return cb
        return square_crop_box(arrays["person_box_xyxy"][index])

    def __getitem__(self, key: int | tuple[int, int]) -> dict[str, Any]:
        """Item `key`: a row index (epoch from :meth:`set_epoch`) or an ``(epoch, index)`` pair (:class:`~sahmr.data.sampler.EpochSampler`)."""
        epoch = None
        if isinstance(key, (tuple, list)):
            epoch, index = key
            if int(epoch) < 0:
                raise ValueError(f"epoch must be >= 0, got {epoch}")
        else:
            index = key
        if not -self.n_frames <= index < self.n_frames:
            raise IndexError(f"index {index} out of range for split '{self.split}' with {self.n_frames} frames")
        index = int(index) % self.n_frames
        reader = self.reader
        a = reader.split(self.split)
        rng = self.item_rng(index, epoch)
        box = self.crop_box(index, rng)

        image = crop_model_input(open_rgb(reader.image_file(str(a["image_path"][index]))), box, self.crop_size)

        K = np.array(a["K"][index], dtype=np.float32)
        T = np.array(a["T_world_to_cam"][index], dtype=np.float32)
        scene_id = str(a["scene_id"][index])
        if self._shared_camera[index]:
            pts = self._frustum_index(scene_id, K, T).query(box)  # == frustum_points_cam(...), bit for bit
        else:
            pts = frustum_points_cam(None, K, T, box, self.z_near, self.z_far, points_world_T=self._scene_points_T(scene_id))
        if self.max_scene_points is not None and len(pts) > self.max_scene_points:
            keep = np.sort(rng.choice(len(pts), self.max_scene_points, replace=False))
            pts = pts[keep]

        verts = _rigid_apply(a["verts_world"][index], T)
        joints = _rigid_apply(a["joints14_world"][index], T)
        pelvis = _rigid_apply(a["pelvis_world"][index][None], T)[0]

        meta = {
            "frame_id": str(a["frame_id"][index]),
            "scene_id": scene_id,
            "camera_id": str(a["camera_id"][index]),
            "pose_class": str(a["pose_class"][index]),
            "distance": float(a["distance"][index]),
            "occlusion": float(a["occlusion"][index]),
            "truncated": bool(a["truncated"][index]),
        }
        return {
            "image": torch.from_numpy(image),
            "K": torch.from_numpy(K),
            "crop_box_xyxy": torch.from_numpy(box.astype(np.float32)),
            "person_box_xyxy": torch.from_numpy(np.array(a["person_box_xyxy"][index], dtype=np.float32)),
            "T_world_to_cam": torch.from_numpy(T),
            "points_cam": torch.from_numpy(np.ascontiguousarray(pts, dtype=np.float32)),
            "verts_cam": torch.from_numpy(verts.astype(np.float32, copy=False)),
            "joints14_cam": torch.from_numpy(joints.astype(np.float32, copy=False)),
            "pelvis_cam": torch.from_numpy(pelvis.astype(np.float32, copy=False)),
            "contact": torch.from_numpy(np.array(a["contact"][index], dtype=bool)),
            "contact_part": torch.from_numpy(np.array(a["contact_part"][index], dtype=np.int64)),
            "index": torch.tensor(index, dtype=torch.int64),
            "meta": meta,
        }


def collate_human_scene(batch: list[dict[str, Any]]) -> dict[str, Any]:
    """Collate items of :class:`HumanSceneDataset` into a batch (see the module docstring).

    Returns fixed-size tensors stacked to (B, ...), ``points_cam`` (P, 3) with P = sum N_i,
    ``points_batch`` (P,) int64, ``points_offsets`` (B + 1,) int64, ``meta`` list of B dicts.
    Raises ValueError naming the key when fixed-size entries differ in shape (e.g. mixed V).
    """
    if not batch:
        raise ValueError("collate_human_scene: empty batch")
    out: dict[str, Any] = {}
    for key in batch[0]:
        if key in ("points_cam", "meta"):
            continue
        vals = [item[key] for item in batch]
        if isinstance(vals[0], torch.Tensor):
            shapes = {tuple(v.shape) for v in vals}
            if len(shapes) > 1:
                raise ValueError(f"collate_human_scene: '{key}' has different shapes in one batch: {sorted(shapes)}")
            out[key] = torch.stack(vals)
        else:
            out[key] = vals
    pts = [item["points_cam"] for item in batch]
    counts = torch.tensor([len(p) for p in pts], dtype=torch.int64)
    out["points_cam"] = torch.cat(pts) if pts else torch.zeros(0, 3)
    out["points_batch"] = torch.repeat_interleave(torch.arange(len(batch), dtype=torch.int64), counts)
    offsets = torch.zeros(len(batch) + 1, dtype=torch.int64)
    torch.cumsum(counts, 0, out=offsets[1:])
    out["points_offsets"] = offsets
    out["meta"] = [item["meta"] for item in batch]
    return out
