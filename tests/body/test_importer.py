"""`sahmr body import`: official-layout pickles → the kit's npz, and BodyModel on the result."""

import json
import os

import numpy as np
import pytest
import torch

from sahmr.body.importer import import_official
from sahmr.body.model import BodyModel
from sahmr.body.model_file import BodyModelFileError, load_body_model_file
from sahmr.cli import main
from tests.helpers.official_format import (
    CallOnLoad,
    chumpy_pickle_bytes,
    official_smpl_dict,
    official_smplh_dict,
    write_assets,
    write_mesh_downsampling,
)


@pytest.fixture(scope="module")
def official_pkl(open_model_path, tmp_path_factory):
    """An official-layout SMPL pickle (chumpy objects inside) holding sahmr-open's arrays."""
    arrays = load_body_model_file(open_model_path).arrays
    path = tmp_path_factory.mktemp("official") / "basicModel_neutral_lbs_10_207_0_v1.0.0.pkl"
    path.write_bytes(chumpy_pickle_bytes(official_smpl_dict(arrays)))
    return path, arrays


def _random_inputs(B, seed=0):
    g = torch.Generator().manual_seed(seed)
    return dict(
        betas=torch.randn(B, 10, generator=g),
        body_pose=0.3 * torch.randn(B, 69, generator=g),
        global_orient=0.5 * torch.randn(B, 3, generator=g),
        transl=torch.randn(B, 3, generator=g),
    )


def test_import_round_trip_poses_identically(official_pkl, open_model, tmp_path):
    pkl, arrays = official_pkl
    out = import_official(pkl, out_dir=tmp_path, progress=lambda *_: None)
    assert out == tmp_path / "smpl_neutral.npz"
    meta = json.loads(out.with_suffix(".json").read_text())
    assert meta["model_type"] == "smpl" and meta["gender"] == "neutral" and meta["companion_assets"] == {}
    imported = BodyModel.load(out)
    x = _random_inputs(3)
    with torch.no_grad():
        a, b = imported(**x), open_model(**x)
    torch.testing.assert_close(a.verts, b.verts, atol=1e-5, rtol=0)
    torch.testing.assert_close(a.joints, b.joints, atol=1e-5, rtol=0)
    # Extras computed by the kit from the template: same rules on the same mesh → same parts.
    assert np.array_equal(imported.part_ids.numpy(), open_model.part_ids.numpy())
    assert imported.level_sizes[0] == 6890 and len(imported.level_sizes) == 3


def test_import_uses_companion_assets(official_pkl, tmp_path, capsys):
    """``sahmr body import SMPL.pkl --assets DIR`` with the companion files as they are distributed."""
    pkl, arrays = official_pkl
    U = write_assets(arrays, tmp_path)["U"]
    reg = np.load(tmp_path / "J_regressor_h36m_correct.npy")
    pids = np.load(tmp_path / "seg_part_info.npy", allow_pickle=True).item()["verts6890_pids"]
    assert main(["body", "import", str(pkl), "--assets", str(tmp_path), "--out-dir", str(tmp_path / "out")]) == 0
    assert "companion assets: J_regressor_h36m_correct.npy" in capsys.readouterr().out
    got = load_body_model_file(tmp_path / "out" / "smpl_neutral.npz")
    assert set(got.meta["companion_assets"]) == {"J_regressor_h36m_correct.npy", "seg_part_info.npy", "mesh_downsampling.npz"}
    assert got.meta["level_sizes"] == [arrays["v_template"].shape[0]] + [len(arrays[f"sahmr_down_idx_{i}"]) for i in (1, 2)]
    np.testing.assert_allclose(got.arrays["sahmr_eval_regressor"], reg, atol=1e-7)
    assert np.array_equal(got.arrays["sahmr_part_ids"], pids.astype(np.int64))
    # The hierarchy is the file's: its selections, faces and upsampling matrices.
    for i in (1, 2):
        assert np.array_equal(got.arrays[f"sahmr_down_idx_{i}"], arrays[f"sahmr_down_idx_{i}"])
        assert np.array_equal(got.arrays[f"sahmr_faces_{i}"], arrays[f"sahmr_faces_{i}"])
        idx, w = got.arrays[f"sahmr_up_idx_{i}"], got.arrays[f"sahmr_up_w_{i}"]
        dense = np.zeros(U[i - 1].shape)
        np.add.at(dense, (np.repeat(np.arange(len(idx)), 3), idx.ravel()), w.ravel())
        u = U[i - 1].toarray()
        np.testing.assert_allclose(dense, u / u.sum(1, keepdims=True), atol=1e-6)


