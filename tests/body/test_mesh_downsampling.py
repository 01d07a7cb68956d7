"""The original project's ``mesh_downsampling.npz`` read as it is distributed: members A, U, D, F of
pickled scipy matrices / arrays and M of ``__main__.MyMesh`` objects, never opened."""

import io
import os
import pickle
import zipfile

import numpy as np
import pytest

from sahmr.body.importer import _levels_from_graphcmr
from sahmr.body.model_file import BodyModelFileError
from sahmr.body.unpickle import UnsafePickleError, safe_loads
from tests.helpers.official_format import CallOnLoad, graphcmr_lists, py2_pickle, write_mesh_downsampling

WRITERS = ("py2", "savez", "savez_compressed")
SIZES = (40, 12, 5)  # same structure as the real 6890 → 1723 → 431


def _hierarchy():
    """Full-mesh verts/faces and 2 levels ``(down_idx, up_idx, up_w, faces)``: increasing selections,
    3 distinct increasing corners a row with dyadic weights summing to exactly 1."""
    rng = np.random.default_rng(0)
    verts, faces = rng.random((SIZES[0], 3)), rng.integers(0, SIZES[0], (70, 3))
    triples = np.array([[0.5, 0.25, 0.25], [0.125, 0.75, 0.125], [0.25, 0.25, 0.5], [0.375, 0.5, 0.125]])
    levels = []
    for prev, n in zip(SIZES, SIZES[1:]):
        down = np.sort(rng.choice(prev, n, replace=False))
        up_idx = np.sort(np.stack([rng.choice(n, 3, replace=False) for _ in range(prev)]), axis=1)
        levels.append((down, up_idx, triples[rng.integers(0, 4, prev)], rng.integers(0, n, (2 * n, 3))))
    return verts, faces, levels


def _members():
    verts, faces, levels = _hierarchy()
    A, U, D, F, M = graphcmr_lists(verts, faces, levels)
    return dict(A=A, U=U, D=D, F=F, M=M), levels


@pytest.mark.parametrize("writer", WRITERS)
def test_real_structure_file_reads_without_touching_M(writer, tmp_path, monkeypatch):
    members, levels = _members()
    path = tmp_path / "mesh_downsampling.npz"
    write_mesh_downsampling(path, members, writer=writer)
    with zipfile.ZipFile(path) as zf:  # the file really is what the authors' script wrote
        assert sorted(zf.namelist()) == ["A.npy", "D.npy", "F.npy", "M.npy", "U.npy"]
        m = zf.read("M.npy")
        assert b"__main__" in m and b"MyMesh" in m
        if writer == "py2":
            assert b"cscipy.sparse.csr\ncsr_matrix\n" in zf.read("U.npy")
            assert b"cscipy.sparse.coo\ncoo_matrix\n" in zf.read("D.npy")
    with pytest.raises(ValueError):  # numpy itself refuses the object arrays
        np.load(path, allow_pickle=False)["U"]
    opened, real_open = [], zipfile.ZipFile.open

    def spy_open(self, name, *args, **kwargs):
        opened.append(name)
        return real_open(self, name, *args, **kwargs)

    monkeypatch.setattr(zipfile.ZipFile, "open", spy_open)
    got = _levels_from_graphcmr(path, SIZES[0])
    assert sorted(opened) == ["D.npy", "F.npy", "U.npy"]
    assert [len(lvl.down_idx) for lvl in got] == list(SIZES[1:])
    for lvl, (down, up_idx, up_w, faces) in zip(got, levels):
        assert np.array_equal(lvl.down_idx, down) and lvl.down_idx.dtype == np.int64
        assert np.array_equal(lvl.up_idx, up_idx)
        assert np.array_equal(lvl.up_w, up_w)
        assert np.array_equal(lvl.faces, faces) and lvl.faces.dtype == np.int64


