"""Write pickles in the official SMPL layout (chumpy ``Ch`` objects inside) without chumpy.

A class whose module is registered as ``chumpy.ch`` while pickling produces exactly the globals an
official file references (``chumpy.ch.Ch`` rebuilt through ``copyreg._reconstructor`` with a state
dict holding the array in ``x``). The same trick writes the original project's
``mesh_downsampling.npz`` with its ``__main__.MyMesh`` objects, optionally as Python 2 wrote it.
"""

import contextlib
import copyreg
import io
import pickle
import struct
import sys
import types
import zipfile

import numpy as np
import scipy.sparse


class Ch:
    def __init__(self, x):
        self.x = x

    def __getstate__(self):
        return {"x": self.x, "_dirty_vars": set()}


@contextlib.contextmanager
def _fake_chumpy():
    pkg, mod = types.ModuleType("chumpy"), types.ModuleType("chumpy.ch")
    Ch.__module__, Ch.__qualname__ = "chumpy.ch", "Ch"
    mod.Ch = Ch
    saved = {k: sys.modules.get(k) for k in ("chumpy", "chumpy.ch")}
    sys.modules.update({"chumpy": pkg, "chumpy.ch": mod})
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                sys.modules.pop(k, None)
            else:
                sys.modules[k] = v


def chumpy_pickle_bytes(d: dict) -> bytes:
    """Pickle ``d`` with float arrays wrapped as chumpy objects (sparse and int arrays left plain)."""
    wrapped = {k: Ch(v) if isinstance(v, np.ndarray) and v.dtype.kind == "f" and not scipy.sparse.issparse(v) else v for k, v in d.items()}
    with _fake_chumpy():
        return pickle.dumps(wrapped, protocol=2)


def official_smpl_dict(arrays: dict) -> dict:
    """The official SMPL dict layout from a kit model file's arrays (float64, sparse J_regressor)."""
    kt = arrays["kintree_table"].astype(np.int64).copy()
    kt[0, 0] = 4294967295  # as in the official files
    return {
        "v_template": arrays["v_template"].astype(np.float64),
        "shapedirs": arrays["shapedirs"].astype(np.float64),
        "posedirs": arrays["posedirs"].astype(np.float64),
        "J_regressor": scipy.sparse.csc_matrix(arrays["J_regressor"].astype(np.float64)),
        "weights": arrays["weights"].astype(np.float64),
        "kintree_table": kt,
        "f": arrays["f"].astype(np.uint32),
        "J": (arrays["J_regressor"] @ arrays["v_template"]).astype(np.float64),
        "bs_style": "lbs",
        "bs_type": "lrotmin",
    }


# --- the original project's mesh_downsampling.npz (GraphCMR), in the structure it is distributed in ---


class CallOnLoad:
    """Pickles as a call of ``fn(*args)``: what a tampered file would hold."""

    def __init__(self, fn, *args):
        self.fn, self.args = fn, args

    def __reduce__(self):
        return self.fn, self.args


class MyMesh:
    """The mesh class of the authors' downsampling script; pickled as ``__main__.MyMesh``."""

    def __init__(self, v, f):
        self.v, self.f = v, f


@contextlib.contextmanager
def _as_main(cls):
    """Let pickle find ``cls`` as ``__main__.<name>``, as it was when the authors' script ran."""
    main = sys.modules["__main__"]
    cls.__module__, cls.__qualname__ = "__main__", cls.__name__
    setattr(main, cls.__name__, cls)
    try:
        yield
    finally:
        delattr(main, cls.__name__)


def graphcmr_lists(verts, faces, levels):
    """``A, U, D, F, M`` lists of the GraphCMR file from a hierarchy given as ``levels``, a list of
    ``(down_idx (V_i,), up_idx (V_{i-1}, 3), up_w (V_{i-1}, 3), faces_i (F_i, 3))``.

    A: symmetric 0/1 adjacency (V_i, V_i) csr; U: (V_{i-1}, V_i) csr; D: (V_i, V_{i-1}) coo selection;
    F: int32 faces; M: MyMesh(v, f) per level.
    """

    def adjacency(f, n):
        e = np.concatenate([f[:, [0, 1]], f[:, [1, 2]], f[:, [2, 0]]])
        e = np.concatenate([e, e[:, ::-1]])
        a = scipy.sparse.csr_matrix((np.ones(len(e)), (e[:, 0], e[:, 1])), shape=(n, n))
        a.data[:] = 1.0
        return a

    vs, fs = [np.asarray(verts, np.float64)], [np.asarray(faces, np.int32)]
    A, U, D = [adjacency(fs[0], len(vs[0]))], [], []
    for down, up_idx, up_w, f in levels:
        prev, n = len(vs[-1]), len(down)
        D.append(scipy.sparse.coo_matrix((np.ones(n), (np.arange(n), down)), shape=(n, prev)))
        U.append(scipy.sparse.csr_matrix((np.ravel(up_w), (np.repeat(np.arange(prev), 3), np.ravel(up_idx))), shape=(prev, n)))
        vs.append(vs[-1][down])
        fs.append(np.asarray(f, np.int32))
        A.append(adjacency(fs[-1], n))
    return A, U, D, fs, [MyMesh(v, f) for v, f in zip(vs, fs)]


def _object_array(items):
    out = np.empty(len(items), dtype=object)
    for i, x in enumerate(items):
        out[i] = x
    return out


