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

When the dataset has `global_orient`, also which way the body faces (the body model's +z, SMPL's forward):
  facing_to_camera_corr   correlation, over frames, of the GT and predicted angle between the facing direction
                          and the direction to the camera (1: the network tracks it; ~0: it ignores it)
  front_back_agreement    share of clearly front- or back-facing frames (GT angle < 60 or > 120 deg) where the
                          prediction faces the same side of the camera (0.5 is chance)
The predicted facing is the GT facing carried by the inverse of the best rotation above (articulation aside).
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


def orientation_stats(pred_cam: np.ndarray, gt_cam: np.ndarray, facing_gt: np.ndarray | None = None) -> dict:
    """Numbers of the module docstring for (N, V, 3) predicted and GT meshes in the camera frame (metres); with
    `facing_gt` (N, 3), the GT forward directions in the camera frame, the facing numbers too."""
    g = gt_cam - gt_cam.mean(1, keepdims=True)
    q = pred_cam - pred_cam.mean(1, keepdims=True)
    R = best_rotation(q, g)
    ang = np.degrees(np.arccos(np.clip((np.trace(R, axis1=1, axis2=2) - 1) / 2, -1, 1)))
    out = {
        "frames": int(len(g)),
        "mpve_centroid_mm": float(np.linalg.norm(g - q, axis=-1).mean() * 1000),
        "mpve_rotated_mm": float(np.linalg.norm(g - np.einsum("nij,nvj->nvi", R, q), axis=-1).mean() * 1000),
        "rotation_deg_median": float(np.median(ang)),
        "rotation_deg_mean": float(ang.mean()),
        "frac_over_30": float((ang > 30).mean()),
        "frac_over_90": float((ang > 90).mean()),
    }
    if facing_gt is not None:
        out |= facing_stats(R, facing_gt, gt_cam.mean(1))
    return out


def facing_stats(R: np.ndarray, facing_gt: np.ndarray, centre_gt: np.ndarray) -> dict:
    """Facing numbers of the module docstring. R (N, 3, 3): best rotations (gt ≈ R pred); facing_gt (N, 3): the GT
    body's forward direction and centre_gt (N, 3) its centre, both in the camera frame."""
    facing_pred = np.einsum("nji,nj->ni", R, facing_gt)  # Rᵀ f
    to_cam = -centre_gt / np.linalg.norm(centre_gt, axis=1, keepdims=True)

    def angle(f: np.ndarray) -> np.ndarray:
        f = f / np.linalg.norm(f, axis=1, keepdims=True)
        return np.degrees(np.arccos(np.clip(np.einsum("ni,ni->n", f, to_cam), -1, 1)))

    a_gt, a_pred = angle(facing_gt), angle(facing_pred)
    clear = (a_gt < 60) | (a_gt > 120)
    return {
        "facing_to_camera_corr": float(np.corrcoef(a_gt, a_pred)[0, 1]) if len(a_gt) > 1 else float("nan"),
        "front_back_frames": int(clear.sum()),
        "front_back_agreement": float(((a_gt[clear] < 90) == (a_pred[clear] < 90)).mean()) if clear.any() else float("nan"),
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
        facing = None
        if "global_orient" in arr:
            from scipy.spatial.transform import Rotation

            T = np.asarray(arr["T_world_to_cam"], np.float64)[sel]
            body_to_world = Rotation.from_rotvec(np.asarray(arr["global_orient"], np.float64)[sel]).as_matrix()
            facing = np.einsum("nij,njk,k->ni", T[:, :3, :3], body_to_world, np.array([0.0, 0.0, 1.0]))

        def stats(m: np.ndarray) -> dict:
            return orientation_stats(pred[m], gt[m], None if facing is None else facing[m])

        entry = {"all": stats(np.ones(len(sel), bool))}
        if "pose_class" in arr:
            cls = np.asarray(arr["pose_class"])[sel].astype(str)
            entry["by_pose_class"] = {c: stats(cls == c) for c in sorted(set(cls))}
        result["models"][name] = entry
        a = entry["all"]
        print(
            f"{name}: MPVE {a['mpve_centroid_mm']:.0f} mm centred, {a['mpve_rotated_mm']:.0f} after the best rotation "
            f"(median {a['rotation_deg_median']:.0f} deg; {100 * a['frac_over_90']:.0f}% over 90 deg)"
            + (f"; faces the camera's side right in {100 * a['front_back_agreement']:.0f}% (chance 50%)" if "front_back_agreement" in a else "")
        )
    atomic_write_bytes(Path(args.out), (json.dumps(result, indent=1) + "\n").encode())
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