def test_U_rows_with_fewer_weights_are_padded(tmp_path):
    """A fine vertex on a coarse vertex: one weight 1.0 (and stored zeros) → padded with weight 0."""
    members, levels = _members()
    u = members["U"][0].tolil()
    u[0, :] = 0.0
    u[0, 3] = 1.0
    u[1, 7] = 0.0
    members["U"][0] = u.tocsr()
    path = tmp_path / "mesh_downsampling.npz"
    write_mesh_downsampling(path, members, writer="py2")
    lvl = _levels_from_graphcmr(path, SIZES[0])[0]
    assert lvl.up_idx[0].tolist() == [3, 3, 3] and lvl.up_w[0].tolist() == [1.0, 0.0, 0.0]
    dense = np.zeros(u.shape)
    np.add.at(dense, (np.repeat(np.arange(SIZES[0]), 3), lvl.up_idx.ravel()), lvl.up_w.ravel())
    want = u.toarray()
    np.testing.assert_allclose(dense, want / want.sum(1, keepdims=True), rtol=0, atol=1e-15)


@pytest.mark.parametrize("writer", ("py2", "savez"))
@pytest.mark.parametrize("fn, name", [(os.system, "system"), (eval, "builtins.eval")])
def test_disallowed_global_in_U_is_refused(writer, fn, name, tmp_path):
    marker = tmp_path / "pwned"
    members, _ = _members()
    members["U"] = [members["U"][0], CallOnLoad(fn, f"open({str(marker)!r}, 'w')" if fn is eval else f"touch {marker}")]
    path = tmp_path / "mesh_downsampling.npz"
    write_mesh_downsampling(path, members, writer=writer)
    with pytest.raises(UnsafePickleError) as e:
        _levels_from_graphcmr(path, SIZES[0])
    msg = str(e.value)
    assert f"{path}:U.npy" in msg and name in msg and "refusing" in msg and "\n" not in msg
    assert not marker.exists()


def test_old_scipy_state_and_python2_strings_round_trip():
    """A Python-2 pickle (bytes as ``str`` opcodes, decoded as latin1) of old-scipy matrices."""
    members, _ = _members()
    data = py2_pickle(members["D"][0])
    assert b"_codecs" not in data and b"cnumpy.core.multiarray\n_reconstruct\n" in data
    got = safe_loads(data)
    assert np.array_equal(got.toarray(), members["D"][0].toarray())


def _rewrite(path, member, obj):
    """Replace one member of an npz by a (Python-3) pickled object array holding ``obj``'s items."""
    a = np.empty(len(obj), dtype=object)
    for i, x in enumerate(obj):
        a[i] = x
    buf = io.BytesIO()
    np.lib.format.write_array(buf, a, allow_pickle=True)
    with zipfile.ZipFile(path) as zf:
        rest = {n: zf.read(n) for n in zf.namelist() if n != f"{member}.npy"}
    with zipfile.ZipFile(path, "w") as zf:
        for n, b in rest.items():
            zf.writestr(n, b)
        zf.writestr(f"{member}.npy", buf.getvalue())


def test_malformed_members_name_file_and_member(tmp_path):
    members, _ = _members()
    path = tmp_path / "mesh_downsampling.npz"
    write_mesh_downsampling(path, {k: v for k, v in members.items() if k != "D"})
    with pytest.raises(ValueError, match=r"mesh_downsampling.npz: member 'D' missing"):
        _levels_from_graphcmr(path, SIZES[0])
    write_mesh_downsampling(path, members)
    _rewrite(path, "D", [members["D"][0] * 2.0, members["D"][1]])
    with pytest.raises(BodyModelFileError, match=r"mesh_downsampling.npz:D.npy: item 0 is not a selection matrix"):
        _levels_from_graphcmr(path, SIZES[0])
    with pytest.raises(BodyModelFileError, match=r"D.npy: item 0 is not a sparse matrix with 99 columns"):
        _levels_from_graphcmr(path, 99)
    write_mesh_downsampling(path, members)
    _rewrite(path, "U", [members["U"][0] * 0.0, members["U"][1]])
    with pytest.raises(BodyModelFileError, match=r"U.npy: item 0 row 0 has 0 weights"):
        _levels_from_graphcmr(path, SIZES[0])
    (tmp_path / "junk.npz").write_bytes(pickle.dumps([1]))
    with pytest.raises(ValueError, match="junk.npz: not an .npz archive"):
        _levels_from_graphcmr(tmp_path / "junk.npz", SIZES[0])
