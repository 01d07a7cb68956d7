"""``sahmr refine`` / ``sahmr fit`` / ``sahmr keypoints``: scene-constrained optimisation from the command line
(parameters: params.yaml sections ``refine``, ``fit``, ``keypoints``)."""

from __future__ import annotations

import argparse
import json

from sahmr.config import add_params_arguments, load_section

_DEVICE_HELP = "torch device (cpu, cuda, cuda:1, ...); default cpu"


def _check_device(device: str) -> str:
    import torch

    try:
        dev = torch.device(device)
    except RuntimeError as e:
        raise ValueError(f"--device {device!r}: not a torch device ({e}); use cpu or cuda[:N]") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"--device {device!r}: CUDA is not available on this machine; use --device cpu")
    return device


def _print_summary(stats: dict, out: str) -> None:
    print(f"wrote {out}: {stats['frames']} frames, {stats['seconds_per_frame']:.3f} s/frame on {stats['device']}")
    if "energy_before" in stats:
        rows = [f"  {k:13s} {stats['energy_before'][k]:10.4f} -> {stats['energy_after'][k]:10.4f}" for k in stats["energy_after"]]
        print("mean weighted energy terms, before -> after:\n" + "\n".join(rows))


def _optimise(args: argparse.Namespace, section: str, schema: type, run, source: str) -> int:
    """Shared by refine and fit: parameters and outputs checked before any work, then `run`, then a summary."""
    from sahmr.cliargs import check_out_file

    params = load_section(args.params or {}, section, schema, args.set_overrides)
    check_out_file(args.out, "--out")
    if args.stats:
        check_out_file(args.stats, "--stats")
    device = _check_device(args.device)
    stats = run(
        source, args.data, args.split, args.out, params, device=device, body_model=args.body_model, stats_out=args.stats, progress=not args.quiet
    )
    if not args.quiet:
        _print_summary(stats, args.out)
    return 0


def _refine(args: argparse.Namespace) -> int:
    from sahmr.refine.optimize import RefineParams
    from sahmr.refine.run import refine_predictions

    return _optimise(args, "refine", RefineParams, refine_predictions, args.pred)


def _fit(args: argparse.Namespace) -> int:
    from sahmr.refine.fitting import FitParams
    from sahmr.refine.run import fit_keypoints_file

    return _optimise(args, "fit", FitParams, fit_keypoints_file, args.keypoints)


def _keypoints(args: argparse.Namespace) -> int:
    import numpy as np

    from sahmr.cliargs import check_out_file
    from sahmr.data.format import open_dataset
    from sahmr.refine.keypoints import KeypointNoise, synthetic_keypoints, write_keypoints

    noise = load_section(args.params or {}, "keypoints", KeypointNoise, args.set_overrides)
    check_out_file(args.out, "--out")
    ds = open_dataset(args.data)
    if args.split not in ds.splits:
        raise ValueError(f"--split {args.split!r}: {args.data} has no such split; it has {sorted(ds.splits)}")
    a = ds.split(args.split)
    kp = synthetic_keypoints(
        np.asarray(a["joints14_world"]),
        np.asarray(a["T_world_to_cam"]),
        np.asarray(a["K"]),
        np.asarray(a["image_size"]),
        np.asarray(a["frame_id"]),
        noise,
    )
    write_keypoints(args.out, kp)
    print(f"wrote {args.out}: {len(kp.frame_ids)} frames, {float((kp.keypoints[..., 2] > 0).mean()):.1%} keypoints kept")
    print(json.dumps({"source": kp.source}))
    return 0


def _common(p: argparse.ArgumentParser, section: str) -> None:
    p.add_argument("--data", required=True, help="dataset folder (its cameras and scene SDFs; the body model it was made with)")
    p.add_argument("--split", default="test")
    p.add_argument("--out", required=True, help="predictions .npz to write (the kit's format: sahmr evaluate reads it)")
    p.add_argument("--stats", default=None, help="JSON with seconds per frame and the mean energy terms")
    p.add_argument("--device", default="cpu", help=_DEVICE_HELP)
    p.add_argument("--body-model", default=None, help="body model name or .npz (default: the one the dataset was made with)")
    add_params_arguments(p, section)
    p.add_argument("--quiet", action="store_true")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "refine",
        help="scene-constrained refinement of any method's predictions (less penetration, closed contact gaps)",
        description="Fit the body model to each predicted mesh, then optimise it against the scene SDF (penetration, contact), "
        "staying close to the prediction in 3D and in the image, under a pose prior and joint limits. Resumes after a kill.",
    )
    p.add_argument("--pred", required=True, help="predictions .npz (sahmr/eval/predictions.py format), e.g. from sahmr dump")
    _common(p, "refine")
    p.set_defaults(func=_refine)

    p = sub.add_parser(
        "fit",
        help="the PROX-style fitting baseline: a body fitted to 2D keypoints under scene constraints (no learned 3D network)",
        description="Fit the dataset's body model to 2D keypoints (sahmr/refine/keypoints.py format) with a pose prior, joint limits, "
        "penetration and part-prior contact terms. Resumes after a kill.",
    )
    p.add_argument("--keypoints", required=True, help="keypoints .npz (see sahmr/refine/keypoints.py; `sahmr keypoints` makes synthetic ones)")
    _common(p, "fit")
    p.set_defaults(func=_fit)

    p = sub.add_parser(
        "keypoints",
        help="synthetic 2D keypoints of a dataset split: projected GT joints + noise + dropout (a stand-in for a detector)",
    )
    p.add_argument("--data", required=True, help="dataset folder")
    p.add_argument("--split", default="test")
    p.add_argument("--out", required=True, help="keypoints .npz to write")
    add_params_arguments(p, "keypoints")
    p.set_defaults(func=_keypoints)
