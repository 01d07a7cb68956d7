"""Clear errors on bad input: missing models, wrong tensor shapes, unsafe files through the CLI."""

import pickle

import pytest
import torch

from sahmr.body.model import BodyModel, resolve_model_path
from sahmr.cli import main


def test_missing_open_model_names_path_and_fix(tmp_path, monkeypatch):
    monkeypatch.setenv("SAHMR_MODELS_DIR", str(tmp_path))
    with pytest.raises(FileNotFoundError) as e:
        resolve_model_path("sahmr-open")
    msg = str(e.value)
    assert str(tmp_path / "sahmr-open.npz") in msg and "sahmr body build-open" in msg


def test_missing_smpl_names_import_command(tmp_path, monkeypatch):
    monkeypatch.setenv("SAHMR_MODELS_DIR", str(tmp_path))
    with pytest.raises(FileNotFoundError, match="sahmr body import"):
        BodyModel.load("smpl_neutral")


def test_unknown_file_is_refused(tmp_path):
    bad = tmp_path / "x.npz"
    bad.write_bytes(b"not a zip")
    with pytest.raises(Exception) as e:
        BodyModel.load(bad)
    assert "x.npz" in str(e.value) or "zip" in str(e.value).lower()


@pytest.mark.parametrize(
    "kwargs, fragment",
    [
        (dict(body_pose=torch.zeros(2, 63)), "body_pose: expected shape (B, 69)"),
        (dict(betas=torch.zeros(2, 11)), "betas: expected shape (B, 10)"),
        (dict(global_orient=torch.zeros(2, 3, 1)), "global_orient: expected shape (B, 3)"),
        (dict(betas=torch.zeros(2, 10), transl=torch.zeros(3, 3)), "inconsistent batch sizes"),
        (dict(jaw_pose=torch.zeros(1, 3)), "unknown pose arguments"),
    ],
)
def test_wrong_shapes_raise_value_error_naming_them(open_model, kwargs, fragment):
    with pytest.raises(ValueError) as e:
        open_model(**kwargs)
    assert fragment in str(e.value)


def test_regress_joints_checks_vertex_count(open_model):
    with pytest.raises(ValueError, match=r"expected shape \(B, 6890, 3\)"):
        open_model.regress_joints14(torch.zeros(1, 100, 3))


def test_batched_forward_shapes_and_float32(open_model):
    out = open_model(betas=torch.zeros(5, 10, dtype=torch.float64))
    assert out.verts.shape == (5, 6890, 3) and out.verts.dtype == torch.float32
    assert out.joints.shape == (5, 24, 3) and out.joints14.shape == (5, 14, 3) and out.pelvis.shape == (5, 3)


class _Evil:
    def __reduce__(self):
        import os

        return (os.system, ("true",))


def test_cli_import_refuses_unsafe_pickle(tmp_path, capsys):
    bad = tmp_path / "SMPL_NEUTRAL.pkl"
    bad.write_bytes(pickle.dumps({"v_template": _Evil()}, protocol=2))
    assert main(["body", "import", str(bad), "--out-dir", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "refusing to unpickle" in err and "system" in err
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_cli_info_and_preview(open_model_path, tmp_path, capsys):
    assert main(["body", "info", "--model", str(open_model_path)]) == 0
    assert '"level_sizes"' in capsys.readouterr().out
    png = tmp_path / "p.png"
    assert main(["body", "preview", "--model", str(open_model_path), "--out", str(png)]) == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 20_000
