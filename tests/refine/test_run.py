"""``sahmr refine`` / ``sahmr keypoints`` / ``sahmr fit`` on a generated dataset: outputs in the kit's format that
`sahmr evaluate` reads, less penetration after refining a sunk prediction, resume after a kill, clear errors."""

import json

import numpy as np
import pytest
import torch

from sahmr.body.model import BodyModel
from sahmr.cli import main
from sahmr.data.format import open_dataset
from sahmr.eval.evaluate import evaluate_split
from sahmr.eval.predictions import Predictions, read_predictions, write_predictions
from sahmr.refine import batches, terms
from sahmr.refine.keypoints import KeypointNoise, Keypoints, read_keypoints, synthetic_keypoints, write_keypoints

FAST = ["-S", "fit_iters=20", "-S", "iters=30"]


def _sunk_predictions(root, path, dz=-0.05, ids_slice=slice(None)):
    arr = open_dataset(root).split("test")
    T = np.asarray(arr["T_world_to_cam"], np.float64)[ids_slice]
    v = np.asarray(arr["verts_world"], np.float64)[ids_slice] + np.array([0.0, 0.0, dz])
    cam = np.einsum("nij,nvj->nvi", T[:, :3, :3], v) + T[:, None, :3, 3]
    ids = np.asarray(arr["frame_id"])[ids_slice]
    write_predictions(path, Predictions(frame_ids=ids, body_model="sahmr-open", num_vertices=v.shape[1], verts_cam=cam.astype(np.float32)))
    return ids


def _refine_argv(root, pred, out, body, *extra):
    return [
        "refine",
        "--pred",
        str(pred),
        "--data",
        str(root),
        "--split",
        "test",
        "--out",
        str(out),
        "--body-model",
        str(body),
        "--params",
        "",
        *FAST,
        *extra,
    ]


def test_refine_cli_lowers_penetration_and_writes_the_kit_format(tiny_synth, open_model_path, tmp_path):
    root, _ = tiny_synth
    ids = _sunk_predictions(root, tmp_path / "pred.npz")
    out, stats = tmp_path / "refined.npz", tmp_path / "stats.json"
    assert main(_refine_argv(root, tmp_path / "pred.npz", out, open_model_path, "--stats", str(stats), "--quiet")) == 0
    refined = read_predictions(out)
    assert refined.frame_ids.tolist() == ids.tolist() and refined.verts_cam is not None and refined.verts_world is None
    _, before = evaluate_split(tmp_path / "pred.npz", root, "test", open_model_path)
    _, after = evaluate_split(out, root, "test", open_model_path)
    assert after["pene"] < 0.5 * before["pene"], (before["pene"], after["pene"])
    assert after["g_mpjpe"] < before["g_mpjpe"]  # sunk 5 cm -> lifted towards the GT
    s = json.loads(stats.read_text())
    assert s["frames"] == len(ids) and s["seconds_per_frame"] > 0 and s["contact_source"] == "parts"
    assert set(s["energy_before"]) == set(s["energy_after"]) >= {"penetration", "contact", "verts3d", "pose_prior", "joint_limits"}
    assert not batches.parts_dir(out).exists()  # the resume folder is gone once the output is written


