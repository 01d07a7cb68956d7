"""`sahmr import rich|prox` on folders in the ORIGINAL on-disk formats (tests/helpers/original_fixture.py, written from
the spec and checked against the original's own reading in test_original_fixture.py).

Checked against the fixture's truth: frame order and selection, cameras, crops and images byte for byte, GT
vertices (SMPL-X kept, SMPL-H by the transfer matrix), contact bits, scene clouds and SDF grids (an analytic
linear field, so an axis swap changes values), a crop within 3 grey levels of cv2.warpAffine, GT given as the
prediction evaluating to zero error; every pickle slot refusing a code-running pickle; bad inputs giving one
line that names the file and leaving nothing behind.
"""

from __future__ import annotations

import io
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from sahmr.body.model import BodyModel
from sahmr.body.model_file import load_body_model_file
from sahmr.cli import main
from sahmr.data.dataset import HumanSceneDataset
from sahmr.data.format import DatasetFormatError, open_dataset, read_image
from sahmr.data.frustum import frustum_points_cam
from sahmr.data.importers.files import OriginalDataError, path_after, tail_path
from sahmr.data.importers.prox import ProxImportConfig, import_prox
from sahmr.data.importers.rich import RichImportConfig, find_scene_clouds, import_rich, select_frames
from sahmr.eval.evaluate import evaluate_split
from sahmr.eval.predictions import Predictions, write_predictions
from sahmr.geometry.sdf import query_sdf
from tests.helpers.original_fixture import hostile_pickle_bytes, write_ply_mesh, write_prox_fixture, write_rich_fixture

CROP = 224


@pytest.fixture(scope="module")
def rich(open_model_path, tmp_path_factory):
    """(truth, RICH_ROOT, imported dataset root, {gender: imported SMPL-H path}): all three splits imported."""
    base = tmp_path_factory.mktemp("rich")
    src = base / "RICH"
    truth = write_rich_fixture(src, load_body_model_file(open_model_path).arrays)
    models = base / "models"
    smplh = {}
    for g in ("male", "female"):
        assert main(["body", "import", str(truth.smplh_model_paths[g]), "--out-dir", str(models), "--name", f"smplh_{g}", "--gender", g]) == 0
        smplh[g] = models / f"smplh_{g}.npz"
    out = base / "rich_ds"
    assert (
        main(
            [
                "import",
                "rich",
                str(src),
                "--out",
                str(out),
                "--splits",
                "train,val,test",
                "--body-model",
                str(open_model_path),
                "--smplx2smplh",
                str(truth.deftrafo_path),
                "--smplh-male",
                str(smplh["male"]),
                "--smplh-female",
                str(smplh["female"]),
                "--quiet",
            ]
        )
        == 0
    )
    return truth, src, out, smplh


@pytest.fixture(scope="module")
def prox(open_model_path, tmp_path_factory, rich):
    base = tmp_path_factory.mktemp("prox")
    src = base / "PROX"
    truth = write_prox_fixture(src)
    out = base / "prox_ds"
    cfg = ProxImportConfig(body_model=open_model_path, smplx2smplh=rich[0].deftrafo_path, progress=False)
    import_prox(src, out, cfg)
    return truth, src, out


def _rich_cfg(open_model_path, truth, smplh, splits=("test",)) -> RichImportConfig:
    return RichImportConfig(splits=splits, body_model=open_model_path, smplx2smplh=truth.deftrafo_path, smplh=smplh, progress=False)


# ------------------------------------------------------------------------------------------- RICH test


def test_rich_dataset_validates(rich, capsys):
    _, _, out, _ = rich
    assert main(["data", "validate", str(out)]) == 0
    ds = open_dataset(out)
    assert ds.meta["splits"] == {
        "test": 4,
        "train": len(rich[0].splits["train"].selected_img_keys),
        "val": len(rich[0].splits["val"].selected_img_keys),
    }


