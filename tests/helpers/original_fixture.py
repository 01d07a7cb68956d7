"""Tiny RICH and PROX-quantitative folders in the ORIGINAL SA-HMR on-disk formats, plus the truth they hold.

Written from ``/work/shared/reference/original-spec.md`` §1.1-§1.6, §2.1 and its errata (no code of the
original is used). Everything is small (≈2,000 scene points per scan, SDF grids of dim 12-20, a handful of
frames) so that writing both folders takes well under 5 s. The truth objects returned by the writers hold
exactly what was written (values and dtypes), so importer tests can compare with ``==`` where the format is
lossless (PNG, npy, pickle, binary PLY, XML written float32-exact) and with the PIL decoding for JPEGs.

Frames: world frame z up (metres). RICH and PROX GT meshes are SMPL-X sized (10,475 vertices) but are
random "body blobs" (points in a 0.4 x 0.3 x 1.7 m box) with random triangles, not real bodies; SMPL-H
(6,890-vertex) GT is obtained with the fixture's deformation-transfer matrix ``mtx[:, :10475] @ V``.

Layout written by :func:`write_rich_fixture` under ``root`` (RICH_ROOT)::

    models/smplh/SMPLH_{MALE,FEMALE}.pkl                       official layout (chumpy objects) SMPL-H
    models/model_transfer/smplx2smplh_deftrafo_setup.pkl       {"mtx": csr (6890, 20950), ...}
    sahmr_support/scene_info/<cap>/calibration/<cam:03d>.xml  OpenCV XML: CameraMatrix, Intrinsics, Distortion
    sahmr_support/scene_info/<cap>/<scan>..._world.npy         {"points", "pitch"} (+ one ignored non-_world file)
    sahmr_support/scene_info/<cap>/<scan>_mysdf.{json,npy}     SDF grids of the 4 test scans
    sahmr_support/test_split/meta/test3116.npy                 object array of 4 meta dicts
    sahmr_support/test_split/image/<img_key>.png               224x224 crops
    sahmr_support/test_split/gt_smplx_mesh/<img_key>.ply       SMPL-X GT, world frame
    sahmr_support/test_split/contact/<seq>/cam_XX/<frame>.npy  packbits of (6890,) bools
    sahmr_support/{train,val}_split/meta/{idx2meta,img2gtbbx}.pkl
    sahmr_support/{train,val}_split/contact/<seq>/cam_XX/<frame>_XX.npy
    images_ds4/{train,val}/<seq>/cam_XX/<frame>_XX.jpeg         1028x752 (752x1028 portrait)
    bodies/{train,val}/<seq>/cam_XX/<frame>_XX.pkl              dict of 1-D SMPL-H params

Layout written by :func:`write_prox_fixture` under ``root`` (PROX_QUANT_ROOT)::

    sahmr_support/meta/mosh_mesh_test.pkl                      list of 3 meta dicts
    sahmr_support/img2gtbbx/mosh_mesh.pkl                      img_key -> tight box in FLIPPED image coords
    sahmr_support/image/vicon_03301_01/Color/<stem>.jpg         1920x1080, mirrored (as on disk)
    sahmr_support/gt_mosh_mesh/vicon_03301_01/results/<stem>/000.ply   SMPL-X GT, camera frame
    sahmr_support/vicon/calibration/{Color,cam2world_vicon}.json
    sahmr_support/vicon/vicon_voxel_world.npy, vicon/vicon.json, vicon/vicon_sdf.npy

All SDF grids hold the analytic linear field :func:`sdf_field` (trilinear interpolation reproduces it up to
the storage rounding, and any axis permutation changes the values).

The deformation-transfer matrix is always the one of :data:`DEFTRAFO_SEED` (it is a model file shared by
both datasets); the ``seed`` arguments of the dataset writers vary everything else.
"""

from __future__ import annotations

import json
import os
import pickle
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import scipy.sparse
from PIL import Image

try:  # the original reads/writes images with OpenCV; fall back to PIL where it is not installed
    import cv2
except ImportError:  # pragma: no cover - depends on the environment
    cv2 = None

N_SMPLX = 10475
N_SMPLH = 6890
N_DEFTRAFO_COLS = 2 * N_SMPLX  # 20950
DEFTRAFO_SEED = 0
SQUARE_PAD_PX = 206.0  # spec §1.3 (inferred): square side = max(w, h) + 206 raw px
RICH_RAW_LANDSCAPE = (4112, 3008)  # (W, H)
RICH_RAW_PORTRAIT = (3008, 4112)
RICH_DS4_LANDSCAPE = (1028, 752)
RICH_DS4_PORTRAIT = (752, 1028)
PORTRAIT_CAMS = ("Pavallion_3", "Pavallion_5")
EXCLUDED_SEQ = "LectureHall_009_021_reparingprojector1"
SAMPLE_INTERVAL = {"train": 15, "val": 30}
PROX_SIZE = (1920, 1080)  # (W, H)
CROP = 224


def sdf_field(points) -> np.ndarray:
    """The analytic field stored in every SDF grid: f(x, y, z) = 0.5 x - 0.25 y + z - 0.3 (metres).

    points: (..., 3) world coordinates -> (...) float64.
    """
    p = np.asarray(points, np.float64)
    return 0.5 * p[..., 0] - 0.25 * p[..., 1] + p[..., 2] - 0.3


# ------------------------------------------------------------------------------------------------ truth


@dataclass
class SdfTruth:
    """One SDF grid as written (spec §1.2). Node ``(i, j, k)`` of ``values`` sits at
    ``min + (i, j, k) * (max - min) / (dim - 1)``; array axes are (x, y, z)."""

    json_path: Path
    npy_path: Path
    min: np.ndarray  # (3,) float64, exactly representable in float32 (the original rounds to float32)
    max: np.ndarray  # (3,) float64, idem
    dim: int  # nodes per axis
    values: np.ndarray  # (dim, dim, dim) float64: exactly the stored values (after the storage dtype rounding)
    stored_shape: tuple  # (dim**3,) "flat" or (dim, dim, dim) "cube"
    stored_dtype: np.dtype  # float32 or float64


@dataclass
class SceneCloudTruth:
    """One voxelised scene cloud ``{"points", "pitch"}`` saved with ``np.save`` (pickled dict)."""

    scene_key: str  # e.g. "Gym_scan_table_camcoord" (stem truncated after "camcoord"), "vicon" for PROX
    path: Path
    points: np.ndarray  # (N, 3) world frame, float32 or float64 exactly as written (voxel centres)
    pitch: np.ndarray  # (1,) or (3,) float64; pitch[0] = voxel size (0.05)


