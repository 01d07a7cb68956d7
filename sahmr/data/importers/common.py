"""What the RICH and PROX importers share: the staged output folder, image checks, GT-derived arrays.

An import writes into a staging folder next to ``--out`` and moves it into place only when the dataset is
complete (``dataset.json`` written last by :class:`sahmr.data.format.DatasetWriter`), so a failed or
killed import leaves ``--out`` as it was. An existing ``--out`` is replaced only with ``force=True`` and
only when it is a kit dataset (it has a ``dataset.json`` of the kit's format) — the kit never deletes a
folder it did not write. Folders a killed import left (``.<name>.importing-<pid>``, whose process is gone)
are removed by the next import to the same ``--out``; a dataset set aside for replacement is put back.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import torch

from sahmr.body.model import BodyModel
from sahmr.body.model_file import sha256_file
from sahmr.data.format import FORMAT_NAME, is_valid_id, write_image
from sahmr.data.importers.files import NUM_SMPL_VERTS, OriginalDataError
from sahmr.geometry.camera import project, transform

__all__ = [
    "staged_output",
    "import_image",
    "load_eval_body",
    "body_meta",
    "gt_from_verts",
    "progress_bar",
    "project_box",
    "frame_id_of",
    "frame_ids_from_keys",
    "unknown_annotations",
    "camera_distance",
    "truncated_flags",
]

STAGING_PREFIX = ".importing-"


def _is_kit_dataset(path: Path) -> bool:
    try:
        return json.loads((path / "dataset.json").read_text()).get("format") == FORMAT_NAME
    except (OSError, ValueError, AttributeError):
        return False


@contextmanager
def staged_output(out: Path, force: bool = False) -> Iterator[Path]:
    """Yield a staging folder; on success it becomes ``out`` atomically (rename), on error it is removed.

    out: the dataset folder to create. It must not exist, or be empty, or (with force) be a kit dataset.
    """
    out = Path(out)
    if out.is_symlink():
        raise FileExistsError(f"--out {out}: is a symbolic link; pass the folder it points to ({out.resolve()}) or a new path")
    _recover_stale(out)
    if out.exists():
        if not out.is_dir():
            raise FileExistsError(f"--out {out}: exists and is not a folder; choose another path")
        if any(out.iterdir()):
            if not _is_kit_dataset(out):
                raise FileExistsError(
                    f"--out {out}: the folder holds files that are not a sahmr dataset; the kit never deletes what it "
                    "did not write: choose an empty or new folder"
                )
            if not force:
                raise FileExistsError(f"--out {out}: a dataset exists there; pass --force to replace it")
    out.parent.mkdir(parents=True, exist_ok=True)
    stage = out.parent / f".{out.name}{STAGING_PREFIX}{os.getpid()}"
    stage.mkdir()
    try:
        yield stage
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise
    old = None
    if out.exists():
        old = out.parent / f".{out.name}{STAGING_PREFIX}old-{os.getpid()}"
        os.replace(out, old)
    os.replace(stage, out)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, another user's
        return True
    return True


def _recover_stale(out: Path) -> None:
    """Folders a killed import of ours left next to ``out`` (its process is gone): a staging folder is
    removed; a previous dataset set aside for replacement (``...-old-<pid>``) is put back when ``out`` is
    missing (killed between the two renames), else removed. A live import's folders are left alone."""
    if not out.parent.is_dir():
        return
    for d in sorted(out.parent.glob(f".{out.name}{STAGING_PREFIX}*")):
        tag = d.name[len(f".{out.name}{STAGING_PREFIX}") :]
        old = tag.startswith("old-")
        pid = tag[4:] if old else tag
        if not pid.isdigit() or _pid_alive(int(pid)):
            continue
        if old and not out.exists() and _is_kit_dataset(d):
            os.replace(d, out)
        else:
            shutil.rmtree(d, ignore_errors=True)


def import_image(src: Path, root: Path, rel: str, what: str) -> tuple[int, int, str]:
    """Bring one source image into the dataset at ``root / rel``; returns its (W, H, format).

    The file is decoded completely once (a truncated file fails here, naming it, not during training). 8-bit
    RGB files are copied byte for byte (what the model sees is then exactly the file); other modes are
    converted to RGB as ``cv2.imread`` would and re-encoded by :func:`sahmr.data.format.write_image`."""
    from PIL import Image

    src = Path(src)
    if not src.is_file():
        raise FileNotFoundError(f"{src}: missing ({what})")
    try:
        with Image.open(src) as im:
            fmt, size = str(im.format), im.size
            im.load()
            rgb = None if im.mode == "RGB" else np.asarray(im.convert("RGB"))
    except OSError as e:
        raise OriginalDataError(f"{src}: not a readable image ({what}): {e}") from None
    if rgb is None:
        dst = Path(root) / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, dst)
    else:
        write_image(root, rel, rgb)
    return size[0], size[1], fmt


