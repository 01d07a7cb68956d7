"""Parity with the ORIGINAL SA-HMR networks (real torchsparse 1.4), through `sahmr convert`'s conversion.

The oracle (`tests/fixtures/oracle/`, see its README) ran the original RCNet + METRO_enhanced on the
deterministic seed-0 checkpoint of `make_weights.py` (the released `sahmr_*_e30.pth` layout) in two
coarse-coordinate modes: `trunc` (torch 1.12's truncating `//`, what the released weights saw) and `floor`.
Here the same checkpoint is generated in memory (~6 s), converted with `convert_state_dict` (every tensor
loaded or dropped with a reason), loaded strictly into the kit's paper-preset SAHMR with the parity
switches on, and run on the same inputs; every recorded module boundary is compared.

Tolerances: discrete choices (heatmap argmax, voxel keys, segmentation labels, contact points) exact;
continuous outputs max|kit − original| <= 1e-5 · max|original| (float32 CPU; measured ~2e-6).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from sahmr.models.convert import convert_state_dict
from sahmr.models.mesh_transformer import pad_contact_points
from tests.helpers.oracle import MODES, NET, REL_TOL, build_parity_model, oracle_batch, original_checkpoint


@pytest.fixture(scope="module")
def inputs():
    return np.load(NET / "inputs.npz")


@pytest.fixture(scope="module")
def conversion():
    return convert_state_dict(original_checkpoint(0), "seed-0 checkpoint")


@pytest.fixture(scope="module")
def model(conversion, inputs):
    torch.set_num_threads(max(1, min(2, torch.get_num_threads())))
    return build_parity_model(conversion.state_dict, inputs)


@pytest.fixture(scope="module")
def outputs(model, inputs):
    """Kit outputs per mode, with the original's recorded contact draws injected."""
    res = {}
    img, K, box, P, Pb = oracle_batch(inputs)
    base_cfg = model.rcnet.cfg
    for mode in MODES:
        mesh_ref = np.load(NET / f"mesh_{mode}.npz")
        idx = torch.stack([torch.as_tensor(mesh_ref[f"pcSeg_sample_idx_{b}"]) for b in range(2)])
        model.rcnet.cfg = replace(base_cfg, rounding=mode)  # same weights, the other coarse-coordinate rule
        with torch.no_grad():
            res[mode] = model(img, K, box, P, Pb, contact_indices=idx, return_intermediates=True)
    model.rcnet.cfg = base_cfg
    return res


def assert_close(name: str, kit, ref, mode: str, rel: float = REL_TOL) -> None:
    kit = np.asarray(kit.detach() if torch.is_tensor(kit) else kit, dtype=np.float64)
    ref = np.asarray(ref, dtype=np.float64)
    assert kit.shape == ref.shape, f"{name} [{mode}]: shape {kit.shape} vs original {ref.shape}"
    err = np.abs(kit - ref).max()
    scale = max(np.abs(ref).max(), 1e-12)
    assert err <= rel * scale, f"{name} [{mode}]: max |kit - original| = {err:.3g} > {rel:g} x {scale:.3g}"


def voxel_permutation(kit_coords: torch.Tensor, ref_coords_xyzb: np.ndarray) -> np.ndarray:
    """Row of the original (torchsparse hash order) for each kit voxel (batch-major key order)."""
    ref = {(int(c[3]), int(c[0]), int(c[1]), int(c[2])): i for i, c in enumerate(ref_coords_xyzb)}
    kit = [tuple(int(v) for v in c) for c in kit_coords]
    assert set(kit) == set(ref), "voxel keys differ from the original's"
    return np.array([ref[c] for c in kit])


# ------------------------------------------------------------------------------------------------ tests


def test_conversion_accounts_for_every_tensor(conversion):
    acc = conversion.accounting()
    assert conversion.kind == "sahmr" and acc["source_tensors"] == 4437
    assert acc["loaded"] + acc["dropped"] == 4437 and acc["dropped"] == 21
    assert all(".bert.embeddings." in k or ".bert.pooler." in k for k in conversion.dropped)
    assert acc["extra_entries"] == {"epoch": 30}


