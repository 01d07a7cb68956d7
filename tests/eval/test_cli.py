"""`sahmr evaluate` on a generated dataset: known perturbations give known numbers; bad files fail cleanly."""

import json

import numpy as np
import pytest

from sahmr.cli import main
from sahmr.data.format import open_dataset
from sahmr.eval.predictions import Predictions, write_predictions


def _gt_cam(arr):
    T = np.asarray(arr["T_world_to_cam"], np.float64)
    v = np.asarray(arr["verts_world"], np.float64)
    return np.einsum("nij,nvj->nvi", T[:, :3, :3], v) + T[:, None, :3, 3]


def test_shifted_gt_gives_exact_numbers(tiny_synth, open_model_path, tmp_path, capsys):
    root, _ = tiny_synth
    arr = open_dataset(root).split("test")
    verts_cam = _gt_cam(arr) + np.array([0.0, 0.0, 0.1])  # 10 cm further from the camera
    pred = Predictions(
        frame_ids=np.asarray(arr["frame_id"]), body_model="sahmr-open", num_vertices=verts_cam.shape[1], verts_cam=verts_cam.astype(np.float32)
    )
    write_predictions(tmp_path / "pred.npz", pred)
    out = tmp_path / "metrics" / "shifted.json"
    rc = main(
        [
            "evaluate",
            "--pred",
            str(tmp_path / "pred.npz"),
            "--data",
            str(root),
            "--split",
            "test",
            "--out",
            str(out),
            "--body-model",
            str(open_model_path),
        ]
    )
    assert rc == 0
    s = json.loads(out.read_text())
    assert s["n_frames"] == arr.n_frames
    assert s["g_mpjpe"] == pytest.approx(100.0, abs=1e-2) and s["g_mpve"] == pytest.approx(100.0, abs=1e-2)
    assert s["mpjpe"] == pytest.approx(0.0, abs=1e-3) and s["pa_mpjpe"] == pytest.approx(0.0, abs=1e-3)
    frames = (tmp_path / "metrics" / "shifted_frames.csv").read_text().splitlines()
    header = frames[0].split(",")
    assert len(frames) == arr.n_frames + 1 and {"pose_class", "distance", "occlusion", "scene_id"} <= set(header)
    assert "G-MPJPE" in capsys.readouterr().out


def test_missing_frames_fail_and_write_nothing(tiny_synth, open_model_path, tmp_path):
    root, _ = tiny_synth
    arr = open_dataset(root).split("test")
    verts_cam = _gt_cam(arr)[1:]
    pred = Predictions(
        frame_ids=np.asarray(arr["frame_id"])[1:], body_model="sahmr-open", num_vertices=verts_cam.shape[1], verts_cam=verts_cam.astype(np.float32)
    )
    write_predictions(tmp_path / "pred.npz", pred)
    out = tmp_path / "m.json"
    rc = main(
        [
            "evaluate",
            "--pred",
            str(tmp_path / "pred.npz"),
            "--data",
            str(root),
            "--split",
            "test",
            "--out",
            str(out),
            "--body-model",
            str(open_model_path),
        ]
    )
    assert rc == 2 and not out.exists() and not (tmp_path / "m_frames.csv").exists()


@pytest.mark.parametrize("other", ["smplh", "smpl_neutral", "smplx"])
def test_other_body_topology_fails_and_writes_nothing(tiny_synth, open_model_path, tmp_path, capsys, other):
    """SMPL(-H) also has 6890 vertices, but not sahmr-open's: the same vertex count must not pass."""
    root, _ = tiny_synth
    arr = open_dataset(root).split("test")
    verts_cam = _gt_cam(arr)
    pred = Predictions(
        frame_ids=np.asarray(arr["frame_id"]), body_model=other, num_vertices=verts_cam.shape[1], verts_cam=verts_cam.astype(np.float32)
    )
    write_predictions(tmp_path / "pred.npz", pred)
    out = tmp_path / "m.json"
    rc = main(
        [
            "evaluate",
            "--pred",
            str(tmp_path / "pred.npz"),
            "--data",
            str(root),
            "--split",
            "test",
            "--out",
            str(out),
            "--body-model",
            str(open_model_path),
        ]
    )
    err = capsys.readouterr().err
    assert rc == 2 and "topology" in err and other in err
    assert not out.exists() and not (tmp_path / "m_frames.csv").exists()


def test_topology_families():
    from sahmr.eval.evaluate import topology_family

    assert topology_family("smplh") == topology_family("SMPL_neutral") == topology_family("smpl+h_male") == "smpl"
    assert topology_family("smplx_neutral") == "smplx"
    assert topology_family("sahmr-open") == topology_family("sahmr-open-4d4de89b") == "sahmr-open"
    assert topology_family("my-body") == "my_body"
