"""`sahmr predict` on a user's own frame: same result as the evaluation path, correct frames, files, errors."""

import json
import re

import numpy as np
import pytest
import torch
import yaml

from sahmr.cli import main


@pytest.fixture(scope="module")
def trained(tiny_synth, open_model_path, tmp_path_factory):
    """A stage-2 SAHMR checkpoint (random weights, cpu preset) and the params file that built it."""
    from sahmr.models.rcnet import RCNet, RCNetConfig
    from sahmr.train.sahmr_task import SAHMRTask

    d = tmp_path_factory.mktemp("predict_ckpt")
    torch.manual_seed(0)
    rcnet_ckpt = d / "rcnet.ckpt"
    torch.save(RCNet(RCNetConfig.preset("cpu")).state_dict(), rcnet_ckpt)
    params = d / "params.yaml"
    params.write_text(
        f"preset: cpu\ntrain_sahmr:\n  rcnet_ckpt: {rcnet_ckpt}\n  body_model: {open_model_path}\n"
        f"train_baseline:\n  rcnet_ckpt: {rcnet_ckpt}\n  body_model: {open_model_path}\n"
    )
    task = SAHMRTask.from_params({"preset": "cpu", "rcnet_ckpt": str(rcnet_ckpt), "body_model": str(open_model_path)})
    model = task.build_model().eval()
    torch.save(model.state_dict(), d / "final.ckpt")
    return d / "final.ckpt", params, model


@pytest.fixture(scope="module")
def user_frame(tiny_synth, tmp_path_factory):
    """Test frame 0 of the tiny dataset exported as a user would bring it: image, scene .npy, camera JSON."""
    from sahmr.data.format import DatasetReader

    root, _ = tiny_synth
    r = DatasetReader(root)
    a = r.split("test")
    d = tmp_path_factory.mktemp("user_frame")
    scene_id = str(a["scene_id"][0])
    np.save(d / "scene.npy", np.asarray(r.scene_points(scene_id)))
    from PIL import Image

    with Image.open(r.image_file(str(a["image_path"][0]))) as im:
        w, h = im.size
    cam = {"K": np.asarray(a["K"][0]).tolist(), "T_world_to_cam": np.asarray(a["T_world_to_cam"][0]).tolist(), "image_size": [w, h]}
    (d / "camera.json").write_text(json.dumps(cam))
    box = np.asarray(a["person_box_xyxy"][0], dtype=np.float64)
    return {
        "image": r.image_file(str(a["image_path"][0])),
        "scene": d / "scene.npy",
        "camera": d / "camera.json",
        "box": box,
        "dir": d,
        "size": (w, h),
    }


def test_predict_equals_evaluation_path(tiny_synth, trained, user_frame):
    """The user-data path gives the mesh `sahmr dump` gives for the same dataset frame."""
    from sahmr.data.dataset import HumanSceneDataset, collate_human_scene
    from sahmr.geometry.camera import transform
    from sahmr.infer import load_inputs, load_predictor

    ckpt, params, model = trained
    root, _ = tiny_synth
    pred = load_predictor("sahmr", ckpt, params)(load_inputs(user_frame["image"], user_frame["scene"], user_frame["camera"], user_frame["box"]))
    from sahmr.models.rcnet import RCNetConfig

    ds = HumanSceneDataset(root, "test", crop_size=RCNetConfig.preset("cpu").crop_size, train_augment=False)
    item = ds[0]
    with torch.no_grad():
        ref = model.forward_batch(collate_human_scene([item]), None)
    assert pred.n_frustum_points == len(item["points_cam"]) > 0
    np.testing.assert_allclose(pred.crop_box_xyxy, item["crop_box_xyxy"].numpy(), atol=1e-4)
    np.testing.assert_allclose(pred.verts_cam, ref.verts_cam[0].numpy(), atol=1e-5)
    np.testing.assert_allclose(pred.pelvis_refined_cam, ref.pelvis_refined_cam[0].numpy(), atol=1e-5)
    # world = inverse(T_world_to_cam) applied to the camera-frame mesh, and back again
    T = np.asarray(json.loads(user_frame["camera"].read_text())["T_world_to_cam"])
    np.testing.assert_allclose(transform(T, pred.verts_world.astype(np.float64)), pred.verts_cam, atol=1e-4)
    np.testing.assert_allclose(transform(T, pred.contact_points_world.astype(np.float64)).reshape(-1, 3), pred.contact_points_cam, atol=1e-4)
    assert pred.contact_parts.shape == (len(pred.contact_points_cam),)
    assert ((pred.contact_parts >= 1) & (pred.contact_parts <= 7)).all()


