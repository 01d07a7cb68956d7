"""The kit's canonical on-disk dataset format (``format_version`` 1): layout, writer and reader.

Every dataset of the kit — the synthetic benchmark now, RICH / PROX importers later — is one folder::

    <root>/dataset.json                  written LAST (atomically): a folder without it is not a dataset
    <root>/manifest.json                 {relative path: sha256 digest} of every content file (below)
    <root>/scenes/<scene_id>/points_world.npy   (M, 3) float32  scanner-like point cloud, world frame, m
                            sdf.npz             signed distance grid (sahmr.geometry.sdf.save_sdf_npz);
                                                optional: absent when the source has none (RICH training
                                                scans), then scene.json says "has_sdf": false and
                                                PenE / ConFE / contact metrics cannot be computed there
                            scene.json          scene metadata (sizes, SDF box, free-form "meta")
                            mesh.ply            optional: the scene mesh (binary little-endian PLY)
    <root>/frames/<split>/<key>.npy     one plain .npy per per-frame array (no pickles: mmap-able)
    <root>/images/<split>/<frame_id>.png         RGB images (any path below root; PNG or JPEG)

``dataset.json``::

    format: "sahmr-dataset", format_version: 1, name: str,
    body_model: {name: str, num_verts: int (V), sha256: str, ...},   # what verts_world / contact index
    splits: {split: n_frames}, scenes: [scene_id, ...] (sorted),
    arrays: {split: {key: {shape: [...], dtype: str}}},
    content_hash: hex sha256 (see below), hash_algorithm: "sha256-manifest-v1",
    generator: {...} (the producer's parameters), created_by: "sahmr <version>"

Per-frame arrays of a split (N frames; V = ``body_model.num_verts``; frame i of every array is the same
frame; ``str`` = numpy unicode ``<U``):

==================  ===========  =======  =========================================================
key                 shape        dtype    meaning
==================  ===========  =======  =========================================================
frame_id            (N,)         str      unique over the whole dataset; ``[A-Za-z0-9][A-Za-z0-9_.+-]*``
image_path          (N,)         str      image file, relative to root (posix, inside root)
scene_id            (N,)         str      one of ``dataset.json`` scenes
camera_id           (N,)         str      frames sharing (scene_id, camera_id) share K, T, image_size
K                   (N, 3, 3)    float32  intrinsics in pixels of the stored image; upper-triangular,
                                          K[2,2] = 1, fx, fy > 0
T_world_to_cam      (N, 4, 4)    float32  rigid world -> OpenCV camera (x right, y down, z forward)
image_size          (N, 2)       int32    [W, H] of the stored image
bbox_xyxy           (N, 4)       float32  tight person box [l, u, r, b] in px (may extend past the border
                                          for truncated people; must overlap the image)
verts_world         (N, V, 3)    float32  GT mesh vertices, world frame, metres
joints14_world      (N, 14, 3)   float32  GT H36M-14 joints (spec §2.2), world frame
pelvis_world        (N, 3)       float32  GT H36M pelvis (row 0 of the 17-joint regressor), world
contact             (N, V)       bool     GT human-scene contact per vertex (all False when unknown)
contact_part        (N, V)       uint8    part id 1..7 (spec §2.4) of contact vertices, else 0
pose_class          (N,)         str      descriptive tag ("sit_chair", ...; "" when unknown)
occlusion           (N,)         float32  fraction of the person hidden by the scene, [0, 1]; NaN unknown
distance            (N,)         float32  camera-pelvis distance ``|T . pelvis_world|``, metres
truncated           (N,)         bool     the person is cut by the image border
==================  ===========  =======  =========================================================

Optional per-frame arrays:

==================  ===========  =======  =========================================================
betas               (N, S)       float32  body-model parameters, world frame (all four or none)
body_pose           (N, P)       float32  axis-angle, P = 3 x body joints
global_orient       (N, 3)       float32  axis-angle
transl              (N, 3)       float32  metres
left_hand_pose      (N, Q)       float32  SMPL-H / SMPL-X full axis-angle hand poses
right_hand_pose     (N, Q)       float32
gender              (N,)         str      "neutral" | "male" | "female"
crop_box_xyxy       (N, 4)       float32  fixed evaluation crop box (RICH test ``test_squared_bbx_lurb``);
                                          rows of NaN = none; the Dataset uses it when not augmenting
==================  ===========  =======  =========================================================

Any other key ``[a-z][a-z0-9_]*`` with leading dimension N and a numeric, bool or str dtype is kept as
an extra (importers' additional annotations).

Holding the real datasets (how importers map them):

* RICH: ``K`` scaled to the stored images (``images_ds4``: ``K[:2] /= 4``; the original scales plain x4,
  no half-pixel shift), ``T_world_to_cam`` from the calibration XML, GT SMPL-H vertices (V = 6890) in the
  world, contact from the packbits files, body params + hand poses + gender, the voxel cloud as
  ``points_world`` (its ``pitch`` in ``scene.json`` meta), the ``*_mysdf`` grid as ``sdf.npz``;
  the pre-cropped 224² test images are stored as images of size 224² with ``K`` mapped into the crop
  (``K_crop = [A; 0 0 1] @ K``, ``A`` = :func:`sahmr.geometry.camera.crop_affine`) and ``crop_box_xyxy``
  = the full crop.
* PROX quantitative: images stored already flipped horizontally (as the model must see them), ``K`` with
  ``K[2,2] = 1``, ``T_world_to_cam = inverse(cam2world)``, GT vertices mapped to the world (any V, e.g.
  SMPL-X 10475 or SMPL-H 6890 after transfer), ``contact`` all False, no body params.

Content hash (``hash_algorithm`` "sha256-manifest-v1"): the files of the dataset — scene files of the
listed scenes, the listed per-frame arrays, every referenced image — each get a digest: sha256 of the
bytes, except ``.npz`` archives, whose digest is sha256 over their members in name order
(``name`` NUL ``sha256(member bytes)``), so zip timestamps do not matter. ``manifest.json`` maps the
relative path to the digest; ``content_hash`` = sha256 of the lines ``"<digest>  <relative path>\\n"``
in sorted path order. Same content -> same hash, whatever the machine or write time.

Writing: :class:`DatasetWriter` (scenes, images, splits, then :meth:`DatasetWriter.finalize`). Every file
is written atomically (temporary file + ``os.replace``) and ``dataset.json`` last, so an interrupted
write never looks complete. Reading: :func:`open_dataset` -> :class:`DatasetReader`.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import zipfile
from collections import OrderedDict
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np

from sahmr.atomic import atomic_write as _atomic_write
from sahmr.geometry.sdf import SDFGrid, load_sdf_npz, save_sdf_npz

__all__ = [
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "HASH_ALGORITHM",
    "FieldSpec",
    "FIELDS",
    "REQUIRED_KEYS",
    "BODY_PARAM_KEYS",
    "NUM_PARTS",
    "DatasetFormatError",
    "DatasetWriter",
    "DatasetReader",
    "SplitArrays",
    "open_dataset",
    "write_image",
    "read_image",
    "write_scene",
    "write_ply",
    "coerce_split_arrays",
    "file_digest",
    "compute_manifest",
    "content_hash_of",
    "is_valid_id",
]

FORMAT_NAME = "sahmr-dataset"
FORMAT_VERSION = 1
HASH_ALGORITHM = "sha256-manifest-v1"
DATASET_JSON = "dataset.json"
MANIFEST_JSON = "manifest.json"
NUM_PARTS = 7  # contact parts 1..7 (spec §2.4); 0 = none
NUM_JOINTS14 = 14

_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]*$")
_SPLIT_RE = re.compile(r"^[a-z][a-z0-9_]*$")
_KEY_RE = re.compile(r"^[a-z][a-z0-9_]*$")


class DatasetFormatError(ValueError):
    """A dataset (or arrays handed to the writer) does not follow the format; the message names where."""


@dataclass(frozen=True)
class FieldSpec:
    """One per-frame array: ``shape`` entries are ints or symbols ("N" frames, "V" vertices, others free
    but constant over the split); ``dtype`` one of float32, int32, uint8, bool, str."""

    name: str
    shape: tuple
    dtype: str
    group: str  # "required" | "body_params" | "optional"
    doc: str = ""


FIELDS: dict[str, FieldSpec] = {
    f.name: f
    for f in [
        FieldSpec("frame_id", ("N",), "str", "required", "unique frame id"),
        FieldSpec("image_path", ("N",), "str", "required", "image file relative to root"),
        FieldSpec("scene_id", ("N",), "str", "required", "scene id"),
        FieldSpec("camera_id", ("N",), "str", "required", "camera id within the scene"),
        FieldSpec("K", ("N", 3, 3), "float32", "required", "intrinsics, px of the stored image"),
        FieldSpec("T_world_to_cam", ("N", 4, 4), "float32", "required", "world -> OpenCV camera"),
        FieldSpec("image_size", ("N", 2), "int32", "required", "[W, H]"),
        FieldSpec("bbox_xyxy", ("N", 4), "float32", "required", "tight person box, px"),
        FieldSpec("verts_world", ("N", "V", 3), "float32", "required", "GT vertices, world"),
        FieldSpec("joints14_world", ("N", NUM_JOINTS14, 3), "float32", "required", "GT H36M-14 joints, world"),
        FieldSpec("pelvis_world", ("N", 3), "float32", "required", "GT H36M pelvis, world"),
        FieldSpec("contact", ("N", "V"), "bool", "required", "GT contact per vertex"),
        FieldSpec("contact_part", ("N", "V"), "uint8", "required", "part id 1..7 of contact vertices, else 0"),
        FieldSpec("pose_class", ("N",), "str", "required", "pose tag"),
        FieldSpec("occlusion", ("N",), "float32", "required", "occluded fraction [0, 1], NaN unknown"),
        FieldSpec("distance", ("N",), "float32", "required", "camera-pelvis distance, m"),
        FieldSpec("truncated", ("N",), "bool", "required", "cut by the image border"),
        FieldSpec("betas", ("N", "S"), "float32", "body_params", "shape parameters"),
        FieldSpec("body_pose", ("N", "P"), "float32", "body_params", "body pose, axis-angle"),
        FieldSpec("global_orient", ("N", 3), "float32", "body_params", "root orientation, axis-angle, world"),
        FieldSpec("transl", ("N", 3), "float32", "body_params", "translation, world, m"),
        FieldSpec("left_hand_pose", ("N", "Q"), "float32", "optional", "left hand pose, axis-angle"),
        FieldSpec("right_hand_pose", ("N", "Q"), "float32", "optional", "right hand pose, axis-angle"),
        FieldSpec("gender", ("N",), "str", "optional", "neutral | male | female"),
        FieldSpec("crop_box_xyxy", ("N", 4), "float32", "optional", "fixed eval crop box, NaN = none"),
    ]
}
REQUIRED_KEYS = tuple(k for k, f in FIELDS.items() if f.group == "required")
BODY_PARAM_KEYS = tuple(k for k, f in FIELDS.items() if f.group == "body_params")


def dtype_name(dtype: np.dtype) -> str:
    """The format's dtype name: "str" for unicode strings, else numpy's name (float32, bool, ...)."""
    return "str" if np.dtype(dtype).kind == "U" else np.dtype(dtype).name


def is_valid_id(s: str) -> bool:
    """Frame / scene / camera ids: ``[A-Za-z0-9][A-Za-z0-9_.+-]*`` (safe as file names)."""
    return isinstance(s, str) and bool(_ID_RE.match(s))


def _check_id(kind: str, s: str) -> None:
    if not is_valid_id(s):
        raise DatasetFormatError(f"{kind} {s!r} is not a valid id: use letters, digits and _ . + - (not first)")


def _check_split_name(split: str) -> None:
    if not isinstance(split, str) or not _SPLIT_RE.match(split):
        raise DatasetFormatError(f"split name {split!r} is not valid: use [a-z][a-z0-9_]* (e.g. train, val, test)")


# ------------------------------------------------------------------------------------- file writing


_NUM_LIST_RE = re.compile(r"\[\s+([-+0-9.eE,\s]+?)\s+\]")


def _dumps(obj: Any) -> str:
    """Indented, key-sorted JSON with short numeric lists on one line (shapes, boxes)."""
    text = json.dumps(obj, indent=2, sort_keys=True)
    return _NUM_LIST_RE.sub(lambda m: "[" + ", ".join(x.strip() for x in m.group(1).split(",")) + "]", text) + "\n"


def _write_json(path: Path, obj: Any) -> Path:
    data = _dumps(obj).encode()
    return _atomic_write(path, lambda f: f.write(data))


def _write_npy(path: Path, array: np.ndarray) -> Path:
    return _atomic_write(path, lambda f: np.save(f, np.ascontiguousarray(array), allow_pickle=False))


def _resolve_rel(root: Path, rel_path: str, what: str = "path") -> Path:
    """root / rel_path, refusing absolute paths and paths escaping root."""
    p = PurePosixPath(rel_path)
    if p.is_absolute() or ".." in p.parts or not p.parts or "\\" in rel_path:
        raise DatasetFormatError(f"{what} {rel_path!r} must be a relative posix path inside the dataset root")
    return root / Path(*p.parts)


def write_image(root: str | os.PathLike, rel_path: str, rgb_uint8: np.ndarray, *, compress_level: int = 1) -> Path:
    """Write an RGB image atomically to ``root / rel_path`` (PNG, or JPEG by extension). Returns the path.

    rgb_uint8: (H, W, 3) uint8. compress_level: PNG zlib level (1 = fast writes, ~2x larger than 9; decode
    speed is about the same). Output bytes are a pure function of the pixels (no timestamps).
    Safe to call from worker processes (each call is independent).
    """
    from PIL import Image

    rgb = np.asarray(rgb_uint8)
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise DatasetFormatError(f"write_image({rel_path}): expected (H, W, 3) uint8 RGB, got {rgb.shape} {rgb.dtype}")
    path = _resolve_rel(Path(root), rel_path, "image path")
    suffix = path.suffix.lower()
    if suffix == ".png":
        kwargs = dict(format="PNG", compress_level=compress_level)
    elif suffix in (".jpg", ".jpeg"):
        kwargs = dict(format="JPEG", quality=95)
    else:
        raise DatasetFormatError(f"write_image({rel_path}): unsupported extension {suffix!r}; use .png or .jpg")
    im = Image.fromarray(np.ascontiguousarray(rgb))
    return _atomic_write(path, lambda f: im.save(f, **kwargs))


def read_image(root: str | os.PathLike, rel_path: str) -> np.ndarray:
    """(H, W, 3) uint8 RGB of ``root / rel_path``."""
    from PIL import Image

    path = _resolve_rel(Path(root), rel_path, "image path")
    with Image.open(path) as im:
        if im.mode != "RGB":
            im = im.convert("RGB")
        return np.asarray(im)


def write_ply(path: str | os.PathLike, vertices: np.ndarray, faces: np.ndarray, vertex_colors: np.ndarray | None = None) -> Path:
    """Binary little-endian PLY (float32 x y z [uchar r g b], faces as uchar count + int32 indices), atomic.

    vertices: (V, 3); faces: (F, 3) int; vertex_colors: (V, 3) or (V, 4) uint8, optional (RGB kept).
    Deterministic bytes; readable by trimesh / Open3D / MeshLab.
    """
    v = np.asarray(vertices, dtype=np.float32)
    f = np.asarray(faces)
    if v.ndim != 2 or v.shape[1] != 3 or f.ndim != 2 or f.shape[1] != 3 or f.dtype.kind not in "iu":
        raise DatasetFormatError(
            f"write_ply({path}): need vertices (V, 3) and integer faces (F, 3), got {v.shape}, {f.shape} {f.dtype}"
        )
    if len(f) and (f.min() < 0 or f.max() >= len(v)):
        raise DatasetFormatError(f"write_ply({path}): face indices outside [0, {len(v) - 1}]")
    header = ["ply", "format binary_little_endian 1.0", f"element vertex {len(v)}",
              "property float x", "property float y", "property float z"]  # fmt: skip
    vfields = [("xyz", "<f4", (3,))]
    if vertex_colors is not None:
        c = np.asarray(vertex_colors)
        if c.shape not in ((len(v), 3), (len(v), 4)) or c.dtype != np.uint8:
            raise DatasetFormatError(f"write_ply({path}): vertex_colors must be (V, 3|4) uint8, got {c.shape} {c.dtype}")
        header += ["property uchar red", "property uchar green", "property uchar blue"]
        vfields.append(("rgb", "u1", (3,)))
    header += [f"element face {len(f)}", "property list uchar int vertex_indices", "end_header"]
    vrec = np.empty(len(v), dtype=vfields)
    vrec["xyz"] = v
    if vertex_colors is not None:
        vrec["rgb"] = c[:, :3]
    frec = np.empty(len(f), dtype=[("n", "u1"), ("idx", "<i4", (3,))])
    frec["n"] = 3
    frec["idx"] = f
    payload = ("\n".join(header) + "\n").encode("ascii") + vrec.tobytes() + frec.tobytes()
    return _atomic_write(Path(path), lambda fp: fp.write(payload))


def write_scene(
    root: str | os.PathLike,
    scene_id: str,
    points_world: np.ndarray,
    sdf_grid: SDFGrid | None,
    mesh: Any = None,
    meta: Mapping[str, Any] | None = None,
) -> Path:
    """Write one scene's files under ``root/scenes/<scene_id>/`` (atomically, file by file).

    points_world: (M, 3) float, M >= 1, world frame, metres (stored float32).
    sdf_grid: the scene's SDF (:class:`sahmr.geometry.sdf.SDFGrid`), or None when the source has none
        (evaluation's PenE / ConFE then refuse the scene; training does not need it).
    mesh: optional ``trimesh.Trimesh`` (vertex colours kept) or ``(vertices (Nv, 3), faces (F, 3)[, vertex
        colours (Nv, 3) uint8])`` -> ``mesh.ply`` (world frame).
    meta: optional JSON-serialisable dict stored in ``scene.json`` under "meta" (e.g. RICH voxel pitch).
    Returns the scene folder. Usable from worker processes; the scene becomes part of the dataset when
    a split references it or it was written through :meth:`DatasetWriter.write_scene`.
    """
    _check_id("scene id", scene_id)
    pts = np.asarray(points_world)
    if pts.ndim != 2 or pts.shape[1] != 3 or len(pts) == 0 or pts.dtype.kind not in "fiu":
        raise DatasetFormatError(
            f"scene {scene_id}: points_world must be a non-empty (M, 3) float array, got {pts.shape} {pts.dtype}"
        )
    pts = pts.astype(np.float32)
    if not np.isfinite(pts).all():
        raise DatasetFormatError(f"scene {scene_id}: points_world has {int((~np.isfinite(pts)).any(1).sum())} non-finite points")
    if sdf_grid is not None and not isinstance(sdf_grid, SDFGrid):
        raise DatasetFormatError(
            f"scene {scene_id}: sdf_grid must be a sahmr.geometry.sdf.SDFGrid or None, got {type(sdf_grid).__name__}"
        )
    d = Path(root) / "scenes" / scene_id
    d.mkdir(parents=True, exist_ok=True)
    _write_npy(d / "points_world.npy", pts)
    if sdf_grid is not None:
        save_sdf_npz(d / "sdf.npz", sdf_grid)
    else:
        (d / "sdf.npz").unlink(missing_ok=True)
    has_mesh = mesh is not None
    if has_mesh:
        if isinstance(mesh, tuple):
            write_ply(d / "mesh.ply", *mesh)  # (vertices, faces[, vertex_colors])
        elif hasattr(mesh, "vertices") and hasattr(mesh, "faces"):
            visual = getattr(mesh, "visual", None)
            colors = None
            if getattr(visual, "kind", None) == "vertex":
                colors = np.asarray(visual.vertex_colors, dtype=np.uint8)
            write_ply(d / "mesh.ply", np.asarray(mesh.vertices), np.asarray(mesh.faces), colors)
        else:
            raise DatasetFormatError(
                f"scene {scene_id}: mesh must be a trimesh.Trimesh or (vertices, faces[, colors]), got {type(mesh).__name__}"
            )
    else:
        (d / "mesh.ply").unlink(missing_ok=True)
    info = {
        "scene_id": scene_id,
        "num_points": int(len(pts)),
        "has_sdf": sdf_grid is not None,
        "sdf_dims": list(sdf_grid.dims) if sdf_grid is not None else None,
        "sdf_min_world": [float(x) for x in sdf_grid.min_world] if sdf_grid is not None else None,
        "sdf_max_world": [float(x) for x in sdf_grid.max_world] if sdf_grid is not None else None,
        "has_mesh": has_mesh,
        "meta": dict(meta or {}),
    }
    _write_json(d / "scene.json", info)
    return d


# ------------------------------------------------------------------------------------ array coercion


def _coerce(key: str, value: Any, dtype: str) -> np.ndarray:
    a = np.asarray(value)
    kind = a.dtype.kind
    if dtype == "str":
        if kind == "U":
            return a
        if kind == "S":
            return a.astype(str)
        if kind == "O" and all(isinstance(x, str) for x in a.reshape(-1)):
            return np.array(a.tolist(), dtype=str) if a.size else np.zeros(a.shape, dtype="<U1")
        raise DatasetFormatError(f"array '{key}': expected strings, got dtype {a.dtype}")
    if dtype == "float32":
        if kind in "fiu":
            return a.astype(np.float32, copy=False)
        raise DatasetFormatError(f"array '{key}': expected a float array, got dtype {a.dtype}")
    if dtype in ("int32", "uint8"):
        if kind not in "iu":
            raise DatasetFormatError(f"array '{key}': expected an integer array, got dtype {a.dtype}")
        info = np.iinfo(dtype)
        if a.size and (a.min() < info.min or a.max() > info.max):
            raise DatasetFormatError(f"array '{key}': values outside the {dtype} range [{info.min}, {info.max}]")
        return a.astype(dtype, copy=False)
    if dtype == "bool":
        if kind == "b":
            return a
        if kind in "iu" and (a.size == 0 or ((a == 0) | (a == 1)).all()):
            return a.astype(bool)
        raise DatasetFormatError(f"array '{key}': expected a bool array (or 0/1 integers), got dtype {a.dtype}")
    raise AssertionError(dtype)


def coerce_split_arrays(arrays: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """Convert per-frame arrays to the format's dtypes (float -> float32, 0/1 -> bool, str lists -> <U).

    Raises DatasetFormatError for values that cannot be converted safely (object arrays of non-strings,
    out-of-range integers, floats where integers are expected). Shapes are checked by the validator.
    """
    out: dict[str, np.ndarray] = {}
    for key, value in arrays.items():
        if not isinstance(key, str) or (not _KEY_RE.match(key) and key not in FIELDS):
            raise DatasetFormatError(f"array key {key!r} is not valid: use [a-z][a-z0-9_]* (or a format key)")
        if key in FIELDS:
            out[key] = _coerce(key, value, FIELDS[key].dtype)
        else:
            a = np.asarray(value)
            if a.dtype.kind not in "biufU":
                if a.dtype.kind == "O" and all(isinstance(x, str) for x in a.reshape(-1)):
                    a = np.array(a.tolist(), dtype=str)
                else:
                    raise DatasetFormatError(f"extra array '{key}': dtype {a.dtype} is not numeric, bool or str")
            out[key] = a
    return out


# ---------------------------------------------------------------------------------------- hashing


def file_digest(path: str | os.PathLike) -> str:
    """Hex digest of one dataset file: sha256 of the bytes; for ``.npz``, of its members (see module doc)."""
    path = Path(path)
    if path.suffix == ".npz":
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


# ------------------------------------------------------------------------------------------- writer


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
        _check_id("scene id", scene_id)
        return self.root / "scenes" / scene_id

    def write_scene(self, scene_id: str, points_world: np.ndarray, sdf_grid: SDFGrid | None, mesh: Any = None,
                    meta: Mapping[str, Any] | None = None) -> Path:  # fmt: skip
        """See :func:`write_scene`; also registers the scene (listed even if no frame uses it)."""
        d = write_scene(self.root, scene_id, points_world, sdf_grid, mesh=mesh, meta=meta)
        self._scenes.add(scene_id)
        return d

    # images ---------------------------------------------------------------------------------
    def image_path(self, split: str, frame_id: str, ext: str = ".png") -> str:
        """Relative path where frame `frame_id` of `split` stores its image: ``images/<split>/<frame_id>.png``."""
        _check_split_name(split)
        _check_id("frame id", frame_id)
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
        from sahmr.data.validate import check_split_arrays, format_problems

        _check_split_name(split)
        clean = coerce_split_arrays(arrays)
        problems = [p for p in check_split_arrays(clean, split=split, num_verts=self.body_model_meta["num_verts"])
                    if p.severity == "error"]  # fmt: skip
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
            _write_npy(d / f"{key}.npy", a)
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
        missing = [s for s in scenes if not (self.root / "scenes" / s / "points_world.npy").is_file()
                   or (scene_has_sdf(self.root, s) and not (self.root / "scenes" / s / "sdf.npz").is_file())]  # fmt: skip
        if missing:
            raise DatasetFormatError(f"{self.root}: frames reference scene(s) never written with write_scene(): {missing[:10]}")
        image_paths = sorted(set().union(*(set(s["image_paths"]) for s in self._splits.values())))
        missing_img = [p for p in image_paths if not _resolve_rel(self.root, p, "image path").is_file()]
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
            from sahmr.data.validate import format_problems, validate_dataset

            errors = [p for p in validate_dataset(self.root, check_hash=False, meta=meta) if p.severity == "error"]
            if errors:
                raise DatasetFormatError(f"{self.root}: finalize() found {len(errors)} problem(s):\n" + format_problems(errors))
        manifest = compute_manifest(self.root, dataset_files(self.root, meta, image_paths), progress=progress)
        meta["content_hash"] = content_hash_of(manifest)
        _write_json(self.root / MANIFEST_JSON, manifest)
        _write_json(self.root / DATASET_JSON, meta)
        return meta


# ------------------------------------------------------------------------------------------- reader


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
        raise DatasetFormatError(f"{path}: format_version {version!r} is not supported (this sahmr reads {FORMAT_VERSION})")
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
            try:
                a = np.load(path, mmap_mode="r", allow_pickle=False)
            except FileNotFoundError:
                raise FileNotFoundError(f"{path}: listed in dataset.json but missing") from None
            except ValueError as e:
                raise DatasetFormatError(f"{path}: not a plain .npy array ({e})") from e
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
            a = np.load(path, mmap_mode="r", allow_pickle=False)
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
        return _resolve_rel(self.root, rel_path, "image path")


def open_dataset(root: str | os.PathLike, **kwargs: Any) -> DatasetReader:
    """Open a finished dataset folder for reading (see :class:`DatasetReader`)."""
    return DatasetReader(root, **kwargs)
