"""``sahmr body import``: official SMPL / SMPL-H / SMPL-X pickles → the kit's plain ``.npz`` format.

The pickle is read once through the restricted unpickler (no chumpy, nothing executed). The kit's
extras (H36M evaluation regressor, 7 contact parts, mesh hierarchy) come from the original project's
companion assets when given (``J_regressor_h36m_correct.npy``, ``mesh_downsampling.npz``,
``seg_part_info.npy``; spec §2.1) so evaluation matches the paper exactly, and are computed by the
kit's own builders otherwise.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse

from sahmr.body.hierarchy import HierarchyLevel, build_hierarchy
from sahmr.body.model_file import NUM_LEVELS, BodyModelFile, BodyModelFileError, save_body_model, sha256_file
from sahmr.body.parts import compute_part_ids
from sahmr.body.regressors import h36m_regressor_from_skeleton
from sahmr.body.unpickle import safe_load_npy, safe_load_npz, safe_load_pickle

COMPANION_FILES = ("J_regressor_h36m_correct.npy", "mesh_downsampling.npz", "seg_part_info.npy")


def _plain(value: Any) -> np.ndarray | None:
    if scipy.sparse.issparse(value):
        return np.asarray(value.todense())
    if isinstance(value, np.ndarray) and value.dtype != object:
        return value
    return None


def detect_model_type(raw: dict[str, Any]) -> str:
    if "lmk_faces_idx" in raw or "dynamic_lmk_faces_idx" in raw:
        return "smplx"
    if "hands_componentsl" in raw:
        return "smplh"
    return "smpl"


def detect_gender(path: Path) -> str:
    m = re.search(r"(neutral|female|male)", path.name.lower())
    if m:
        return m.group(1)
    m = re.search(r"_([fmn])_", path.name.lower())  # basicModel_f_lbs_… style names
    return {"f": "female", "m": "male", "n": "neutral"}[m.group(1)] if m else "neutral"


def official_arrays(raw: dict[str, Any], where: str) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Plain arrays (float32 / int64) and string metadata from an unpickled official model dict."""
    arrays, extra = {}, {}
    for k, v in raw.items():
        a = _plain(v)
        if a is None:
            if isinstance(v, (str, bytes, int, float)):
                extra[k] = v.decode() if isinstance(v, bytes) else v
            continue
        if a.dtype.kind == "f":
            a = a.astype(np.float32)
        elif a.dtype.kind in "iu":
            a = a.astype(np.int64)
        arrays[k] = a
    for k in ("v_template", "shapedirs", "posedirs", "J_regressor", "weights", "kintree_table", "f"):
        if k not in arrays:
            raise BodyModelFileError(f"{where}: not an SMPL-family model file: key '{k}' missing (found {sorted(raw)})")
    kt = arrays["kintree_table"].copy()
    kt[0, 0] = -1  # the official files store 2**32-1 for the root's parent
    arrays["kintree_table"] = kt
    return arrays, extra


def _levels_from_graphcmr(path: Path, where_V: int) -> list[HierarchyLevel]:
    """Hierarchy from the original's ``mesh_downsampling.npz`` (selection D, barycentric U, faces F)."""
    z = safe_load_npz(path)
    D, U, F = z["D"], z["U"], z["F"]
    levels = []
    prev = where_V
    for i in range(NUM_LEVELS):
        d = scipy.sparse.csr_matrix(D[i])
        if d.shape[1] != prev or np.any(np.diff(d.indptr) != 1) or not np.allclose(d.data, 1.0):
            raise BodyModelFileError(f"{path}: D[{i}] is not a selection matrix from {prev} vertices")
        down_idx = d.indices.astype(np.int64)
        u = scipy.sparse.csr_matrix(U[i])
        idx = np.zeros((u.shape[0], 3), np.int64)
        w = np.zeros((u.shape[0], 3), np.float32)
        for r in range(u.shape[0]):  # ≤ 3 entries a row; once at import time
            s, e = u.indptr[r], u.indptr[r + 1]
            if e - s > 3:
                raise BodyModelFileError(f"{path}: U[{i}] row {r} has {e - s} > 3 entries")
            idx[r, : e - s] = u.indices[s:e]
            w[r, : e - s] = u.data[s:e]
        w /= w.sum(1, keepdims=True)
        levels.append(HierarchyLevel(down_idx, idx, w, np.asarray(F[i + 1], np.int64)))
        prev = len(down_idx)
    return levels


def import_official(
    model_path: str | Path, out_dir: str | Path = "models", name: str | None = None,
    gender: str | None = None, assets_dir: str | Path | None = None, progress=print,
) -> Path:
    """Convert an official pickle (+ optional companion assets) and write ``<out_dir>/<name>.npz``."""
    model_path = Path(model_path)
    raw = safe_load_pickle(model_path)
    if not isinstance(raw, dict):
        raise BodyModelFileError(f"{model_path}: expected a pickled dict, got {type(raw).__name__}")
    arrays, extra = official_arrays(raw, str(model_path))
    model_type = detect_model_type(raw)
    gender = gender or detect_gender(model_path)
    name = name or f"{model_type}_{gender}"
    V = arrays["v_template"].shape[0]
    template, faces = arrays["v_template"].astype(np.float64), arrays["f"]
    weights = arrays["weights"].astype(np.float64)
    parents = arrays["kintree_table"][0]
    joints = arrays["J_regressor"].astype(np.float64) @ template
    used_assets: dict[str, str] = {}
    assets = Path(assets_dir) if assets_dir else None

    def asset(fname: str) -> Path | None:
        if assets is None or V != 6890:  # the original's assets are SMPL(-H) topology only
            return None
        p = assets / fname
        if p.is_file():
            used_assets[fname] = sha256_file(p)
            return p
        return None

    if (p := asset("J_regressor_h36m_correct.npy")) is not None:
        eval_reg = np.asarray(safe_load_npy(p), np.float32)
    else:
        eval_reg = h36m_regressor_from_skeleton(arrays["J_regressor"].astype(np.float64), template, weights)
    if (p := asset("seg_part_info.npy")) is not None:
        info = safe_load_npy(p)
        info = info.item() if isinstance(info, np.ndarray) and info.dtype == object else info
        part_ids = np.asarray(info["verts6890_pids"]).astype(np.int64)
    else:
        part_ids = compute_part_ids(template, faces, weights, joints, parents)
    if (p := asset("mesh_downsampling.npz")) is not None:
        levels = _levels_from_graphcmr(p, V)
    else:
        progress(f"[import] building the mesh hierarchy of {V} vertices")
        levels = build_hierarchy(template, faces, (round(V / 4), round(V / 16)))

    arrays["sahmr_eval_regressor"] = eval_reg.astype(np.float32)
    arrays["sahmr_part_ids"] = part_ids
    for i, lvl in enumerate(levels, start=1):
        arrays[f"sahmr_down_idx_{i}"] = lvl.down_idx
        arrays[f"sahmr_up_idx_{i}"] = lvl.up_idx
        arrays[f"sahmr_up_w_{i}"] = np.asarray(lvl.up_w, np.float32)
        arrays[f"sahmr_faces_{i}"] = lvl.faces
    meta = {
        "name": name, "model_type": model_type, "gender": gender, "source": "official",
        "source_file": model_path.name, "source_sha256": sha256_file(model_path),
        "companion_assets": used_assets, "level_sizes": [V] + [len(lvl.down_idx) for lvl in levels],
        "official_fields": {k: v for k, v in extra.items() if isinstance(v, (str, int, float))},
    }
    return save_body_model(BodyModelFile(arrays=arrays, meta=meta), Path(out_dir) / f"{name}.npz")