def test_refine_resumes_after_a_kill_and_equals_an_uninterrupted_run(tiny_synth, open_model_path, tmp_path, monkeypatch):
    root, _ = tiny_synth
    _sunk_predictions(root, tmp_path / "pred.npz")
    full = tmp_path / "full.npz"
    assert main(_refine_argv(root, tmp_path / "pred.npz", full, open_model_path, "-S", "batch_size=2", "--quiet")) == 0
    out = tmp_path / "resumed.npz"
    real_run = batches.run_batches
    calls = []

    def dying(batch_list, work, *a, **k):
        def counted(idx):
            calls.append(len(idx))
            if len(calls) == 2:
                raise KeyboardInterrupt  # killed during the second batch
            return work(idx)

        return real_run(batch_list, counted, *a, **k)

    monkeypatch.setattr("sahmr.refine.run.run_batches", dying)
    assert main(_refine_argv(root, tmp_path / "pred.npz", out, open_model_path, "-S", "batch_size=2", "--quiet")) == 130
    assert not out.exists() and len(list(batches.parts_dir(out).glob("batch_*.npz"))) == 1
    monkeypatch.setattr("sahmr.refine.run.run_batches", real_run)
    redone = []
    monkeypatch.setattr("sahmr.refine.optimize.fit_to_vertices", _counting(redone))
    assert main(_refine_argv(root, tmp_path / "pred.npz", out, open_model_path, "-S", "batch_size=2", "--quiet")) == 0
    assert len(redone) == 2  # 3 batches of 2 frames: the finished one was not redone
    np.testing.assert_allclose(read_predictions(out).verts_cam, read_predictions(full).verts_cam, atol=1e-5)


def _counting(log):
    from sahmr.refine.body_fit import fit_to_vertices

    def wrapped(*a, **k):
        log.append(1)
        return fit_to_vertices(*a, **k)

    return wrapped


def test_resume_folder_with_foreign_files_is_never_deleted(tmp_path):
    out = tmp_path / "refined.npz"
    folder = batches.parts_dir(out)
    folder.mkdir()
    for name in ("my-notes.txt", ".my-hidden-notes"):
        (folder / name).write_text("mine")
        with pytest.raises(FileExistsError, match="did not write"):
            batches.run_batches([np.arange(2)], lambda idx: {"x": idx.astype(float)}, out, "digest", what="t", progress=False)
        assert (folder / name).read_text() == "mine"
        (folder / name).unlink()
    # a folder holding only what run_batches writes (another digest's leftovers) is replaced
    (folder / "run.json").write_text('{"digest": "old"}')
    (folder / "batch_00000.npz").write_bytes(b"stale")
    (folder / ".batch_00001.npz.abc.tmp").write_bytes(b"half")
    res, _ = batches.run_batches([np.arange(2)], lambda idx: {"x": idx.astype(float)}, out, "digest", what="t", progress=False)
    assert res["x"].tolist() == [0.0, 1.0] and not (folder / ".batch_00001.npz.abc.tmp").exists()


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda root, p: _rename_frame(root, p), "not in the dataset split"),
        (lambda root, p: _with_body(root, p, "smpl_neutral"), "topology"),
        (lambda root, p: _with_nan(root, p), "NaN"),
    ],
    ids=["unknown-frame-ids", "topology-mismatch", "nan"],
)
def test_refine_bad_inputs_give_one_clear_line(tiny_synth, open_model_path, tmp_path, capsys, make, match):
    root, _ = tiny_synth
    pred = tmp_path / "pred.npz"
    make(root, pred)
    out = tmp_path / "out.npz"
    assert main(_refine_argv(root, pred, out, open_model_path)) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and match in err[0] and "Traceback" not in err[0]
    assert not out.exists() and not batches.parts_dir(out).exists()


def _rename_frame(root, path):
    _sunk_predictions(root, path, ids_slice=slice(0, 3))
    p = read_predictions(path)
    p.frame_ids = p.frame_ids.copy()
    p.frame_ids[0] = "not_a_frame_0001"
    write_predictions(path, p)


def _with_body(root, path, name):
    _sunk_predictions(root, path)
    p = read_predictions(path)
    p.body_model = name
    write_predictions(path, p)


def _with_nan(root, path):
    _sunk_predictions(root, path)
    with np.load(path) as z:
        d = {k: z[k] for k in z.files}
    d["verts_cam"][1, 5, 0] = np.nan
    np.savez(path, **d)


