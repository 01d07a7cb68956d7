"""tools/pene_breakdown.py: its PenE is the evaluation's, and moving a mesh to the true pelvis removes placement."""

import numpy as np
import pytest

from sahmr.data.format import open_dataset
from sahmr.eval.evaluate import evaluate_split
from sahmr.eval.predictions import Predictions, write_predictions
from tests.helpers.scripts import load_script


def _tool():
    return load_script("tools/pene_breakdown.py")


def test_pene_breakdown_matches_the_evaluation_and_aligns_placement(tiny_synth, open_model_path, tmp_path):
    root, _ = tiny_synth
    ds = open_dataset(root)
    arr = ds.split("test")
    T = np.asarray(arr["T_world_to_cam"], np.float64)
    gt_cam = np.einsum("nij,nvj->nvi", T[:, :3, :3], np.asarray(arr["verts_world"], np.float64)) + T[:, None, :3, 3]
    # sunk 40 cm along the world's down axis (z up): placement error only, the pose is the GT's
    down_cam = np.einsum("nij,j->ni", T[:, :3, :3], np.array([0.0, 0.0, -0.4]))
    pred = Predictions(
        frame_ids=np.asarray(arr["frame_id"]),
        body_model="sahmr-open",
        num_vertices=gt_cam.shape[1],
        verts_cam=(gt_cam + down_cam[:, None]).astype(np.float32),
    )
    write_predictions(tmp_path / "sunk.npz", pred)
    res = _tool().breakdown(str(root), "test", {"sunk": str(tmp_path / "sunk.npz")}, str(open_model_path), (0.0, 1.0))
    table, summary = evaluate_split(tmp_path / "sunk.npz", root, "test", open_model_path)
    r = res["models"]["sunk"]
    assert r["all"]["pene"] == pytest.approx(summary["pene"], rel=1e-5)
    assert r["all"]["pene"] > 1.0  # a body 40 cm under its place goes through the floor
    sids = np.asarray(arr["scene_id"]).astype(str)
    gt = _tool().pene_per_frame(np.asarray(arr["verts_world"], np.float64), sids, {s: ds.scene_sdf(s) for s in set(sids)})
    assert r["all"]["pene_at_gt_pelvis"] == pytest.approx(float(gt.mean()), abs=1e-3)
    # the sweep's end points are the two rows above
    assert r["all"]["pene_placement"]["0"] == pytest.approx(r["all"]["pene"], rel=1e-9)
    assert r["all"]["pene_placement"]["1"] == pytest.approx(r["all"]["pene_at_gt_pelvis"], rel=1e-9)
    assert sum(v["n"] for v in r["by_pose_class"].values()) == arr.n_frames


def test_pene_breakdown_refuses_other_frames(tiny_synth, open_model_path, tmp_path):
    root, _ = tiny_synth
    ds = open_dataset(root)
    ids = np.asarray(ds.split("test")["frame_id"])[::-1].copy()
    pred = Predictions(frame_ids=ids, body_model="sahmr-open", num_vertices=ds.num_verts, verts_cam=np.zeros((len(ids), ds.num_verts, 3), np.float32))
    write_predictions(tmp_path / "p.npz", pred)
    with pytest.raises(ValueError, match="frame_ids differ"):
        _tool().breakdown(str(root), "test", {"x": str(tmp_path / "p.npz")}, str(open_model_path))
