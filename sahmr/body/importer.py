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


def _levels_from_graphcmr(path: Path, n_verts: int) -> list[HierarchyLevel]:
    """Hierarchy from the original's ``mesh_downsampling.npz`` (GraphCMR), as it is distributed.

    The file is an ``np.savez`` of object arrays (Python-2 pickles of old scipy matrices):
    ``A`` 3 sparse adjacency matrices (6890², 1723², 431²); ``U`` 2 sparse upsampling matrices
    (6890, 1723) and (1723, 431), ≤ 3 barycentric weights a row; ``D`` 2 sparse selection matrices
    (1723, 6890) and (431, 1723), one 1.0 a row at strictly increasing columns; ``F`` 3 face arrays
    (13776, 3), (3442, 3), (858, 3); ``M`` meshes pickled as ``__main__.MyMesh``, a class of the
    authors' script. Only ``D``, ``U``, ``F`` are read (restricted unpickler); ``A`` and ``M`` are not
    opened. Level i gets ``down_idx (V_i,)``, ``up_idx/up_w (V_{i-1}, 3)`` and ``faces = F[i]``.
    """
    z = safe_load_npz(path, members=("D", "U", "F"))

    def bad(member: str, msg: str) -> BodyModelFileError:
        return BodyModelFileError(f"{path}:{member}.npy: {msg}")

    def kind(x: Any) -> str:
        return f"{type(x).__name__} {getattr(x, 'shape', '')}".strip()

    for key, n in (("D", NUM_LEVELS), ("U", NUM_LEVELS), ("F", NUM_LEVELS + 1)):
        if not isinstance(z[key], (np.ndarray, list, tuple)) or len(z[key]) < n:
            raise bad(key, f"expected a list of {n} items, got {kind(z[key])}")
    levels = []
    prev = n_verts
    for i in range(NUM_LEVELS):
        d, u, f = z["D"][i], z["U"][i], np.asarray(z["F"][i + 1])
        if not scipy.sparse.issparse(d) or d.shape[1] != prev:
            raise bad("D", f"item {i} is not a sparse matrix with {prev} columns ({kind(d)})")
        d = scipy.sparse.csr_matrix(d)
        d.sum_duplicates()
        down_idx = d.indices.astype(np.int64)
        if np.any(np.diff(d.indptr) != 1) or not np.allclose(d.data, 1.0) or np.any(np.diff(down_idx) <= 0):
            raise bad("D", f"item {i} is not a selection matrix (one 1.0 a row, increasing columns)")
        n = len(down_idx)
        if not scipy.sparse.issparse(u) or u.shape != (prev, n):
            raise bad("U", f"item {i} is not a sparse ({prev}, {n}) matrix ({kind(u)})")
        u = scipy.sparse.csr_matrix(u)
        u.sum_duplicates()
        u.eliminate_zeros()
        counts = np.diff(u.indptr)
        sums = np.asarray(u.sum(1)).ravel()
        if np.any((counts < 1) | (counts > 3)) or np.any(sums <= 0):
            r = int(np.flatnonzero((counts < 1) | (counts > 3) | (sums <= 0))[0])
            raise bad("U", f"item {i} row {r} has {counts[r]} weights summing to {sums[r]:g}, not 1-3 barycentric weights")
        rows = np.repeat(np.arange(prev), counts)
        pos = np.arange(u.nnz) - u.indptr[rows]  # slot of each entry within its row
        idx = np.repeat(u.indices[u.indptr[:-1]], 3).reshape(prev, 3).astype(np.int64)  # pad: 1st vertex, w 0
        w = np.zeros((prev, 3))
        idx[rows, pos], w[rows, pos] = u.indices, u.data
        if f.dtype.kind not in "iu" or f.ndim != 2 or f.shape[1] != 3 or not f.size or f.min() < 0 or f.max() >= n:
            raise bad("F", f"item {i + 1} is not a (F, 3) face array into {n} vertices (shape {f.shape})")
        levels.append(HierarchyLevel(down_idx, idx, w / sums[:, None], f.astype(np.int64)))
        prev = n
    return levels


def import_official(
    model_path: str | Path,
    out_dir: str | Path = "models",
    name: str | None = None,
    gender: str | None = None,
    assets_dir: str | Path | None = None,
    progress=print,
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
        "name": name,
        "model_type": model_type,
        "gender": gender,
        "source": "official",
        "source_file": model_path.name,
        "source_sha256": sha256_file(model_path),
        "companion_assets": used_assets,
        "level_sizes": [V] + [len(lvl.down_idx) for lvl in levels],
        "official_fields": {k: v for k, v in extra.items() if isinstance(v, (str, int, float))},
    }
    return save_body_model(BodyModelFile(arrays=arrays, meta=meta), Path(out_dir) / f"{name}.npz")