def test_rich_test_split_is_exact(rich, open_model):
    truth, src, out, _ = rich
    a = open_dataset(out).split("test")
    assert list(a["source_key"]) == truth.test_img_keys  # meta-file order, not sorted
    assert not (np.sort(truth.test_img_keys) == np.array(truth.test_img_keys)).all()
    for i, key in enumerate(truth.test_img_keys):
        t = truth.test_frames[key]
        cam = truth.cameras[t.cam_key]
        # the pre-cropped PNG, byte for byte (so the model sees exactly the original's input)
        assert (out / str(a["image_path"][i])).read_bytes() == t.image_path.read_bytes()
        assert np.array_equal(read_image(out, str(a["image_path"][i])), t.image_rgb)
        assert list(a["image_size"][i]) == [CROP, CROP] and np.array_equal(a["crop_box_xyxy"][i], [0, 0, CROP - 1, CROP - 1])
        # camera: T exact; K mapped into the crop, computed here by hand from the square box
        assert np.array_equal(a["T_world_to_cam"][i], cam.T_w2c)
        l, u, r, b = t.squared_bbx
        sx, sy = (CROP - 1) / (r - l), (CROP - 1) / (b - u)
        Kr = cam.K.astype(np.float64)
        K_hand = np.array([[sx * Kr[0, 0], 0, sx * (Kr[0, 2] - l)], [0, sy * Kr[1, 1], sy * (Kr[1, 2] - u)], [0, 0, 1]])
        np.testing.assert_allclose(a["K"][i], K_hand, rtol=2e-7, atol=1e-4)
        # GT: SMPL-X kept losslessly, SMPL-H = mtx[:, :10475] @ V
        assert np.array_equal(a["verts_world_smplx"][i], t.gt_w_smplx_verts.astype(np.float32))
        np.testing.assert_allclose(a["verts_world"][i], t.gt_w_smplh_verts, rtol=0, atol=1e-6)
        assert np.array_equal(a["contact"][i], t.contact)
        parts = open_model.part_ids.numpy()
        assert np.array_equal(a["contact_part"][i], np.where(t.contact, parts, 0))
        # the tight box of the projected GT, in crop pixels
        tight = t.tight_bbx
        np.testing.assert_allclose(
            a["person_box_xyxy"][i], [sx * (tight[0] - l), sy * (tight[1] - u), sx * (tight[2] - l), sy * (tight[3] - u)], atol=1e-3
        )
        assert str(a["scene_id"][i]) == t.scene_key and str(a["source_cam_key"][i]) == t.cam_key
        assert np.array_equal(a["source_crop_box_xyxy"][i], t.squared_bbx)
        w, h = cam.image_size
        assert bool(a["truncated"][i]) == bool(tight[0] < 0 or tight[1] < 0 or tight[2] > w - 1 or tight[3] > h - 1)
        pel_cam = cam.T_w2c[:3, :3].astype(np.float64) @ a["pelvis_world"][i] + cam.T_w2c[:3, 3]
        assert a["distance"][i] == pytest.approx(np.linalg.norm(pel_cam), rel=1e-5)
        assert str(a["sequence"][i]) == key.rsplit("_", 3)[0] and str(a["gender"][i]) == t.gender
    j17 = np.einsum("jv,nvc->njc", open_model.eval_regressor.double().numpy(), a["verts_world"].astype(np.float64))
    np.testing.assert_allclose(a["pelvis_world"], j17[:, 0], atol=1e-6)


