"""`sahmr synth --out` never deletes what it did not write (the data-loss case of issue 16): user files in
the folder survive every run — refused without --force, kept with it, kept when other parameters replace the
dataset — and a killed run's temporaries are removed and never hashed."""

import json
import shutil

import pytest
import yaml

from sahmr.cli import main
from sahmr.data.synth.generate import SynthParams, generate_dataset
from sahmr.data.synth.outdir import claim_out_dir, foreign_files, is_own, remove_own_files
from tests.conftest import TINY_SYNTH

SMALL = dict(TINY_SYNTH, scenes={"train": 1, "val": 0, "test": 0}, frames_per_scene={"train": 3, "val": 0, "test": 0})


def snapshot(root):
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def done(tmp_path_factory, open_model_path):
    root = tmp_path_factory.mktemp("synth-out") / "ds"
    meta = generate_dataset(root, SynthParams(**SMALL), open_model_path, workers=1, progress=False)
    return root, meta


def test_own_patterns():
    own = [
        "dataset.json",
        "manifest.json",
        ".staging/params.json",
        ".staging/train_room000.npz",
        ".staging/.train_room000.npz.tmp",
        "frames/train/K.npy",
        "frames/train/.K.npy.a1b2c3.tmp",
        "scenes/train_room000/sdf.npz",
        "scenes/train_room000/mesh.ply",
        "images/train/train_room000_0001.jpg",
    ]
    foreign = [
        "notes.txt",
        "README.md",
        ".dvc",
        "frames/train/K.csv",
        "scenes/train_room000/my.obj",
        "images/mine/a/b.jpg",
        ".hidden.tmp",
        "frames/K.npy",
        "dataset.json.bak",
    ]
    assert [r for r in own if not is_own(r)] == []
    assert [r for r in foreign if is_own(r)] == []


def test_user_file_refused_then_kept_with_force(done, open_model_path, tmp_path, capsys):
    src, meta = done
    out = tmp_path / "ds"
    out.mkdir()
    (out / "notes.txt").write_text("my notes")
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump({"synth": {k: list(v) if isinstance(v, tuple) else v for k, v in SMALL.items()}}))
    argv = ["synth", "--out", str(out), "--params", str(params), "--body-model", str(open_model_path), "--workers", "1", "--quiet"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "notes.txt" in err and "--force" in err and "Traceback" not in err
    assert snapshot(out) == {"notes.txt": b"my notes"}  # nothing written, nothing removed

    assert main([*argv, "--force"]) == 0
    assert (out / "notes.txt").read_text() == "my notes"
    assert json.loads((out / "dataset.json").read_text())["content_hash"] == meta["content_hash"]

    # other parameters replace the dataset: only synth's files go
    (out / "scenes" / "mine").mkdir()
    (out / "scenes" / "mine" / "keep.obj").write_text("o")
    assert main([*argv, "--force", "-S", "seed=7"]) == 0
    assert (out / "notes.txt").read_text() == "my notes" and (out / "scenes" / "mine" / "keep.obj").read_text() == "o"
    assert json.loads((out / "dataset.json").read_text())["content_hash"] != meta["content_hash"]
    assert foreign_files(out) == ["notes.txt", "scenes/mine/keep.obj"]


def test_stale_temporaries_removed_and_not_hashed(done, open_model_path, tmp_path):
    src, meta = done
    out = tmp_path / "ds"
    shutil.copytree(src, out)
    stale = [out / "images" / "train" / ".x.jpg.k2j3.tmp", out / "frames" / "train" / ".K.npy.zz.tmp"]
    for p in stale:
        p.write_bytes(b"half")
    again = generate_dataset(out, SynthParams(**SMALL), open_model_path, workers=1, progress=False)
    assert again["content_hash"] == meta["content_hash"] and not any(p.exists() for p in stale)
    assert snapshot(out) == snapshot(src)


def test_dataset_not_from_synth_is_refused(done, tmp_path):
    src, _ = done
    out = tmp_path / "imported"
    shutil.copytree(src, out)
    (out / ".staging" / "params.json").unlink()  # e.g. written by an importer: no synth stamp
    before = snapshot(out)
    with pytest.raises(FileExistsError, match="did not generate.*--force"):
        claim_out_dir(out, None, "d", force=False)
    assert snapshot(out) == before
    assert claim_out_dir(out, None, "d", force=True) == "replace"
    assert snapshot(out) == {}  # all of it was synth-shaped, so --force cleared it


def test_other_kinds_of_out(tmp_path):
    f = tmp_path / "file"
    f.write_text("x")
    with pytest.raises(FileExistsError, match="not a folder"):
        claim_out_dir(f, None, "d", force=True)
    assert f.read_text() == "x"
    assert claim_out_dir(tmp_path / "new", None, "d", force=False) == "new"
    (tmp_path / "lnk").symlink_to(tmp_path / "nowhere")
    with pytest.raises(FileExistsError, match="symbolic link to nothing"):
        claim_out_dir(tmp_path / "lnk", None, "d", force=False)
    d = tmp_path / "d"
    (d / "frames" / "train").mkdir(parents=True)
    (d / "frames" / "train" / "x.npy").write_bytes(b"")
    (d / "frames" / "train" / "user.txt").write_text("u")
    assert remove_own_files(d) == 1 and snapshot(d) == {"frames/train/user.txt": b"u"}


def test_older_format_is_regenerated_not_taken_as_complete(done, open_model_path, tmp_path):
    """Same parameters but a dataset of an older format_version (found by `dvc repro` on the persisted
    datasets/synth): regenerated in place, giving what a fresh run gives."""
    src, meta = done
    out = tmp_path / "ds"
    shutil.copytree(src, out)
    old = json.loads((out / "dataset.json").read_text())
    old["format_version"] = 1
    (out / "dataset.json").write_text(json.dumps(old))
    again = generate_dataset(out, SynthParams(**SMALL), open_model_path, workers=1, progress=False)
    assert again == meta and snapshot(out) == snapshot(src)
