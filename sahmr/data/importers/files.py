"""Readers of the original SA-HMR data files (spec §1.2–§1.5, §2.1), each strict and one-line on error.

Every reader names the file (and the field) it could not use, says what it expected, and never executes
anything: pickles — dataset metas, boxes, voxel dicts, body parameters, the SMPL-X -> SMPL-H transfer
matrix — go through the restricted unpickler of :mod:`sahmr.body.unpickle` with chumpy refused, so only
dicts, lists, strings, numbers, numpy arrays and scipy sparse matrices can come out of them.

=======================================  =================================================================
file                                     reader
=======================================  =================================================================
``calibration/<cam>.xml``                :func:`read_rich_calibration` -> (T_w2c (4,4), K (3,3)) float32
``<scan>_world.npy`` / ``vicon_voxel``   :func:`read_voxel_cloud` -> (points (M,3) float64, pitch float)
``*_mysdf.json`` + ``.npy``              :func:`read_sdf` -> SDFGrid (min/max rounded to float32, as the
                                         original's evaluation does)
``*.ply``                                :func:`read_ply_vertices` -> (V, 3) float64 (ascii / binary)
contact ``.npy``                         :func:`read_contact_bits` -> (6890,) bool (np.packbits'd)
``*.pkl``                                :func:`read_pickle` (restricted)
``smplx2smplh_deftrafo_setup.pkl``       :func:`read_smplx_to_smplh` -> (6890, 10475) csr float64
PROX ``Color.json``                      :func:`read_prox_intrinsics` -> K (3,3) float32 with K[2,2] = 1
PROX ``cam2world_vicon.json``            :func:`read_json_matrix` -> (4,4) float64
=======================================  =================================================================
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse

from sahmr.body.unpickle import safe_load_npy, safe_load_pickle
from sahmr.geometry.sdf import SDFGrid, load_original_sdf

__all__ = [
    "OriginalDataError",
    "read_pickle",
    "read_rich_calibration",
    "rich_cam_key",
    "read_voxel_cloud",
    "rich_scene_key",
    "read_sdf",
    "read_ply_vertices",
    "read_contact_bits",
    "read_smplx_to_smplh",
    "read_prox_intrinsics",
    "read_json_matrix",
    "tail_path",
    "path_after",
    "NUM_SMPL_VERTS",
    "NUM_SMPLX_VERTS",
]

NUM_SMPL_VERTS = 6890  # SMPL / SMPL-H: the evaluation topology and the contact labels' length
NUM_SMPLX_VERTS = 10475  # SMPL-X: the GT meshes of RICH test and PROX


class OriginalDataError(ValueError):
    """An original dataset file is missing a part, malformed, or not what the format says (one line)."""


def read_pickle(path: Path, what: str) -> Any:
    """A data pickle through the restricted unpickler (no chumpy, nothing executed).

    what: what the file should hold, for the messages ("the test metas", ...). Raises FileNotFoundError,
    sahmr.body.unpickle.UnsafePickleError (a refused global) or pickle.UnpicklingError (truncated).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: missing ({what})")
    return safe_load_pickle(path, allow_chumpy=False)


def _xml_floats(root: ET.Element, path: Path, node: str, n: int) -> np.ndarray:
    el = root.find(f"./{node}/data")
    if el is None or el.text is None:
        raise OriginalDataError(f"{path}: no <{node}><data> node; expected an OpenCV-style calibration XML (spec §1.2)")
    try:
        values = np.array([float(x) for x in el.text.split()], dtype=np.float64)
    except ValueError as e:
        raise OriginalDataError(f"{path}: <{node}><data> is not a list of numbers ({e})") from None
    if values.size != n or not np.isfinite(values).all():
        raise OriginalDataError(f"{path}: <{node}><data> must hold {n} finite numbers, got {values.size}")
    return values


