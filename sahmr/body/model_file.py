"""The kit's body-model file: a plain ``.npz`` (no pickles) + a JSON sidecar of metadata.

Layout (V vertices, K kinematic joints, S shape components, F faces):

====================  ==================  =====================================================
key                   shape / dtype       meaning
====================  ==================  =====================================================
v_template            (V, 3) float        rest mesh (SMPL axes: y up, facing +z, metres)
shapedirs             (V, 3, S) float     shape blend shapes
posedirs              (V, 3, 9(K-1))      pose-corrective blend shapes (zeros for sahmr-open)
J_regressor           (K, V) float        kinematic joints from the shaped rest mesh
weights               (V, K) float        linear-blend-skinning weights (rows sum to 1)
kintree_table         (2, K) int64        row 0 = parent of each joint (root: -1)
f                     (F, 3) int64        triangles
sahmr_eval_regressor  (17, V) float       H36M-style joints (spec §2.2): row 0 = pelvis
sahmr_part_ids        (V,) int64          contact part per vertex, 0 = none, 1..7 (spec §2.4)
sahmr_down_idx_<l>    (V_l,) int64        level l vertices as indices into level l-1 (sorted)
sahmr_up_idx_<l>      (V_{l-1}, 3) int64  level l-1 vertices as barycentric combos of level l
sahmr_up_w_<l>        (V_{l-1}, 3) float  ... their weights (rows sum to 1)
sahmr_faces_<l>       (F_l, 3) int64      triangles of level l (indices into level l)
====================  ==================  =====================================================

Levels: ``l`` = 1 (mid, SMPL 1723) and 2 (coarse, SMPL 431); level 0 is the full mesh. SMPL-H /
SMPL-X files carry their extra official keys (hand PCA, landmarks, expression dirs) unchanged.
The JSON sidecar (``<name>.json``) holds ``model_type`` (smpl|smplh|smplx), ``gender``, ``source``,
``name``, joint names, build parameters and SHA-256 checksums of the npz.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from sahmr.atomic import atomic_write
from sahmr.reading import FileFormatError, load_npz, read_json

MODEL_TYPES = ("smpl", "smplh", "smplx")
SMPL_REQUIRED = ("v_template", "shapedirs", "posedirs", "J_regressor", "weights", "kintree_table", "f")
SAHMR_REQUIRED = ("sahmr_eval_regressor", "sahmr_part_ids")
NUM_LEVELS = 2  # mid, coarse

SMPL_JOINT_NAMES = (
    "pelvis",
    "left_hip",
    "right_hip",
    "spine1",
    "left_knee",
    "right_knee",
    "spine2",
    "left_ankle",
    "right_ankle",
    "spine3",
    "left_foot",
    "right_foot",
    "neck",
    "left_collar",
    "right_collar",
    "head",
    "left_shoulder",
    "right_shoulder",
    "left_elbow",
    "right_elbow",
    "left_wrist",
    "right_wrist",
    "left_hand",
    "right_hand",
)
SMPL_PARENTS = (-1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19, 20, 21)

H36M_J17_NAMES = (
    "pelvis",
    "right_hip",
    "right_knee",
    "right_ankle",
    "left_hip",
    "left_knee",
    "left_ankle",
    "torso",
    "neck",
    "nose",
    "head",
    "left_shoulder",
    "left_elbow",
    "left_wrist",
    "right_shoulder",
    "right_elbow",
    "right_wrist",
)
# H36M 17 -> the 14 evaluation joints (spec §2.2): R_Ankle, R_Knee, R_Hip, L_Hip, L_Knee, L_Ankle,
# R_Wrist, R_Elbow, R_Shoulder, L_Shoulder, L_Elbow, L_Wrist, Neck, Head. The pelvis (0) is not among them.
H36M_J17_TO_J14 = (3, 2, 1, 4, 5, 6, 16, 15, 14, 11, 12, 13, 8, 10)
H36M_PELVIS = 0


class BodyModelFileError(ValueError):
    """A body-model file is missing, malformed or of an unexpected layout."""


@dataclass
class BodyModelFile:
    """Arrays + metadata of one body-model file. ``arrays`` keys follow the module docstring."""

    arrays: dict[str, np.ndarray]
    meta: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None  # where it was read from, if it was

    @property
    def model_type(self) -> str:
        return self.meta.get("model_type", "smpl")

    @property
    def num_verts(self) -> int:
        return int(self.arrays["v_template"].shape[0])

    def validate(self, where: str = "body model") -> None:
        """Check keys and shapes; raise BodyModelFileError naming the key and the expectation."""
        a = self.arrays
        missing = [k for k in SMPL_REQUIRED + SAHMR_REQUIRED if k not in a]
        if missing:
            raise BodyModelFileError(f"{where}: missing arrays {missing}")
        if self.model_type not in MODEL_TYPES:
            raise BodyModelFileError(f"{where}: model_type {self.model_type!r} not in {MODEL_TYPES}")
        V = self.num_verts
        K = a["kintree_table"].shape[1]
        expect = {
            "v_template": (V, 3),
            "weights": (V, K),
            "J_regressor": (K, V),
            "f": (None, 3),
            "sahmr_eval_regressor": (17, V),
            "sahmr_part_ids": (V,),
        }
        for k, shp in expect.items():
            got = a[k].shape
            if len(got) != len(shp) or any(s is not None and s != g for s, g in zip(shp, got)):
                raise BodyModelFileError(f"{where}: array '{k}' has shape {got}, expected {shp} (V={V}, K={K})")
        if a["shapedirs"].shape[:2] != (V, 3):
            raise BodyModelFileError(f"{where}: 'shapedirs' shape {a['shapedirs'].shape}, expected ({V}, 3, S)")
        if a["f"].min() < 0 or a["f"].max() >= V:
            raise BodyModelFileError(f"{where}: faces index outside [0, {V})")
        prev = V
        for lvl in range(1, NUM_LEVELS + 1):
            keys = [f"sahmr_down_idx_{lvl}", f"sahmr_up_idx_{lvl}", f"sahmr_up_w_{lvl}", f"sahmr_faces_{lvl}"]
            if any(k not in a for k in keys):
                raise BodyModelFileError(f"{where}: missing hierarchy arrays of level {lvl}: {keys}")
            down = a[keys[0]]
            if down.ndim != 1 or down.min() < 0 or down.max() >= prev or np.any(np.diff(down) <= 0):
                raise BodyModelFileError(f"{where}: '{keys[0]}' must be strictly increasing indices into {prev} vertices")
            if a[keys[1]].shape != (prev, 3) or a[keys[2]].shape != (prev, 3):
                raise BodyModelFileError(f"{where}: '{keys[1]}'/'{keys[2]}' must have shape ({prev}, 3)")
            prev = down.shape[0]
        for k in ("v_template", "shapedirs", "posedirs", "J_regressor", "weights", "sahmr_eval_regressor"):
            if k in a and np.issubdtype(a[k].dtype, np.floating) and not np.all(np.isfinite(a[k])):
                raise BodyModelFileError(f"{where}: '{k}' has NaN/Inf values ({int((~np.isfinite(a[k])).sum())} of {a[k].size})")
        parents = np.asarray(a["kintree_table"])[0].astype(np.int64)
        # a tree rooted at joint 0 (parent -1, or uint32 max in official files) with every parent listed before its child
        if K and (0 <= parents[0] < 2**31 or np.any(parents[1:] < 0) or np.any(parents[1:] >= np.arange(1, K))):
            raise BodyModelFileError(
                f"{where}: 'kintree_table' is not a kinematic tree (root 0 with parent -1, each parent before its child): parents {parents.tolist()}"
            )


def sha256_file(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fp:
        for chunk in iter(lambda: fp.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def write_npz_deterministic(file, arrays: dict[str, np.ndarray]) -> None:
    """Like ``np.savez`` but byte-identical for identical arrays (fixed zip timestamps, sorted keys),
    so a rebuilt model has the same checksum."""
    import zipfile

    with zipfile.ZipFile(file, "w", compression=zipfile.ZIP_STORED) as zf:
        for key in sorted(arrays):
            info = zipfile.ZipInfo(f"{key}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            with zf.open(info, "w", force_zip64=True) as fp:
                np.lib.format.write_array(fp, np.ascontiguousarray(arrays[key]), allow_pickle=False)


def save_body_model(model: BodyModelFile, path: str | Path) -> Path:
    """Write ``<path>.npz`` and ``<path>.json`` as a pair; returns the npz path.

    The JSON records the npz's sha256 and is renamed into place first, the npz second, so a run killed at
    any point leaves the old pair, or a pair whose hashes disagree (refused by :func:`load_body_model_file`,
    which says to re-run), or the new pair — never a mismatched pair taken as valid."""
    import io

    path = Path(path).with_suffix(".npz")
    model.validate(str(path))
    for k, v in model.arrays.items():
        if np.asarray(v).dtype == object:
            raise BodyModelFileError(f"{path}: array '{k}' has dtype object; only plain arrays are stored")

    buf = io.BytesIO()
    write_npz_deterministic(buf, model.arrays)
    data = buf.getvalue()
    meta = dict(model.meta)
    meta["npz_sha256"] = hashlib.sha256(data).hexdigest()
    meta["num_verts"] = model.num_verts
    atomic_write(path.with_suffix(".json"), lambda f: f.write((json.dumps(meta, indent=2, sort_keys=True) + "\n").encode()))
    atomic_write(path, lambda f: f.write(data))
    return path


def load_body_model_file(path: str | Path) -> BodyModelFile:
    """Read a body-model ``.npz`` (+ optional ``.json``) without unpickling anything."""
    path = Path(path)
    what = "a body-model .npz written by `sahmr body import` or `sahmr body build-open`"
    try:
        arrays = load_npz(path, what)
    except FileFormatError as e:
        raise BodyModelFileError(str(e)) from None
    meta_path = path.with_suffix(".json")
    meta = read_json(meta_path, f"the metadata of {path.name}") if meta_path.is_file() else {}
    if not isinstance(meta, dict):
        raise BodyModelFileError(f"{meta_path}: expected a JSON object (the metadata of {path.name})")
    recorded = meta.get("npz_sha256")
    if recorded is not None and recorded != sha256_file(path):
        raise BodyModelFileError(
            f"{path}: its sha256 differs from npz_sha256 in {meta_path.name}: the pair was not written together "
            "(a killed import or build, or a file replaced by hand); re-run the command that wrote it"
        )
    model = BodyModelFile(arrays=arrays, meta=meta, path=path)
    model.validate(str(path))
    return model
