"""Parity table: the kit's converted paper model against the ORIGINAL networks' outputs (oracle seed-0).

    python benchmarks/parity_table.py [--out reports/bench/parity.json]

For each recorded module boundary and each coarse-coordinate mode (trunc = the released weights' torch
1.12, floor), the max and mean |kit − original| and the max relative to max|original|; discrete outputs
as counts of differing items. The same comparisons are asserted by tests/parity (tolerance 1e-5 relative).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=str(ROOT / "reports" / "bench" / "parity.json"))
    args = ap.parse_args(argv)

    import numpy as np
    import torch

    from sahmr.models.convert import convert_state_dict
    from tests.helpers.oracle import MODES, NET, build_parity_model, oracle_batch, original_checkpoint

    inputs = np.load(NET / "inputs.npz")
    model = build_parity_model(convert_state_dict(original_checkpoint(0)).state_dict, inputs)
    batch = oracle_batch(inputs)
    rows = []

    def cont(name, mode, kit, ref):
        kit = np.asarray(kit.detach() if torch.is_tensor(kit) else kit, np.float64)
        ref = np.asarray(ref, np.float64)
        d = np.abs(kit - ref)
        rows.append(
            {
                "output": name,
                "mode": mode,
                "max_abs": float(d.max()),
                "mean_abs": float(d.mean()),
                "max_rel": float(d.max() / max(np.abs(ref).max(), 1e-12)),
                "n": int(ref.size),
            }
        )

    def disc(name, mode, kit, ref):
        kit, ref = np.asarray(kit), np.asarray(ref)
        rows.append({"output": name, "mode": mode, "differing": int((kit != ref).sum()) if kit.shape == ref.shape else -1, "n": int(ref.size)})

    base = model.rcnet.cfg
    for mode in MODES:
        rref, mref = np.load(NET / f"rcnet_{mode}.npz"), np.load(NET / f"mesh_{mode}.npz")
        idx = torch.stack([torch.as_tensor(mref[f"pcSeg_sample_idx_{b}"]) for b in range(2)])
        model.rcnet.cfg = replace(base, rounding=mode)
        with torch.no_grad():
            o = model(*batch, contact_indices=idx, return_intermediates=True)
        rc = o.rcnet
        cont("root net: pelvis heatmap", mode, rc.pelvis_hm, rref["pred_bi4s_pelvis_hm"])
        cont("root net: depth map", mode, rc.depth_map, rref["pred_bi4s_rdepth_hm"])
        cont("root net: contact heatmaps", mode, rc.contact_hm, rref["pred_bi4s_seg_hm"])
        disc("heatmap argmax (u, v)", mode, rc.pelvis_hm_uv, rref["pred_bi4s_pelvis_2d"])
        cont("coarse pelvis", mode, rc.pelvis_coarse_cam, rref["pred_c_pelvis"][:, 0])
        ref_keys = {(int(c[3]), int(c[0]), int(c[1]), int(c[2])): i for i, c in enumerate(rref["vox_coords"])}
        kit_keys = [tuple(int(v) for v in c) for c in rc.voxel_coords]
        disc("voxel keys (set)", mode, sorted(kit_keys), sorted(ref_keys))
        perm = np.array([ref_keys[k] for k in kit_keys])
        cont("SPVCNN input (35)", mode, rc.intermediates["spvcnn_in"], rref["contact_net_in"][perm])
        cont("SPVCNN output (12)", mode, rc.intermediates["spvcnn_out"], rref["contact_net_out"][perm])
        disc("voxel segmentation labels", mode, rc.voxel_seg_label, np.concatenate([rref["pred_vox_segid_0"], rref["pred_vox_segid_1"]])[perm])
        cont("refined pelvis", mode, rc.pelvis_refined_cam, rref["pred_c_pelvis_refined"][:, 0])
        ref_pts = np.concatenate([rref["pred_c_pcSeg_all_0"], rref["pred_c_pcSeg_all_1"]])
        ref_pid = np.concatenate([rref["pred_pcSeg_all_pids_0"], rref["pred_pcSeg_all_pids_1"]])
        disc("contact points (xyz)", mode, rc.contact_points_cam, ref_pts)
        disc("contact point part ids", mode, rc.contact_points_part, ref_pid)
        if mode == "trunc":
            for name in ("stem", "stage1", "stage2", "stage3", "stage4", "up1", "up2", "up3", "up4"):
                rk = {(int(c[3]), int(c[0]), int(c[1]), int(c[2])): i for i, c in enumerate(rref[f"spv_{name}_C"])}
                p = np.array([rk[tuple(int(v) for v in c)] for c in rc.intermediates[f"spv_{name}_coords"]])
                cont(f"SPVCNN {name}", mode, rc.intermediates[f"spv_{name}_feats"], rref[f"spv_{name}_F"][p])
        cont("transformer input (contact points − pelvis)", mode, o.contact_points_crm, mref["pred_crm_pcSeg"])
        cont("HRNet-W64-C feature map", mode, o.mesh_intermediates["image_fmap"], mref["img_fmap"])
        for e in range(3):
            if f"cpose_img_feat_{e}" in mref.files:
                cont(f"encoder {e} body tokens", mode, o.mesh_intermediates[f"encoder_body_{e}"], mref[f"cpose_img_feat_{e}"])
                cont(f"encoder {e} contact tokens", mode, o.mesh_intermediates[f"encoder_contact_{e}"], mref[f"cpose_cp_feat_{e}"])
        cont("vertices (crm)", mode, o.verts_crm, mref["pred_verts"])
        cont("vertices (camera)", mode, o.verts_cam, mref["pred_c_verts"])
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp")
    tmp.write_text(json.dumps({"benchmark": "parity_vs_original_seed0", "torch": torch.__version__, "rows": rows}, indent=1) + "\n")
    os.replace(tmp, out)
    for r in rows:
        if "differing" in r:
            print(f"{r['mode']:5s} {r['output']:44s} differing {r['differing']} of {r['n']}")
        else:
            print(f"{r['mode']:5s} {r['output']:44s} max {r['max_abs']:.2e}  mean {r['mean_abs']:.2e}  rel {r['max_rel']:.2e}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