def read_rich_calibration(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """(T_w2c (4, 4), K (3, 3)) float32 of one RICH calibration XML (spec §1.2).

    ``CameraMatrix`` = row-major 3x4 [R|t] world -> camera (metres), padded with [0, 0, 0, 1];
    ``Intrinsics`` = row-major 3x3 K in raw full-resolution pixels; ``Distortion`` is ignored, as the
    original ignores it.
    """
    path = Path(path)
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as e:
        raise OriginalDataError(f"{path}: not a readable XML file ({e})") from None
    T = np.eye(4, dtype=np.float32)
    T[:3] = _xml_floats(root, path, "CameraMatrix", 12).reshape(3, 4)
    K = _xml_floats(root, path, "Intrinsics", 9).reshape(3, 3).astype(np.float32)
    return T, K


def rich_cam_key(path: Path) -> str:
    """``f"{cap_name}_{int(stem)}"`` for ``scene_info/<cap_name>/calibration/<stem>.xml`` (spec §1.2)."""
    path = Path(path)
    try:
        cam = int(path.stem)
    except ValueError:
        raise OriginalDataError(f"{path}: calibration file stem must be the camera number (e.g. 003.xml)") from None
    return f"{path.parent.parent.name}_{cam}"


def read_voxel_cloud(path: Path) -> tuple[np.ndarray, float]:
    """(points (M, 3) float64 world frame, pitch in metres) of a voxelised scene cloud (spec §1.2).

    The file is ``np.save`` of a dict ``{"points": (M, 3), "pitch": array-like, pitch[0] = voxel size}``.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: missing (voxelised scene cloud)")
    obj = safe_load_npy(path, allow_chumpy=False)
    if isinstance(obj, np.ndarray) and obj.dtype == object and obj.ndim == 0:
        obj = obj.item()
    if not isinstance(obj, dict) or "points" not in obj or "pitch" not in obj:
        got = sorted(obj) if isinstance(obj, dict) else type(obj).__name__
        raise OriginalDataError(f"{path}: expected a saved dict with keys 'points' (M, 3) and 'pitch', got {got}")
    pts = np.asarray(obj["points"])
    if pts.ndim != 2 or pts.shape[1] != 3 or len(pts) == 0 or pts.dtype.kind not in "fiu":
        raise OriginalDataError(f"{path}: 'points' must be a non-empty numeric (M, 3) array, got {pts.shape} {pts.dtype}")
    pts = pts.astype(np.float64)
    if not np.isfinite(pts).all():
        raise OriginalDataError(f"{path}: 'points' has {int((~np.isfinite(pts)).any(1).sum())} non-finite rows")
    pitch = np.asarray(obj["pitch"], dtype=np.float64).reshape(-1)
    if pitch.size == 0 or not np.isfinite(pitch[0]) or pitch[0] <= 0:
        raise OriginalDataError(f"{path}: 'pitch' must start with the voxel size > 0 (metres), got {obj['pitch']!r}")
    return pts, float(pitch[0])


def rich_scene_key(path: Path) -> str:
    """The original's scene key of ``scene_info/<cap>/<stem>.npy``: ``f"{cap}_{stem[: stem.find('camcoord') + 8]}"``.

    (A stem without ``camcoord`` gives the original's ``stem[:7]``; reproduced as is, since metas name
    scenes by this key.)
    """
    path = Path(path)
    stem = path.stem
    return f"{path.parent.name}_{stem[: stem.find('camcoord') + 8]}"


def read_sdf(json_path: Path, npy_path: Path | None = None) -> SDFGrid:
    """The original ``{min, max, dim}`` JSON + values pair as an :class:`SDFGrid` (axes x, y, z; flat or cube,
    any float dtype). min / max are rounded to float32 first, as the original's evaluation does
    (``eval_results.py:51-52``), so queries match it to the last bit of the grid geometry."""
    g = load_original_sdf(json_path, npy_path)
    lo, hi = (np.asarray(b, np.float32).astype(np.float64) for b in (g.min_world, g.max_world))
    return SDFGrid(values=g.values, min_world=lo, max_world=hi)


_PLY_TYPES = {
    "char": "i1",
    "int8": "i1",
    "uchar": "u1",
    "uint8": "u1",
    "short": "i2",
    "int16": "i2",
    "ushort": "u2",
    "uint16": "u2",
    "int": "i4",
    "int32": "i4",
    "uint": "u4",
    "uint32": "u4",
    "float": "f4",
    "float32": "f4",
    "double": "f8",
    "float64": "f8",
}


def read_ply_vertices(path: Path, expected: int | None = None) -> np.ndarray:
    """(V, 3) float64 vertex positions (x, y, z) of a PLY file: ascii, binary little- or big-endian.

    Only what precedes the vertex element and the vertex element itself are parsed (faces are not needed).
    expected: the vertex count the caller needs (e.g. 10475 for SMPL-X); another count is an error.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: missing (PLY mesh)")
    data = path.read_bytes()
    end = data.find(b"end_header")
    if not data.startswith(b"ply") or end < 0:
        raise OriginalDataError(f"{path}: not a PLY file, or truncated inside its header (no 'ply' magic or no 'end_header')")
    nl = data.find(b"\n", end)
    body = data[nl + 1 :] if nl >= 0 else b""
    header = data[:end].decode("ascii", errors="replace").splitlines()
    fmt, elements = None, []  # [(name, count, [(prop name, dtype or ("list", count dtype, item dtype))])]
    for line in header[1:]:
        tok = line.split()
        if not tok or tok[0] in ("comment", "obj_info"):
            continue
        if tok[0] == "format":
            fmt = tok[1] if len(tok) > 1 else None
        elif tok[0] == "element" and len(tok) == 3:
            if not tok[2].isdigit():
                raise OriginalDataError(f"{path}: PLY header line {line!r}: the element count must be an integer")
            elements.append((tok[1], int(tok[2]), []))
        elif tok[0] == "property" and elements:
            if tok[1] == "list" and len(tok) == 5 and tok[2] in _PLY_TYPES and tok[3] in _PLY_TYPES:
                elements[-1][2].append((tok[4], ("list", _PLY_TYPES[tok[2]], _PLY_TYPES[tok[3]])))
            elif len(tok) == 3 and tok[1] in _PLY_TYPES:
                elements[-1][2].append((tok[2], _PLY_TYPES[tok[1]]))
            else:
                raise OriginalDataError(f"{path}: unsupported PLY property line {line!r}")
    if fmt not in ("ascii", "binary_little_endian", "binary_big_endian"):
        raise OriginalDataError(f"{path}: unsupported PLY format {fmt!r} (ascii / binary_little_endian / binary_big_endian)")
    names = [e[0] for e in elements]
    if "vertex" not in names:
        raise OriginalDataError(f"{path}: PLY header has no vertex element")
    vi = names.index("vertex")
    n, props = elements[vi][1], elements[vi][2]
    pnames = [p[0] for p in props]
    if not {"x", "y", "z"} <= set(pnames) or any(isinstance(p[1], tuple) for p in props):
        raise OriginalDataError(f"{path}: the vertex element must have scalar properties x, y, z (has {pnames})")
    if expected is not None and n != expected:
        raise OriginalDataError(f"{path}: {n} vertices, expected {expected}")

    if fmt == "ascii":
        lines = body.decode("ascii", errors="replace").splitlines()
        skip = sum(e[1] for e in elements[:vi])
        declared = sum(e[1] for e in elements)
        if len([x for x in lines if x.strip()]) < declared:
            raise OriginalDataError(f"{path}: truncated PLY: the header declares {declared} element lines, the file holds fewer")
        rows = lines[skip : skip + n]
        try:
            table = np.array([r.split()[: len(props)] for r in rows], dtype=np.float64)
        except ValueError as e:
            raise OriginalDataError(f"{path}: malformed ascii vertex line ({e})") from None
        if table.shape != (n, len(props)):
            raise OriginalDataError(f"{path}: ascii vertex lines must hold {len(props)} numbers each")
        return np.stack([table[:, pnames.index(a)] for a in "xyz"], 1)

    order = "<" if fmt == "binary_little_endian" else ">"
    offset = 0
    for name, count, eprops in elements[:vi]:  # binary elements before the vertices (rare): skip them
        if any(isinstance(p[1], tuple) for p in eprops):
            raise OriginalDataError(f"{path}: element '{name}' with list properties before the vertices is not supported")
        offset += count * sum(np.dtype(p[1]).itemsize for p in eprops)
    dtype = np.dtype([(p[0], order + p[1]) for p in props])
    need = offset + n * dtype.itemsize
    if len(body) < need:
        raise OriginalDataError(f"{path}: truncated PLY: the header declares {n} vertices ({need} bytes), the file holds {len(body)}")
    end = need
    for name, count, eprops in elements[vi + 1 :]:  # the rest (faces): only checked to be complete
        end = _element_end(body, end, count, eprops, order, path, name)
    if len(body) < end:
        raise OriginalDataError(f"{path}: truncated PLY: the elements after the vertices need {end} bytes, the file holds {len(body)}")
    table = np.frombuffer(body, dtype=dtype, count=n, offset=offset)
    return np.stack([table[a].astype(np.float64) for a in "xyz"], 1)


def _element_end(body: bytes, start: int, count: int, props: list, order: str, path: Path, name: str) -> int:
    """Byte offset where a binary element of ``count`` rows ends (raises when the file ends first).

    List properties are read row by row only when their lengths vary; the usual uniform faces (every row
    ``3 i j k``) are checked with one strided view."""
    if not any(isinstance(p[1], tuple) for p in props):
        return start + count * sum(np.dtype(p[1]).itemsize for p in props)
    if count == 0:
        return start
    if len(props) == 1:  # one list property: the common face element
        _, cnt_t, item_t = props[0][1]
        cs, isz = np.dtype(cnt_t).itemsize, np.dtype(item_t).itemsize
        if len(body) < start + cs:
            raise OriginalDataError(f"{path}: truncated PLY: element '{name}' is cut off")
        first = int(np.frombuffer(body, order + cnt_t, 1, start)[0])
        row = cs + first * isz
        if len(body) >= start + count * row:
            counts = np.frombuffer(body, np.uint8, count * row, start).reshape(count, row)[:, :cs]
            if (counts.copy().view(order + cnt_t).ravel() == first).all():
                return start + count * row
    pos = start
    for _ in range(count):  # varying list lengths: walk the rows
        for _, t in props:
            if isinstance(t, tuple):
                cs = np.dtype(t[1]).itemsize
                if len(body) < pos + cs:
                    raise OriginalDataError(f"{path}: truncated PLY: element '{name}' is cut off")
                k = int(np.frombuffer(body, order + t[1], 1, pos)[0])
                pos += cs + k * np.dtype(t[2]).itemsize
            else:
                pos += np.dtype(t).itemsize
    return pos


def read_contact_bits(path: Path, count: int = NUM_SMPL_VERTS) -> np.ndarray:
    """(count,) bool contact labels from ``np.save(np.packbits(bool vector))`` (``np.unpackbits(x, count=...)``)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: missing (contact labels)")
    try:
        packed = np.load(path, allow_pickle=False)
    except (ValueError, EOFError, OSError) as e:
        raise OriginalDataError(f"{path}: not a readable .npy of packed bits ({e})") from None
    if packed.dtype != np.uint8 or packed.ndim != 1 or packed.size * 8 < count:
        raise OriginalDataError(
            f"{path}: expected np.packbits of {count} booleans (uint8, {(count + 7) // 8} bytes), got {packed.dtype} {packed.shape}"
        )
    return np.unpackbits(packed, count=count).astype(bool)


def read_smplx_to_smplh(path: Path) -> scipy.sparse.csr_matrix:
    """(6890, 10475) float64 csr: ``mtx[:, :10475]`` of the SMPL-X model-transfer setup pickle, so that
    ``V_smplh = M @ V_smplx`` as the release evaluation computes the GT (spec §2.1, §6.2)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"{path}: missing. It is smplx2smplh_deftrafo_setup.pkl from the SMPL-X model-transfer tool "
            "(the 'model_transfer' download on the SMPL-X website); pass it with --smplx2smplh"
        )
    obj = read_pickle(path, "the SMPL-X -> SMPL-H transfer setup")
    mtx = obj.get("mtx") if isinstance(obj, dict) else None
    if mtx is None or not scipy.sparse.issparse(mtx):
        raise OriginalDataError(f"{path}: expected a dict with a scipy sparse matrix 'mtx' (the SMPL-X -> SMPL-H deformation transfer)")
    if mtx.shape[0] != NUM_SMPL_VERTS or mtx.shape[1] < NUM_SMPLX_VERTS:
        raise OriginalDataError(f"{path}: 'mtx' has shape {mtx.shape}, expected ({NUM_SMPL_VERTS}, >= {NUM_SMPLX_VERTS})")
    m = scipy.sparse.csr_matrix(mtx, dtype=np.float64)[:, :NUM_SMPLX_VERTS]
    if not np.isfinite(m.data).all():
        raise OriginalDataError(f"{path}: 'mtx' has non-finite entries")
    return m


