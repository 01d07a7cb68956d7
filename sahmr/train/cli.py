"""``sahmr train <task> [key=value ...] --params params.yaml --data DIR --out DIR [-S key=value ...]``.

Parameters: the params file's section ``train_<task>`` (e.g. ``train_rcnet``) over the globals ``seed`` and
``preset``; then the command-line overrides ``key=value`` (right after the task name, or ``-S key=value``
anywhere; YAML values: ``epochs=2``,
``milestones=[1]``, ``dataset.max_scene_points=4096``; ``seed=``/``preset=`` set the globals). Keys that
are :class:`~sahmr.train.loop.TrainConfig` fields configure the loop; all other keys (plus ``seed`` and
``preset``) go to the task factory (:func:`task_params`). ``--data``/``--out`` override ``data``/``out``.

Resumes from ``<out>/checkpoints/last.ckpt`` when present (``--no-resume`` starts over). Lightning's ``ddp``
strategy re-executes this same command for the other ranks.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from sahmr.config import load_params

__all__ = ["register", "resolve_params", "task_params", "parse_overrides"]

GLOBAL_KEYS = ("seed", "preset")


def _builtin_tasks() -> None:
    """Register the kit's tasks (imports are deferred to here so ``sahmr --help`` stays fast)."""
    from sahmr.train.rcnet_task import RCNetTask
    from sahmr.train.registry import register_task

    # The factory gets the task's params section (+ seed, preset); RCNetConfig takes the model fields.
    register_task("rcnet", lambda p: RCNetTask({"name": p.get("preset", "cpu"), **p.get("model", {})}), overwrite=True)

    # Stage 2 (spec §5.5): frozen RCNet (rcnet_ckpt = runs/rcnet/final.ckpt) + the mesh transformer.
    from sahmr.train.sahmr_task import BaselineTask, SAHMRTask

    register_task("sahmr", SAHMRTask.from_params, overwrite=True)
    register_task("baseline", BaselineTask.from_params, overwrite=True)


def parse_overrides(items: list[str]) -> dict[str, Any]:
    """``["a=1", "b.c=[1, 2]"]`` -> ``{"a": 1, "b": {"c": [1, 2]}}`` (values parsed as YAML)."""
    import yaml

    out: dict[str, Any] = {}
    for item in items:
        if "=" not in item:
            raise ValueError(f"override {item!r}: expected key=value (e.g. epochs=2)")
        key, raw = item.split("=", 1)
        key = key.strip()
        if not key or any(not part for part in key.split(".")):
            raise ValueError(f"override {item!r}: empty key")
        try:
            value = yaml.safe_load(raw) if raw.strip() else None
        except yaml.YAMLError as e:
            raise ValueError(f"override {item!r}: value is not valid YAML ({e})") from None
        node = out
        *parents, leaf = key.split(".")
        for p in parents:
            node = node.setdefault(p, {})
            if not isinstance(node, dict):
                raise ValueError(f"override {item!r}: '{p}' is already set to a scalar")
        node[leaf] = value
    return out


def _merge(base: dict[str, Any], upd: dict[str, Any]) -> dict[str, Any]:
    res = dict(base)
    for k, v in upd.items():
        res[k] = _merge(res[k], v) if isinstance(v, dict) and isinstance(res.get(k), dict) else v
    return res


def resolve_params(params: dict[str, Any], task: str, overrides: dict[str, Any] | None = None, *, source: str = "params") -> dict[str, Any]:
    """The merged parameters of `task`: globals ``seed``/``preset`` <- ``train_<task>`` <- overrides."""
    section = params.get(f"train_{task}", {})
    if section is None:
        section = {}
    if not isinstance(section, dict):
        raise ValueError(f"{source}: 'train_{task}' must be a mapping, got {type(section).__name__}")
    merged = {k: params[k] for k in GLOBAL_KEYS if k in params}
    merged = _merge(merged, section)
    return _merge(merged, overrides or {})


def task_params(merged: dict[str, Any]) -> dict[str, Any]:
    """What the task factory receives: every key that is not a TrainConfig field, plus seed/preset."""
    from sahmr.train.loop import TrainConfig

    train_keys = set(TrainConfig.fields())
    out = {k: v for k, v in merged.items() if k not in train_keys}
    for k in GLOBAL_KEYS:
        if k in merged:
            out[k] = merged[k]
    return out


def _train(args: argparse.Namespace) -> int:
    from sahmr.train.loop import TrainConfig, train
    from sahmr.train.registry import get_task

    _builtin_tasks()
    params = load_params(args.params) if args.params else {}
    merged = resolve_params(params, args.task, parse_overrides([*args.overrides, *args.set_overrides]), source=str(args.params))
    if args.data is not None:
        merged["data"] = args.data
    if args.out is not None:
        merged["out"] = args.out
    for k in ("data", "out"):
        if not merged.get(k):
            raise ValueError(f"no {k} folder: pass --{k} DIR (or set '{k}' under 'train_{args.task}' in {args.params})")
    if args.no_resume:
        merged["resume"] = False
    task = get_task(args.task, task_params(merged))  # unknown task -> ValueError listing the known ones
    cfg = TrainConfig.from_dict({k: v for k, v in merged.items() if k in set(TrainConfig.fields())})
    res = train(task, cfg)
    if res["world_size"] == 1 or _is_rank0():
        print(json.dumps({"metrics": res["metrics"], "epochs": res["epochs"], "global_step": res["global_step"],
                          "resumed_from": res["resumed_from"], "final_ckpt": res["final_ckpt"]}, indent=2))  # fmt: skip
    return 0


def _is_rank0() -> bool:
    import torch.distributed as dist

    return not dist.is_initialized() or dist.get_rank() == 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train a task (e.g. rcnet) with the kit's Lightning loop; resumes from <out>/checkpoints/last.ckpt",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    p.add_argument("task", help="task name (e.g. rcnet); its parameters are the 'train_<task>' section of --params")
    p.add_argument("--params", default="params.yaml", help="parameters file (default: params.yaml)")
    p.add_argument("--data", default=None, help="dataset folder in the canonical format (e.g. datasets/synth)")
    p.add_argument("--out", default=None, help="output folder: checkpoints/, dvclive/, final.ckpt, metrics.json")
    p.add_argument("--no-resume", action="store_true", help="start over even if <out>/checkpoints/last.ckpt exists")
    p.add_argument("overrides", nargs="*", default=[], help="key=value overrides of the train_<task> section (YAML values); "
                   "put them right after the task name, or use -S anywhere")  # fmt: skip
    p.add_argument("-S", "--set", dest="set_overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="an override (repeatable), as the positional ones")  # fmt: skip
    p.set_defaults(func=_train)