@dataclass
class RichCameraTruth:
    """One RICH calibration XML. Values are float32 exactly as the original reads them."""

    cam_key: str  # f"{cap_name}_{int(stem)}", e.g. "Gym_7"
    cap_name: str
    cam_id: int
    xml_path: Path
    T_w2c: np.ndarray  # (4, 4) float32, last row [0, 0, 0, 1]
    K: np.ndarray  # (3, 3) float32, raw full-resolution pixels
    distortion: np.ndarray  # (5,) float32, nonzero (ignored by the original)
    image_size: tuple  # (W, H) raw pixels: (4112, 3008), or (3008, 4112) for Pavallion_3


@dataclass
class RichTestFrameTruth:
    """One frame of ``test_split`` (spec §1.3)."""

    img_key: str
    meta: dict  # the meta dict exactly as written into test3116.npy
    cam_key: str
    scene_key: str  # selects the voxel cloud
    sdf_key: str  # f"{cap_name}/{scan_name}", selects the SDF grid
    gender: str
    image_path: Path  # test_split/image/<img_key>.png
    image_rgb: np.ndarray  # (224, 224, 3) uint8 RGB (PNG: lossless)
    mesh_path: Path  # test_split/gt_smplx_mesh/<img_key>.ply
    ply_format: str  # "binary_little_endian" | "ascii" | "binary_big_endian"
    gt_w_smplx_verts: np.ndarray  # (10475, 3) world, dtype as written (float32 or float64)
    gt_w_smplh_verts: np.ndarray  # (6890, 3) float64 = deftrafo[:, :10475] @ gt_w_smplx_verts
    tight_bbx: np.ndarray  # (4,) float64 [l, u, r, b] raw px of the projected gt_w_smplh_verts
    squared_bbx: np.ndarray  # (4,) float64 = meta["test_squared_bbx_lurb"] (side max(w,h)+206, same centre)
    contact_path: Path  # test_split/contact/<rel>
    contact: np.ndarray  # (6890,) bool


@dataclass
class RichTrainFrameTruth:
    """One meta of a train/val split (spec §1.4); written for every meta, kept or dropped."""

    img_key: str
    meta: dict  # exactly as written into idx2meta.pkl
    seq_name: str
    cam_key: str
    cam_id: int
    frame: int
    gender: str
    portrait: bool
    body_relpath: str  # relative to bodies/<split>/
    body_params: dict  # name -> 1-D ndarray as pickled (float32 or float64; hand poses only for some frames)
    contact_relpath: str  # relative to sahmr_support/<split>_split/contact/
    contact: np.ndarray  # (6890,) bool
    tight_bbx: np.ndarray  # (4,) [l, u, r, b] raw px, exactly as in img2gtbbx.pkl (float64, one float32)
    image_relpath: str  # relative to images_ds4/<split>/
    image_size: tuple  # (W, H) of the ds4 JPEG: (1028, 752) or (752, 1028)
    image_rgb: np.ndarray  # (H, W, 3) uint8 as PIL decodes the JPEG (cv2 may differ by a few levels)
    fate: str  # "kept", or the §1.4 rule that drops it: "rule1" | "rule3" | "rule4"


@dataclass
class RichSplitTruth:
    """One of ``train`` / ``val``."""

    split: str
    sample_interval: int  # 15 (train) / 30 (val)
    meta_order: list  # [str] img_keys in the order they appear in idx2meta.pkl (deliberately not sorted)
    selected_img_keys: list  # [str] kept keys in the expected order (sorted by img_key)
    dropped: dict  # img_key -> "rule1" | "rule3" | "rule4"
    frames: dict  # img_key -> RichTrainFrameTruth, for ALL written metas


@dataclass
class RichTruth:
    """Everything :func:`write_rich_fixture` wrote."""

    root: Path  # RICH_ROOT
    support_dir: Path  # root / "sahmr_support"
    cameras: dict  # cam_key -> RichCameraTruth (5 cameras)
    scene_clouds: dict  # scene_key -> SceneCloudTruth (5 clouds)
    ignored_scene_files: list  # [Path] sibling scene files without "_world" (must be ignored)
    sdf: dict  # f"{cap}/{scan}" -> SdfTruth (the 4 test scans)
    sdf_field: Callable  # sdf_field(points (..., 3)) -> (...) float64
    test_img_keys: list  # [str] in test3116.npy order (not sorted)
    test_frames: dict  # img_key -> RichTestFrameTruth
    splits: dict  # "train" / "val" -> RichSplitTruth
    smplx_faces: np.ndarray  # (F, 3) int64, the faces written into every GT PLY
    deftrafo_path: Path
    deftrafo: scipy.sparse.csr_matrix  # (6890, 20950) float64, the full matrix as pickled
    smplh_model_paths: dict  # "male" / "female" -> Path of the official-layout pickle
    smplh_v_templates: dict  # "male" / "female" -> (6890, 3) float64 v_template written


@dataclass
class ProxFrameTruth:
    """One PROX-quantitative frame (spec §1.5)."""

    img_key: str
    meta: dict  # exactly as written into mosh_mesh_test.pkl
    image_relpath: str  # relative to sahmr_support/image/
    image_path: Path
    image_rgb: np.ndarray  # (1080, 1920, 3) uint8: PIL-decoded JPEG, then flipped horizontally (model input)
    body_relpath: str  # relative to sahmr_support/gt_mosh_mesh/
    mesh_path: Path
    ply_format: str
    gt_c_smplx_verts: np.ndarray  # (10475, 3) camera frame, dtype as written
    gt_c_smplh_verts: np.ndarray  # (6890, 3) float64 = deftrafo(DEFTRAFO_SEED)[:, :10475] @ gt_c_smplx_verts
    tight_bbx: np.ndarray  # (4,) float64 [l, u, r, b] in FLIPPED-image px = img2gtbbx[img_key]


