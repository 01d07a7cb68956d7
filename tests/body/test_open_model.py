"""sahmr-open: posing, skeleton, regressors, parts and hierarchy behave as SMPL's do."""

import numpy as np
import pytest
import torch

from sahmr.body.hierarchy import mirror_map
from sahmr.body.model_file import SMPL_JOINT_NAMES, load_body_model_file
from sahmr.body.parts import PART_FLIP, subtree
from sahmr.body.poses import body_pose

J = {n: i for i, n in enumerate(SMPL_JOINT_NAMES)}


@pytest.fixture(scope="module")
def rest(open_model):
    with torch.no_grad():
        out = open_model()
    return out.verts[0].numpy(), out.joints[0].numpy()


def test_sizes_and_metadata(open_model, open_model_path):
    m = load_body_model_file(open_model_path)
    assert open_model.level_sizes[0] == 6890
    V = open_model.level_sizes[0]
    assert abs(open_model.level_sizes[1] - V / 4) <= 0.01 * V / 4 and abs(open_model.level_sizes[2] - V / 16) <= 0.01 * V / 16
    assert m.meta["source"] == "anny" and m.meta["anny_version"] and len(m.meta["npz_sha256"]) == 64
    assert m.arrays["kintree_table"].shape == (2, 24) and m.arrays["shapedirs"].shape == (V, 3, 10)


def test_zero_pose_is_t_pose_with_feet_lowest(open_model, rest):
    verts, joints = rest
    np.testing.assert_allclose(verts, open_model.layer.v_template.numpy(), atol=1e-6)
    for side in ("left", "right"):  # arms horizontal, pointing out along ±x
        s, w = joints[J[f"{side}_shoulder"]], joints[J[f"{side}_wrist"]]
        assert abs(w[1] - s[1]) < 0.02 and abs(w[0]) > abs(s[0]) + 0.4
    assert joints[J["head"], 1] > joints[J["pelvis"], 1] > joints[J["left_knee"], 1]  # y up
    assert joints[J["left_hip"], 0] > 0 > joints[J["right_hip"], 0]  # subject's left = +x
    lowest = np.argsort(verts[:, 1])[:50]
    W = open_model.layer.lbs_weights.numpy()
    parents = open_model.layer.parents.numpy()
    feet = W[:, np.concatenate([subtree(parents, J["left_ankle"]), subtree(parents, J["right_ankle"])])].sum(1)
    assert np.all(feet[lowest] > 0.9)
    toes = W[:, [J["left_foot"], J["right_foot"]]].sum(1) > 0.5
    assert verts[toes, 2].mean() > verts[:, 2].mean()  # toes point forward: facing +z


def test_bending_left_knee_moves_only_left_shin_and_foot(open_model, rest):
    verts, joints = rest
    pose = torch.as_tensor(body_pose(left_knee=(1.2, 0.0, 0.0)))[None]
    with torch.no_grad():
        bent = open_model(body_pose=pose).verts[0].numpy()
    moved = np.linalg.norm(bent - verts, axis=1) > 1e-5
    assert moved.sum() > 200
    assert np.all(verts[moved, 0] > 0)  # left side only
    knee_y, hip_y = joints[J["left_knee"], 1], joints[J["left_hip"], 1]
    assert np.all(verts[moved, 1] < knee_y + 0.5 * (hip_y - knee_y))  # below mid-thigh
    ankle = verts[:, 1] < joints[J["left_ankle"], 1] + 0.02
    assert np.linalg.norm(bent - verts, axis=1)[ankle & (verts[:, 0] > 0)].min() > 0.05  # foot swung
    assert np.all(np.linalg.norm(bent - verts, axis=1)[verts[:, 0] < -0.05] < 1e-6)


def test_joint_regressor_follows_skeleton_under_random_shapes_and_poses(open_model):
    g = torch.Generator().manual_seed(1)
    B = 32
    betas = torch.randn(B, 10, generator=g)
    pose = 0.4 * torch.randn(B, 69, generator=g)
    with torch.no_grad():
        out = open_model(betas=betas, body_pose=pose)
    reg = open_model.layer.J_regressor
    regressed = torch.einsum("jv,bvc->bjc", reg, out.verts)
    err = (regressed - out.joints).norm(dim=-1)
    assert err.mean() < 0.01, f"mean {err.mean():.4f} m"


def test_regressor_rows_are_convex(open_model_path):
    a = load_body_model_file(open_model_path).arrays
    for key in ("J_regressor", "sahmr_eval_regressor"):
        R = a[key]
        assert R.min() >= 0, key
        np.testing.assert_allclose(R.sum(1), 1.0, atol=1e-5, err_msg=key)
        assert (R > 0).sum(1).max() <= 200, f"{key} rows should be sparse"


def test_eval_joints_in_place(open_model, rest):
    verts, joints = rest
    j14, pelvis = open_model.regress_joints14(torch.as_tensor(verts)[None])
    j14, pelvis = j14[0].numpy(), pelvis[0].numpy()
    np.testing.assert_allclose(pelvis, 0.5 * (joints[J["left_hip"]] + joints[J["right_hip"]]), atol=0.01)
    np.testing.assert_allclose(j14[0], joints[J["right_ankle"]], atol=0.01)  # R_Ankle first (spec §2.2)
    assert j14[13, 1] > j14[12, 1]  # head above neck


