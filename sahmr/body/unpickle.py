"""Restricted unpickling of the official SMPL-family pickles (chumpy inside), without chumpy.

The official SMPL / SMPL-H / SMPL-X ``.pkl`` files are Python-2 pickles of a dict whose arrays are
numpy arrays, ``chumpy.ch.Ch`` objects (a numpy array in the ``x`` field of the pickled state) and
scipy sparse matrices (``J_regressor``). Unpickling them normally needs chumpy (unmaintained) and would
execute whatever callable the file names. Here every global a pickle asks for is checked against an
allow-list: numpy array reconstruction, the object-construction helpers of ``copyreg``, and chumpy /
scipy.sparse classes, which are replaced by inert stand-ins that only record their state. Everything
else raises :class:`UnsafePickleError` naming the refused global. The companion files of the original
project (``mesh_downsampling.npz`` object arrays, ``seg_part_info.npy``) are read the same way; from an
``.npz`` only the members asked for are opened (``mesh_downsampling.npz``'s ``M`` holds instances of a
class of the authors' own script, ``__main__.MyMesh``, and is never read).
"""

from __future__ import annotations

import _compat_pickle
import io
import pickle
import zipfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse


class UnsafePickleError(pickle.UnpicklingError):
    """A pickle asked for a global that the SMPL file format does not need."""


class _Stateful:
    """Inert stand-in for a pickled class instance: it only stores the state it is given."""

    _origin = "?"

    def __init__(self, *args: Any) -> None:  # called via copyreg._reconstructor / NEWOBJ
        self._args = args
        self._state: Any = None

    def __setstate__(self, state: Any) -> None:
        self._state = state


class ChumpyArray(_Stateful):
    """Stand-in for ``chumpy.ch.Ch``: the array lives in the state's ``x`` field."""

    def to_numpy(self) -> np.ndarray:
        state = self._state
        if isinstance(state, dict) and "x" in state:
            return np.asarray(state["x"])
        raise UnsafePickleError(
            f"chumpy object {self._origin} has no array value 'x' in its state (keys: "
            f"{sorted(state) if isinstance(state, dict) else type(state).__name__}); only terminal "
            "chumpy arrays are supported"
        )


class SparseMatrix(_Stateful):
    """Stand-in for a pickled scipy.sparse matrix (csc/csr/coo)."""

    def to_scipy(self) -> scipy.sparse.spmatrix:
        """The matrix from its pickled ``__dict__``, as written by old (Python 2) or current scipy.

        csr/csc: ``data, indices, indptr``; coo: ``data`` and ``row, col`` (scipy < 1.13) or
        ``coords = (row, col)``; the shape is ``_shape`` (or ``shape`` in very old scipy).
        """
        s = self._state
        if not isinstance(s, dict):
            raise UnsafePickleError(f"sparse matrix {self._origin}: unexpected state {type(s).__name__}")
        if "coords" in s and "row" not in s:
            s = {**s, "row": s["coords"][0], "col": s["coords"][1]}
        shape = tuple(int(n) for n in s.get("_shape", s.get("shape", ())))
        fmt = self._origin.rsplit(".", 1)[-1][:3]
        fields = ("data", "indices", "indptr") if fmt in ("csc", "csr") else ("data", "row", "col")
        if missing := [k for k in fields if k not in s]:
            raise UnsafePickleError(f"sparse matrix {self._origin}: state lacks {missing} (has {sorted(s)})")
        if fmt in ("csc", "csr"):
            cls = scipy.sparse.csc_matrix if fmt == "csc" else scipy.sparse.csr_matrix
            return cls((s["data"], s["indices"], s["indptr"]), shape=shape)
        return scipy.sparse.coo_matrix((s["data"], (s["row"], s["col"])), shape=shape)


def _stand_in(base: type, origin: str) -> type:
    return type(base.__name__, (base,), {"_origin": origin})


# (module, name) pairs allowed. numpy moved `core` to `_core` in 2.0.
_NUMPY_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    # protocol-5 pickles of contiguous arrays (Python >= 3.14's default): an array from a bytes buffer
    ("numpy.core.numeric", "_frombuffer"),
    ("numpy._core.numeric", "_frombuffer"),
}
# `_codecs.encode` is how Python-3 pickles (protocol 2) store bytes; it only builds a bytes object.
_SAFE_BUILTINS = {("copyreg", "_reconstructor"), ("builtins", "object"), ("_codecs", "encode"), ("builtins", "set"), ("collections", "OrderedDict")}
_SPARSE_CLASSES = {"csc_matrix", "csr_matrix", "coo_matrix"}


