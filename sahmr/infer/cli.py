"""``sahmr predict``: one image + a scene point cloud + a camera -> the mesh in the scene (your own data).

Inputs (see sahmr/infer/inputs.py for the exact formats):
  --image   the RGB photo (PNG/JPEG)
  --scene   the scanned scene, world frame, metres: .npy (N,3) | .npz ('points_world') | .ply/.obj (vertices)
  --camera  JSON {"K": 3x3 px, "T_world_to_cam": 4x4 (OpenCV camera), "image_size": [W, H] (optional)}
  --box     the person's box x0,y0,x1,y1 in image pixels (from any person detector)

Outputs in --out: mesh_world.{ply,obj}, mesh_cam.{ply,obj}, contact_points_world.ply (coloured by
contact part), prediction.npz (all arrays) and prediction.json (pelvis, contact counts, fallback).

The model is a stage-2 checkpoint (runs/sahmr/final.ckpt after `make repro`) with the parameters it was
trained with (params.yaml: `preset` and `train_<model>`).
"""

from __future__ import annotations

import argparse
import json
import sys

from sahmr.config import add_params_arguments


def _parse_box(text: str) -> list[float]:
    try:
        vals = [float(v) for v in text.replace(" ", "").split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"--box {text!r}: expected four numbers x0,y0,x1,y1") from None
    if len(vals) != 4:
        raise argparse.ArgumentTypeError(f"--box {text!r}: expected four numbers x0,y0,x1,y1, got {len(vals)}")
    return vals


def _predict(args: argparse.Namespace) -> int:
    from sahmr.cliargs import check_out_dir
    from sahmr.infer import load_inputs, load_predictor, write_prediction
    from sahmr.infer.predict import check_formats

    formats = check_formats(tuple(f.strip() for f in args.formats.split(",")))
    check_out_dir(args.out)
    inputs = load_inputs(args.image, args.scene, args.camera, args.box)
    predictor = load_predictor(args.model, args.ckpt or f"runs/{args.model}/final.ckpt", args.params, args.body_model, args.set_overrides)
    pred = predictor(inputs)
    paths = write_prediction(pred, args.out, formats)
    if pred.fallback:
        print(
            f"sahmr predict: warning: no scene point within reach of the estimated pelvis "
            f"({pred.n_frustum_points} points in the box frustum): the mesh is placed by the image alone and "
            "there are no contact points. Check that the scan covers the person and that K / T_world_to_cam "
            "are right.",
            file=sys.stderr,
        )
    print(
        json.dumps(
            {
                "pelvis_world": [round(float(v), 4) for v in pred.pelvis_world],
                "contact_points": int(len(pred.contact_parts)),
                "fallback": pred.fallback,
                "written": [str(p) for p in paths],
            },
            indent=2,
        )
    )
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "predict",
        help="one image + scene point cloud + camera -> mesh in world/camera frames and contacts",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--image", required=True, help="RGB image (PNG/JPEG)")
    p.add_argument("--scene", required=True, help="scene point cloud, world frame (.npy, .npz, .ply, .obj)")
    p.add_argument("--camera", required=True, help="camera JSON with K and T_world_to_cam")
    p.add_argument(
        "--box", required=True, type=_parse_box, help="person box x0,y0,x1,y1 in image pixels (write --box=-5,10,200,400 when x0 is negative)"
    )
    p.add_argument("--model", choices=["sahmr", "baseline"], default="sahmr", help="which trained model (default sahmr)")
    p.add_argument("--ckpt", default=None, help="stage-2 checkpoint (default runs/<model>/final.ckpt)")
    add_params_arguments(p, "train_<model>")  # the parameters the checkpoint was trained with
    p.add_argument("--body-model", default=None, help="body model name or .npz (default: the params' body_model)")
    p.add_argument("--formats", default="ply,obj", help="mesh formats, comma-separated: ply, obj (default both)")
    p.add_argument("--out", required=True, help="output folder")
    p.set_defaults(func=_predict)