def _read_json(path: Path, what: str) -> Any:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: missing ({what})")
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise OriginalDataError(f"{path}: not valid JSON ({e})") from None


def read_prox_intrinsics(path: Path) -> np.ndarray:
    """K (3, 3) float32 from PROX's ``Color.json`` ``{"f": [fx, fy], "c": [cx, cy], ...}``, with K[2, 2] = 1
    (the original leaves it 0, harmless for its formulas; spec §1.5)."""
    obj = _read_json(path, "PROX colour camera intrinsics")
    try:
        f = np.asarray(obj["f"], dtype=np.float64)
        c = np.asarray(obj["c"], dtype=np.float64)
    except (KeyError, TypeError, ValueError):
        raise OriginalDataError(f"{path}: expected fields 'f': [fx, fy] and 'c': [cx, cy]") from None
    if f.shape != (2,) or c.shape != (2,) or not np.isfinite([*f, *c]).all() or (f <= 0).any():
        raise OriginalDataError(f"{path}: 'f' must be 2 positive numbers and 'c' 2 numbers, got f={obj['f']!r} c={obj['c']!r}")
    return np.array([[f[0], 0, c[0]], [0, f[1], c[1]], [0, 0, 1]], dtype=np.float32)


def read_json_matrix(path: Path, what: str, shape: tuple[int, int] = (4, 4)) -> np.ndarray:
    """A JSON list-of-lists matrix (e.g. PROX's ``cam2world_vicon.json``) as float64 of ``shape``."""
    obj = _read_json(path, what)
    try:
        m = np.asarray(obj, dtype=np.float64)
    except (TypeError, ValueError):
        raise OriginalDataError(f"{path}: expected a {shape[0]}x{shape[1]} list of numbers ({what})") from None
    if m.shape != shape or not np.isfinite(m).all():
        raise OriginalDataError(f"{path}: expected a finite {shape[0]}x{shape[1]} matrix ({what}), got shape {m.shape}")
    return m


