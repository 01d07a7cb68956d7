"""Restricted unpickling of official-format pickles: chumpy → numpy, and nothing else runs."""

import pickle
import sys
import types

import numpy as np
import pytest
import scipy.sparse

from sahmr.body.unpickle import UnsafePickleError, safe_load_npy, safe_load_npz, safe_load_pickle, safe_loads
from tests.helpers.official_format import chumpy_pickle_bytes


def test_chumpy_arrays_become_numpy(tmp_path):
    a = np.arange(12, dtype=np.float64).reshape(4, 3)
    sp = scipy.sparse.random(5, 7, density=0.3, format="csc", random_state=0)
    data = chumpy_pickle_bytes({"v_template": a, "J_regressor": sp, "f": np.array([[0, 1, 2]], np.uint32), "bs_style": "lbs"})
    path = tmp_path / "model.pkl"
    path.write_bytes(data)
    out = safe_load_pickle(path)
    assert isinstance(out["v_template"], np.ndarray) and np.array_equal(out["v_template"], a)
    assert scipy.sparse.issparse(out["J_regressor"])
    assert np.array_equal(out["J_regressor"].toarray(), sp.toarray())
    assert out["bs_style"] == "lbs"
    assert "chumpy" not in sys.modules


class _Evil:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        import os

        return (os.system, (f"touch {self.marker}",))


def test_pickle_that_runs_a_command_is_refused(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps({"v_template": _Evil(marker)}, protocol=2))
    with pytest.raises(UnsafePickleError) as e:
        safe_load_pickle(path)
    msg = str(e.value)
    assert "system" in msg and "refusing" in msg and str(path) in msg
    assert not marker.exists()


def test_other_globals_refused():
    payload = pickle.dumps(types.SimpleNamespace(x=1), protocol=2)
    with pytest.raises(UnsafePickleError, match="types.SimpleNamespace"):
        safe_loads(payload)


def test_object_npz_and_npy_members(tmp_path):
    d = scipy.sparse.csr_matrix(np.eye(4)[[0, 2]])
    objs = np.empty(2, dtype=object)
    objs[0], objs[1] = d, d
    np.savez(tmp_path / "ds.npz", D=objs, plain=np.arange(3))
    z = safe_load_npz(tmp_path / "ds.npz")
    assert np.array_equal(z["plain"], np.arange(3))
    assert np.array_equal(z["D"][1].toarray(), d.toarray())
    np.save(tmp_path / "info.npy", {"verts6890_pids": np.arange(5.0)}, allow_pickle=True)
    info = safe_load_npy(tmp_path / "info.npy").item()
    assert np.array_equal(info["verts6890_pids"], np.arange(5.0))
