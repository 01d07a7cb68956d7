"""``sahmr evaluate``: every metric of a predictions file on a dataset split."""

from __future__ import annotations

import argparse

from sahmr.cliargs import positive_int
from sahmr.config import add_params_arguments


def _evaluate(args: argparse.Namespace) -> int:
    from sahmr.cliargs import check_out_file
    from sahmr.eval.evaluate import run_evaluation

    frames = args.frames_out
    if frames is None and args.out:
        frames = str(args.out).removesuffix(".json") + "_frames.csv"
    if args.out:
        check_out_file(args.out, "--out")
    if frames:
        check_out_file(frames, "--frames-out")
    run_evaluation(args.pred, args.data, args.split, args.out, frames, body_model=args.body_model, quiet=args.quiet)
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("evaluate", help="evaluate a predictions file (sahmr.eval.predictions format) on a dataset split")
    p.add_argument("--pred", required=True, help="predictions .npz (see sahmr/eval/predictions.py for the format)")
    p.add_argument("--data", required=True, help="dataset folder in the canonical format")
    p.add_argument("--split", default="test")
    p.add_argument("--out", default=None, help="summary JSON (a DVC metrics file), e.g. reports/metrics/<model>.json")
    p.add_argument("--frames-out", default=None, help="per-frame CSV (default: <out>_frames.csv next to --out)")
    p.add_argument("--body-model", default=None, help="body model for the evaluation joints (default: the dataset's)")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=_evaluate)


def _dump(args: argparse.Namespace) -> int:
    from sahmr.cliargs import check_out_file
    from sahmr.data.format import open_dataset
    from sahmr.eval.dump import dump_predictions
    from sahmr.train.tasks import load_trained

    check_out_file(args.out, "--out")
    ds = open_dataset(args.data)
    if args.split not in ds.splits:
        raise ValueError(f"--split {args.split!r}: {args.data} has no such split; it has {sorted(ds.splits)}")
    trained = load_trained(args.task, args.ckpt, args.params, args.set_overrides, source=str(args.params))
    print(f"wrote {dump_predictions(trained, args.data, args.split, args.out, batch_size=args.batch_size)}")
    return 0


def register_dump(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("dump", help="predictions of a trained sahmr/baseline checkpoint on a dataset split (for sahmr evaluate)")
    p.add_argument("task", choices=["sahmr", "baseline"], help="which model (its params section train_<task> builds it)")
    p.add_argument(
        "--ckpt",
        required=True,
        help="the training run's final.ckpt, or a converted release checkpoint (`sahmr convert`: pass its params.yaml as --params)",
    )
    p.add_argument("--data", required=True, help="dataset folder")
    p.add_argument("--split", default="test")
    p.add_argument("--out", required=True, help="predictions .npz to write")
    add_params_arguments(p, "train_<task>")
    p.add_argument("--batch-size", type=positive_int, default=16)
    p.set_defaults(func=_dump)