@dataclass
class ProxTruth:
    """Everything :func:`write_prox_fixture` wrote."""

    root: Path  # PROX_QUANT_ROOT
    support_dir: Path  # root / "sahmr_support"
    img_keys: list  # [str] in mosh_mesh_test.pkl order (not sorted)
    frames: dict  # img_key -> ProxFrameTruth
    K: np.ndarray  # (3, 3) float64 from Color.json, with K[2, 2] = 1
    distortion: np.ndarray  # (5,) float64 "k" of Color.json (unused)
    T_c2w: np.ndarray  # (4, 4) float64 from cam2world_vicon.json
    T_w2c: np.ndarray  # (4, 4) float64 = inverse(T_c2w)
    image_size: tuple  # (1920, 1080)
    voxel: SceneCloudTruth  # scene_key "vicon"
    sdf: SdfTruth
    sdf_field: Callable
    smplx_faces: np.ndarray  # (F, 3) int64


# ---------------------------------------------------------------------------------------------- writers


def write_ply_mesh(path: Path, verts, faces, fmt: str = "binary_little_endian", vertex_dtype: str = "float32") -> None:
    """Write a PLY mesh: ``element vertex`` (x, y, z as ``float`` or ``double``) and ``element face`` with
    ``property list uchar int vertex_indices``.

    verts: (V, 3); faces: (F, 3) ints. fmt: "binary_little_endian" | "binary_big_endian" | "ascii".
    vertex_dtype: "float32" | "float64". ASCII values are written with enough digits to round-trip exactly
    in ``vertex_dtype``.
    """
    if fmt not in ("binary_little_endian", "binary_big_endian", "ascii"):
        raise ValueError(f"unknown PLY format {fmt!r}")
    vt = np.dtype(vertex_dtype)
    if vt not in (np.float32, np.float64):
        raise ValueError(f"vertex_dtype must be float32 or float64, got {vertex_dtype!r}")
    v = np.asarray(verts).astype(vt)
    f = np.asarray(faces, np.int64)
    ptype = "float" if vt == np.float32 else "double"
    header = (
        f"ply\nformat {fmt} 1.0\ncomment sahmr tests: original-format fixture\n"
        f"element vertex {len(v)}\nproperty {ptype} x\nproperty {ptype} y\nproperty {ptype} z\n"
        f"element face {len(f)}\nproperty list uchar int vertex_indices\nend_header\n"
    )
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "ascii":
        digits = 9 if vt == np.float32 else 17
        vlines = "\n".join(" ".join(f"{float(c):.{digits}g}" for c in row) for row in v)
        flines = "\n".join(f"3 {a} {b} {c}" for a, b, c in f)
        path.write_text(header + vlines + "\n" + flines + "\n", encoding="ascii")
        return
    e = "<" if fmt == "binary_little_endian" else ">"
    vrec = v.astype(f"{e}{'f4' if vt == np.float32 else 'f8'}", copy=False)
    frec = np.empty(len(f), dtype=[("n", "u1"), ("i", f"{e}i4", (3,))])
    frec["n"] = 3
    frec["i"] = f
    with open(path, "wb") as fp:
        fp.write(header.encode("ascii"))
        fp.write(np.ascontiguousarray(vrec).tobytes())
        fp.write(frec.tobytes())