def test_predict_cli_writes_meshes_that_load_back(trained, user_frame, tmp_path):
    import trimesh

    ckpt, params, _ = trained
    out = tmp_path / "out"
    box = ",".join(f"{v:.3f}" for v in user_frame["box"])
    # the scene as a PLY point cloud this time (the other accepted format)
    pts = np.load(user_frame["scene"])
    trimesh.PointCloud(pts).export(tmp_path / "scene.ply")
    rc = main(
        [
            "predict",
            "--image",
            str(user_frame["image"]),
            "--scene",
            str(tmp_path / "scene.ply"),
            "--camera",
            str(user_frame["camera"]),
            f"--box={box}",
            "--ckpt",
            str(ckpt),
            "--params",
            str(params),
            "--out",
            str(out),
        ]
    )
    assert rc == 0
    arrays = np.load(out / "prediction.npz")
    summary = json.loads((out / "prediction.json").read_text())
    for frame in ("world", "cam"):
        for ext in ("ply", "obj"):
            m = trimesh.load(out / f"mesh_{frame}.{ext}", process=False)
            np.testing.assert_allclose(m.vertices, arrays[f"verts_{frame}"], atol=1e-5)
            np.testing.assert_array_equal(m.faces, arrays["faces"])
    assert arrays["verts_world"].shape == (6890, 3) and arrays["faces"].shape[1] == 3
    np.testing.assert_allclose(summary["pelvis_world"], arrays["pelvis_world"], atol=1e-6)
    assert sum(summary["contact_points_per_part"].values()) == len(arrays["contact_parts"])
    assert not any(p.name.endswith(".tmp") for p in out.iterdir())


def test_predict_outputs_appear_together(trained, user_frame, tmp_path, monkeypatch):
    """A failure while writing (here: the 3rd mesh file) leaves no output folder and no staging folder; over an
    existing folder, the previous files stay byte for byte; a successful rerun replaces them all."""
    from sahmr.infer import load_inputs, load_predictor, write_prediction
    from sahmr.infer import predict as P

    ckpt, params, _ = trained
    pred = load_predictor("sahmr", ckpt, params)(load_inputs(user_frame["image"], user_frame["scene"], user_frame["camera"], user_frame["box"]))
    real, calls = P.write_obj, []

    def failing(*a, **k):
        calls.append(1)
        if len(calls) == 2:
            raise OSError(28, "No space left on device")
        return real(*a, **k)

    out = tmp_path / "out"
    monkeypatch.setattr(P, "write_obj", failing)
    with pytest.raises(OSError):
        write_prediction(pred, out)
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # neither out nor a staging folder
    monkeypatch.setattr(P, "write_obj", real)
    written = write_prediction(pred, out)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    assert sorted(before) == sorted(p.name for p in written) and len(before) == 7
    calls.clear()
    monkeypatch.setattr(P, "write_obj", failing)
    with pytest.raises(OSError):
        write_prediction(pred, out)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before and [p.name for p in tmp_path.iterdir()] == ["out"]


def test_predict_baseline_has_no_contacts(trained, user_frame, tmp_path):
    from sahmr.infer import load_inputs, load_predictor
    from sahmr.train.sahmr_task import BaselineTask

    _, params, sahmr_model = trained
    cfg = yaml.safe_load(params.read_text())["train_baseline"]
    base = BaselineTask.from_params({"preset": "cpu", **cfg}).build_model()
    torch.save(base.state_dict(), tmp_path / "baseline.ckpt")
    pred = load_predictor("baseline", tmp_path / "baseline.ckpt", params)(
        load_inputs(user_frame["image"], user_frame["scene"], user_frame["camera"], user_frame["box"])
    )
    assert len(pred.contact_points_world) == 0 and not pred.fallback
    np.testing.assert_allclose(pred.pelvis_cam, pred.pelvis_coarse_cam)


