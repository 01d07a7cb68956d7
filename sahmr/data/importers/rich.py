"""``sahmr import rich``: RICH as the original SA-HMR distributes and reads it -> a canonical dataset.

Input (``RICH_ROOT``, spec §1.1–§1.4)::

    sahmr_support/scene_info/<cap>/calibration/<cam>.xml     world->camera [R|t], raw-resolution K
    sahmr_support/scene_info/<cap>/<scan>..._world.npy        voxelised scene cloud {points, pitch}
    sahmr_support/scene_info/<cap>/<scan>_mysdf.{json,npy}    SDF grids (the 5 test scans)
    sahmr_support/test_split/{meta/test3116.npy, image/, gt_smplx_mesh/, contact/}
    sahmr_support/{train,val}_split/{meta/idx2meta.pkl, meta/img2gtbbx.pkl, contact/}
    images_ds4/{train,val}/<seq>/cam_<id>/<frame>_<id>.jpeg   training only
    bodies/{train,val}/<seq>/cam_<id>/<frame>_<id>.pkl        training only: SMPL-H params, world frame

Output: one canonical dataset (:mod:`sahmr.data.format`) with the requested splits:

* scenes: one per original ``scene_key`` (``scene_id`` = the key), points = the voxel cloud (world), its
  ``pitch`` and source files in ``scene.json`` meta; the ``*_mysdf`` grid as ``sdf.npz`` when the scan has
  one (min/max rounded to float32 as the original's evaluation); scans without one get no SDF.
* test: frames in the meta file's order; the pre-cropped 224² PNGs copied byte for byte; ``K`` mapped into
  the crop (``[A; 0 0 1] @ K``, A = the crop's affine of ``test_squared_bbx_lurb``), ``crop_box_xyxy`` =
  the whole crop (so the model sees exactly the PNG, as the original); one ``camera_id`` per frame (each
  crop is its own camera); GT ``verts_world`` = ``mtx[:, :10475] @ V_smplx`` (the release evaluation's
  SMPL-X -> SMPL-H transfer) and the SMPL-X mesh kept losslessly as ``verts_world_smplx``; contact from
  the packbits files (path rule: the part of ``contact_file`` after ``test_contact/``).
* train / val: the four frame-selection rules of spec §1.4 in their order (frame > 45 and
  ``(frame + cam) % interval == 0``; sort by ``img_key``; drop the multi-person sequence; drop frames whose
  GT-box centre is outside the raw image, portrait cameras ``Pavallion_3/5`` transposed), the ds4 JPEGs
  copied byte for byte with ``K[:2] / 4`` (plain x4 scaling, as the original), ``person_box_xyxy`` = the tight GT
  box / 4, GT vertices from the SMPL-H parameters through the user's imported gendered SMPL-H models
  (missing hand poses = zeros), the parameters and genders stored too.
* test frames also keep ``source_crop_box_xyxy`` (float64, the original's ``test_squared_bbx_lurb`` in raw px).
* every frame: ``source_key`` (the original ``img_key``), ``source_cam_key``, ``sequence`` (``seq_name``; for the
  test metas, which have none, the img_key without its last three fields ``_<cam>_<frame>_<subject>``); GT joints / pelvis from the
  evaluation body's H36M regressor (the user's SMPL neutral with ``J_regressor_h36m_correct.npy``), contact
  parts from its 7-part labels.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from sahmr.body.model import BodyModel
from sahmr.body.unpickle import safe_load_npy
from sahmr.data.format import DatasetWriter
from sahmr.data.importers.common import (
    body_meta,
    camera_distance,
    frame_ids_from_keys,
    gt_from_verts,
    import_image,
    load_eval_body,
    progress_bar,
    project_box,
    staged_output,
    truncated_flags,
    unknown_annotations,
)
from sahmr.data.importers.files import (
    NUM_SMPL_VERTS,
    NUM_SMPLX_VERTS,
    OriginalDataError,
    path_after,
    read_contact_bits,
    read_pickle,
    read_ply_vertices,
    read_rich_calibration,
    read_sdf,
    read_smplx_to_smplh,
    read_voxel_cloud,
    rich_cam_key,
    rich_scene_key,
    tail_path,
)
from sahmr.geometry.camera import crop_affine

__all__ = ["RichImportConfig", "import_rich", "select_frames", "read_cameras", "find_scene_clouds", "RICH_SPLITS"]

RICH_SPLITS = ("train", "val", "test")
CROP_SIZE = 224  # the pre-cropped test PNGs (spec §1.3)
PROJ_SCALE = 4  # images_ds4: raw / 4 (spec §1.4)
RAW_SIZE = (4112, 3008)  # RICH raw images, landscape (W, H)
PORTRAIT_CAMS = ("Pavallion_3", "Pavallion_5")  # 3008 x 4112 (spec §1.2, §1.4)
EXCLUDED_SEQUENCE = "LectureHall_009_021_reparingprojector1"  # multi-person (spec §1.4 rule 3)
MIN_FRAME = 45  # rule 1 keeps int(frame_name) > 45 (errata: the docstring's "< 45" is wrong)
DEFAULT_INTERVALS = {"train": 15, "val": 30}
TEST_META = "sahmr_support/test_split/meta/test3116.npy"


@dataclass
class RichImportConfig:
    """What ``sahmr import rich`` reads besides RICH_ROOT.

    splits: subset of ("train", "val", "test").
    body_model: the imported SMPL neutral (.npz) labelling the GT (H36M regressor, 7 contact parts).
    smplx2smplh: ``smplx2smplh_deftrafo_setup.pkl`` (test split: SMPL-X GT -> 6890-vertex GT).
    smplh: {"male": path, "female": path} imported SMPL-H models (train / val GT from parameters).
    sample_interval: {"train": 15, "val": 30} (spec §1.4 rule 1).
    limit: keep only the first N selected frames per split (quick trials); None = all.
    """

    splits: Sequence[str] = ("test",)
    body_model: Path | None = None
    smplx2smplh: Path | None = None
    smplh: Mapping[str, Path | None] = field(default_factory=lambda: {"male": None, "female": None})
    sample_interval: Mapping[str, int] = field(default_factory=lambda: dict(DEFAULT_INTERVALS))
    limit: int | None = None
    progress: bool = True

    def check(self) -> None:
        bad = [s for s in self.splits if s not in RICH_SPLITS]
        if bad or not self.splits:
            raise ValueError(f"--splits: expected a non-empty subset of {list(RICH_SPLITS)}, got {list(self.splits)}")
        for s, n in self.sample_interval.items():
            if s not in DEFAULT_INTERVALS or not isinstance(n, int) or n < 1:
                raise ValueError(f"--sample-interval {s}={n}: expected train=N or val=N with an integer N >= 1")
        if self.limit is not None and self.limit < 1:
            raise ValueError(f"--limit: expected an integer >= 1, got {self.limit}")


# ------------------------------------------------------------------------------------------ discovery


def _need(path: Path, what: str, how: str) -> Path:
    if not path.exists():
        raise FileNotFoundError(f"{path}: missing ({what}). {how}")
    return path


def read_cameras(scene_info: Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """{cam_key: (T_w2c (4, 4), K (3, 3)) float32} of every ``scene_info/*/calibration/*.xml``."""
    cams = {}
    for xml in sorted(scene_info.glob("*/calibration/*.xml")):
        cams[rich_cam_key(xml)] = read_rich_calibration(xml)
    if not cams:
        raise FileNotFoundError(f"{scene_info}: no calibration files */calibration/*.xml (RICH sahmr_support/scene_info)")
    return cams


def find_scene_clouds(scene_info: Path) -> dict[str, Path | list[Path]]:
    """{scene_key: path} of the voxelised clouds ``scene_info/*/*_world.npy`` (the original's glob and key).

    A key given by several files maps to the list of them: an error only if a frame uses it (see
    :func:`_cloud_path`), since the original would silently keep one of them."""
    out: dict[str, Path | list[Path]] = {}
    for p in sorted(scene_info.glob("*/*_world.npy")):
        key = rich_scene_key(p)
        prev = out.get(key)
        out[key] = p if prev is None else [*(prev if isinstance(prev, list) else [prev]), p]
    return out


def _cloud_path(clouds: Mapping[str, Path | list[Path]], key: str) -> Path:
    p = clouds[key]
    if isinstance(p, list):
        raise OriginalDataError(
            f"scene key '{key}' is given by several clouds {[str(x) for x in p]}; keep one of them (the original would keep whichever it read last)"
        )
    return p


def find_sdfs(scene_info: Path) -> dict[str, Path]:
    """{f"{cap}_{scan}": json path} of every ``scene_info/<cap>/<scan>_mysdf.json``."""
    return {f"{p.parent.name}_{p.stem[: -len('_mysdf')]}": p for p in sorted(scene_info.glob("*/*_mysdf.json"))}


# ------------------------------------------------------------------------------------- frame selection


def _int_field(meta: Mapping[str, Any], key: str, where: str) -> int:
    try:
        return int(meta[key])
    except KeyError:
        raise OriginalDataError(f"{where}: meta has no '{key}' (keys: {sorted(meta)})") from None
    except (TypeError, ValueError):
        raise OriginalDataError(f"{where}: meta field '{key}' = {meta[key]!r} is not an integer") from None


def select_frames(metas: Sequence[Mapping[str, Any]], boxes: Mapping[str, Any], interval: int, where: str = "metas") -> list[dict]:
    """The original's train/val frame selection (spec §1.4), its four rules in their order.

    1. keep ``int(frame_name) > 45`` and ``(int(frame_name) + int(cam_id)) % interval == 0``;
    2. sort by ``img_key``; 3. drop the sequence ``LectureHall_009_021_reparingprojector1``;
    4. drop frames whose GT-box centre lies outside ``[0, 4111] x [0, 3007]`` (``[0, 3007] x [0, 4111]`` for
       the portrait cameras ``Pavallion_3`` / ``Pavallion_5``), bounds inclusive.
    boxes: {img_key: (4,) tight box [l, u, r, b], raw px}. Returns the kept metas (dicts), in order.
    """
    kept = []
    for i, m in enumerate(metas):
        if not isinstance(m, Mapping):
            raise OriginalDataError(f"{where}[{i}]: expected a meta dict, got {type(m).__name__}")
        frame, cam = _int_field(m, "frame_name", f"{where}[{i}]"), _int_field(m, "cam_id", f"{where}[{i}]")
        if frame > MIN_FRAME and (frame + cam) % interval == 0:
            kept.append(dict(m))
    for m in kept:
        if not isinstance(m.get("img_key"), str):
            raise OriginalDataError(f"{where}: a meta has no string 'img_key' ({m.get('img_key')!r})")
    kept.sort(key=lambda m: m["img_key"])
    kept = [m for m in kept if m.get("seq_name") != EXCLUDED_SEQUENCE]
    out = []
    for m in kept:
        if m["img_key"] not in boxes:
            raise OriginalDataError(f"{where}: img_key {m['img_key']!r} has no GT box in img2gtbbx.pkl")
        b = np.asarray(boxes[m["img_key"]], dtype=np.float64).reshape(-1)
        if b.shape != (4,):
            raise OriginalDataError(f"img2gtbbx.pkl[{m['img_key']!r}]: expected a (4,) box [l, u, r, b], got shape {b.shape}")
        cx, cy = (b[0] + b[2]) / 2, (b[1] + b[3]) / 2
        w, h = RAW_SIZE[::-1] if m.get("cam_key") in PORTRAIT_CAMS else RAW_SIZE
        if 0 <= cx <= w - 1 and 0 <= cy <= h - 1:
            out.append(m)
    return out


# --------------------------------------------------------------------------------------- the splits


def _check_known_keys(m: Mapping[str, Any], cams: Mapping, clouds: Mapping, where: str) -> None:
    """A meta's cam_key / scene_key must name a calibration XML / a voxel cloud of scene_info."""
    for k, known, what in (("cam_key", cams, "calibration XMLs"), ("scene_key", clouds, "*_world.npy clouds")):
        if m[k] not in known:
            raise OriginalDataError(
                f"{where}: unknown {k} {m[k]!r}; the {what} under sahmr_support/scene_info give {sorted(known)[:8]}{' ...' if len(known) > 8 else ''}"
            )


def _test_split(root: Path, stage: Path, cfg: RichImportConfig, cams, clouds, body: BodyModel, M) -> tuple[dict[str, Any], dict[str, str]]:
    """(split arrays, {scene_key: "<cap_name>/<scan_name>"} naming each scene's SDF as the release evaluation does).

    M: (6890, 10475) SMPL-X -> SMPL-H transfer (csr)."""
    sup = root / "sahmr_support"
    meta_path = _need(root / TEST_META, "the RICH test metas", "It comes with RICH's sahmr_support package.")
    raw = safe_load_npy(meta_path, allow_chumpy=False)
    metas = list(raw.tolist() if isinstance(raw, np.ndarray) else raw)
    if cfg.limit:
        metas = metas[: cfg.limit]
    n = len(metas)
    if n == 0:
        raise OriginalDataError(f"{meta_path}: holds no frames")
    keys = []
    for i, m in enumerate(metas):
        if not isinstance(m, Mapping):
            raise OriginalDataError(f"{meta_path}[{i}]: expected a meta dict, got {type(m).__name__}")
        miss = [k for k in ("img_key", "cam_key", "scene_key", "cap_name", "scan_name", "contact_file", "test_squared_bbx_lurb") if k not in m]
        if miss:
            raise OriginalDataError(f"{meta_path}[{i}]: meta lacks {miss} (spec §1.3)")
        _check_known_keys(m, cams, clouds, f"{meta_path}[{i}] ({m['img_key']})")
        keys.append(str(m["img_key"]))
    ids = frame_ids_from_keys(keys, str(meta_path))

    K = np.zeros((n, 3, 3), np.float32)
    T = np.zeros((n, 4, 4), np.float32)
    bbox = np.zeros((n, 4), np.float64)
    tight_raw = np.zeros((n, 4), np.float64)
    raw_size = np.array([RAW_SIZE[::-1] if m["cam_key"] in PORTRAIT_CAMS else RAW_SIZE for m in metas], np.int64)
    vx = np.zeros((n, NUM_SMPLX_VERTS, 3), np.float32)
    verts = np.zeros((n, NUM_SMPL_VERTS, 3), np.float32)
    contact = np.zeros((n, NUM_SMPL_VERTS), bool)
    crop_src = np.zeros((n, 4), np.float64)
    for i in progress_bar(range(n), n, "RICH test", cfg.progress):
        m = metas[i]
        key = keys[i]
        Tw, Kr = cams[m["cam_key"]]
        box = np.asarray(m["test_squared_bbx_lurb"], dtype=np.float64).reshape(-1)
        if box.shape != (4,) or not np.isfinite(box).all() or box[2] <= box[0] or box[3] <= box[1]:
            raise OriginalDataError(f"{meta_path}[{i}] ({key}): test_squared_bbx_lurb must be a finite box [l, u, r, b], got {box}")
        crop_src[i] = box
        A = np.vstack([crop_affine(box, CROP_SIZE), [0.0, 0.0, 1.0]])
        K[i] = (A @ Kr.astype(np.float64)).astype(np.float32)
        T[i] = Tw
        png = sup / "test_split" / "image" / f"{key}.png"
        w, h, fmt = import_image(png, stage, f"images/test/{ids[i]}.png", "the pre-cropped 224x224 test image")
        if (w, h) != (CROP_SIZE, CROP_SIZE) or fmt != "PNG":
            raise OriginalDataError(f"{png}: expected a {CROP_SIZE}x{CROP_SIZE} PNG (the pre-cropped test image), got {fmt} {w}x{h}")
        ply = sup / "test_split" / "gt_smplx_mesh" / f"{key}.ply"
        v = read_ply_vertices(ply, expected=NUM_SMPLX_VERTS)
        vx[i] = v
        verts[i] = M @ v  # float64 sparse product, stored float32 (the original: a dense float32 matmul; <= 1e-6 m apart)
        cpath = sup / "test_split" / "contact" / path_after(m["contact_file"], "test_contact", f"{meta_path}[{i}] contact_file")
        contact[i] = read_contact_bits(cpath)
        tight = tight_raw[i] = project_box(verts[i].astype(np.float64), Tw, Kr)  # raw px -> crop px (A has no rotation)
        bbox[i] = [*(A @ [tight[0], tight[1], 1.0])[:2], *(A @ [tight[2], tight[3], 1.0])[:2]]
    j14, pelvis = gt_from_verts(body, verts)
    size = np.tile([CROP_SIZE, CROP_SIZE], (n, 1)).astype(np.int32)
    arrays = {
        "frame_id": ids,
        "image_path": [f"images/test/{i}.png" for i in ids],
        "scene_id": [str(m["scene_key"]) for m in metas],
        "camera_id": [f"crop-{i}" for i in ids],
        "K": K,
        "T_world_to_cam": T,
        "image_size": size,
        "person_box_xyxy": bbox.astype(np.float32),
        "verts_world": verts,
        "joints14_world": j14,
        "pelvis_world": pelvis,
        "contact": contact,
        "contact_part": contact * body.part_ids.numpy().astype(np.uint8)[None],
        # truncated: by the RAW image border (the stored crop always holds the whole tight box)
        "distance": camera_distance(T, pelvis.astype(np.float64)).astype(np.float32),
        "truncated": truncated_flags(tight_raw, raw_size),
        "crop_box_xyxy": np.tile([0.0, 0.0, CROP_SIZE - 1.0, CROP_SIZE - 1.0], (n, 1)).astype(np.float32),
        "source_crop_box_xyxy": crop_src,
        "verts_world_smplx": vx,
        "source_key": keys,
        "source_cam_key": [str(m["cam_key"]) for m in metas],
        "sequence": [str(m.get("seq_name") or k.rsplit("_", 3)[0]) for m, k in zip(metas, keys)],
        "gender": [_gender(m.get("gender", "neutral"), f"{meta_path}[{i}]") for i, m in enumerate(metas)],
        **unknown_annotations(n),
    }
    scans = {str(m["scene_key"]): f"{m['cap_name']}/{m['scan_name']}" for m in metas}
    return arrays, scans


def _gender(g: Any, where: str) -> str:
    g = str(g).lower()
    if g not in ("male", "female", "neutral"):
        raise OriginalDataError(f"{where}: gender {g!r} is not male / female / neutral")
    return g


def _trainval_split(
    split: str, root: Path, stage: Path, cfg: RichImportConfig, cams, clouds, body: BodyModel, smplh: Callable[[str], BodyModel]
) -> dict[str, Any]:
    sup = root / "sahmr_support" / f"{split}_split"
    how = "It comes with RICH's sahmr_support package."
    idx2meta = read_pickle(_need(sup / "meta" / "idx2meta.pkl", f"the RICH {split} metas", how), f"the RICH {split} metas")
    boxes = read_pickle(_need(sup / "meta" / "img2gtbbx.pkl", f"the RICH {split} GT boxes", how), f"the RICH {split} GT boxes")
    if not isinstance(idx2meta, Mapping) or not isinstance(boxes, Mapping):
        raise OriginalDataError(f"{sup / 'meta'}: idx2meta.pkl and img2gtbbx.pkl must each hold a dict")
    metas = select_frames(
        list(idx2meta.values()), boxes, int(cfg.sample_interval.get(split, DEFAULT_INTERVALS[split])), where=str(sup / "meta" / "idx2meta.pkl")
    )
    if cfg.limit:
        metas = metas[: cfg.limit]
    n = len(metas)
    if n == 0:
        raise OriginalDataError(f"{sup / 'meta' / 'idx2meta.pkl'}: no frame passes the selection rules (spec §1.4)")
    for m in metas:
        miss = [k for k in ("cam_key", "scene_key", "gender", "img_file", "body_file", "contact_file") if k not in m]
        if miss:
            raise OriginalDataError(f"{sup / 'meta' / 'idx2meta.pkl'} ({m['img_key']}): meta lacks {miss} (spec §1.4)")
        _check_known_keys(m, cams, clouds, f"{sup / 'meta' / 'idx2meta.pkl'} ({m['img_key']})")
    keys = [m["img_key"] for m in metas]
    ids = frame_ids_from_keys(keys, str(sup / "meta" / "idx2meta.pkl"))
    K = np.zeros((n, 3, 3), np.float32)
    T = np.zeros((n, 4, 4), np.float32)
    size = np.zeros((n, 2), np.int32)
    bbox = np.zeros((n, 4), np.float32)
    contact = np.zeros((n, NUM_SMPL_VERTS), bool)
    params: dict[str, list[np.ndarray]] = {k: [] for k in ("betas", "global_orient", "body_pose", "transl", "left_hand_pose", "right_hand_pose")}
    genders, img_paths = [], []
    for i in progress_bar(range(n), n, f"RICH {split}", cfg.progress):
        m = metas[i]
        Tw, Kr = cams[m["cam_key"]]
        T[i] = Tw
        K[i] = Kr
        K[i, :2] /= PROJ_SCALE  # exact (power of two)
        where = f"{sup / 'meta' / 'idx2meta.pkl'} ({m['img_key']})"
        jpg = root / "images_ds4" / split / tail_path(m["img_file"], where=f"{where} img_file")
        rel = f"images/{split}/{ids[i]}{jpg.suffix.lower()}"
        w, h, _ = import_image(jpg, stage, rel, f"RICH ds4 {split} image")
        exp = RAW_SIZE[::-1] if m["cam_key"] in PORTRAIT_CAMS else RAW_SIZE
        if (w * PROJ_SCALE, h * PROJ_SCALE) != exp:
            raise OriginalDataError(f"{jpg}: {w}x{h}, expected {exp[0] // PROJ_SCALE}x{exp[1] // PROJ_SCALE} (RICH raw / {PROJ_SCALE})")
        size[i] = (w, h)
        img_paths.append(rel)
        bbox[i] = np.asarray(boxes[m["img_key"]], dtype=np.float64).reshape(4) / PROJ_SCALE
        contact[i] = read_contact_bits(sup / "contact" / tail_path(m["contact_file"], where=f"{where} contact_file"))
        bp = root / "bodies" / split / tail_path(m["body_file"], where=f"{where} body_file")
        p = read_pickle(_need(bp, f"RICH {split} SMPL-H parameters", "It comes with RICH's bodies/ download."), "SMPL-H parameters")
        for k, v in _smplh_params(p, bp).items():
            params[k].append(v)
        genders.append(_gender(m["gender"], f"{where} gender"))
        if genders[-1] == "neutral":
            raise OriginalDataError(f"{where}: gender 'neutral'; RICH train/val GT comes from SMPL-H fits, which are male or female")
    P = {k: np.stack(v).astype(np.float32) for k, v in params.items()}
    verts = np.zeros((n, NUM_SMPL_VERTS, 3), np.float32)
    for g in sorted(set(genders)):
        idx = np.array([i for i, x in enumerate(genders) if x == g])
        model = smplh(g)
        with torch.no_grad():
            for s in range(0, len(idx), 256):
                b = idx[s : s + 256]
                out = model(**{k: torch.as_tensor(P[k][b]) for k in P})
                verts[b] = out.verts.numpy()
    j14, pelvis = gt_from_verts(body, verts)
    arrays = {
        "frame_id": ids,
        "image_path": img_paths,
        "scene_id": [str(m["scene_key"]) for m in metas],
        "camera_id": [str(m["cam_key"]) for m in metas],
        "K": K,
        "T_world_to_cam": T,
        "image_size": size,
        "person_box_xyxy": bbox,
        "verts_world": verts,
        "joints14_world": j14,
        "pelvis_world": pelvis,
        "contact": contact,
        "contact_part": contact * body.part_ids.numpy().astype(np.uint8)[None],
        "distance": camera_distance(T, pelvis.astype(np.float64)).astype(np.float32),
        "truncated": truncated_flags(bbox.astype(np.float64), size),
        "gender": genders,
        "source_key": keys,
        "source_cam_key": [str(m["cam_key"]) for m in metas],
        "sequence": [str(m.get("seq_name", "")) for m in metas],
        **P,
        **unknown_annotations(n),
    }
    return arrays


SMPLH_SIZES = {"betas": None, "global_orient": 3, "body_pose": 63, "transl": 3, "left_hand_pose": 45, "right_hand_pose": 45}


def _smplh_params(p: Any, path: Path) -> dict[str, np.ndarray]:
    """The SMPL-H parameter dict of one frame: 1-D float arrays, hand poses zeros when missing (spec §1.4)."""
    if not isinstance(p, Mapping):
        raise OriginalDataError(f"{path}: expected a dict of SMPL-H parameters, got {type(p).__name__}")
    out = {}
    for k, size in SMPLH_SIZES.items():
        if k not in p:
            if k in ("left_hand_pose", "right_hand_pose"):
                out[k] = np.zeros(45, np.float32)
                continue
            raise OriginalDataError(f"{path}: SMPL-H parameters lack '{k}' (has {sorted(p)})")
        a = np.asarray(p[k])
        if a.dtype.kind not in "fiu":
            raise OriginalDataError(f"{path}: '{k}' must be numeric, got {a.dtype}")
        a = a.reshape(-1).astype(np.float32)
        if (size is not None and a.size != size) or (k == "betas" and a.size != 10) or not np.isfinite(a).all():
            raise OriginalDataError(f"{path}: '{k}' must hold {size or 10} finite numbers, got {a.size}")
        out[k] = a
    return out


# -------------------------------------------------------------------------------------------- import


def _check_layout(root: Path, splits: Sequence[str]) -> Path:
    how = (
        "Place RICH's sahmr_support package (scene_info/, test_split/, train_split/, val_split/) under RICH_ROOT, and "
        "for training images_ds4/ and bodies/ beside it (README: Real datasets)"
    )
    if not root.is_dir():
        raise FileNotFoundError(f"RICH_ROOT {root}: not a folder. {how}")
    scene_info = _need(root / "sahmr_support" / "scene_info", "RICH scene info", how)
    for s in splits:
        _need(root / "sahmr_support" / f"{s}_split", f"RICH {s} split", how)
        if s != "test":
            _need(root / "images_ds4" / s, f"RICH ds4 {s} images", how)
            _need(root / "bodies" / s, f"RICH {s} SMPL-H fits", how)
    return scene_info


def import_rich(root: str | Path, out: str | Path, cfg: RichImportConfig, force: bool = False) -> dict[str, Any]:
    """Import RICH (the requested splits) into a canonical dataset at ``out``; returns its ``dataset.json``."""
    root, out = Path(root), Path(out)
    cfg.check()
    scene_info = _check_layout(root, cfg.splits)
    if "test" in cfg.splits and cfg.smplx2smplh is None:
        raise FileNotFoundError(
            "--smplx2smplh: required for the test split (its GT is SMPL-X; the release evaluation maps it to SMPL-H with "
            "smplx2smplh_deftrafo_setup.pkl from the SMPL-X 'model_transfer' download)"
        )
    M = read_smplx_to_smplh(cfg.smplx2smplh) if "test" in cfg.splits else None  # fail in the first second
    trainval = [s for s in cfg.splits if s != "test"]
    for g in ("male", "female") if trainval else ():
        path = cfg.smplh.get(g)
        if path is None or not Path(path).is_file():
            raise FileNotFoundError(
                f"--smplh-{g} {path}: missing; the {'/'.join(trainval)} GT comes from SMPL-H parameters: import "
                f"SMPLH_{g.upper()}.pkl with `sahmr body import` (writes models/smplh_{g}.npz)"
            )
    body = load_eval_body(cfg.body_model)
    cams = read_cameras(scene_info)
    clouds = find_scene_clouds(scene_info)
    sdfs = find_sdfs(scene_info)
    smplh_cache: dict[str, BodyModel] = {}

    def smplh(g: str) -> BodyModel:
        if g == "neutral":
            raise OriginalDataError("RICH train/val frames must be male or female (SMPL-H has no neutral model)")
        if g not in smplh_cache:
            m = BodyModel.load(cfg.smplh[g], num_betas=10)
            if m.model_type != "smplh" or m.num_verts != NUM_SMPL_VERTS:
                raise OriginalDataError(f"--smplh-{g} {cfg.smplh[g]}: expected an SMPL-H model (6890 vertices), got {m.model_type} ({m.num_verts})")
            smplh_cache[g] = m
        return smplh_cache[g]

    with staged_output(out, force=force) as stage:
        writer = DatasetWriter(
            stage,
            "rich",
            body_meta(body, cfg.body_model),
            {
                "source": "RICH (sahmr_support, as the original SA-HMR reads it)",
                "rich_root": str(root.resolve()),
                "splits": list(cfg.splits),
                "sample_interval": dict(cfg.sample_interval),
                "limit": cfg.limit,
                "smplx2smplh": str(cfg.smplx2smplh) if cfg.smplx2smplh else None,
                "smplh": {g: str(p) if p else None for g, p in cfg.smplh.items()},
                "importer": "sahmr import rich",
            },
        )
        used: dict[str, set[str]] = {}
        test_scans: dict[str, str] = {}
        for split in [s for s in RICH_SPLITS if s in cfg.splits]:
            if split == "test":
                arrays, test_scans = _test_split(root, stage, cfg, cams, clouds, body, M)
            else:
                arrays = _trainval_split(split, root, stage, cfg, cams, clouds, body, smplh)
            writer.write_split(split, arrays)
            for sid in arrays["scene_id"]:
                used.setdefault(sid, set()).add(split)
        for sid in sorted(used):
            cloud = _cloud_path(clouds, sid)
            pts, pitch = read_voxel_cloud(cloud)
            sdf_json = None
            if sid in test_scans:  # the release evaluation's rule: f"{cap_name}/{scan_name}_mysdf.json"
                sdf_json = scene_info / f"{test_scans[sid]}_mysdf.json"
                _need(sdf_json, "the SDF of a RICH test scan", "It comes with RICH's sahmr_support/scene_info.")
            elif sid in sdfs:
                sdf_json = sdfs[sid]
            grid = read_sdf(sdf_json) if sdf_json is not None else None
            writer.write_scene(
                sid,
                pts,
                grid,
                meta={
                    "source": "RICH",
                    "scene_key": sid,
                    "pitch": pitch,
                    "splits": sorted(used[sid]),
                    "voxel_file": cloud.relative_to(root).as_posix(),
                    "sdf_file": sdf_json.relative_to(root).as_posix() if sdf_json is not None else None,
                },
            )
        meta = writer.finalize(progress=cfg.progress)
    return meta
