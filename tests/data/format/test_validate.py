"""`validate_dataset` / `sahmr data validate`: clean on a good dataset, and each corruption a test
introduces is reported with the file, the field and the frame."""

import argparse
import shutil

import numpy as np
import pytest

from sahmr.data import cli as data_cli
from sahmr.data.format import write_image
from sahmr.data.format.validate import format_problems, validate_dataset
from tests.helpers.tiny_dataset import make_tiny_dataset


@pytest.fixture(scope="module")
def template(tmp_path_factory):
    root = tmp_path_factory.mktemp("val") / "good"
    make_tiny_dataset(root)
    return root


@pytest.fixture()
def ds(template, tmp_path):
    root = tmp_path / "ds"
    shutil.copytree(template, root)
    return root


def edit_array(root, split, key, fn):
    path = root / "frames" / split / f"{key}.npy"
    a = np.load(path).copy()
    a = fn(a)
    np.save(path, a, allow_pickle=False)


def find(problems, where=None, field=None, text=None, frame=None, severity="error"):
    hits = [
        p
        for p in problems
        if p.severity == severity
        and (where is None or p.where == where)
        and (field is None or p.field == field)
        and (text is None or text in p.message)
        and (frame is None or frame in p.frame_ids)
    ]
    assert hits, f"no {severity} with where={where} field={field} text={text!r} frame={frame}; got:\n{format_problems(problems)}"
    return hits[0]


def test_clean_dataset_has_no_problems(template):
    assert validate_dataset(template) == []


def test_missing_image(ds):
    (ds / "images/train/train_000003.png").unlink()
    p = find(validate_dataset(ds), where="images/train/train_000003.png", field="image_path", text="image file missing", frame="train_000003")
    assert "train_000003" in str(p) and "images/train/train_000003.png" in str(p)


def test_nan_in_K(ds):
    edit_array(ds, "val", "K", lambda a: (a.__setitem__((2, 1, 1), np.nan), a)[1])
    problems = validate_dataset(ds, check_hash=False)
    p = find(problems, where="frames/val/K.npy", field="K", text="non-finite", frame="val_000002")
    assert p.n_frames == 1
    assert "ERROR: frames/val/K.npy [K]: non-finite values (NaN/inf) in K — frame val_000002" == str(p)
    # with the hash: the changed file is named too
    find(validate_dataset(ds), where="frames/val/K.npy", text="differs from manifest.json")


def test_wrong_array_shape(ds):
    edit_array(ds, "train", "verts_world", lambda a: a[:, :-2])
    problems = validate_dataset(ds, check_hash=False)
    find(problems, where="frames/train/verts_world.npy", field="verts_world", text="shape (6, 48, 3), expected (6, 50, 3)")


def test_wrong_length_and_dtype(ds):
    edit_array(ds, "train", "distance", lambda a: a[:-1])
    edit_array(ds, "train", "contact_part", lambda a: a.astype(np.int64))
    problems = validate_dataset(ds, check_hash=False)
    find(problems, where="frames/train/distance.npy", field="distance", text="shape (5,), expected (6,)")
    find(problems, where="frames/train/contact_part.npy", field="contact_part", text="dtype int64, expected uint8")


def test_box_outside_the_image_and_empty_box(ds):
    edit_array(ds, "train", "person_box_xyxy", lambda a: (a.__setitem__(4, [200, 10, 260, 90]), a.__setitem__(1, [50, 60, 40, 80]), a)[2])
    problems = validate_dataset(ds, check_hash=False)
    find(problems, where="frames/train/person_box_xyxy.npy", field="person_box_xyxy", text="outside the image", frame="train_000004")
    find(problems, where="frames/train/person_box_xyxy.npy", text="empty box", frame="train_000001")


def test_unknown_scene_id(ds):
    edit_array(ds, "val", "scene_id", lambda a: np.array(["scene_a", "nowhere", "scene_b"]))
    p = find(validate_dataset(ds, check_hash=False), where="frames/val/scene_id.npy", field="scene_id", text="unknown scene id", frame="val_000001")
    assert "nowhere" in p.message


def test_duplicate_frame_ids_within_and_across_splits(ds):
    edit_array(ds, "train", "frame_id", lambda a: np.array([a[0], a[0], *a[2:]]))
    edit_array(ds, "val", "frame_id", lambda a: np.array(["train_000005", *a[1:]]))
    problems = validate_dataset(ds, check_hash=False)
    find(problems, where="frames/train/frame_id.npy", text="duplicate frame id", frame="train_000000")
    find(problems, where="frames/val/frame_id.npy", text="another split", frame="train_000005")


