"""``sahmr train <task> --params params.yaml --data DIR --out DIR [-S key=value ...]``.

Parameters: the params file's section ``train_<task>`` (e.g. ``train_rcnet``) over the globals ``seed`` and
``preset``, then the ``-S key=value`` overrides (dotted keys, YAML values: ``-S epochs=2``,
``-S milestones=[1]``, ``-S dataset.max_scene_points=4096``; ``-S seed=1`` / ``-S preset=paper`` too).
The section is checked against the loop's fields (`TrainConfig`) and the task's (`sahmr.train.tasks`): a key
that belongs to neither is an error. ``--data``/``--out`` override ``data``/``out``.

Resumes from ``<out>/checkpoints/last.ckpt`` when present (``--no-resume`` starts over). Lightning's ``ddp``
strategy re-executes this same command for the other ranks.
"""

from __future__ import annotations

import argparse
import json

from sahmr.config import add_params_arguments


def _train(args: argparse.Namespace) -> int:
    from sahmr.cliargs import check_out_dir
    from sahmr.train.loop import train
    from sahmr.train.tasks import load_task

    if args.out is not None:
        check_out_dir(args.out, "--out")
    cfg, task = load_task(
        args.task,
        args.params,
        [*args.overrides, *args.set_overrides],
        data=args.data,
        out=args.out,
        resume=False if args.no_resume else None,
        source=str(args.params),
    )
    res = train(task, cfg)
    if res["world_size"] == 1 or _is_rank0():
        print(
            json.dumps(
                {
                    "metrics": res["metrics"],
                    "epochs": res["epochs"],
                    "global_step": res["global_step"],
                    "resumed_from": res["resumed_from"],
                    "final_ckpt": res["final_ckpt"],
                },
                indent=2,
            )
        )
    return 0


def _is_rank0() -> bool:
    import torch.distributed as dist

    return not dist.is_initialized() or dist.get_rank() == 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train",
        help="train a task (e.g. rcnet) with the kit's Lightning loop; resumes from <out>/checkpoints/last.ckpt",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("task", help="task name (rcnet, sahmr, baseline); its parameters are the 'train_<task>' section of --params")
    add_params_arguments(p, "train_<task>")
    p.add_argument("--data", default=None, help="dataset folder in the canonical format (e.g. datasets/synth)")
    p.add_argument("--out", default=None, help="output folder: checkpoints/, dvclive/, final.ckpt, metrics.json")
    p.add_argument("--no-resume", action="store_true", help="start over even if <out>/checkpoints/last.ckpt exists")
    p.add_argument("overrides", nargs="*", default=[], help="key=value overrides right after the task name (as -S)")
    p.set_defaults(func=_train)
