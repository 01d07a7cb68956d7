"""``sahmr import prox``: PROX quantitative as the original SA-HMR reads it -> a canonical dataset (spec §1.5).

Input (``PROX_QUANT_ROOT``, the folder holding ``sahmr_support/``)::

    sahmr_support/meta/mosh_mesh_test.pkl          list of metas (img_key, scene_name, img_file, body_file)
    sahmr_support/img2gtbbx/mosh_mesh.pkl          img_key -> tight box [l, u, r, b], FLIPPED-image px
    sahmr_support/image/<after "recordings/">      raw Color frames (1920x1080), mirrored w.r.t. the calibration
    sahmr_support/gt_mosh_mesh/<after "mosh/">     GT SMPL-X meshes (10475 vertices), CAMERA frame
    sahmr_support/vicon/calibration/{Color.json, cam2world_vicon.json}
    sahmr_support/vicon/{vicon_voxel_world.npy, vicon.json, vicon_sdf.npy}

Output: split ``test`` in meta-file order; each frame's image flipped horizontally (as the model must see
it; the original flips at load time) and stored as a lossless PNG; ``K`` from ``Color.json`` with
``K[2, 2] = 1``; ``T_world_to_cam = inverse(cam2world)``; GT ``verts_world = T_c2w · (mtx[:, :10475] @ V_cam)``
in the release evaluation's order, the SMPL-X mesh kept as ``verts_world_smplx = T_c2w · V_cam``; contact
all False (PROX has no contact labels, so ConFE = PenE as in the paper); scene ``vicon`` with its voxel
cloud and SDF; ``source_key`` = the original ``img_key``.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from sahmr.data.format import DatasetWriter, write_image
from sahmr.data.importers.common import (
    body_meta,
    camera_distance,
    frame_ids_from_keys,
    gt_from_verts,
    load_eval_body,
    progress_bar,
    staged_output,
    truncated_flags,
    unknown_annotations,
)
from sahmr.data.importers.files import (
    NUM_SMPL_VERTS,
    NUM_SMPLX_VERTS,
    OriginalDataError,
    path_after,
    read_json_matrix,
    read_pickle,
    read_ply_vertices,
    read_prox_intrinsics,
    read_sdf,
    read_smplx_to_smplh,
    read_voxel_cloud,
)
from sahmr.geometry.camera import transform

__all__ = ["ProxImportConfig", "import_prox"]

SCENE = "vicon"  # the only PROX quantitative scene (scene_name in the metas)


@dataclass
class ProxImportConfig:
    """body_model: the imported SMPL neutral (H36M regressor); smplx2smplh: the transfer setup pickle;
    limit: first N frames only; progress: progress bar on stderr."""

    body_model: Path | None = None
    smplx2smplh: Path | None = None
    limit: int | None = None
    progress: bool = True


def _flip_to_png(src: Path, root: Path, rel: str) -> tuple[int, int]:
    """Decode a PROX Color frame once, flip it horizontally (the recordings are mirrored w.r.t. the
    calibration; the original flips with cv2.flip(img, 1) at load time) and write it as a lossless PNG at
    ``root / rel``. Returns (W, H). A missing or truncated file raises naming it."""
    from PIL import Image

    if not src.is_file():
        raise FileNotFoundError(f"{src}: missing (PROX Color frame)")
    try:
        with Image.open(src) as im:
            rgb = np.asarray(im.convert("RGB"))[:, ::-1]
    except OSError as e:
        raise OriginalDataError(f"{src}: not a readable image (PROX Color frame): {e}") from None
    write_image(root, rel, np.ascontiguousarray(rgb))
    return rgb.shape[1], rgb.shape[0]


def import_prox(root: str | Path, out: str | Path, cfg: ProxImportConfig, force: bool = False) -> dict[str, Any]:
    """Import PROX quantitative into a canonical dataset at ``out`` (split ``test``); returns ``dataset.json``."""
    root, out = Path(root), Path(out)
    how = "Place PROX quantitative's sahmr_support package under PROX_QUANT_ROOT (README: Real datasets)"
    sup = root / "sahmr_support"
    if not sup.is_dir():
        raise FileNotFoundError(f"{sup}: missing (PROX quantitative's sahmr_support). {how}")
    if cfg.limit is not None and cfg.limit < 1:
        raise ValueError(f"--limit: expected an integer >= 1, got {cfg.limit}")
    if cfg.smplx2smplh is None:
        raise FileNotFoundError(
            "--smplx2smplh: required (the PROX GT is SMPL-X; the release evaluation maps it to SMPL-H with "
            "smplx2smplh_deftrafo_setup.pkl from the SMPL-X 'model_transfer' download)"
        )
    M = read_smplx_to_smplh(cfg.smplx2smplh)
    body = load_eval_body(cfg.body_model)
    metas_path = sup / "meta" / "mosh_mesh_test.pkl"
    metas = read_pickle(metas_path, "the PROX quantitative metas")
    boxes = read_pickle(sup / "img2gtbbx" / "mosh_mesh.pkl", "the PROX GT boxes")
    if not isinstance(metas, list):
        raise OriginalDataError(f"{metas_path}: expected a list of meta dicts, got {type(metas).__name__}")
    if not isinstance(boxes, Mapping):
        raise OriginalDataError(f"{sup / 'img2gtbbx' / 'mosh_mesh.pkl'}: expected a dict img_key -> box, got {type(boxes).__name__}")
    if cfg.limit:
        metas = metas[: cfg.limit]
    if not metas:
        raise OriginalDataError(f"{metas_path}: holds no frames")
    calib = sup / "vicon" / "calibration"
    K = read_prox_intrinsics(calib / "Color.json")
    T_c2w = read_json_matrix(calib / "cam2world_vicon.json", "PROX camera-to-world (vicon)")
    if abs(np.linalg.det(T_c2w[:3, :3]) - 1) > 1e-3 or not np.allclose(T_c2w[3], [0, 0, 0, 1]):
        raise OriginalDataError(f"{calib / 'cam2world_vicon.json'}: not a rigid 4x4 transform (det R = {np.linalg.det(T_c2w[:3, :3]):.4f})")
    T_w2c = np.linalg.inv(T_c2w)
    n = len(metas)
    keys = []
    for i, m in enumerate(metas):
        if not isinstance(m, Mapping) or any(k not in m for k in ("img_key", "img_file", "body_file")):
            raise OriginalDataError(f"{metas_path}[{i}]: expected a meta dict with img_key, img_file, body_file (spec §1.5)")
        if str(m.get("scene_name", SCENE)) != SCENE:
            raise OriginalDataError(f"{metas_path}[{i}]: unknown scene_name {m['scene_name']!r}; PROX quantitative has only 'vicon'")
        if m["img_key"] not in boxes:
            raise OriginalDataError(f"{sup / 'img2gtbbx' / 'mosh_mesh.pkl'}: no GT box for img_key {m['img_key']!r}")
        keys.append(str(m["img_key"]))
    ids = frame_ids_from_keys(keys, str(metas_path))

    with staged_output(out, force=force) as stage:
        writer = DatasetWriter(
            stage,
            "prox-quantitative",
            body_meta(body, cfg.body_model),
            {
                "source": "PROX quantitative (sahmr_support, as the original SA-HMR reads it)",
                "prox_root": str(root.resolve()),
                "limit": cfg.limit,
                "smplx2smplh": str(cfg.smplx2smplh),
                "importer": "sahmr import prox",
            },
        )
        vx = np.zeros((n, NUM_SMPLX_VERTS, 3), np.float32)
        verts = np.zeros((n, NUM_SMPL_VERTS, 3), np.float32)
        bbox = np.zeros((n, 4), np.float32)
        size = np.zeros((n, 2), np.int32)
        imgs = [sup / "image" / path_after(m["img_file"], "recordings", f"{metas_path}[{i}] img_file") for i, m in enumerate(metas)]
        plys = [sup / "gt_mosh_mesh" / path_after(m["body_file"], "mosh", f"{metas_path}[{i}] body_file") for i, m in enumerate(metas)]
        for i, m in enumerate(metas):  # boxes first: a bad one fails before minutes of image work
            b = np.asarray(boxes[m["img_key"]], dtype=np.float64).reshape(-1)
            if b.shape != (4,) or not np.isfinite(b).all():
                raise OriginalDataError(f"{sup / 'img2gtbbx' / 'mosh_mesh.pkl'}[{m['img_key']!r}]: expected a finite (4,) box, got {b}")
            bbox[i] = b
        # decode + flip + PNG encode dominate (PIL releases the GIL): one thread per core, a short window of
        # frames ahead, cancelled at the first error so a failure is reported at once
        workers = max(1, min(8, os.cpu_count() or 1))
        pool = ThreadPoolExecutor(max_workers=workers)
        pending: deque = deque()
        try:
            nxt = 0
            for i in progress_bar(range(n), n, "PROX quantitative", cfg.progress):
                while nxt < n and len(pending) < 2 * workers:
                    pending.append(pool.submit(_flip_to_png, imgs[nxt], stage, f"images/test/{ids[nxt]}.png"))
                    nxt += 1
                v_cam = read_ply_vertices(plys[i], expected=NUM_SMPLX_VERTS)
                vx[i] = transform(T_c2w, v_cam)
                verts[i] = transform(T_c2w, M @ v_cam)  # the release evaluation: transfer in the camera frame, then to the world
                size[i] = pending.popleft().result()
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
        j14, pelvis = gt_from_verts(body, verts)
        T = np.repeat(T_w2c[None].astype(np.float32), n, 0)
        contact = np.zeros((n, NUM_SMPL_VERTS), bool)
        arrays = {
            "frame_id": ids,
            "image_path": [f"images/test/{i}.png" for i in ids],
            "scene_id": [SCENE] * n,
            "camera_id": ["color"] * n,
            "K": np.repeat(K[None], n, 0),
            "T_world_to_cam": T,
            "image_size": size,
            "person_box_xyxy": bbox,
            "verts_world": verts,
            "joints14_world": j14,
            "pelvis_world": pelvis,
            "contact": contact,
            "contact_part": np.zeros((n, NUM_SMPL_VERTS), np.uint8),
            "truncated": truncated_flags(bbox.astype(np.float64), size),
            "distance": camera_distance(T, pelvis.astype(np.float64)).astype(np.float32),
            "verts_world_smplx": vx,
            "source_key": keys,
            **unknown_annotations(n),
        }
        writer.write_split("test", arrays)
        vox = sup / "vicon" / "vicon_voxel_world.npy"
        pts, pitch = read_voxel_cloud(vox)
        sdf_json = sup / "vicon" / "vicon.json"
        writer.write_scene(
            SCENE,
            pts,
            read_sdf(sdf_json),
            meta={
                "source": "PROX quantitative",
                "scene_key": SCENE,
                "pitch": pitch,
                "voxel_file": vox.relative_to(root).as_posix(),
                "sdf_file": sdf_json.relative_to(root).as_posix(),
            },
        )
        meta = writer.finalize(progress=cfg.progress)
    return meta
