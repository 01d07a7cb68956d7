"""The body-model file pair (.npz + .json): written so that a run killed at any point never leaves a
mismatched pair that loads; the loader refuses a pair whose recorded npz_sha256 disagrees."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest

import sahmr.body.model_file as mf
from sahmr.body.model_file import BodyModelFileError, load_body_model_file, save_body_model


class Killed(BaseException):
    """Stands for SIGKILL between two writes (BaseException: nothing may catch it)."""


def _scaled(model, factor):
    arrays = dict(model.arrays)
    arrays["v_template"] = arrays["v_template"] * factor
    return mf.BodyModelFile(arrays=arrays, meta=dict(model.meta), path=None)


def _kill_at_write(monkeypatch, n):
    """Make the n-th atomic_write (0-based) of save_body_model die before it renames anything."""
    real, calls = mf.atomic_write, []

    def write(path, fn):
        calls.append(path)
        if len(calls) - 1 == n:
            raise Killed
        return real(path, fn)

    monkeypatch.setattr(mf, "atomic_write", write)


def test_pair_round_trip_records_the_npz_hash(open_model_path, tmp_path):
    model = load_body_model_file(open_model_path)
    out = save_body_model(model, tmp_path / "m.npz")
    meta = json.loads(out.with_suffix(".json").read_text())
    assert meta["npz_sha256"] == hashlib.sha256(out.read_bytes()).hexdigest()
    again = load_body_model_file(out)
    assert all(np.array_equal(again.arrays[k], model.arrays[k]) for k in model.arrays)
    # the bytes do not depend on the order of the writes: same as the committed builder's file
    assert out.read_bytes() == open_model_path.read_bytes()


@pytest.mark.parametrize("kill_at", [0, 1])
def test_killed_rewrite_never_loads_a_mismatched_pair(open_model_path, tmp_path, monkeypatch, kill_at):
    old = load_body_model_file(open_model_path)
    path = save_body_model(old, tmp_path / "m.npz")
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    _kill_at_write(monkeypatch, kill_at)
    with pytest.raises(Killed):
        save_body_model(_scaled(old, 1.01), path)
    monkeypatch.undo()
    if kill_at == 0:  # killed before the first rename: the old pair, untouched, loads
        assert {p.name: p.read_bytes() for p in tmp_path.iterdir() if not p.name.endswith(".tmp")} == before
        assert np.array_equal(load_body_model_file(path).arrays["v_template"], old.arrays["v_template"])
    else:  # the new JSON beside the old npz: refused, naming the file and the fix
        with pytest.raises(BodyModelFileError, match=r"m\.npz: its sha256 differs .* re-run the command"):
            load_body_model_file(path)
        save_body_model(_scaled(old, 1.01), path)  # the rerun heals the pair
        assert np.allclose(load_body_model_file(path).arrays["v_template"], old.arrays["v_template"] * 1.01)


def test_killed_first_write_leaves_no_loadable_npz(open_model_path, tmp_path, monkeypatch):
    _kill_at_write(monkeypatch, 1)
    with pytest.raises(Killed):
        save_body_model(load_body_model_file(open_model_path), tmp_path / "m.npz")
    monkeypatch.undo()
    assert not (tmp_path / "m.npz").exists()
    with pytest.raises(FileNotFoundError, match="m.npz: not found"):
        load_body_model_file(tmp_path / "m.npz")