def test_hash_mismatch(ds):
    img = np.zeros((120, 160, 3), np.uint8)
    write_image(ds, "images/val/val_000001.png", img)
    problems = validate_dataset(ds)
    find(problems, where="images/val/val_000001.png", text="differs from manifest.json")
    find(problems, where="dataset.json", field="content_hash", text="content hash mismatch")
    assert [p for p in validate_dataset(ds, check_hash=False) if p.severity == "error"] == []


def test_camera_and_contact_value_checks(ds):
    def bad_T(a):
        a[0, :3, :3] *= 1.1  # scaled: not rigid
        a[3, 3, :] = [0, 0, 1, 1]  # not an affine last row
        return a

    edit_array(ds, "train", "T_world_to_cam", bad_T)
    edit_array(ds, "val", "K", lambda a: (a.__setitem__((1, 1, 0), 3.0), a.__setitem__((0, 0, 0), -5.0), a)[2])
    edit_array(ds, "val", "contact_part", lambda a: (a.__setitem__((0, 0), 9), a)[1])

    edit_array(ds, "val", "contact", lambda a: (a.__setitem__(1, False), a)[1])
    problems = validate_dataset(ds, check_hash=False)
    find(problems, where="frames/train/T_world_to_cam.npy", text="not a rigid transform", frame="train_000000")
    find(problems, where="frames/train/T_world_to_cam.npy", text="not a rigid transform", frame="train_000003")
    find(problems, where="frames/val/K.npy", text="upper-triangular", frame="val_000001")
    find(problems, where="frames/val/K.npy", text="focal", frame="val_000000")
    find(problems, where="frames/val/contact_part.npy", text="outside 0..7", frame="val_000000")
    find(problems, where="frames/val/contact_part.npy", text="nonzero where contact is False", frame="val_000001")


def test_distance_and_shared_camera_consistency(ds):
    edit_array(ds, "train", "distance", lambda a: a + np.array([0, 0.5, 0, 0, 0, 0], np.float32))
    edit_array(ds, "train", "K", lambda a: (a.__setitem__((2, 0, 2), a[2, 0, 2] + 4), a)[1])  # frame 2 shares frame 0's camera
    problems = validate_dataset(ds, check_hash=False)
    find(problems, where="frames/train/distance.npy", text="|T_world_to_cam . pelvis_world|", frame="train_000001")
    find(problems, where="frames/train/camera_id.npy", text="same (scene_id, camera_id)", frame="train_000002")


def test_pickled_and_missing_arrays_and_scene_files(ds):
    np.save(ds / "frames/val/pose_class.npy", np.array(["a", 1, None], dtype=object), allow_pickle=True)
    (ds / "frames/train/contact.npy").unlink()
    (ds / "scenes/scene_b/sdf.npz").unlink()
    problems = validate_dataset(ds)
    find(problems, where="frames/val/pose_class.npy", text="not a plain .npy")
    find(problems, where="frames/train/contact.npy", field="contact", text="missing")
    find(problems, where="scenes/scene_b/sdf.npz", text="missing")


def test_stray_and_temporary_files_are_warnings(ds):
    (ds / "images/train/extra.png").write_bytes(b"x")
    (ds / "frames/train/.K.npy.abc.tmp").write_bytes(b"x")
    problems = validate_dataset(ds)
    assert all(p.severity == "warning" for p in problems)
    find(problems, where="images/train/extra.png", text="not referenced", severity="warning")
    find(problems, text="leftover temporary", severity="warning")


def run_cli(argv):
    parser = argparse.ArgumentParser(prog="sahmr")
    sub = parser.add_subparsers(dest="cmd", required=True)
    data_cli.register(sub)
    args = parser.parse_args(argv)
    return args.func(args)


def test_cli_exit_codes_and_report(ds, capsys):
    assert run_cli(["data", "validate", str(ds)]) == 0
    out = capsys.readouterr().out
    assert "OK" in out and "content hash verified" in out
    edit_array(ds, "val", "K", lambda a: (a.__setitem__((0, 0, 2), np.inf), a)[1])
    assert run_cli(["data", "validate", str(ds), "--no-hash"]) == 1
    cap = capsys.readouterr()
    assert "ERROR: frames/val/K.npy [K]: non-finite values (NaN/inf) in K — frame val_000000" in cap.out
    assert "INVALID" in cap.err
    assert run_cli(["data", "validate", str(ds / "nope")]) == 1
    assert "not a directory" in capsys.readouterr().out