class RestrictedUnpickler(pickle.Unpickler):
    """Unpickler that resolves only the globals of the SMPL-family file formats.

    allow_chumpy=False: the data pickles of the original project (dataset metas, boxes, voxel dicts,
    body parameters, the SMPL-X -> SMPL-H transfer matrix) hold only dicts, lists, strings, numbers, numpy
    arrays and scipy sparse matrices: chumpy objects are refused there too.
    """

    def __init__(self, file: Any, *, allow_chumpy: bool = True, **kwargs: Any) -> None:
        super().__init__(file, **kwargs)
        self.allow_chumpy = allow_chumpy

    def find_class(self, module: str, name: str) -> Any:
        # Python-2 names (copy_reg, __builtin__) → Python 3, as pickle's fix_imports would do.
        if (module, name) in _compat_pickle.NAME_MAPPING:
            module, name = _compat_pickle.NAME_MAPPING[(module, name)]
        module = _compat_pickle.IMPORT_MAPPING.get(module, module)
        if (module, name) in _NUMPY_GLOBALS:
            if name == "_frombuffer":
                return np._core.numeric._frombuffer
            mod = np._core.multiarray if name in ("_reconstruct", "scalar") else np
            return getattr(mod, name)
        if (module, name) in _SAFE_BUILTINS:
            return super().find_class(module, name)
        if module.startswith("chumpy") and self.allow_chumpy:
            return _stand_in(ChumpyArray, f"{module}.{name}")
        if module.startswith("scipy.sparse") and name in _SPARSE_CLASSES:
            return _stand_in(SparseMatrix, f"{module}.{name}")
        needs = (
            "dicts, lists, strings, numbers, numpy arrays and scipy sparse matrices"
            if not self.allow_chumpy
            else "numpy arrays, chumpy arrays and scipy sparse matrices"
        )
        raise UnsafePickleError(
            f"refusing to unpickle global '{module}.{name}': the {self.kind} only need "
            f"{needs}. The file is not an original file or has been tampered with; nothing was executed."
        )

    @property
    def kind(self) -> str:
        return "SMPL/SMPL-H/SMPL-X files and their companion files" if self.allow_chumpy else "original dataset files"


def _to_plain(obj: Any) -> Any:
    """Replace stand-ins by numpy / scipy objects, recursively through dicts, lists and object arrays."""
    if isinstance(obj, ChumpyArray):
        return obj.to_numpy()
    if isinstance(obj, SparseMatrix):
        return obj.to_scipy()
    if isinstance(obj, _Stateful):
        raise UnsafePickleError(f"unexpected object {obj._origin}")
    if isinstance(obj, dict):
        return {k: _to_plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_to_plain(v) for v in obj)
    if isinstance(obj, np.ndarray) and obj.dtype == object:
        out = np.empty(obj.shape, dtype=object)
        for i, v in np.ndenumerate(obj):
            out[i] = _to_plain(v)
        return out
    return obj


def safe_loads(data: bytes, *, allow_chumpy: bool = True) -> Any:
    """Unpickle ``data`` with the allow-list; chumpy arrays become numpy, sparse stays scipy."""
    return _to_plain(RestrictedUnpickler(io.BytesIO(data), allow_chumpy=allow_chumpy, encoding="latin1").load())


def safe_load_pickle(path: str | Path, *, allow_chumpy: bool = True) -> Any:
    """Read an official body-model (or, allow_chumpy=False, original data) pickle safely.

    Raises UnsafePickleError (a refused global), pickle.UnpicklingError (truncated / not a pickle; one line
    naming the file) or FileNotFoundError.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no such file: {path}")
    try:
        return safe_loads(path.read_bytes(), allow_chumpy=allow_chumpy)
    except UnsafePickleError as e:
        raise UnsafePickleError(f"{path}: {e}") from None
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, KeyError, IndexError, AttributeError) as e:
        raise pickle.UnpicklingError(f"{path}: not a readable pickle (truncated or corrupt? {type(e).__name__}: {e})") from None


def _read_npy(fp: io.BufferedIOBase, where: str, allow_chumpy: bool = True) -> Any:
    """One ``.npy`` stream; an object array's body (a pickle) goes through the restricted unpickler.

    Errors are one line starting with ``where`` (``file`` or ``file:member.npy``).
    """
    try:
        version = np.lib.format.read_magic(fp)
        if version not in ((1, 0), (2, 0)):
            raise ValueError(f"unsupported .npy format version {version}")
        fmt = np.lib.format
        read_header = fmt.read_array_header_1_0 if version == (1, 0) else fmt.read_array_header_2_0
        shape, fortran, dtype = read_header(fp)
        if dtype.hasobject:  # the body of an object array is a pickle (Python-2 ones included)
            return safe_loads(fp.read(), allow_chumpy=allow_chumpy)
        arr = np.frombuffer(fp.read(), dtype=dtype)
        return arr.reshape(shape, order="F" if fortran else "C").copy()
    except UnsafePickleError as e:
        raise UnsafePickleError(f"{where}: {e}") from None
    except (pickle.UnpicklingError, ValueError, TypeError, KeyError, IndexError, EOFError) as e:
        raise pickle.UnpicklingError(f"{where}: unreadable .npy data ({type(e).__name__}: {e})") from None


def safe_load_npy(path: str | Path, *, allow_chumpy: bool = True) -> Any:
    """np.load for ``.npy`` files that may hold pickled objects, through the restricted unpickler."""
    path = Path(path)
    with open(path, "rb") as fp:
        return _read_npy(fp, str(path), allow_chumpy)


def safe_load_npz(path: str | Path, members: Iterable[str] | None = None) -> dict[str, Any]:
    """np.load for ``.npz`` archives (stored or deflated) whose members may be object arrays.

    Only ``members`` (names without ``.npy``; all when None) are opened: the others are never read,
    let alone unpickled. A missing member raises ValueError naming the file and the member.
    """
    path = Path(path)
    try:
        zf = zipfile.ZipFile(path)
    except zipfile.BadZipFile as e:
        raise ValueError(f"{path}: not an .npz archive ({e})") from None
    with zf:
        names = {n.removesuffix(".npy"): n for n in zf.namelist()}
        out = {}
        for key in names if members is None else members:
            if key not in names:
                raise ValueError(f"{path}: member '{key}' missing (members: {sorted(names)})")
            with zf.open(names[key]) as fp:
                out[key] = _read_npy(fp, f"{path}:{names[key]}")
    return out