def test_round_trip_is_identity_on_every_tensor(conversion):
    src = original_checkpoint(0)
    back = conversion.to_original()
    assert list(back["network"]) == list(src["network"]) and back["epoch"] == 30
    for k, t in src["network"].items():
        assert back["network"][k].dtype == t.dtype and torch.equal(back["network"][k], t), k


@pytest.mark.parametrize("mode", MODES)
def test_root_net_matches_original(outputs, mode):
    ref = np.load(NET / f"rcnet_{mode}.npz")
    rc = outputs[mode].rcnet
    assert_close("pelvis heatmap", rc.pelvis_hm, ref["pred_bi4s_pelvis_hm"], mode)
    assert_close("depth map", rc.depth_map, ref["pred_bi4s_rdepth_hm"], mode)
    assert_close("contact heatmaps", rc.contact_hm, ref["pred_bi4s_seg_hm"], mode)
    if "fmap_img" in ref.files:
        assert_close("image feature map", rc.feat_map, ref["fmap_img"], mode)
    assert rc.pelvis_hm_uv.tolist() == ref["pred_bi4s_pelvis_2d"].tolist(), f"heatmap argmax [{mode}]"
    assert_close("coarse pelvis z", rc.pelvis_z_coarse, ref["pred_c_pelvis_z"], mode)
    assert_close("coarse pelvis", rc.pelvis_coarse_cam, ref["pred_c_pelvis"][:, 0], mode)


@pytest.mark.parametrize("mode", MODES)
def test_scene_branch_matches_original(outputs, mode):
    ref = np.load(NET / f"rcnet_{mode}.npz")
    rc = outputs[mode].rcnet
    for b in range(2):
        near = rc.near_points_cam[rc.near_points_batch == b].numpy()
        assert np.array_equal(near, ref[f"c_pcFst_nearby_{b}"]), f"nearby points of sample {b} [{mode}]"
    perm = voxel_permutation(rc.voxel_coords, ref["vox_coords"])
    centres = np.concatenate([ref["c_voxFst_nearby_0"], ref["c_voxFst_nearby_1"]])
    assert np.array_equal(rc.voxel_centres_cam.numpy(), centres[perm]), f"voxel centres [{mode}]"
    assert_close("SPVCNN input", rc.intermediates["spvcnn_in"], ref["contact_net_in"][perm], mode)
    assert_close("SPVCNN output", rc.intermediates["spvcnn_out"], ref["contact_net_out"][perm], mode)
    seg = np.concatenate([ref["pred_vox_segid_0"], ref["pred_vox_segid_1"]])[perm]
    assert np.array_equal(rc.voxel_seg_label.numpy(), seg), f"voxel segmentation labels [{mode}]"
    assert_close("refined pelvis", rc.pelvis_refined_cam, ref["pred_c_pelvis_refined"][:, 0], mode)
    for b in range(2):
        m = rc.contact_points_batch == b
        assert np.array_equal(rc.contact_points_cam[m].numpy(), ref[f"pred_c_pcSeg_all_{b}"]), f"contact points {b} [{mode}]"
        assert np.array_equal(rc.contact_points_part[m].numpy(), ref[f"pred_pcSeg_all_pids_{b}"]), f"contact pids {b} [{mode}]"


def test_spvcnn_stages_match_original(outputs):
    """Every SPVCNN stage output (trunc file only), matched by voxel key at each stride."""
    ref = np.load(NET / "rcnet_trunc.npz")
    inter = outputs["trunc"].rcnet.intermediates
    for name in ("stem", "stage1", "stage2", "stage3", "stage4", "up1", "up2", "up3", "up4"):
        stride = int(ref[f"spv_{name}_stride"][0])
        assert inter[f"spv_{name}_stride"] == stride, f"spv {name} stride"
        perm = voxel_permutation(inter[f"spv_{name}_coords"], ref[f"spv_{name}_C"])
        assert_close(f"SPVCNN {name}", inter[f"spv_{name}_feats"], ref[f"spv_{name}_F"][perm], "trunc")