def test_keypoints_file_round_trip_and_synthetic_projection(tiny_synth, tmp_path):
    root, _ = tiny_synth
    arr = open_dataset(root).split("test")
    g = {k: np.asarray(arr[k]) for k in ("joints14_world", "T_world_to_cam", "K", "image_size", "frame_id")}
    exact = synthetic_keypoints(
        g["joints14_world"], g["T_world_to_cam"], g["K"], g["image_size"], g["frame_id"], KeypointNoise(noise_px=0.0, dropout=0.0)
    )
    # independent projection of one joint by hand
    T, K = g["T_world_to_cam"][0].astype(np.float64), g["K"][0].astype(np.float64)
    c = T[:3, :3] @ g["joints14_world"][0, 12] + T[:3, 3]
    u = K[0, 0] * c[0] / c[2] + K[0, 2]
    v = K[1, 1] * c[1] / c[2] + K[1, 2]
    if exact.keypoints[0, 12, 2] > 0:
        np.testing.assert_allclose(exact.keypoints[0, 12, :2], [u, v], atol=1e-3)
    noisy = synthetic_keypoints(
        g["joints14_world"], g["T_world_to_cam"], g["K"], g["image_size"], g["frame_id"], KeypointNoise(noise_px=4.0, dropout=0.5, seed=1)
    )
    assert 0.3 < (noisy.keypoints[..., 2] == 0).mean() < 0.7
    write_keypoints(tmp_path / "kp.npz", noisy)
    back = read_keypoints(tmp_path / "kp.npz")
    seen = noisy.keypoints[..., 2] > 0
    np.testing.assert_array_equal(back.keypoints[seen], noisy.keypoints[seen])
    np.testing.assert_array_equal(back.keypoints[..., 2], noisy.keypoints[..., 2])
    assert (back.keypoints[~seen][:, :2] == 0).all()  # a dropped keypoint's x, y are not kept
    assert back.source == noisy.source and back.frame_ids.tolist() == g["frame_id"].tolist()
    with pytest.raises(ValueError, match="confidence"):
        write_keypoints(
            tmp_path / "bad.npz", Keypoints(g["frame_id"], np.concatenate([exact.keypoints[..., :2], 2 * np.ones_like(exact.keypoints[..., :1])], -1))
        )
    with pytest.raises(ValueError, match="keypoints"):
        write_keypoints(tmp_path / "bad.npz", Keypoints(g["frame_id"], exact.keypoints[:, :10]))
    assert not (tmp_path / "bad.npz").exists()


def test_keypoints_then_fit_cli_gives_an_evaluable_predictions_file(tiny_synth, open_model_path, tmp_path):
    root, _ = tiny_synth
    kp = tmp_path / "kp.npz"
    assert main(["keypoints", "--data", str(root), "--split", "test", "--out", str(kp), "--params", "", "-S", "noise_px=2.0"]) == 0
    out, stats = tmp_path / "fit.npz", tmp_path / "fit.json"
    argv = ["fit", "--keypoints", str(kp), "--data", str(root), "--split", "test", "--out", str(out), "--body-model", str(open_model_path)]
    argv += ["--params", "", "-S", "rigid_iters=30", "-S", "pose_iters=60", "-S", "scene_iters=20", "--stats", str(stats), "--quiet"]
    assert main(argv) == 0
    _, summary = evaluate_split(out, root, "test", open_model_path)
    # from 2-px keypoints without any 3D network: the fitted joints reproject onto the keypoints, and the
    # articulated pose is roughly right (depth is what 2D keypoints lack)
    body = BodyModel.load(open_model_path)
    pred, kps = read_predictions(out), read_keypoints(kp)
    arr = open_dataset(root).split("test")
    joints, _ = body.regress_joints14(torch.as_tensor(pred.verts_cam))
    px = terms.project(joints, torch.as_tensor(np.array(arr["K"])))
    err = (px - torch.as_tensor(kps.keypoints[..., :2])).norm(dim=-1)[torch.as_tensor(kps.keypoints[..., 2] > 0)]
    assert err.median().item() < 8.0, err.median().item()
    assert summary["pa_mpjpe"] < 150.0, summary["pa_mpjpe"]
    assert json.loads(stats.read_text())["seconds_per_frame"] > 0
    assert "synthetic" in json.loads(stats.read_text())["keypoints_source"]