def test_import_refuses_tampered_mesh_downsampling(official_pkl, tmp_path, capsys):
    """A disallowed global in U: one line naming file, member and global; nothing written, nothing run."""
    pkl, arrays = official_pkl
    members = write_assets(arrays, tmp_path)
    marker = tmp_path / "pwned"
    members["U"][1] = CallOnLoad(os.system, f"touch {marker}")
    path = tmp_path / "mesh_downsampling.npz"
    write_mesh_downsampling(path, members, writer="py2")
    assert main(["body", "import", str(pkl), "--assets", str(tmp_path), "--out-dir", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("sahmr: error: ") and "\n" not in err
    assert f"{path}:U.npy" in err and f"'{os.system.__module__}.system'" in err
    assert not marker.exists() and not (tmp_path / "out").exists()


def test_import_names_missing_key(tmp_path):
    bad = tmp_path / "SMPL_MALE.pkl"
    bad.write_bytes(chumpy_pickle_bytes({"v_template": np.zeros((4, 3))}))
    with pytest.raises(BodyModelFileError, match="key 'shapedirs' missing"):
        import_official(bad, out_dir=tmp_path)
    assert not (tmp_path / "smpl_male.npz").exists()


def test_import_smplh_poses_like_smpl_and_moves_fingers(open_model_path, open_model, tmp_path):
    """The SMPL-H path: detected from its hand PCA keys, 52 joints, 63-d body pose, 45-d hand poses."""
    arrays = load_body_model_file(open_model_path).arrays
    pkl = tmp_path / "SMPLH_male.pkl"
    pkl.write_bytes(chumpy_pickle_bytes(official_smplh_dict(arrays)))
    out = import_official(pkl, out_dir=tmp_path, progress=lambda *_: None)
    assert out.name == "smplh_male.npz"
    smplh = BodyModel.load(out)
    assert smplh.model_type == "smplh" and smplh.pose_dim == 63 and smplh.num_joints == 52
    x = _random_inputs(2, seed=1)
    with torch.no_grad():
        a = smplh(betas=x["betas"], body_pose=x["body_pose"][:, :63], global_orient=x["global_orient"], transl=x["transl"])
        b = open_model(
            betas=x["betas"],
            body_pose=torch.cat([x["body_pose"][:, :63], torch.zeros(2, 6)], 1),
            global_orient=x["global_orient"],
            transl=x["transl"],
        )
    torch.testing.assert_close(a.verts, b.verts, atol=1e-5, rtol=0)
    torch.testing.assert_close(a.joints[:, :22], b.joints[:, :22], atol=1e-5, rtol=0)
    # A left-hand pose moves left-hand vertices only.
    hand = torch.zeros(1, 45)
    hand[0, 2] = 1.0  # bend the left index finger's first joint
    with torch.no_grad():
        rest, bent = smplh(), smplh(left_hand_pose=hand)
    moved = (bent.verts - rest.verts).norm(dim=-1)[0].numpy() > 1e-6
    left_hand = arrays["weights"][:, 22] > 0
    assert moved.any() and not (moved & ~left_hand).any()
    with pytest.raises(ValueError, match="left_hand_pose"):
        smplh(left_hand_pose=torch.zeros(1, 44))