def test_rich_test_model_input_is_the_png(rich):
    truth, _, out, _ = rich
    ds = HumanSceneDataset(out, "test")
    for i, key in enumerate(truth.test_img_keys):
        item = ds[i]
        t = truth.test_frames[key]
        np.testing.assert_allclose(item["image"].numpy() * 255, t.image_rgb.transpose(2, 0, 1), atol=1e-3)
        # the frustum of the crop camera = the original's (raw K, square box), up to points on the box's edge
        cam = truth.cameras[t.cam_key]
        pts = truth.scene_clouds[t.scene_key].points.astype(np.float32)
        ref = frustum_points_cam(pts, cam.K, cam.T_w2c, t.squared_bbx)
        got = item["points_cam"].numpy()
        assert len(ref) > 0 and abs(len(got) - len(ref)) <= max(2, len(ref) // 1000), (len(got), len(ref))
        common = {tuple(r) for r in np.round(ref, 4)} & {tuple(r) for r in np.round(got, 4)}
        assert len(common) >= min(len(ref), len(got)) - 2


def test_rich_scenes_clouds_and_sdf_axes(rich):
    truth, _, out, _ = rich
    ds = open_dataset(out)
    used = set()
    for split in ds.splits:
        used |= set(ds.split(split)["scene_id"].tolist())
    assert set(ds.meta["scenes"]) == used and used <= set(truth.scene_clouds)
    clouds = find_scene_clouds(truth.support_dir / "scene_info")
    for p in truth.ignored_scene_files:  # siblings without _world are not scene clouds
        assert p not in clouds.values()
    test_scans = {t.scene_key: t.sdf_key for t in truth.test_frames.values()}
    rng = np.random.default_rng(0)
    for sid in used:
        c = truth.scene_clouds[sid]
        assert np.array_equal(ds.scene_points(sid), c.points.astype(np.float32))
        info = json.loads((out / "scenes" / sid / "scene.json").read_text())["meta"]
        assert info["pitch"] == float(c.pitch[0]) and info["scene_key"] == sid
        assert (truth.root / info["voxel_file"]) == c.path and c.path.name.endswith("_world.npy")
        if sid not in test_scans:
            if not ds.has_sdf(sid):
                with pytest.raises(DatasetFormatError, match="has no SDF grid"):
                    ds.scene_sdf(sid)
            continue
        st = truth.sdf[test_scans[sid]]
        g = ds.scene_sdf(sid)
        assert np.array_equal(g.min_world, st.min) and np.array_equal(g.max_world, st.max) and g.values.shape == (st.dim,) * 3
        assert np.array_equal(g.values, st.values.astype(np.float32))  # axes (x, y, z), as stored
        # at random points the trilinear query reproduces the linear field: an axis swap would not
        pts = st.min + rng.uniform(0, 1, (500, 3)) * (st.max - st.min)
        np.testing.assert_allclose(query_sdf(g, pts), truth.sdf_field(pts), atol=2e-5)
        swapped = type(g)(values=np.ascontiguousarray(g.values.transpose(2, 1, 0)), min_world=g.min_world, max_world=g.max_world)
        assert np.abs(query_sdf(swapped, pts) - truth.sdf_field(pts)).max() > 0.05
    assert any(not ds.has_sdf(s) for s in used) or all(s in test_scans for s in used)


# ------------------------------------------------------------------------------------------ RICH train/val


def test_select_frames_rules_at_their_boundaries():
    def meta(key, frame, cam, seq="Gym_013_pushup1", cam_key="Gym_1"):
        return {"img_key": key, "frame_name": frame, "cam_id": cam, "seq_name": seq, "cam_key": cam_key}

    box = lambda cx, cy: np.array([cx - 50, cy - 100, cx + 50, cy + 100])  # noqa: E731
    metas = [
        meta("k_frame45", "45", 0),
        meta("k_frame60", "00060", "0"),
        meta("k_frame61", 61, 0),
        meta("k_frame59_cam1", 59, 1),
        meta("k_frame75", 75, 0),
        meta("k_excluded", 60, 0, seq="LectureHall_009_021_reparingprojector1"),
        meta("a_x4111", 60, 0),
        meta("a_x4111.5", 60, 0),
        meta("a_y3007", 60, 0),
        meta("a_y3007.5", 60, 0),
        meta("p_x3500", 60, 0, cam_key="Pavallion_3"),
        meta("p_y3500", 60, 0, cam_key="Pavallion_3"),
        meta("p_y4111", 60, 0, cam_key="Pavallion_5"),
        meta("p_xneg", 60, 0, cam_key="Pavallion_3"),
    ]
    boxes = {m["img_key"]: box(1000, 1000) for m in metas}
    boxes.update(
        {
            "a_x4111": box(4111, 1000),
            "a_x4111.5": box(4111.5, 1000),
            "a_y3007": box(1000, 3007),
            "a_y3007.5": box(1000, 3007.5),
            "p_x3500": box(3500, 1000),
            "p_y3500": box(1000, 3500),
            "p_y4111": box(1000, 4111),
            "p_xneg": box(-0.5, 1000),
        }
    )
    kept = [m["img_key"] for m in select_frames(metas, boxes, 15)]
    assert kept == ["a_x4111", "a_y3007", "k_frame59_cam1", "k_frame60", "k_frame75", "p_y3500", "p_y4111"]  # sorted
    kept30 = [m["img_key"] for m in select_frames(metas, boxes, 30)]  # the interval applies to frame + cam
    assert kept30 == ["a_x4111", "a_y3007", "k_frame59_cam1", "k_frame60", "p_y3500", "p_y4111"]


@pytest.mark.parametrize("split", ["train", "val"])
def test_rich_trainval_split_is_exact(rich, split):
    truth, src, out, smplh = rich
    st = truth.splits[split]
    a = open_dataset(out).split(split)
    assert list(a["source_key"]) == st.selected_img_keys and st.dropped  # the fixture's boundary cases are dropped
    models = {g: BodyModel.load(p, num_betas=10) for g, p in smplh.items()}
    for i, key in enumerate(st.selected_img_keys):
        t = st.frames[key]
        cam = truth.cameras[t.cam_key]
        img = src / "images_ds4" / split / t.image_relpath
        assert (out / str(a["image_path"][i])).read_bytes() == img.read_bytes()  # the ds4 JPEG, byte for byte
        assert np.array_equal(read_image(out, str(a["image_path"][i])), t.image_rgb)
        assert tuple(a["image_size"][i]) == t.image_size
        K = cam.K.copy()
        K[:2] /= 4
        assert np.array_equal(a["K"][i], K) and np.array_equal(a["T_world_to_cam"][i], cam.T_w2c)
        np.testing.assert_allclose(a["person_box_xyxy"][i], np.asarray(t.tight_bbx, np.float64) / 4, rtol=1e-7)
        assert np.array_equal(a["contact"][i], t.contact) and str(a["gender"][i]) == t.gender
        assert str(a["sequence"][i]) == t.seq_name and str(a["camera_id"][i]) == t.cam_key
        p = {k: np.zeros(45, np.float32) for k in ("left_hand_pose", "right_hand_pose")}
        p.update({k: np.asarray(v, np.float32) for k, v in t.body_params.items()})
        for k, v in p.items():
            assert np.array_equal(a[k][i], v), (key, k)
        with torch.no_grad():
            v = models[t.gender](**{k: torch.as_tensor(x)[None] for k, x in p.items()}).verts[0].numpy()
            other = models["female" if t.gender == "male" else "male"](**{k: torch.as_tensor(x)[None] for k, x in p.items()}).verts[0]
        np.testing.assert_allclose(a["verts_world"][i], v, atol=1e-6)
        assert np.abs(other.numpy() - v).max() > 1e-3  # the gender matters: the right model was used


def test_rich_crop_within_3_grey_levels_of_cv2_warpaffine(rich):
    """The Dataset's evaluation crop of a ds4 JPEG vs the original's cv2.warpAffine squared crop (spec §1.6)."""
    cv2 = pytest.importorskip("cv2")
    truth, src, out, _ = rich
    ds = HumanSceneDataset(out, "train")
    checked = 0
    for i, key in enumerate(truth.splits["train"].selected_img_keys):
        item = ds[i]
        l, u, r, b = item["crop_box_xyxy"].double().numpy()
        cx, cy, half = (l + r) / 2, (u + b) / 2, (r - l) / 2
        A = cv2.getAffineTransform(
            np.float32([[cx - half, cy - half], [cx + half, cy - half], [cx, cy]]),
            np.float32([[0, 0], [CROP - 1, 0], [(CROP - 1) / 2, (CROP - 1) / 2]]),
        )
        bgr = cv2.imread(str(src / "images_ds4" / "train" / truth.splits["train"].frames[key].image_relpath))
        ref = cv2.warpAffine(bgr, A, (CROP, CROP), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
        ours = np.rint(item["image"].numpy().transpose(1, 2, 0) * 255).astype(np.int16)
        diff = np.abs(ours - ref[..., ::-1].astype(np.int16))
        assert diff.max() <= 3, f"{key}: {diff.max()} grey levels from cv2.warpAffine"
        assert np.abs(ours - ref.astype(np.int16)).max() > 3  # BGR would fail: the channel order is checked
        checked += 1
    assert checked >= 2


# ----------------------------------------------------------------------------------------------- PROX


def test_prox_import_is_exact(prox, rich, open_model):
    truth, src, out = prox
    assert main(["data", "validate", str(out)]) == 0
    ds = open_dataset(out)
    a = ds.split("test")
    M = rich[0].deftrafo.tocsr()[:, :10475]
    assert list(a["source_key"]) == truth.img_keys
    for i, key in enumerate(truth.img_keys):
        t = truth.frames[key]
        img = read_image(out, str(a["image_path"][i]))
        assert np.array_equal(img, t.image_rgb)  # flipped, as the model must see it
        assert not np.array_equal(img, t.image_rgb[:, ::-1])  # the pattern is not symmetric: a missing flip fails
        np.testing.assert_allclose(a["K"][i], truth.K, rtol=1e-7)
        assert a["K"][i][2, 2] == 1
        np.testing.assert_allclose(a["T_world_to_cam"][i], truth.T_w2c, atol=1e-6)
        Tc = truth.T_c2w
        v_h = (M @ t.gt_c_smplx_verts.astype(np.float64)) @ Tc[:3, :3].T + Tc[:3, 3]  # transfer, then to the world
        np.testing.assert_allclose(a["verts_world"][i], v_h, atol=2e-6)
        np.testing.assert_allclose(a["verts_world_smplx"][i], t.gt_c_smplx_verts @ Tc[:3, :3].T + Tc[:3, 3], atol=2e-6)
        np.testing.assert_allclose(a["person_box_xyxy"][i], t.tight_bbx, rtol=1e-7)
        assert not a["contact"][i].any() and tuple(a["image_size"][i]) == truth.image_size
    assert np.array_equal(ds.scene_points("vicon"), truth.voxel.points.astype(np.float32))
    g = ds.scene_sdf("vicon")
    pts = truth.sdf.min + np.random.default_rng(1).uniform(0, 1, (300, 3)) * (truth.sdf.max - truth.sdf.min)
    np.testing.assert_allclose(query_sdf(g, pts), truth.sdf_field(pts), atol=2e-5)


@pytest.mark.parametrize("which", ["rich", "prox"])
def test_gt_as_prediction_evaluates_to_zero_error(which, rich, prox, open_model_path, tmp_path):
    out = rich[2] if which == "rich" else prox[2]
    ds = open_dataset(out)
    a = ds.split("test")
    T = a["T_world_to_cam"].astype(np.float64)
    v = a["verts_world"].astype(np.float64)
    verts_cam = np.einsum("nij,nvj->nvi", T[:, :3, :3], v) + T[:, None, :3, 3]
    pred = Predictions(
        frame_ids=np.asarray(a["frame_id"]), body_model=ds.meta["body_model"]["name"], num_vertices=v.shape[1], verts_cam=verts_cam.astype(np.float32)
    )
    path = write_predictions(tmp_path / "gt.npz", pred)
    _, summary = evaluate_split(path, out, "test", body_model=open_model_path)
    for k in ("g_mpjpe", "g_mpve", "mpjpe", "mpve", "pa_mpjpe"):
        assert summary[k] < 1e-2, (k, summary[k])  # mm; float32 camera-frame round trip
    assert np.isfinite(summary["pene"]) and np.isfinite(summary["confe"])
    if which == "prox":
        assert summary["pene"] == pytest.approx(summary["confe"])  # no contact labels: ConFE = PenE


# ----------------------------------------------------------------------------------- hostile and bad input


def _npy_object_with(payload: bytes) -> bytes:
    f = io.BytesIO()
    np.lib.format.write_array_header_1_0(f, {"descr": "|O", "fortran_order": False, "shape": ()})
    return f.getvalue() + payload


def _run_import(kind, src, out, open_model_path, rich, splits="test") -> int:
    truth, _, _, smplh = rich
    argv = ["import", kind, str(src), "--out", str(out), "--body-model", str(open_model_path), "--smplx2smplh", str(truth.deftrafo_path), "--quiet"]
    if kind == "rich":
        argv += ["--splits", splits, "--smplh-male", str(smplh["male"]), "--smplh-female", str(smplh["female"])]
    return main(argv)


def _one_line_error(capsys, *needles) -> str:
    err = capsys.readouterr().err.strip()
    assert err.startswith("sahmr: error: ") and "\n" not in err and "Traceback" not in err, err
    for n in needles:
        assert n in err, (n, err)
    return err


def _nothing_written(out: Path) -> None:
    assert not out.exists()
    assert not list(out.parent.glob(f".{out.name}.importing-*"))


def _slots(truth_rich, prox_truth) -> list[tuple[str, str, Path, str]]:
    """(dataset, splits, file, kind) of every pickle slot: 'npy' = an object .npy, 'pkl' = a plain pickle."""
    sup = truth_rich.root / "sahmr_support"
    train_key = truth_rich.splits["train"].selected_img_keys[0]
    scene_key = truth_rich.test_frames[truth_rich.test_img_keys[0]].scene_key
    voxel = next(iter(c.path for c in truth_rich.scene_clouds.values() if c.scene_key == scene_key))
    return [
        ("rich", "test", sup / "test_split" / "meta" / "test3116.npy", "npy"),
        ("rich", "test", voxel, "npy"),
        ("rich", "test", truth_rich.deftrafo_path, "pkl"),
        ("rich", "train", sup / "train_split" / "meta" / "idx2meta.pkl", "pkl"),
        ("rich", "train", sup / "train_split" / "meta" / "img2gtbbx.pkl", "pkl"),
        ("rich", "train", truth_rich.root / "bodies" / "train" / truth_rich.splits["train"].frames[train_key].body_relpath, "pkl"),
        ("prox", "test", prox_truth.support_dir / "meta" / "mosh_mesh_test.pkl", "pkl"),
        ("prox", "test", prox_truth.support_dir / "img2gtbbx" / "mosh_mesh.pkl", "pkl"),
        ("prox", "test", prox_truth.voxel.path, "npy"),
    ]


def test_code_running_pickle_refused_in_every_slot(rich, prox, open_model_path, tmp_path, capsys):
    marker = tmp_path / "pwned"
    evil = hostile_pickle_bytes(marker)
    slots = _slots(rich[0], prox[0])
    for i, (kind, splits, path, fmt) in enumerate(slots):
        original = path.read_bytes()
        path.write_bytes(_npy_object_with(evil) if fmt == "npy" else evil)
        try:
            out = tmp_path / f"out_{i}"
            src = rich[1] if kind == "rich" else prox[1]
            assert _run_import(kind, src, out, open_model_path, rich, splits) == 2, path
            _one_line_error(capsys, str(path), "refusing to unpickle")
            assert not marker.exists(), path
            _nothing_written(out)
        finally:
            path.write_bytes(original)


def test_bad_inputs_one_line_nothing_written(rich, open_model_path, tmp_path, capsys):
    truth, src, _, _ = rich
    sup = src / "sahmr_support" / "test_split"
    key = truth.test_img_keys[0]
    out = tmp_path / "out"
    # a missing folder
    assert _run_import("rich", tmp_path / "nowhere", out, open_model_path, rich) == 2
    _one_line_error(capsys, "nowhere", "Real datasets")
    _nothing_written(out)
    cases = {  # file -> (new bytes, what the message must say)
        sup / "meta" / "test3116.npy": (lambda b: b[: len(b) // 2], "test3116.npy"),
        sup / "gt_smplx_mesh" / f"{key}.ply": (lambda b: b[: len(b) - 4000], "truncated PLY"),
        sup / "image" / f"{key}.png": (lambda b: b[: len(b) // 2], f"{key}.png"),
    }
    for path, (cut, needle) in cases.items():
        original = path.read_bytes()
        path.write_bytes(cut(original))
        try:
            assert _run_import("rich", src, out, open_model_path, rich) == 2, path
            _one_line_error(capsys, str(path.name), needle)
            _nothing_written(out)
        finally:
            path.write_bytes(original)
    # a vertex-count mismatch
    ply = sup / "gt_smplx_mesh" / f"{key}.ply"
    original = ply.read_bytes()
    write_ply_mesh(ply, np.zeros((10000, 3)), np.array([[0, 1, 2]]))
    try:
        assert _run_import("rich", src, out, open_model_path, rich) == 2
        _one_line_error(capsys, f"{key}.ply", "10000 vertices, expected 10475")
        _nothing_written(out)
    finally:
        ply.write_bytes(original)
    # an unknown scene key in a meta
    meta_path = sup / "meta" / "test3116.npy"
    original = meta_path.read_bytes()
    metas = np.load(meta_path, allow_pickle=True)
    metas[1] = {**metas[1], "scene_key": "Nowhere_scan_camcoord"}
    np.save(meta_path, metas, allow_pickle=True)
    try:
        assert _run_import("rich", src, out, open_model_path, rich) == 2
        _one_line_error(capsys, "test3116.npy[1]", "unknown scene_key 'Nowhere_scan_camcoord'")
        _nothing_written(out)
    finally:
        meta_path.write_bytes(original)


def test_out_folder_rules(rich, open_model_path, tmp_path, capsys):
    truth, src, _, smplh = rich
    cfg = _rich_cfg(open_model_path, truth, smplh)
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    assert _run_import("rich", src, foreign, open_model_path, rich) == 2
    _one_line_error(capsys, "never deletes")
    assert (foreign / "notes.txt").read_text() == "keep me"
    out = tmp_path / "ds"
    import_rich(src, out, cfg)
    first = (out / "dataset.json").read_text()
    with pytest.raises(FileExistsError, match="--force"):
        import_rich(src, out, cfg)
    import_rich(src, out, cfg, force=True)
    assert open_dataset(out).meta["content_hash"] == json.loads(first)["content_hash"]  # deterministic
    stale, live = tmp_path / ".ds.importing-999999", tmp_path / f".ds.importing-{os.getppid()}"
    stale.mkdir()
    live.mkdir()
    import_rich(src, out, cfg, force=True)
    assert not stale.exists() and live.exists()  # a killed import's staging folder is cleaned, a live one's kept
    live.rmdir()
    os.replace(out, tmp_path / ".ds.importing-old-999998")  # killed between setting the old dataset aside and the swap
    with pytest.raises(FileExistsError, match="--force"):
        import_rich(src, out, cfg)  # the set-aside dataset was put back first
    assert json.loads((out / "dataset.json").read_text())["content_hash"] == json.loads(first)["content_hash"]
    link = tmp_path / "link"
    link.symlink_to(out)
    with pytest.raises(FileExistsError, match="symbolic link"):
        import_rich(src, link, cfg, force=True)


def test_missing_companion_files_named(rich, open_model_path, tmp_path, capsys):
    truth, src, _, smplh = rich
    out = tmp_path / "out"
    assert (
        main(
            [
                "import",
                "rich",
                str(src),
                "--out",
                str(out),
                "--body-model",
                str(open_model_path),
                "--smplx2smplh",
                str(tmp_path / "absent.pkl"),
                "--quiet",
            ]
        )
        == 2
    )
    _one_line_error(capsys, "absent.pkl", "model_transfer")
    assert (
        main(
            [
                "import",
                "rich",
                str(src),
                "--out",
                str(out),
                "--splits",
                "train",
                "--body-model",
                str(open_model_path),
                "--smplh-male",
                str(tmp_path / "no_smplh.npz"),
                "--quiet",
            ]
        )
        == 2
    )
    _one_line_error(capsys, "no_smplh.npz", "sahmr body import")
    _nothing_written(out)
    shutil.rmtree(out, ignore_errors=True)


def test_training_runs_on_imported_rich(rich, open_model_path, tmp_path):
    """The paper's two stages run on the imported RICH train/val (a few steps, cpu-sized model) with the original's
    augmentation (crop centre +-10 ds4 px, side 1.15-1.55 x): the importer's output is what training needs."""
    from sahmr.train.loop import TrainConfig, train
    from sahmr.train.rcnet_task import RCNetTask
    from sahmr.train.sahmr_task import SAHMRTask

    out = rich[2]

    def cfg(name):
        return TrainConfig(
            data=out,
            out=tmp_path / name,
            train_split="train",
            val_split="val",
            batch_size=2,
            val_batch_size=2,
            epochs=1,
            limit_train_batches=2,
            limit_val_batches=1,
            canonical_lr=1e-4,
            canonical_bs=2,
            milestones=(1,),
            progress="none",
            sanity_val_steps=0,
            deterministic=True,
            dataset={"bbx_center_px": 10.0, "bbx_zoom": 0.4, "max_scene_points": 8000},
        )

    rc = train(RCNetTask("cpu"), cfg("rcnet"))
    assert rc["global_step"] == 2 and np.isfinite(rc["metrics"]["pelvis_error_refined_mm"])
    params = {"preset": "cpu", "rcnet_ckpt": str(tmp_path / "rcnet" / "final.ckpt"), "body_model": str(open_model_path), "model": {"num_layers": 1}}
    s = train(SAHMRTask.from_params(params), cfg("sahmr"))
    assert s["global_step"] == 2 and np.isfinite(s["metrics"]["G_MPJPE"])


def test_prox_bad_inputs(prox, rich, open_model_path, tmp_path, capsys):
    truth, src, _ = prox
    out = tmp_path / "out"
    t = truth.frames[truth.img_keys[1]]
    cases = {
        t.image_path: (lambda b: b[: len(b) // 3], "not a readable image"),
        t.mesh_path: (lambda b: b[: len(b) // 2], "truncated PLY"),
        truth.support_dir / "vicon" / "calibration" / "Color.json": (lambda b: b'{"f": [1000]}', "'c'"),
    }
    for path, (cut, needle) in cases.items():
        original = path.read_bytes()
        path.write_bytes(cut(original))
        try:
            assert _run_import("prox", src, out, open_model_path, rich) == 2, path
            _one_line_error(capsys, path.name, needle)
            _nothing_written(out)
        finally:
            path.write_bytes(original)


def test_path_rules_of_the_metas():
    assert tail_path("/home/authors/RICH/images/Gym_013_pushup1/cam_07/00150_07.jpeg") == "Gym_013_pushup1/cam_07/00150_07.jpeg"
    assert tail_path("D:\\rich\\Gym_013_pushup1\\cam_07\\00150_07.pkl") == "Gym_013_pushup1/cam_07/00150_07.pkl"
    assert path_after("/x/test_contact/Gym/cam_01/00090.npy", "test_contact") == "Gym/cam_01/00090.npy"
    assert path_after("/data/amass_mosh/y/mosh/vicon_03301_01/results/f/000.ply", "mosh") == "vicon_03301_01/results/f/000.ply"
    with pytest.raises(OriginalDataError, match="idx2meta.pkl .k. body_file: path 'a/b' has fewer than 3"):
        tail_path("a/b", where="idx2meta.pkl (k) body_file")
    with pytest.raises(OriginalDataError, match="no folder 'test_contact'"):
        path_after("/x/my_test_contact/a.npy", "test_contact")
    with pytest.raises(OriginalDataError, match="'..'"):
        path_after("/x/test_contact/../../etc/passwd", "test_contact")
