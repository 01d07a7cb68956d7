"""PenE by pose class, as predicted and after moving each mesh to the true pelvis (pose vs placement).

    .venv/bin/python tools/pene_breakdown.py [--data datasets/synth] [--split test]
        [--pred sahmr=predictions/sahmr_test.npz --pred baseline=predictions/baseline_test.npz]
        [--fractions 0.25,0.5,0.75] [--out reports/analysis/pene_breakdown.json]

For every model, per pose class and overall (mean over frames, metres summed over vertices as PenE):
  pene             the evaluation's PenE (the mesh where the model put it)
  pene_at_gt_pelvis  PenE of the same mesh translated so that its own H36M pelvis sits on the GT pelvis
                   (as MPJPE/MPVE align, no rotation): what the pose alone penetrates.
  pene_placement   {f: PenE with the fraction f of the pelvis error removed} for --fractions: how PenE
                   moves as placement improves (a better RCNet), with the pose unchanged.
A model whose `pene` is high but `pene_at_gt_pelvis` low loses on placement (RCNet), the other way
round on pose (the mesh transformer). Needs a dataset with `pose_class` (the synthetic benchmark).
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from pathlib import Path

import numpy as np


def pene_per_frame(verts_world: np.ndarray, scene_ids: np.ndarray, grids: dict) -> np.ndarray:
    """(F, V, 3) world-frame meshes -> (F,) PenE (metres, summed over vertices)."""
    from sahmr.geometry.sdf import query_sdf
    from sahmr.metrics import pene

    out = np.zeros(len(verts_world))
    for i, (v, sid) in enumerate(zip(verts_world, scene_ids)):
        out[i] = float(pene(np.asarray(query_sdf(grids[sid], np.array(v, dtype=np.float32)))[None])[0])
    return out


def breakdown(data: str, split: str, preds: dict[str, str], body_model: str | None = None, fractions: tuple[float, ...] = ()) -> dict:
    from sahmr.body.model import resolve_model_path
    from sahmr.body.model_file import load_body_model_file
    from sahmr.body.regressors import regress_h36m
    from sahmr.data.format import open_dataset
    from sahmr.eval.predictions import read_predictions
    from sahmr.geometry.camera import invert_rigid, transform

    ds = open_dataset(data)
    arr = ds.split(split)
    if "pose_class" not in arr.keys():
        raise ValueError(f"{data} split {split!r} has no pose_class field (the synthetic benchmark has one)")
    frame_ids = np.asarray(arr["frame_id"])
    cls = np.asarray(arr["pose_class"]).astype(str)
    sids = np.asarray(arr["scene_id"]).astype(str)
    T = np.asarray(arr["T_world_to_cam"], dtype=np.float64)
    T_cam_to_world = invert_rigid(T)
    reg = load_body_model_file(resolve_model_path(body_model or ds.meta["body_model"]["name"])).arrays["sahmr_eval_regressor"]
    _, gt_pelvis = regress_h36m(np.asarray(arr["verts_world"], dtype=np.float64), reg)
    grids = {s: ds.scene_sdf(s) for s in sorted(set(sids.tolist()))}
    result = {"data": str(data), "split": split, "n_frames": int(len(frame_ids)), "models": {}}
    for name, path in preds.items():
        p = read_predictions(path, expected_num_vertices=ds.num_verts)
        if not np.array_equal(np.asarray(p.frame_ids), frame_ids):
            raise ValueError(f"{path}: frame_ids differ from {data} split {split!r} (dump this split again)")
        vw = transform(T_cam_to_world, np.asarray(p.verts_cam, dtype=np.float64))  # (F, V, 3) world frame
        _, pel = regress_h36m(vw, reg)
        shift = (gt_pelvis - pel)[:, None]  # (F, 1, 3) the placement error, world frame
        rows = {"pene": pene_per_frame(vw, sids, grids), "pene_at_gt_pelvis": pene_per_frame(vw + shift, sids, grids)}
        sweep = {f"{f:g}": pene_per_frame(vw + f * shift, sids, grids) for f in fractions}

        def means(m):
            out = {k: float(v[m].mean()) for k, v in rows.items()}
            if sweep:
                out["pene_placement"] = {k: float(v[m].mean()) for k, v in sweep.items()}
            return out

        by = {c: means(cls == c) | {"n": int((cls == c).sum())} for c in sorted(set(cls.tolist()))}
        result["models"][name] = {"all": means(np.ones(len(cls), bool)), "by_pose_class": by}
    return result


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default="datasets/synth")
    ap.add_argument("--split", default="test")
    ap.add_argument(
        "--pred",
        action="append",
        default=[],
        metavar="NAME=PATH",
        help="a predictions file (repeatable); default: sahmr and baseline under predictions/",
    )
    ap.add_argument("--body-model", default=None, help="name or path (default: the dataset's body model)")
    ap.add_argument(
        "--fractions", default="0.25,0.5,0.75", help="shares of the pelvis error to remove for the placement sweep, comma-separated ('' for none)"
    )
    ap.add_argument("--out", default="reports/analysis/pene_breakdown.json")
    args = ap.parse_args()
    preds = dict(x.split("=", 1) for x in args.pred) or {m: f"predictions/{m}_{args.split}.npz" for m in ("sahmr", "baseline")}
    fractions = tuple(float(x) for x in args.fractions.split(",") if x.strip())
    res = breakdown(args.data, args.split, preds, args.body_model, fractions)
    for name, r in res["models"].items():
        sweep = "  ".join(f"{k}: {v:.2f}" for k, v in r["all"].get("pene_placement", {}).items())
        print(
            f"{name:10s} PenE {r['all']['pene']:.2f}  at GT pelvis {r['all']['pene_at_gt_pelvis']:.2f}"
            + (f"  (placement error removed {sweep})" if sweep else "")
        )
        for c, v in r["by_pose_class"].items():
            print(f"  {c:8s} n={v['n']:3d}  {v['pene']:7.2f}  {v['pene_at_gt_pelvis']:7.2f}")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=out.parent, suffix=".tmp")
    with os.fdopen(fd, "w") as f:
        json.dump(res, f, indent=1)
    os.replace(tmp, out)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
