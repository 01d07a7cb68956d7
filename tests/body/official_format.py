"""Write pickles in the official SMPL layout (chumpy ``Ch`` objects inside) without chumpy.

A class whose module is registered as ``chumpy.ch`` while pickling produces exactly the globals an
official file references (``chumpy.ch.Ch`` rebuilt through ``copyreg._reconstructor`` with a state
dict holding the array in ``x``).
"""

import contextlib
import pickle
import sys
import types

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
    wrapped = {
        k: Ch(v) if isinstance(v, np.ndarray) and v.dtype.kind == "f" and not scipy.sparse.issparse(v) else v
        for k, v in d.items()
    }
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