class _Py2Pickler(pickle._Pickler):
    """Protocol-2 pickles as Python 2 wrote them: bytes and ASCII text as ``str`` opcodes, Python-2 module
    names (copy_reg, __builtin__), scipy sparse matrices with the state layout of old scipy (coo:
    ``row``/``col``). Old module paths (scipy.sparse.csr, numpy.core) are patched in by ``py2_pickle``."""

    dispatch = dict(pickle._Pickler.dispatch)

    def _save_str8(self, obj):
        if isinstance(obj, str):
            try:
                obj = obj.encode("ascii")
            except UnicodeEncodeError:
                return self.save_str(obj)
        n = len(obj)
        self.write(pickle.SHORT_BINSTRING + bytes([n]) + obj if n < 256 else pickle.BINSTRING + struct.pack("<i", n) + obj)

    dispatch[bytes] = dispatch[str] = _save_str8

    def reducer_override(self, obj):
        if not (scipy.sparse.issparse(obj) and obj.format in ("csr", "csc", "coo")):
            return NotImplemented
        state = {"_shape": tuple(int(n) for n in obj.shape), "maxprint": 50, "data": obj.data}
        if obj.format == "coo":
            state.update(row=obj.row, col=obj.col, has_canonical_format=False)
        else:
            state.update(indices=obj.indices, indptr=obj.indptr, _has_sorted_indices=True)
        return copyreg.__newobj__, (type(obj),), state


def py2_pickle(obj) -> bytes:
    """``obj`` pickled as Python 2 + numpy 1.x + old scipy (e.g. ``scipy.sparse.csr.csr_matrix``) did."""
    buf = io.BytesIO()
    _Py2Pickler(buf, protocol=2, fix_imports=True).dump(obj)
    data = buf.getvalue().replace(b"cnumpy._core.", b"cnumpy.core.")
    for fmt in ("csr", "csc", "coo"):
        data = data.replace(f"cscipy.sparse._{fmt}\n".encode(), f"cscipy.sparse.{fmt}\n".encode())
    return data


def write_mesh_downsampling(path, members: dict, *, writer: str = "savez") -> None:
    """Write ``members`` (name → list of objects) as an npz of 1-D object arrays, ``M`` included.

    writer: ``savez`` / ``savez_compressed`` (numpy's writer, current pickles) or ``py2`` (each member a
    v1.0 ``.npy`` whose body is a Python-2 protocol-2 pickle, in a stored zip, as the distributed file).
    """
    arrays = {k: _object_array(v) for k, v in members.items()}
    with _as_main(MyMesh):
        if writer in ("savez", "savez_compressed"):
            getattr(np, writer)(path, **arrays)
            return
        with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as zf:
            for k, a in arrays.items():
                buf = io.BytesIO()
                np.lib.format.write_array_header_1_0(buf, {"descr": "|O", "fortran_order": False, "shape": a.shape})
                zf.writestr(f"{k}.npy", buf.getvalue() + py2_pickle(a))


def write_assets(arrays, folder):
    """The original project's three companion files for the model ``arrays``, in their distributed form;
    mesh_downsampling.npz is a Python-2 npz with members A, U, D, F and M (``__main__.MyMesh`` objects)."""
    V = arrays["v_template"].shape[0]
    rng = np.random.default_rng(0)
    reg = rng.random((17, V))
    reg /= reg.sum(1, keepdims=True)
    np.save(folder / "J_regressor_h36m_correct.npy", reg)
    pids = rng.integers(0, 8, V).astype(np.float64)
    np.save(folder / "seg_part_info.npy", {"verts6890_pids": pids, "predefined_segparts": ["default"]}, allow_pickle=True)
    levels = [tuple(arrays[f"sahmr_{k}_{i}"] for k in ("down_idx", "up_idx", "up_w", "faces")) for i in (1, 2)]
    A, U, D, F, M = graphcmr_lists(arrays["v_template"], arrays["f"], levels)
    members = dict(A=A, U=U, D=D, F=F, M=M)
    write_mesh_downsampling(folder / "mesh_downsampling.npz", members, writer="py2")
    return members


def official_smplh_dict(arrays: dict) -> dict:
    """An official-layout SMPL-H dict built from an SMPL-layout model: the 22 body joints as they are, and
    15 finger joints per hand (3 per finger, chained from the wrist) in place of SMPL's two hand joints.
    SMPL's hand skinning weights go to the first finger joint of each hand, so with fingers at rest the
    SMPL-H model poses exactly like the SMPL one."""
    d = official_smpl_dict(arrays)
    V = arrays["v_template"].shape[0]
    parents = arrays["kintree_table"][0].astype(np.int64)
    kt = np.zeros((2, 52), np.int64)
    kt[1] = np.arange(52)
    kt[0, :22] = parents[:22]
    kt[0, 0] = 4294967295
    W = arrays["weights"].astype(np.float64)
    w = np.zeros((V, 52))
    w[:, :22] = W[:, :22]
    J = arrays["J_regressor"].astype(np.float64)
    Jh = np.zeros((52, V))
    Jh[:22] = J[:22]
    for wrist, base, smpl_hand in ((20, 22, 22), (21, 37, 23)):
        for f in range(5):
            j0 = base + 3 * f
            kt[0, j0], kt[0, j0 + 1], kt[0, j0 + 2] = wrist, j0, j0 + 1
            Jh[j0 : j0 + 3] = J[smpl_hand]
        w[:, base] = W[:, smpl_hand]
    d.update(
        kintree_table=kt,
        weights=w,
        J_regressor=scipy.sparse.csc_matrix(Jh),
        J=Jh @ d["v_template"],
        posedirs=np.zeros((V, 3, 51 * 9)),
        hands_componentsl=np.eye(45),
        hands_componentsr=np.eye(45),
        hands_meanl=np.zeros(45),
        hands_meanr=np.zeros(45),
    )
    return d