def test_predict_scene_far_away_uses_documented_fallback(trained, user_frame, tmp_path, capsys):
    """A scan that does not cover the person: RCNet's fallback (image-only pelvis, no contacts) and a warning."""
    ckpt, params, _ = trained
    far = np.load(user_frame["scene"]) + np.float32(100.0)
    np.save(tmp_path / "far.npy", far)
    box = ",".join(str(v) for v in user_frame["box"])
    rc = main(
        [
            "predict",
            "--image",
            str(user_frame["image"]),
            "--scene",
            str(tmp_path / "far.npy"),
            "--camera",
            str(user_frame["camera"]),
            f"--box={box}",
            "--ckpt",
            str(ckpt),
            "--params",
            str(params),
            "--out",
            str(tmp_path / "o"),
        ]
    )
    assert rc == 0
    s = json.loads((tmp_path / "o" / "prediction.json").read_text())
    assert s["fallback"] is True and sum(s["contact_points_per_part"].values()) == 0
    np.testing.assert_allclose(s["pelvis_refined_cam"], s["pelvis_coarse_cam"], atol=1e-6)
    assert "warning: no scene point" in capsys.readouterr().err


def _write(path, text):
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    "case, match",
    [
        ("missing_image", "image not found"),
        ("missing_scene", "scene not found"),
        ("nan_scene", "NaN/inf"),
        ("bad_scene_shape", r"expected an \(N, 3\)"),
        ("nan_K", "'K' contains NaN"),
        ("not_rigid", "rigid transform"),
        ("size_mismatch", "differs from the image"),
        ("box_outside", "outside the"),
        ("box_empty", "x1 > x0"),
        ("missing_ckpt", "checkpoint not found"),
    ],
)
def test_predict_bad_inputs_clear_errors(trained, user_frame, tmp_path, capsys, case, match):
    ckpt, params, _ = trained
    cam = json.loads(user_frame["camera"].read_text())
    args = {
        "image": str(user_frame["image"]),
        "scene": str(user_frame["scene"]),
        "camera": str(user_frame["camera"]),
        "box": ",".join(str(v) for v in user_frame["box"]),
        "ckpt": str(ckpt),
    }
    w, h = user_frame["size"]
    if case == "missing_image":
        args["image"] = str(tmp_path / "nope.png")
    elif case == "missing_scene":
        args["scene"] = str(tmp_path / "nope.npy")
    elif case == "nan_scene":
        pts = np.load(user_frame["scene"]).copy()
        pts[3] = np.nan
        np.save(tmp_path / "s.npy", pts)
        args["scene"] = str(tmp_path / "s.npy")
    elif case == "bad_scene_shape":
        np.save(tmp_path / "s.npy", np.zeros((10, 2), np.float32))
        args["scene"] = str(tmp_path / "s.npy")
    elif case in ("nan_K", "not_rigid", "size_mismatch"):
        if case == "nan_K":
            cam["K"][0][0] = float("nan")
        elif case == "not_rigid":
            cam["T_world_to_cam"][0][0] = 2.0
        else:
            cam["image_size"] = [w + 1, h]
        args["camera"] = str(_write(tmp_path / "cam.json", json.dumps(cam)))
    elif case == "box_outside":
        args["box"] = f"{w + 10},{h + 10},{w + 50},{h + 90}"
    elif case == "box_empty":
        args["box"] = "50,20,40,80"
    elif case == "missing_ckpt":
        args["ckpt"] = str(tmp_path / "none.ckpt")
    out = tmp_path / "out"
    rc = main(["predict", *[f"--{k}={v}" for k, v in args.items()], "--params", str(params), "--out", str(out)])
    assert rc == 2
    assert re.search(match, capsys.readouterr().err)
    assert not out.exists()  # nothing written on bad input