def load_eval_body(path: Path | None) -> BodyModel:
    """The SMPL-topology body model whose H36M regressor and contact parts label the GT (the user's SMPL
    neutral imported with the original's companion assets). Raises with a fix when absent or not 6890."""
    if path is None or not Path(path).is_file():
        raise FileNotFoundError(
            f"--body-model {path}: missing. Import the SMPL neutral model with the original's companion files first: "
            "`sahmr body import basicModel_neutral_lbs_10_207_0_v1.0.0.pkl --assets <SA-HMR data folder>` "
            "(writes models/smpl_neutral.npz)"
        )
    body = BodyModel.load(path)
    if body.num_verts != NUM_SMPL_VERTS:
        raise OriginalDataError(
            f"--body-model {path}: has {body.num_verts} vertices; the RICH/PROX GT and contact labels are on the "
            f"{NUM_SMPL_VERTS}-vertex SMPL topology: import the SMPL neutral model"
        )
    return body


def body_meta(body: BodyModel, path: Path) -> dict:
    """``dataset.json`` body_model entry for the evaluation body."""
    return {"name": body.name, "num_verts": body.num_verts, "sha256": sha256_file(path), "model_type": body.model_type}


@torch.no_grad()
def gt_from_verts(body: BodyModel, verts_world: np.ndarray, chunk: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """(joints14_world (N, 14, 3), pelvis_world (N, 3)) float32 from GT vertices (N, 6890, 3) with the body's
    H36M regressor, in float64 (as the release evaluation's numpy computation)."""
    j14, pel = [], []
    for s in range(0, len(verts_world), chunk):
        v = torch.as_tensor(np.asarray(verts_world[s : s + chunk], dtype=np.float64))
        j, p = body.regress_joints14(v)
        j14.append(j.numpy())
        pel.append(p.numpy())
    if not j14:
        return np.zeros((0, 14, 3), np.float32), np.zeros((0, 3), np.float32)
    return np.concatenate(j14).astype(np.float32), np.concatenate(pel).astype(np.float32)


def project_box(verts_world: np.ndarray, T: np.ndarray, K: np.ndarray) -> np.ndarray:
    """(4,) tight box [l, u, r, b] of the projected vertices (V, 3) (the original's ``compute_bbx``), float64."""
    f8 = lambda a: np.asarray(a, np.float64)  # noqa: E731
    uv = project(transform(f8(T), f8(verts_world)), f8(K))
    return np.concatenate([uv.min(0), uv.max(0)])


def progress_bar(iterable, total: int, desc: str, enabled: bool):
    """tqdm on stderr when enabled (and stderr is a terminal or enabled explicitly), else the iterable."""
    if not enabled:
        return iterable
    from tqdm import tqdm

    return tqdm(iterable, total=total, desc=desc, unit="frame", dynamic_ncols=True)


def frame_id_of(img_key: str) -> str:
    """The kit frame id of an original img_key: the key itself when it is a valid id, else sanitised."""
    fid = img_key if is_valid_id(img_key) else re.sub(r"[^A-Za-z0-9_.+-]", "_", img_key).lstrip("_.+-") or "frame"
    return fid


def frame_ids_from_keys(keys: Sequence[str], where: str) -> list[str]:
    """Frame ids of the original img_keys, 1:1; two keys mapping to one id raise (naming ``where``)."""
    ids = [frame_id_of(k) for k in keys]
    seen: dict[str, str] = {}
    for k, i in zip(keys, ids):
        if i in seen:
            raise OriginalDataError(f"{where}: img_keys {seen[i]!r} and {k!r} give the same frame id {i!r} (duplicate frame?)")
        seen[i] = k
    return ids


def unknown_annotations(n: int) -> dict[str, Any]:
    """Per-frame fields the original datasets do not annotate: pose_class "" and occlusion NaN."""
    return {"pose_class": [""] * n, "occlusion": np.full(n, np.nan, np.float32)}


def camera_distance(T: np.ndarray, pelvis: np.ndarray) -> np.ndarray:
    """(N,) |T . pelvis| camera-pelvis distance, T (N, 4, 4) world->camera, pelvis (N, 3) world."""
    return np.linalg.norm(transform(np.asarray(T, np.float64), np.asarray(pelvis, np.float64)[:, None])[:, 0], axis=1)


def truncated_flags(bbox: np.ndarray, size: np.ndarray) -> np.ndarray:
    """(N,) bool: the tight box (N, 4) leaves the stored image of size (N, 2) [W, H]."""
    return (bbox[:, :2] < 0).any(1) | (bbox[:, 2] > size[:, 0] - 1) | (bbox[:, 3] > size[:, 1] - 1)
