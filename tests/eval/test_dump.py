"""`sahmr dump` → `sahmr evaluate`: a SAHMR checkpoint's predictions on a split, in the predictions format."""

import json

import numpy as np
import torch

from sahmr.cli import main
from sahmr.eval.predictions import read_predictions


def test_dump_then_evaluate(tiny_synth, open_model_path, tmp_path):
    from sahmr.models.rcnet import RCNet, RCNetConfig
    from sahmr.train.sahmr_task import SAHMRTask

    root, _ = tiny_synth
    torch.manual_seed(0)
    rcnet_ckpt = tmp_path / "rcnet.ckpt"
    torch.save(RCNet(RCNetConfig.preset("cpu")).state_dict(), rcnet_ckpt)
    params = tmp_path / "params.yaml"
    params.write_text(f"preset: cpu\ntrain_sahmr:\n  rcnet_ckpt: {rcnet_ckpt}\n  body_model: {open_model_path}\n")
    task = SAHMRTask.from_params({"preset": "cpu", "rcnet_ckpt": str(rcnet_ckpt), "body_model": str(open_model_path)})
    torch.save(task.build_model().state_dict(), tmp_path / "final.ckpt")

    pred_path = tmp_path / "pred.npz"
    assert (
        main(
            [
                "dump",
                "sahmr",
                "--ckpt",
                str(tmp_path / "final.ckpt"),
                "--data",
                str(root),
                "--split",
                "test",
                "--out",
                str(pred_path),
                "--params",
                str(params),
                "--batch-size",
                "4",
            ]
        )
        == 0
    )
    pred = read_predictions(pred_path, expected_num_vertices=6890)
    assert len(pred.frame_ids) == 6 and pred.verts_cam.shape == (6, 6890, 3) and np.isfinite(pred.verts_cam).all()
    assert pred.pelvis_cam.shape == (6, 3) and pred.pelvis_refined_cam.shape == (6, 3)
    out = tmp_path / "m.json"
    assert (
        main(
            [
                "evaluate",
                "--pred",
                str(pred_path),
                "--data",
                str(root),
                "--split",
                "test",
                "--out",
                str(out),
                "--body-model",
                str(open_model_path),
                "--quiet",
            ]
        )
        == 0
    )
    s = json.loads(out.read_text())
    assert s["n_frames"] == 6 and {"pelvis_error_coarse", "pelvis_error_refined"} <= set(s)


def test_dump_missing_checkpoint(tiny_synth, tmp_path, capsys):
    root, _ = tiny_synth
    params = tmp_path / "params.yaml"
    params.write_text("preset: cpu\ntrain_sahmr:\n  rcnet_ckpt: nowhere.ckpt\n")
    rc = main(
        ["dump", "sahmr", "--ckpt", str(tmp_path / "none.ckpt"), "--data", str(root), "--out", str(tmp_path / "p.npz"), "--params", str(params)]
    )
    assert rc == 2 and "not found" in capsys.readouterr().err and not (tmp_path / "p.npz").exists()
