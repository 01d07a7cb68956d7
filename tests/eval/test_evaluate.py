"""Prediction files (round trip, validation, atomic writes) and the split evaluation."""

import csv
import json

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from sahmr import metrics as M
from sahmr.body.regressors import regress_h36m
from sahmr.eval.evaluate import SUMMARY_KEYS, evaluate_arrays, format_paper_table, write_evaluation
from sahmr.eval.predictions import Predictions, read_predictions, write_predictions
from sahmr.geometry.sdf import SDFGrid, query_sdf

N, V = 6, 40


def make_gt(seed=0):
    rng = np.random.default_rng(seed)
    gt = (rng.normal(0, 0.3, size=(N, V, 3)) + np.array([0.0, 0.0, 0.9])).astype(np.float32)
    reg = rng.uniform(size=(17, V))
    reg /= reg.sum(1, keepdims=True)
    rot = Rotation.random(N, random_state=seed).as_matrix()
    T = np.tile(np.eye(4), (N, 1, 1))
    T[:, :3, :3] = rot
    T[:, :3, 3] = rng.normal(0, 2, size=(N, 3))
    axis = np.linspace(-2, 2, 9)
    xyz = np.stack(np.meshgrid(axis, axis, axis, indexing="ij"), -1)
    grids = {
        "floor": SDFGrid(xyz[..., 2].astype(np.float32), [-2] * 3, [2] * 3),  # z = 0 plane, solid below
        "wall": SDFGrid((0.5 - xyz[..., 0]).astype(np.float32), [-2] * 3, [2] * 3),  # solid at x > 0.5
    }
    return dict(
        gt_frame_ids=np.array([f"seq_{i:03d}" for i in range(N)]),
        gt_verts_world=gt,
        regressor17=reg,
        scene_ids=np.array(["floor", "wall"] * (N // 2)),
        sdf_grids=grids,
        T_world_to_cam=T,
        gt_contact=rng.uniform(size=(N, V)) < 0.2,
    )


def to_cam(T, pts):
    return (pts @ T[:, :3, :3].transpose(0, 2, 1) + T[:, None, :3, 3]).astype(np.float32)


def full_predictions(seed=1):
    rng = np.random.default_rng(seed)
    return Predictions(
        frame_ids=np.array([f"seq_{i:03d}" for i in range(N)]),
        body_model="test-model",
        num_vertices=V,
        verts_cam=rng.normal(size=(N, V, 3)).astype(np.float32),
        verts_world=rng.normal(size=(N, V, 3)).astype(np.float32),
        pelvis_cam=rng.normal(size=(N, 3)).astype(np.float32),
        pelvis_refined_cam=rng.normal(size=(N, 3)).astype(np.float32),
        contact_vertex=rng.uniform(size=(N, V)) < 0.5,
    )


# ----------------------------------------------------------------------------------------------- files


def test_round_trip_is_identical_and_leaves_one_file(tmp_path):
    pred = full_predictions()
    path = write_predictions(tmp_path / "out" / "test.npz", pred, expected_num_vertices=V)
    back = read_predictions(path, expected_num_vertices=V)
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["test.npz"]
    assert back.body_model == "test-model" and back.num_vertices == V and back.format_version == 1
    for key in ("frame_ids", "verts_cam", "verts_world", "pelvis_cam", "pelvis_refined_cam", "contact_vertex"):
        a, b = getattr(pred, key), getattr(back, key)
        assert a.dtype == b.dtype, key
        np.testing.assert_array_equal(a, b)
    # optional fields stay absent
    only_cam = Predictions(frame_ids=pred.frame_ids, body_model="m", num_vertices=V, verts_cam=pred.verts_cam)
    back = read_predictions(write_predictions(tmp_path / "cam.npz", only_cam, compress=True))
    assert back.verts_world is None and back.contact_vertex is None
    np.testing.assert_array_equal(back.verts_cam, pred.verts_cam)


def _bad(kind):
    p = full_predictions()
    if kind == "nan":
        p.verts_cam[2, 5, 1] = np.nan
    elif kind == "wrong_v":
        p.verts_world = np.zeros((N, V + 1, 3), np.float32)
    elif kind == "length":
        p.pelvis_cam = p.pelvis_cam[:-1]
    elif kind == "duplicate":
        p.frame_ids = p.frame_ids.copy()
        p.frame_ids[3] = p.frame_ids[0]
    elif kind == "no_verts":
        p.verts_cam = p.verts_world = None
    elif kind == "contact":
        p.contact_vertex = np.full((N, V), 0.5)
    return p


@pytest.mark.parametrize(
    "kind, match",
    [
        ("nan", r"'verts_cam'.*NaN.*frame index 2"),
        ("wrong_v", r"'verts_world'.*41 vertices.*num_vertices = 40"),
        ("length", r"'pelvis_cam'.*5 frames.*6"),
        ("duplicate", r"'frame_ids'.*duplicate.*seq_000"),
        ("no_verts", r"verts_world.*required"),
        ("contact", r"'contact_vertex'.*bool"),
    ],
)
def test_writer_rejects_bad_predictions_and_writes_nothing(tmp_path, kind, match):
    target = tmp_path / "preds.npz"
    with pytest.raises(ValueError, match=match) as err:
        write_predictions(target, _bad(kind))
    assert "preds.npz" in str(err.value)
    assert list(tmp_path.iterdir()) == []


def test_writer_checks_the_expected_vertex_count(tmp_path):
    with pytest.raises(ValueError, match=r"num_vertices.*40.*6890"):
        write_predictions(tmp_path / "p.npz", full_predictions(), expected_num_vertices=6890)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "edit, match",
    [
        (lambda d: d.pop("frame_ids"), r"'frame_ids'.*missing"),
        (lambda d: d["verts_world"].__setitem__((0, 0, 0), np.inf), r"'verts_world'.*NaN/inf"),
        (lambda d: d.__setitem__("frame_ids", np.array(["a", "b", "a", "c", "d", "e"])), r"duplicate.*'a'"),
        (lambda d: d.__setitem__("extra", np.zeros(3)), r"unknown key.*extra"),
        (lambda d: d.__setitem__("frame_ids", np.array(list("abcdef"), dtype=object)), r"'frame_ids'.*pickle"),
        (lambda d: d.__setitem__("verts_cam", d["verts_cam"][:, :-1]), r"'verts_cam'.*39 vertices"),
        (lambda d: d.__setitem__("num_vertices", np.float64(40)), r"'num_vertices'.*integer"),
    ],
)
def test_reader_rejects_malformed_files(tmp_path, edit, match):
    data = full_predictions().arrays()
    edit(data)
    path = tmp_path / "broken.npz"
    np.savez(path, **data)
    with pytest.raises(ValueError, match=match) as err:
        read_predictions(path)
    assert "broken.npz" in str(err.value)


def test_reader_rejects_non_npz_and_wrong_vertex_count(tmp_path):
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(ValueError, match=r"junk\.npz.*not a readable"):
        read_predictions(tmp_path / "junk.npz")
    path = write_predictions(tmp_path / "ok.npz", full_predictions())
    with pytest.raises(ValueError, match=r"ok\.npz.*num_vertices.*6890"):
        read_predictions(path, expected_num_vertices=6890)


# ------------------------------------------------------------------------------------------ evaluation


def test_shifted_predictions_through_the_pipeline():
    gt = make_gt()
    shifted = gt["gt_verts_world"] + np.array([0.0, 0.1, 0.0], np.float32)
    pred = Predictions(frame_ids=gt["gt_frame_ids"], body_model="m", num_vertices=V, verts_world=shifted)
    table, summary = evaluate_arrays(pred, **gt)
    np.testing.assert_allclose(table["g_mpjpe"], 100.0, atol=1e-4)  # float32 storage of the shift
    np.testing.assert_allclose(table["g_mpve"], 100.0, atol=1e-4)
    np.testing.assert_allclose(table["mpjpe"], 0.0, atol=1e-4)
    np.testing.assert_allclose(table["pa_mpjpe"], 0.0, atol=1e-4)
    assert set(SUMMARY_KEYS) <= set(summary) and summary["n_frames"] == N


def test_table_equals_direct_metric_calls_and_camera_input_agrees():
    gt = make_gt()
    rng = np.random.default_rng(3)
    pred_w = gt["gt_verts_world"] + rng.normal(0, 0.1, size=(N, V, 3)).astype(np.float32)
    perm = rng.permutation(N)  # predictions in another order than the GT
    pred = Predictions(frame_ids=gt["gt_frame_ids"][perm], body_model="m", num_vertices=V, verts_world=pred_w[perm])
    table, summary = evaluate_arrays(pred, **gt, chunk_frames=4)
    assert table["frame_id"].tolist() == gt["gt_frame_ids"].tolist()

    pw, gw = pred_w.astype(np.float64), gt["gt_verts_world"].astype(np.float64)
    pj, pp = regress_h36m(pw, gt["regressor17"])
    gj, gp = regress_h36m(gw, gt["regressor17"])
    sdf = np.stack([query_sdf(gt["sdf_grids"][s], v) for s, v in zip(gt["scene_ids"], pw)])
    c = gt["gt_contact"]
    expected = {
        "g_mpjpe": M.g_mpjpe(pj, gj),
        "g_mpve": M.g_mpve(pw, gw),
        "mpjpe": M.mpjpe(pj, gj, pp, gp),
        "mpve": M.mpve(pw, gw, pp, gp),
        "pa_mpjpe": M.pa_mpjpe(pj, gj),
        "pelvis_error": M.pelvis_error(pp, gp),
        "c_hscp_l2": M.c_hscp_l2(pw, gw, pp, gp, c),
        "pene": M.pene(sdf),
        "confe": M.confe(sdf, c),
        "contact_f1": M.contact_precision_recall_f1(sdf, c)[2],
    }
    for key, value in expected.items():
        np.testing.assert_allclose(table[key], value, rtol=0, atol=1e-9, err_msg=key)
        assert summary[key] == pytest.approx(float(np.mean(value)), abs=1e-9)
    assert (table["pene"] > 0).any()  # the synthetic scenes really are penetrated

    # the same meshes given in the camera frame (plus pelvis predictions) evaluate identically
    T = gt["T_world_to_cam"]
    pel_cam = to_cam(T, pp[:, None].astype(np.float32))[:, 0]
    cam = Predictions(
        frame_ids=gt["gt_frame_ids"], body_model="m", num_vertices=V, verts_cam=to_cam(T, pred_w), pelvis_refined_cam=pel_cam, contact_vertex=c.copy()
    )
    table_cam, _ = evaluate_arrays(cam, **gt)
    for key in expected:
        np.testing.assert_allclose(table_cam[key], table[key], rtol=0, atol=1e-3, err_msg=key)
    np.testing.assert_allclose(table_cam["pelvis_error_refined"], table["pelvis_error"], atol=1e-3)
    np.testing.assert_array_equal(table_cam["contact_vertex_f1"], 1.0)


@pytest.mark.parametrize("change, match", [("missing", r"lack 1 of the 6.*seq_005"), ("extra", r"1 frame id\(s\) not in the ground truth.*bogus")])
def test_frame_id_mismatch_is_an_error(change, match):
    gt = make_gt()
    ids = gt["gt_frame_ids"].copy()
    verts = gt["gt_verts_world"]
    if change == "missing":
        ids, verts = ids[:-1], verts[:-1]
    else:
        ids, verts = np.append(ids, "bogus"), np.concatenate([verts, verts[:1]])
    pred = Predictions(frame_ids=ids, body_model="m", num_vertices=V, verts_world=verts)
    with pytest.raises(ValueError, match=match):
        evaluate_arrays(pred, **gt, source="preds.npz")


def test_unknown_scene_and_missing_camera_are_errors():
    gt = make_gt()
    pred = Predictions(frame_ids=gt["gt_frame_ids"], body_model="m", num_vertices=V, verts_cam=gt["gt_verts_world"])
    with pytest.raises(ValueError, match=r"no SDF grid for scene.*'lobby'"):
        evaluate_arrays(pred, **{**gt, "scene_ids": np.array(["lobby"] * N)})
    with pytest.raises(ValueError, match="T_world_to_cam is required"):
        evaluate_arrays(pred, **{**gt, "T_world_to_cam": None})


def test_reports_are_written_atomically(tmp_path):
    gt = make_gt()
    pred = Predictions(frame_ids=gt["gt_frame_ids"], body_model="m", num_vertices=V, verts_world=gt["gt_verts_world"] + 0.01)
    table, summary = evaluate_arrays(pred, **gt)
    text = format_paper_table(summary)
    assert "G-MPJPE" in text and "ConFE" in text and f"{summary['mpve']:.2f}" in text
    write_evaluation(table, summary, per_frame_csv=tmp_path / "frames.csv", summary_json=tmp_path / "summary.json")
    assert json.loads((tmp_path / "summary.json").read_text()) == pytest.approx(summary)
    rows = list(csv.DictReader((tmp_path / "frames.csv").open()))
    assert [r["frame_id"] for r in rows] == gt["gt_frame_ids"].tolist()
    np.testing.assert_allclose([float(r["g_mpve"]) for r in rows], table["g_mpve"], rtol=1e-8)
    bad = dict(table, g_mpve=table["g_mpve"][:-1])
    with pytest.raises(ValueError, match="different lengths"):
        write_evaluation(bad, summary, per_frame_csv=tmp_path / "b.csv", summary_json=tmp_path / "b.json")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["frames.csv", "summary.json"]


def test_a_write_failing_midway_leaves_no_file(tmp_path, monkeypatch):
    def broken_savez(f, **arrays):
        f.write(b"PK partial")
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", broken_savez)
    with pytest.raises(OSError, match="disk full"):
        write_predictions(tmp_path / "p.npz", full_predictions())
    assert list(tmp_path.iterdir()) == []


def test_evaluate_validates_in_memory_predictions():
    gt = make_gt()
    verts = gt["gt_verts_world"].copy()
    verts[4, 0, 0] = np.nan
    nan_pred = Predictions(frame_ids=gt["gt_frame_ids"], body_model="m", num_vertices=V, verts_world=verts)
    with pytest.raises(ValueError, match=r"mine\.npz.*'verts_world'.*NaN"):
        evaluate_arrays(nan_pred, **gt, source="mine.npz")
    small = Predictions(frame_ids=gt["gt_frame_ids"], body_model="m", num_vertices=V - 1, verts_world=verts[:, 1:])
    with pytest.raises(ValueError, match=r"num_vertices.*39.*40"):
        evaluate_arrays(small, **gt)