@pytest.mark.parametrize("mode", MODES)
def test_mesh_transformer_matches_original(outputs, mode):
    ref = np.load(NET / f"mesh_{mode}.npz")
    out = outputs[mode]
    assert np.array_equal(out.contact_points_part.numpy(), ref["pcSeg_pids"]), f"contact slot pids [{mode}]"
    assert np.array_equal(out.contact_points_mask.numpy(), ref["pcSeg_mask"]), f"contact slot mask [{mode}]"
    assert_close("contact points (camera)", out.contact_points_cam, ref["pred_c_pcSeg"], mode)
    assert_close("origin pelvis", out.pelvis_cam, ref["pelvis_used"][:, 0], mode)
    assert_close("contact points (crm, transformer input)", out.contact_points_crm, ref["pred_crm_pcSeg"], mode)
    inter = out.mesh_intermediates
    assert_close("HRNet-W64-C feature map", inter["image_fmap"], ref["img_fmap"], mode)
    for e in range(3):
        if f"cpose_img_feat_{e}" in ref.files:
            assert_close(f"encoder {e} body tokens", inter[f"encoder_body_{e}"], ref[f"cpose_img_feat_{e}"], mode)
            assert_close(f"encoder {e} contact tokens", inter[f"encoder_contact_{e}"], ref[f"cpose_cp_feat_{e}"], mode)
    assert_close("vertices (crm)", out.verts_crm, ref["pred_verts"], mode)
    assert_close("vertices (camera)", out.verts_cam, ref["pred_c_verts"], mode)


def test_mesh_transformer_alone_from_saved_inputs(model, inputs):
    """The mesh transformer fed only the original's saved inputs (image + transformer inputs) reproduces it."""
    ref = np.load(NET / "mesh_trunc.npz")
    img = torch.as_tensor(inputs["image_uint8"]).float() / 255.0
    with torch.no_grad():
        out = model.metro_enhanced(
            img, torch.as_tensor(ref["pred_crm_pcSeg"]), torch.as_tensor(ref["pcSeg_pids"]), torch.as_tensor(ref["pcSeg_mask"])
        )
    assert_close("vertices (crm) from saved inputs", out.verts_crm, ref["pred_verts"], "trunc")


def test_original_random_draw_is_reproduced(outputs):
    """contact_sampling "original" with a generator in the state the oracle's global RNG had (seed 1234)
    draws exactly the recorded `pcSeg_sample_idx` (sample 0 has > 500 points: `randint`; sample 1 pads)."""
    ref = np.load(NET / "mesh_trunc.npz")
    rc = outputs["trunc"].rcnet
    pts, pid, mask = pad_contact_points(
        rc.contact_points_cam,
        rc.contact_points_part,
        rc.contact_points_batch,
        2,
        500,
        torch.Generator().manual_seed(1234),
        sampling="with_replacement",
    )
    assert np.array_equal(pid.numpy(), ref["pcSeg_pids"]) and np.array_equal(mask.numpy(), ref["pcSeg_mask"])
    assert np.array_equal(pts.numpy(), ref["pred_c_pcSeg"])


def test_modes_differ_where_the_original_says(outputs):
    """A port in the wrong mode must fail these references: trunc and floor give different contact sets."""
    a, b = outputs["trunc"].rcnet, outputs["floor"].rcnet
    assert int(a.contact_points_cam.shape[0]) == 2965 + 156 and int(b.contact_points_cam.shape[0]) == 3072 + 158
    assert float((a.pelvis_refined_cam - b.pelvis_refined_cam).norm(dim=1).max()) > 0.01


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_converted_model_on_cuda_agrees_with_cpu(model, inputs, outputs):
    """The converted paper model on CUDA: the same camera-frame mesh as on CPU within 1e-4 of its range."""
    ref = np.load(NET / "mesh_trunc.npz")
    idx = torch.stack([torch.as_tensor(ref[f"pcSeg_sample_idx_{b}"]) for b in range(2)])
    cpu = outputs["trunc"].verts_cam
    dev = torch.device("cuda")
    model.to(dev)
    try:
        with torch.no_grad():
            out = model(*oracle_batch(inputs, dev), contact_indices=idx.to(dev))
        assert_close("CUDA vs CPU vertices (camera)", out.verts_cam.cpu(), cpu.numpy(), "trunc", rel=1e-4)
        assert_close("CUDA vs original vertices (camera)", out.verts_cam.cpu(), ref["pred_c_verts"], "trunc", rel=1e-4)
    finally:
        model.to("cpu")
