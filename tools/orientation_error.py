"""How much of a model's pose error is the body's global orientation: the rotation that best aligns each
predicted mesh with the GT mesh (about their centroids, no scale), its angle, and the error left after it.

    .venv/bin/python tools/orientation_error.py [--data datasets/synth] [--split test]
        [--pred sahmr=predictions/sahmr_test.npz --pred baseline=predictions/baseline_test.npz]
        [--out reports/analysis/orientation.json]

Per model, overall and per pose class (when the dataset has `pose_class`):
  mpve_centroid_mm     mean vertex error with both meshes centred on their vertex centroid (camera frame)
  mpve_rotated_mm      the same after the best rotation of the prediction (Kabsch): what articulation and
                       shape alone cost
  rotation_deg_median / _mean / frac_over_30 / frac_over_90: the angle of that rotation
A large gap between the first two with median angles of tens of degrees means the network has not learned
which way the body faces / lies in the camera frame (a mean-orientation predictor), not that its joints
are badly bent.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np


def best_rotation(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """(N, 3, 3) rotations R minimising Σ_v ‖gt_v − R pred_v‖² for centred (N, V, 3) point sets (Kabsch)."""
    H = np.einsum("nvi,nvj->nij", pred, gt)
    U, _, Vt = np.linalg.svd(H)
    d = np.sign(np.linalg.det(np.einsum("nij,njk->nik", U, Vt)))
    D = np.repeat(np.eye(3)[None], len(d), 0)
    D[:, 2, 2] = d
    return np.einsum("nji,njk,nlk->nil", Vt, D, U)  # V D Uᵀ


def orientation_stats(pred_cam: np.ndarray, gt_cam: np.ndarray) -> dict:
    """Numbers of the module docstring for (N, V, 3) predicted and GT meshes in the camera frame (metres)."""
    g = gt_cam - gt_cam.mean(1, keepdims=True)
    q = pred_cam - pred_cam.mean(1, keepdims=True)
    R = best_rotation(q, g)
    ang = np.degrees(np.arccos(np.clip((np.trace(R, axis1=1, axis2=2) - 1) / 2, -1, 1)))
    return {
        "frames": int(len(g)),
        "mpve_centroid_mm": float(np.linalg.norm(g - q, axis=-1).mean() * 1000),
        "mpve_rotated_mm": float(np.linalg.norm(g - np.einsum("nij,nvj->nvi", R, q), axis=-1).mean() * 1000),
        "rotation_deg_median": float(np.median(ang)),
        "rotation_deg_mean": float(ang.mean()),
        "frac_over_30": float((ang > 30).mean()),
        "frac_over_90": float((ang > 90).mean()),
    }


def main(argv: list[str] | None = None) -> int:
    from sahmr.atomic import atomic_write_bytes
    from sahmr.data.format import open_dataset
    from sahmr.eval.predictions import read_predictions
    from sahmr.geometry.camera import transform

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default="datasets/synth")
    ap.add_argument("--split", default="test")
    ap.add_argument("--pred", action="append", default=None, metavar="NAME=FILE")
    ap.add_argument("--out", default="reports/analysis/orientation.json")
    args = ap.parse_args(argv)
    preds = dict(p.split("=", 1) for p in (args.pred or ["sahmr=predictions/sahmr_test.npz", "baseline=predictions/baseline_test.npz"]))
    arr = open_dataset(args.data).split(args.split)
    index = {f: i for i, f in enumerate(np.asarray(arr["frame_id"]))}
    result: dict = {"data": args.data, "split": args.split, "models": {}}
    for name, file in preds.items():
        p = read_predictions(file)
        missing = [f for f in p.frame_ids if f not in index]
        if missing:
            raise SystemExit(f"{file}: frame {missing[0]!r} is not in {args.data} split {args.split}")
        sel = np.array([index[f] for f in p.frame_ids])
        gt = transform(np.asarray(arr["T_world_to_cam"], np.float64)[sel], np.asarray(arr["verts_world"], np.float64)[sel])
        pred = np.asarray(p.verts_cam, np.float64)
        entry = {"all": orientation_stats(pred, gt)}
        if "pose_class" in arr:
            cls = np.asarray(arr["pose_class"])[sel].astype(str)
            entry["by_pose_class"] = {c: orientation_stats(pred[cls == c], gt[cls == c]) for c in sorted(set(cls))}
        result["models"][name] = entry
        a = entry["all"]
        print(
            f"{name}: MPVE {a['mpve_centroid_mm']:.0f} mm centred, {a['mpve_rotated_mm']:.0f} after the best rotation "
            f"(median {a['rotation_deg_median']:.0f} deg; {100 * a['frac_over_90']:.0f}% over 90 deg)"
        )
    atomic_write_bytes(Path(args.out), (json.dumps(result, indent=1) + "\n").encode())
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