def _parts(path: Any, where: str) -> list[str]:
    if not isinstance(path, str) or not path:
        raise OriginalDataError(f"{where}: expected a path string, got {path!r}")
    parts = [p for p in re.split(r"[\\/]+", path) if p]
    if any(p == ".." for p in parts):
        raise OriginalDataError(f"{where}: path {path!r} contains '..'")
    return parts


def tail_path(path: str, n: int = 3, where: str = "meta") -> str:
    """The last ``n`` components of an absolute path of the authors' machine (spec §1.4: the original keeps
    only those), posix; ``\\`` separators are accepted. where: the meta and field, for messages."""
    parts = _parts(path, where)
    if len(parts) < n:
        raise OriginalDataError(f"{where}: path {path!r} has fewer than {n} components (the original keeps the last {n})")
    return "/".join(parts[-n:])


def path_after(path: str, marker: str, where: str = "meta") -> str:
    """The part of ``path`` after its first folder named ``marker`` (e.g. ``"test_contact"``, spec §1.3, §1.5),
    posix and relative. Matched on whole path components, so ``amass_mosh/`` is not ``mosh/``."""
    parts = _parts(path, where)
    name = marker.strip("/")
    if name not in parts[:-1]:
        raise OriginalDataError(f"{where}: path {path!r} has no folder {name!r} (the original takes what follows it)")
    return "/".join(parts[parts.index(name) + 1 :])