@lru_cache(maxsize=4)
def _deftrafo_matrix(seed: int) -> scipy.sparse.csr_matrix:
    rng = np.random.default_rng(10_000 + seed)
    n, m = N_SMPLH, N_SMPLX
    c0 = rng.integers(0, m, n)
    c1 = (c0 + rng.integers(1, m // 2, n)) % m  # offsets in [1, m/2) and [m/2, m-1): 3 distinct columns
    c2 = (c0 + rng.integers(m // 2, m - 1, n)) % m
    w = rng.dirichlet([3.0, 3.0, 3.0], n)  # positive, rows sum to 1
    rows = [np.repeat(np.arange(n), 3)]
    cols = [np.stack([c0, c1, c2], 1).ravel()]
    vals = [w.ravel()]
    extra = rng.choice(n, 120, replace=False)  # nonzeros beyond the SMPL-X vertex columns
    rows.append(extra)
    cols.append(rng.integers(m, N_DEFTRAFO_COLS, len(extra)))
    vals.append(rng.uniform(0.05, 0.5, len(extra)))
    mtx = scipy.sparse.coo_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(n, N_DEFTRAFO_COLS)).tocsr()
    mtx.sort_indices()
    return mtx


def write_deftrafo(path: Path, seed: int = 0) -> scipy.sparse.csr_matrix:
    """Write ``smplx2smplh_deftrafo_setup.pkl``: a pickled dict ``{"mtx": csr (6890, 20950) float64,
    "num_source_vertices": 10475, "source": "smplx"}``.

    Each row has 3 positive weights summing to 1 among the first 10,475 columns (barycentric combination of
    SMPL-X vertices), and 120 rows carry one extra nonzero in a column >= 10,475 (an importer must slice
    ``mtx[:, :10475]``). Returns (a copy of) the full matrix as written.
    """
    mtx = _deftrafo_matrix(seed).copy()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as fp:
        pickle.dump({"mtx": mtx, "num_source_vertices": N_SMPLX, "source": "smplx"}, fp, protocol=2)
    return mtx.copy()


class _CallOnLoad:
    """Pickles as ``fn(*args)``."""

    def __init__(self, fn, *args):
        self.fn, self.args = fn, args

    def __reduce__(self):
        return self.fn, self.args


def hostile_pickle_bytes(marker: Path) -> bytes:
    """A pickle of a meta-like dict whose loading would create ``marker`` twice over: once through
    ``builtins.exec`` (``open(marker, 'w')``) and once through ``os.system`` (``touch marker``; pickled as
    ``posix.system`` on POSIX). NEVER unpickle it outside a restricted loader."""
    code = f"open({str(marker)!r}, 'w').close()"
    payload = {
        "img_key": "Gym_013_pushup1_7_00150_013",
        "gender": _CallOnLoad(exec, code),
        "cam_key": _CallOnLoad(os.system, f"touch '{marker}'"),
    }
    return pickle.dumps(payload, protocol=4)


# ------------------------------------------------------------------------------------------ small helpers


def _f32(x) -> np.ndarray:
    return np.asarray(x, np.float64).astype(np.float32)


def _fmt32(v) -> str:
    """OpenCV-style "%.8e": 9 significant digits, so a float32 round-trips exactly."""
    return f"{float(np.float32(v)):.8e}"


def _look_at(eye, target) -> np.ndarray:
    """(4, 4) float64 world->camera (OpenCV axes: x right, y down, z forward), world z up."""
    eye, target = np.asarray(eye, float), np.asarray(target, float)
    fwd = target - eye
    fwd /= np.linalg.norm(fwd)
    right = np.cross(fwd, [0.0, 0.0, 1.0])
    right /= np.linalg.norm(right)
    down = np.cross(fwd, right)
    R = np.stack([right, down, fwd])
    T = np.eye(4)
    T[:3, :3], T[:3, 3] = R, -R @ eye
    return T


def _project(K, T_w2c, pts) -> np.ndarray:
    K, T = np.asarray(K, np.float64), np.asarray(T_w2c, np.float64)
    pc = np.asarray(pts, np.float64) @ T[:3, :3].T + T[:3, 3]
    uv = pc @ K.T
    return uv[:, :2] / uv[:, 2:]


def _tight_box(uv) -> np.ndarray:
    return np.concatenate([uv.min(0), uv.max(0)]).astype(np.float64)


def _squared_box(tight) -> np.ndarray:
    l, u, r, b = tight
    side = max(r - l, b - u) + SQUARE_PAD_PX
    cx, cy = (l + r) / 2, (u + b) / 2
    return np.array([cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2], np.float64)


def _faces(rng, n_faces=512) -> np.ndarray:
    m = N_SMPLX
    a = rng.integers(0, m, n_faces)
    b = (a + rng.integers(1, m // 2, n_faces)) % m
    c = (a + rng.integers(m // 2, m - 1, n_faces)) % m
    return np.stack([a, b, c], 1).astype(np.int64)


def _body_blob(rng, centre, yaw) -> np.ndarray:
    """(10475, 3) float64: points in a 0.4 x 0.3 x 1.7 m box, feet at centre[2], rotated by yaw about z."""
    p = rng.uniform([-0.2, -0.15, 0.0], [0.2, 0.15, 1.7], (N_SMPLX, 3))
    c, s = np.cos(yaw), np.sin(yaw)
    R = np.array([[c, -s, 0], [s, c, 0], [0, 0, 1.0]])
    return p @ R.T + np.asarray(centre, float)


def _pattern(w: int, h: int, k: int, box=None) -> np.ndarray:
    """(h, w, 3) uint8, not symmetric under flips or channel swaps: red ramps along x, green along y, blue
    a checker whose cell size depends on ``k``; ``box`` (l, u, r, b) is painted as a light rectangle."""
    x = np.arange(w, dtype=np.float32)[None, :]
    y = np.arange(h, dtype=np.float32)[:, None]
    cell = max(4, min(w, h) // (6 + k))
    img = np.empty((h, w, 3), np.uint8)
    img[..., 0] = np.rint(20 + 215 * x / max(w - 1, 1)).astype(np.uint8)
    img[..., 1] = np.rint(10 + 180 * y / max(h - 1, 1)).astype(np.uint8)
    checker = ((np.arange(w)[None, :] // cell) + (np.arange(h)[:, None] // cell)) % 2 == 0
    img[..., 2] = np.where(checker, 40 + 20 * (k % 5), 200).astype(np.uint8)
    if box is not None:
        l, u, r, b = (int(round(v)) for v in box)
        l, r = max(l, 0), min(r, w - 1)
        u, b = max(u, 0), min(b, h - 1)
        if l < r and u < b:
            patch = img[u : b + 1, l : r + 1].astype(np.uint16)
            img[u : b + 1, l : r + 1] = ((patch + np.array([230, 200, 120], np.uint16)) // 2).astype(np.uint8)
    return img


def _imwrite(path: Path, rgb: np.ndarray) -> None:
    """PNG (lossless) or JPEG (quality 95), with cv2 (BGR on the way in) when available, else PIL."""
    path.parent.mkdir(parents=True, exist_ok=True)
    jpeg = path.suffix.lower() in (".jpg", ".jpeg")
    if cv2 is not None:
        params = [cv2.IMWRITE_JPEG_QUALITY, 95] if jpeg else []
        if not cv2.imwrite(str(path), np.ascontiguousarray(rgb[..., ::-1]), params):
            raise OSError(f"cv2.imwrite failed: {path}")
    else:
        Image.fromarray(rgb).save(path, **({"quality": 95} if jpeg else {}))


def _pil_rgb(path: Path) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB")).copy()


def _save_contact(path: Path, bits: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    np.save(path, np.packbits(bits))


def _contact_bits(rng) -> np.ndarray:
    return rng.random(N_SMPLH) < 0.12


def _pickle(path: Path, obj, protocol: int = 4) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as fp:
        pickle.dump(obj, fp, protocol=protocol)


def _write_scene_cloud(path: Path, scene_key: str, rng, dtype, pitch, offset=(0.0, 0.0, 0.0), n=2000):
    """Voxel centres (pitch 0.05) of a floor, a wall and a box: ~n points, world frame."""
    s = 0.05
    floor = np.c_[rng.integers(-60, 60, (n // 2, 2)), np.zeros(n // 2, int)]
    wall = np.c_[rng.integers(-60, 60, n // 4), np.full(n // 4, 55), rng.integers(0, 50, n // 4)]
    box = rng.integers([10, -20, 0], [26, -6, 15], (n, 3))
    ijk = np.unique(np.concatenate([floor, wall, box]), axis=0)
    ijk = ijk[rng.permutation(len(ijk))[:n]]
    pts = ((ijk + 0.5) * s + np.asarray(offset)).astype(dtype)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.save(path, {"points": pts, "pitch": np.asarray(pitch, np.float64)}, allow_pickle=True)
    return SceneCloudTruth(scene_key, path, pts, np.asarray(pitch, np.float64))


def _write_sdf(json_path: Path, npy_path: Path, gmin, gmax, dim: int, storage: str, dtype) -> SdfTruth:
    gmin, gmax = np.asarray(gmin, np.float64), np.asarray(gmax, np.float64)
    assert np.array_equal(gmin.astype(np.float32).astype(np.float64), gmin), "min must be float32-exact"
    assert np.array_equal(gmax.astype(np.float32).astype(np.float64), gmax), "max must be float32-exact"
    axes = [gmin[a] + np.arange(dim) * (gmax[a] - gmin[a]) / (dim - 1) for a in range(3)]
    X, Y, Z = np.meshgrid(*axes, indexing="ij")
    cube = sdf_field(np.stack([X, Y, Z], -1)).astype(dtype)
    stored = cube.reshape(-1) if storage == "flat" else cube
    json_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps({"min": gmin.tolist(), "max": gmax.tolist(), "dim": int(dim)}))
    np.save(npy_path, stored)
    return SdfTruth(json_path, npy_path, gmin, gmax, int(dim), cube.astype(np.float64), stored.shape, np.dtype(dtype))


def _write_opencv_xml(path: Path, T34, K, dist) -> None:
    def node(name, a):
        a = np.asarray(a)
        rows, cols = (1, a.size) if a.ndim == 1 else a.shape
        vals = [_fmt32(v) for v in a.ravel()]
        lines = "\n    ".join(" ".join(vals[i : i + 4]) for i in range(0, len(vals), 4))
        return (
            f'<{name} type_id="opencv-matrix">\n  <rows>{rows}</rows>\n  <cols>{cols}</cols>\n  <dt>f</dt>\n  <data>\n    {lines}</data></{name}>\n'
        )

    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        '<?xml version="1.0"?>\n<opencv_storage>\n'
        + node("CameraMatrix", T34)
        + node("Intrinsics", K)
        + node("Distortion", dist)
        + "</opencv_storage>\n"
    )


def _write_smplh_models(models_dir: Path, smplh_arrays: dict):
    # Test-module helpers (the official SMPL-H layout and the chumpy pickler); imported lazily (torch).
    from tests.helpers.official_format import chumpy_pickle_bytes, official_smplh_dict

    v = np.asarray(smplh_arrays["v_template"], np.float64)
    templates = {"male": v, "female": v.mean(0) + 0.95 * (v - v.mean(0))}
    paths = {}
    for gender, vt in templates.items():
        arrays = dict(smplh_arrays)
        arrays["v_template"] = vt
        p = models_dir / "smplh" / f"SMPLH_{gender.upper()}.pkl"
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(chumpy_pickle_bytes(official_smplh_dict(arrays)))
        paths[gender] = p
    return paths, templates


# ------------------------------------------------------------------------------------------------- RICH

# cam_key -> (cap_name, cam_id, eye, fx, fy, cx, cy, distortion, portrait)
_RICH_CAMERAS = {
    "ParkingLot2_3": ("ParkingLot2", 3, (3.1, -2.6, 1.45), 4480.5, 4478.25, 2061.375, 1498.625, (-0.0421, 0.0837, 3.1e-4, -2.2e-4, -0.0113), False),
    "Gym_1": ("Gym", 1, (-2.9, -2.7, 1.6), 4921.25, 4919.5, 2049.75, 1509.125, (-0.0512, 0.1021, -1.4e-4, 4.7e-4, 0.0), False),
    "Gym_7": ("Gym", 7, (1.05, 4.05, 1.25), 4710.0, 4712.75, 2058.5, 1501.25, (-0.0377, 0.0652, 2.5e-4, 1.9e-4, -0.0081), False),
    "Pavallion_3": ("Pavallion", 3, (-3.9, 1.1, 1.5), 4385.75, 4383.0, 1507.5, 2049.75, (-0.0465, 0.0904, -3.3e-4, -1.1e-4, 0.0042), True),
    "LectureHall_0": ("LectureHall", 0, (0.55, -4.55, 1.85), 4590.25, 4588.5, 2052.0, 1497.75, (-0.0398, 0.0711, 1.2e-4, 3.6e-4, -0.0027), False),
}

# (cap, voxel file stem, scene_key, points dtype, pitch, offset)
_RICH_SCENES = (
    ("ParkingLot2", "scan_camcoord_world", "ParkingLot2_scan_camcoord", np.float32, [0.05, 0.05, 0.05], (0.0, 0.0, 0.0)),
    ("Gym", "scan_camcoord_world", "Gym_scan_camcoord", np.float64, [0.05], (0.1, -0.2, 0.0)),
    ("Gym", "scan_table_camcoord_v2_world", "Gym_scan_table_camcoord", np.float32, [0.05], (-0.3, 0.2, 0.0)),
    ("LectureHall", "scan_chair_scene_camcoord_world", "LectureHall_scan_chair_scene_camcoord", np.float64, [0.05, 0.05, 0.05], (0.0, 0.35, 0.0)),
    ("Pavallion", "scan_camcoord_world", "Pavallion_scan_camcoord", np.float32, [0.05, 0.05, 0.05], (0.0, 0.0, 0.0)),
)

# sdf key -> (min, max, dim, storage, dtype); min/max float32-exact
_RICH_SDFS = {
    "ParkingLot2/scan_camcoord": ((-3.0, -3.25, -0.5), (3.5, 2.75, 2.5), 12, "flat", np.float32),
    "Gym/scan_camcoord": ((-2.75, -3.0, -0.25), (3.0, 3.25, 2.75), 16, "cube", np.float64),
    "Gym/scan_table_camcoord": ((-3.25, -2.5, -0.5), (2.5, 3.5, 2.25), 20, "flat", np.float64),
    "LectureHall/scan_chair_scene_camcoord": ((-2.5, -3.5, -0.375), (3.25, 2.5, 2.625), 13, "cube", np.float32),
}

# test frames in FILE order (not sorted): (scene, subject, task, cam_id, frame, scan, gender, ply fmt, dtype, centre, yaw)
_RICH_TEST = (
    ("ParkingLot2", "017", "yoga1", 3, "00660", "scan_camcoord", "male", "binary_little_endian", "float32", (0.15, -0.1, 0.0), 0.4),
    ("Gym", "013", "pushup1", 7, "00150", "scan_table_camcoord", "female", "ascii", "float32", (-0.1, 0.2, 0.0), 1.9),
    (
        "LectureHall",
        "021",
        "sidebalancerun1",
        0,
        "00300",
        "scan_chair_scene_camcoord",
        "female",
        "binary_little_endian",
        "float64",
        (0.05, 0.1, 0.0),
        -0.7,
    ),
    ("Gym", "010", "lunge2", 1, "00090", "scan_camcoord", "male", "binary_little_endian", "float32", (0.2, 0.0, 0.0), 2.8),
)

# train/val metas in FILE order (deliberately not sorted by img_key):
# (seq_name, cam_key, cam_id as stored, frame_name as stored, tight box [l,u,r,b] raw px, box dtype, gender,
#  scene_key, params dtype, with hands, expected fate)
_RICH_TRAINVAL = {
    "train": (
        (
            "ParkingLot2_017_burpeejump2",
            "ParkingLot2_3",
            3,
            "00117",
            (1805.25, 640.5, 2390.75, 2515.0),
            np.float64,
            "male",
            "ParkingLot2_scan_camcoord",
            np.float32,
            True,
            "kept",
        ),
        (
            "LectureHall_019_wipingchairs1",
            "LectureHall_0",
            0,
            "00045",
            (1690.0, 700.25, 2301.5, 2480.75),
            np.float64,
            "male",
            "LectureHall_scan_chair_scene_camcoord",
            np.float64,
            False,
            "rule1",
        ),  # 45 is not > 45
        (
            "Pavallion_002_sidebalancerun1",
            "Pavallion_3",
            "03",
            "00102",
            (3300.0, 1500.0, 3700.0, 2500.0),
            np.float64,
            "female",
            "Pavallion_scan_camcoord",
            np.float64,
            True,
            "rule4",
        ),  # portrait: centre x 3500 > 3007
        (
            "Gym_013_dips1",
            "Gym_7",
            7,
            "00098",
            (4011.5, 1000.0, 4211.5, 1900.0),
            np.float64,
            "female",
            "Gym_scan_table_camcoord",
            np.float32,
            False,
            "rule4",
        ),  # centre x 4111.5 > 4111
        (
            "LectureHall_019_wipingchairs1",
            "LectureHall_0",
            "0",
            60,
            (1702.75, 655.0, 2320.25, 2466.5),
            np.float64,
            "male",
            "LectureHall_scan_chair_scene_camcoord",
            np.float64,
            True,
            "kept",
        ),
        (
            EXCLUDED_SEQ,
            "LectureHall_0",
            0,
            "00090",
            (1500.0, 600.0, 2100.0, 2450.0),
            np.float64,
            "male",
            "LectureHall_scan_chair_scene_camcoord",
            np.float32,
            False,
            "rule3",
        ),
        (
            "ParkingLot2_017_burpeejump2",
            "ParkingLot2_3",
            3,
            72,
            (4011.0, 800.0, 4211.0, 2600.0),
            np.float64,
            "male",
            "ParkingLot2_scan_camcoord",
            np.float32,
            False,
            "kept",
        ),  # centre x exactly 4111: inclusive
        (
            "Gym_010_mountainclimber1",
            "Gym_1",
            "01",
            "00059",
            (1850.0, 2107.0, 2250.0, 3907.0),
            np.float32,
            "male",
            "Gym_scan_camcoord",
            np.float64,
            True,
            "kept",
        ),  # centre y exactly 3007: inclusive
        (
            "ParkingLot2_017_burpeejump2",
            "ParkingLot2_3",
            3,
            "00060",
            (1790.0, 650.0, 2400.0, 2500.0),
            np.float64,
            "male",
            "ParkingLot2_scan_camcoord",
            np.float32,
            True,
            "rule1",
        ),  # 63 % 15 != 0
        (
            "Pavallion_002_sidebalancerun1",
            "Pavallion_3",
            3,
            "00087",
            (1300.0, 3000.0, 1700.0, 4000.0),
            np.float64,
            "female",
            "Pavallion_scan_camcoord",
            np.float64,
            False,
            "kept",
        ),  # portrait: centre y 3500 <= 4111
    ),
    "val": (
        (
            "ParkingLot2_016_overfence1",
            "ParkingLot2_3",
            3,
            57,
            (1950.5, 700.0, 2500.0, 2560.25),
            np.float64,
            "female",
            "ParkingLot2_scan_camcoord",
            np.float64,
            True,
            "kept",
        ),
        (
            "Gym_011_burpee2",
            "Gym_1",
            1,
            "00074",
            (1800.0, 600.0, 2300.0, 2400.0),
            np.float64,
            "male",
            "Gym_scan_camcoord",
            np.float32,
            False,
            "rule1",
        ),  # 75 % 30 != 0 (but 75 % 15 == 0)
        (
            "Gym_011_burpee2",
            "Gym_1",
            "1",
            "00089",
            (1820.0, 610.0, 2310.0, 2420.0),
            np.float64,
            "male",
            "Gym_scan_camcoord",
            np.float32,
            True,
            "kept",
        ),
        (
            EXCLUDED_SEQ,
            "LectureHall_0",
            0,
            "00120",
            (1500.0, 600.0, 2100.0, 2450.0),
            np.float64,
            "female",
            "LectureHall_scan_chair_scene_camcoord",
            np.float64,
            False,
            "rule3",
        ),
        (
            "Pavallion_000_plankjack1",
            "Pavallion_3",
            3,
            "00117",
            (1100.0, 1900.0, 1900.0, 2700.0),
            np.float64,
            "male",
            "Pavallion_scan_camcoord",
            np.float64,
            False,
            "kept",
        ),
    ),
}


def _rich_body_params(rng, dtype, hands: bool) -> dict:
    p = {
        "betas": rng.normal(0, 0.8, 10),
        "global_orient": np.array([np.pi / 2, 0.0, 0.0]) + rng.normal(0, 0.2, 3),
        "body_pose": rng.normal(0, 0.25, 63),
        "transl": rng.uniform([-0.5, -0.5, 0.8], [0.5, 0.5, 1.0]),
    }
    if hands:
        p["left_hand_pose"] = rng.normal(0, 0.3, 45)
        p["right_hand_pose"] = rng.normal(0, 0.3, 45)
    return {k: v.astype(dtype) for k, v in p.items()}


def write_rich_fixture(root: Path, smplh_arrays: dict, seed: int = 0) -> RichTruth:
    """Write the tiny RICH folder (layout in the module docstring) under ``root`` and return its truth.

    smplh_arrays: a kit body-model arrays dict with 6,890 vertices (e.g.
    ``load_body_model_file(path).arrays`` of sahmr-open); used to write official-layout SMPL-H pickles
    (male = the arrays; female = v_template scaled by 0.95 about its mean).
    """
    root = Path(root)
    rng = np.random.default_rng(seed)
    sup = root / "sahmr_support"
    info = sup / "scene_info"

    # models: SMPL-H pickles + deformation transfer
    model_paths, v_templates = _write_smplh_models(root / "models", smplh_arrays)
    deftrafo_path = root / "models" / "model_transfer" / "smplx2smplh_deftrafo_setup.pkl"
    deftrafo = write_deftrafo(deftrafo_path, DEFTRAFO_SEED)
    M = deftrafo[:, :N_SMPLX]

    # cameras
    cameras = {}
    for cam_key, (cap, cam_id, eye, fx, fy, cx, cy, dist, portrait) in _RICH_CAMERAS.items():
        jitter = rng.normal(0, 0.05, 3) * [1, 1, 0.2]
        T = _look_at(np.asarray(eye) + jitter, (0.0, 0.0, 0.9))
        K = np.array([[fx, 0.0, cx], [0.0, fy, cy], [0.0, 0.0, 1.0]])
        T32, K32, d32 = _f32(T), _f32(K), _f32(dist)
        T32[3] = [0, 0, 0, 1]
        path = info / cap / "calibration" / f"{cam_id:03d}.xml"
        _write_opencv_xml(path, T32[:3], K32, d32)
        size = RICH_RAW_PORTRAIT if portrait else RICH_RAW_LANDSCAPE
        cameras[cam_key] = RichCameraTruth(cam_key, cap, cam_id, path, T32, K32, d32, size)

    # voxel clouds (+ one "az" sibling without _world that must be ignored)
    clouds = {}
    for cap, stem, key, dtype, pitch, offset in _RICH_SCENES:
        clouds[key] = _write_scene_cloud(info / cap / f"{stem}.npy", key, rng, dtype, pitch, offset)
    az = info / "Gym" / "scan_camcoord.npy"
    g = clouds["Gym_scan_camcoord"]
    np.save(az, {"points": g.points[:, [1, 0, 2]] * [-1, 1, 1] + [0.0, 0.0, 1.0], "pitch": g.pitch}, allow_pickle=True)

    # SDF grids of the test scans
    sdf = {}
    for key, (gmin, gmax, dim, storage, dtype) in _RICH_SDFS.items():
        cap, scan = key.split("/")
        sdf[key] = _write_sdf(info / cap / f"{scan}_mysdf.json", info / cap / f"{scan}_mysdf.npy", gmin, gmax, dim, storage, dtype)

    # test split
    faces = _faces(rng)
    tdir = sup / "test_split"
    metas, test_frames = [], {}
    for k, (scene, subj, task, cam_id, frame, scan, gender, fmt, vdtype, centre, yaw) in enumerate(_RICH_TEST):
        img_key = f"{scene}_{subj}_{task}_{int(cam_id)}_{frame}_{subj}"
        cam_key = f"{scene}_{int(cam_id)}"
        seq = f"{scene}_{subj}_{task}"
        cam = cameras[cam_key]
        verts = _body_blob(rng, centre, yaw).astype(vdtype)
        smplh = M @ verts.astype(np.float64)
        tight = _tight_box(_project(cam.K, cam.T_w2c, smplh))
        square = _squared_box(tight)
        contact_rel = f"{seq}/cam_{cam_id:02d}/{frame}.npy"
        meta = {
            "img_key": img_key,
            "cam_key": cam_key,
            "cap_name": scene,
            "scan_name": scan,
            "scene_key": f"{scene}_{scan}",
            "contact_file": f"/home/authors/data/test_contact/{contact_rel}",
            "test_squared_bbx_lurb": square.copy(),
            "gender": gender,
            "frame_name": frame,
        }
        metas.append(meta)
        rgb = _pattern(CROP, CROP, k)
        img_path = tdir / "image" / f"{img_key}.png"
        _imwrite(img_path, rgb)
        mesh_path = tdir / "gt_smplx_mesh" / f"{img_key}.ply"
        write_ply_mesh(mesh_path, verts, faces, fmt=fmt, vertex_dtype=vdtype)
        bits = _contact_bits(rng)
        contact_path = tdir / "contact" / contact_rel
        _save_contact(contact_path, bits)
        test_frames[img_key] = RichTestFrameTruth(
            img_key,
            meta,
            cam_key,
            meta["scene_key"],
            f"{scene}/{scan}",
            gender,
            img_path,
            rgb,
            mesh_path,
            fmt,
            verts,
            smplh,
            tight,
            square,
            contact_path,
            bits,
        )
    arr = np.empty(len(metas), dtype=object)
    for i, m in enumerate(metas):
        arr[i] = m
    (tdir / "meta").mkdir(parents=True, exist_ok=True)
    np.save(tdir / "meta" / "test3116.npy", arr, allow_pickle=True)

    # train / val splits
    splits = {}
    for split, rows in _RICH_TRAINVAL.items():
        idx2meta, img2gtbbx, frames, order = {}, {}, {}, []
        for i, (seq, cam_key, cam_id_s, frame_s, box, bdtype, gender, scene_key, pdtype, hands, fate) in enumerate(rows):
            cam_id, frame = int(cam_id_s), int(frame_s)
            subj = seq.split("_")[1]
            img_key = f"{seq}_{cam_id}_{frame:05d}_{subj}"
            last3 = f"{seq}/cam_{cam_id:02d}/{frame:05d}_{cam_id:02d}"
            meta = {
                "frame_name": frame_s,
                "cam_id": cam_id_s,
                "img_key": img_key,
                "seq_name": seq,
                "cam_key": cam_key,
                "gender": gender,
                "scene_key": scene_key,
                "img_file": f"/ps/project/rich/images_ds4/{split}/{last3}.jpeg",
                "body_file": f"/mnt/authors/rich_smplh_fits/{split}/params/{last3}.pkl",
                "contact_file": f"/home/authors/RICH/hsc/{split}_contact/{last3}.npy",
            }
            idx2meta[1000 + 37 * i] = meta
            order.append(img_key)
            tight = np.asarray(box, bdtype)
            img2gtbbx[img_key] = tight
            params = _rich_body_params(rng, pdtype, hands)
            _pickle(root / "bodies" / split / f"{last3}.pkl", params)
            bits = _contact_bits(rng)
            _save_contact(sup / f"{split}_split" / "contact" / f"{last3}.npy", bits)
            portrait = cam_key in PORTRAIT_CAMS
            W, H = RICH_DS4_PORTRAIT if portrait else RICH_DS4_LANDSCAPE
            img_path = root / "images_ds4" / split / f"{last3}.jpeg"
            _imwrite(img_path, _pattern(W, H, i, box=np.asarray(box, float) / 4))
            frames[img_key] = RichTrainFrameTruth(
                img_key,
                meta,
                seq,
                cam_key,
                cam_id,
                frame,
                gender,
                portrait,
                f"{last3}.pkl",
                params,
                f"{last3}.npy",
                bits,
                tight,
                f"{last3}.jpeg",
                (W, H),
                _pil_rgb(img_path),
                fate,
            )
        _pickle(sup / f"{split}_split" / "meta" / "idx2meta.pkl", idx2meta)
        _pickle(sup / f"{split}_split" / "meta" / "img2gtbbx.pkl", img2gtbbx)
        assert order != sorted(order)
        splits[split] = RichSplitTruth(
            split,
            SAMPLE_INTERVAL[split],
            order,
            sorted(k for k in order if frames[k].fate == "kept"),
            {k: frames[k].fate for k in order if frames[k].fate != "kept"},
            frames,
        )

    test_keys = [m["img_key"] for m in metas]
    assert test_keys != sorted(test_keys)
    return RichTruth(
        root,
        sup,
        cameras,
        clouds,
        [az],
        sdf,
        sdf_field,
        test_keys,
        test_frames,
        splits,
        faces,
        deftrafo_path,
        deftrafo,
        model_paths,
        v_templates,
    )


# ------------------------------------------------------------------------------------------------- PROX

_PROX_SEQ = "vicon_03301_01"
# frames in FILE order (not sorted): (stem, ply format, vertex dtype, centre in camera frame, yaw)
_PROX_FRAMES = (
    ("s001_frame_00201__00.00.06.695", "binary_big_endian", "float32", (0.35, 0.15, 3.1), 0.3),
    ("s001_frame_00001__00.00.00.029", "binary_little_endian", "float32", (-0.45, 0.1, 2.6), -0.5),
    ("s001_frame_00431__00.00.14.366", "binary_little_endian", "float64", (0.05, 0.2, 3.6), 1.2),
)


def write_prox_fixture(root: Path, seed: int = 0) -> ProxTruth:
    """Write the tiny PROX-quantitative folder (layout in the module docstring) under ``root`` and return
    its truth. GT meshes are in the camera frame; the JPEGs are stored mirrored (the loader flips them);
    tight boxes (img2gtbbx) are the projections of ``deftrafo(DEFTRAFO_SEED)[:, :10475] @ V`` with K, i.e.
    in flipped-image coordinates."""
    root = Path(root)
    rng = np.random.default_rng(1_000 + seed)
    sup = root / "sahmr_support"
    vic = sup / "vicon"
    W, H = PROX_SIZE
    M = _deftrafo_matrix(DEFTRAFO_SEED)[:, :N_SMPLX]

    fx, fy, cx, cy = 1060.53, 1060.38, 951.30, 536.77
    dist = [0.0442, -0.0513, 0.0012, -0.0008, 0.0]
    K = np.array([[fx, 0.0, cx], [0.0, fy, cy], [0.0, 0.0, 1.0]])
    (vic / "calibration").mkdir(parents=True, exist_ok=True)
    T_c2w = np.linalg.inv(_look_at((2.9 + rng.normal(0, 0.05), -2.4, 1.55), (0.2, 0.4, 0.8)))
    T_c2w[3] = [0.0, 0.0, 0.0, 1.0]
    (vic / "calibration" / "Color.json").write_text(
        json.dumps(
            {
                "f": [fx, fy],
                "c": [cx, cy],
                "k": dist,
                "view_mtx": [[1.0, 0.0, 0.0, 0.0], [0.0, -1.0, 0.0, 0.0], [0.0, 0.0, -1.0, 0.0], [0.0, 0.0, 0.0, 1.0]],
                "camera_mtx": K.tolist(),
            }
        )
    )
    (vic / "calibration" / "cam2world_vicon.json").write_text(json.dumps(T_c2w.tolist()))
    T_c2w = np.asarray(json.loads((vic / "calibration" / "cam2world_vicon.json").read_text()), np.float64)
    voxel = _write_scene_cloud(vic / "vicon_voxel_world.npy", "vicon", rng, np.float32, [0.05, 0.05, 0.05])
    sdf = _write_sdf(vic / "vicon.json", vic / "vicon_sdf.npy", (-2.0, -2.5, -0.25), (3.75, 3.0, 2.5), 15, "flat", np.float32)

    faces = _faces(rng)
    metas, img2gtbbx, frames = [], {}, {}
    for k, (stem, fmt, vdtype, centre, yaw) in enumerate(_PROX_FRAMES):
        img_key = f"{_PROX_SEQ}_{stem}"
        img_rel = f"{_PROX_SEQ}/Color/{stem}.jpg"
        body_rel = f"{_PROX_SEQ}/results/{stem}/000.ply"
        # body blob standing upright in the camera frame (y down): feet at y = centre_y + 0.85
        blob = _body_blob(rng, (0.0, 0.0, 0.0), yaw)
        verts = (np.c_[blob[:, 0], -(blob[:, 2] - 0.85), blob[:, 1]] + np.asarray(centre)).astype(vdtype)
        smplh = M @ verts.astype(np.float64)
        tight = _tight_box(_project(K, np.eye(4), smplh))
        meta = {
            "img_key": img_key,
            "scene_name": "vicon",
            "seq_name": _PROX_SEQ,
            "img_file": f"/data/PROX/quantitative/recordings/{img_rel}",
            "body_file": f"/x/mosh/{body_rel}",
        }
        metas.append(meta)
        img2gtbbx[img_key] = tight
        flipped = _pattern(W, H, k + 2, box=tight)  # what the model must see
        img_path = sup / "image" / img_rel
        _imwrite(img_path, np.ascontiguousarray(flipped[:, ::-1]))  # stored mirrored
        mesh_path = sup / "gt_mosh_mesh" / body_rel
        write_ply_mesh(mesh_path, verts, faces, fmt=fmt, vertex_dtype=vdtype)
        frames[img_key] = ProxFrameTruth(
            img_key,
            meta,
            img_rel,
            img_path,
            np.ascontiguousarray(_pil_rgb(img_path)[:, ::-1]),
            body_rel,
            mesh_path,
            fmt,
            verts,
            smplh,
            tight,
        )
    _pickle(sup / "meta" / "mosh_mesh_test.pkl", metas)
    _pickle(sup / "img2gtbbx" / "mosh_mesh.pkl", img2gtbbx)
    keys = [m["img_key"] for m in metas]
    assert keys != sorted(keys)
    return ProxTruth(root, sup, keys, frames, K, np.asarray(dist), T_c2w, np.linalg.inv(T_c2w), PROX_SIZE, voxel, sdf, sdf_field, faces)