def test_hierarchy_down_up(open_model):
    s = open_model.sampler
    v = open_model.layer.v_template[None]
    for lvl, tol_mm in ((1, 2.0), (2, 8.0)):
        w = getattr(s, f"up_w_{lvl}")
        torch.testing.assert_close(w.sum(1), torch.ones(w.shape[0]), atol=1e-5, rtol=0)
        assert (w >= 0).all()
        idx = getattr(s, f"down_idx_{lvl}")
        assert torch.all(idx[1:] > idx[:-1])
        err = (s.upsample(s.downsample(v, 0, lvl), lvl, 0) - v).norm(dim=-1)
        assert err.mean() * 1000 < tol_mm, f"level {lvl}: {err.mean() * 1000:.2f} mm"
    coarse = s.downsample(v, 0, 2)
    torch.testing.assert_close(coarse, v[:, s.down_idx_1[s.down_idx_2]])  # selection, as GraphCMR's D


def test_model_is_mirror_symmetric_and_parts_mirrored(open_model, rest):
    verts, joints = rest
    mirror = mirror_map(verts.astype(np.float64), tol=1e-5)
    assert mirror is not None
    pid = open_model.part_ids.numpy()
    flip = np.array([0] + [p + 1 for p in PART_FLIP])
    assert np.array_equal(flip[pid], pid[mirror])
    assert all((pid == p).sum() >= 15 for p in range(1, 8))


def test_parts_are_where_their_names_say(open_model, rest):
    verts, joints = rest
    pid = open_model.part_ids.numpy()
    x, y, z = verts.T
    for p, side in ((1, 1), (2, -1)):  # soles: the lowest vertices of each foot
        foot = (np.sign(x) == side) & (y < joints[J["left_ankle"], 1])
        assert np.all(y[pid == p] < y[foot].min() + 0.025) and np.all(np.sign(x[pid == p]) == side)
    assert np.all(x[pid == 3] > joints[J["left_wrist"], 0]) and np.all(x[pid == 4] < joints[J["right_wrist"], 0])
    pelvis_z = joints[J["pelvis"], 2]
    hip_y = joints[J["left_hip"], 1]
    spine_z = joints[[J["spine1"], J["spine2"], J["spine3"]], 2]
    assert np.all(z[pid == 5] < spine_z.max() + 0.04) and z[pid == 5].mean() < spine_z.min()  # back
    assert y[pid == 5].mean() > joints[J["spine1"], 1]
    assert np.all(z[pid == 6] < pelvis_z) and abs(y[pid == 6].mean() - hip_y) < 0.12  # gluteus
    assert np.all(z[pid == 7] < pelvis_z) and y[pid == 7].max() < y[pid == 6].min() + 0.01  # thighs below
    assert y[pid == 7].min() > joints[J["left_knee"], 1]


def test_build_is_deterministic(tmp_path):
    from sahmr.body.model_file import sha256_file
    from sahmr.body.open_model import OpenModelParams, build_and_save

    params = OpenModelParams(num_samples=24, target_verts=3000)
    a = build_and_save(tmp_path / "a.npz", params)
    b = build_and_save(tmp_path / "b.npz", params)
    assert sha256_file(a) == sha256_file(b)


# Stand-ins for "another machine of the same kind": other thread counts, and the BLAS / SIMD code paths another
# x86-64 processor takes (MKL's conditional-numerical-reproducibility switch selects its AVX-512 or generic
# kernels, ATEN_CPU_CAPABILITY torch's scalar kernels). Each of these moved the build's bytes before the fixes.
CODE_PATHS = {
    "1 thread": {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"},
    "2 threads": {"OMP_NUM_THREADS": "2", "MKL_NUM_THREADS": "2", "OPENBLAS_NUM_THREADS": "2"},
    "MKL AVX-512 kernels": {"MKL_CBWR": "AVX512"},
    "MKL generic, torch scalar": {"MKL_CBWR": "COMPATIBLE", "ATEN_CPU_CAPABILITY": "default"},
}


def test_build_is_bit_stable_across_threads_and_code_paths(tmp_path):
    """The build gives the same bytes under other thread counts and BLAS/SIMD code paths. Before the fixes the
    shape space differed by 2e-16 between 1 and 2 threads, and under MKL's AVX-512 kernels Anny's float64
    posing moved in its last bits, which the decimation turned into another mesh (now snapped to 2^-20 m)."""
    import hashlib
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    digests = {}
    for name, env in CODE_PATHS.items():
        out = tmp_path / f"{len(digests)}.npz"
        threads = int(env.get("OMP_NUM_THREADS", 2))
        code = (
            f"import torch; torch.set_num_threads({threads})\n"
            "from sahmr.body.open_model import OpenModelParams, build_and_save\n"
            f"build_and_save({str(out)!r}, OpenModelParams(num_samples=24, target_verts=3000))"
        )
        subprocess.run([sys.executable, "-c", code], cwd=root, env={**os.environ, **env}, check=True, capture_output=True)
        digests[name] = [hashlib.sha256(p.read_bytes()).hexdigest() for p in (out, out.with_suffix(".json"))]
    assert len({tuple(d) for d in digests.values()}) == 1, digests
