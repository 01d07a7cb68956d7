"""Training tasks: the registry, each task's params section, and loading a trained model.

    cfg, task = load_task("sahmr", "params.yaml", ["epochs=2"], data="datasets/synth", out="runs/sahmr")
    trained = load_trained("sahmr", "runs/sahmr/final.ckpt", "params.yaml")     # .task, .model (eval), .seed

A task is registered with the schema of its parameters (a dataclass) and a factory taking an instance of
it. The params section ``train_<task>`` is one flat mapping, checked as the union of
:class:`~sahmr.train.loop.TrainConfig` (the loop's fields) and the task's schema, over the globals ``seed``
and ``preset``; a key that belongs to neither is an error naming it (`sahmr.config.ParamsError`).

Built-in tasks: ``rcnet`` (`RCNetTaskParams`), ``sahmr`` and ``baseline`` (`Stage2Params`). Their modules
(and torch) are imported only when a task is built, so ``sahmr --help`` stays fast.
"""

from __future__ import annotations

import dataclasses
import functools
import typing
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sahmr.config import load_params, load_section

__all__ = [
    "register_task",
    "available_tasks",
    "get_task",
    "task_schema",
    "train_schema",
    "load_train_params",
    "load_task",
    "load_trained",
    "Trained",
    "GLOBAL_KEYS",
]

GLOBAL_KEYS = ("seed", "preset")  # top-level params every task section inherits (when its schema has them)


@dataclass(frozen=True)
class _Entry:
    factory: Callable[[Any], Any]  # params dataclass -> task
    schema: Callable[[], type]  # lazily imported schema class


_TASKS: dict[str, _Entry] = {}


def register_task(name: str, factory: Callable[[Any], Any], schema: type | Callable[[], type], *, overwrite: bool = False) -> None:
    """Register `factory(params) -> task` under `name`; `params` is an instance of `schema` (a dataclass, or
    a zero-argument function returning it, to defer heavy imports)."""
    if not name or not all(c.isalnum() or c in "_-" for c in name):
        raise ValueError(f"register_task: invalid task name {name!r} (letters, digits, '_' or '-')")
    if not callable(factory):
        raise TypeError(f"register_task: factory for {name!r} is not callable")
    entry = _Entry(factory, schema if not dataclasses.is_dataclass(schema) else (lambda: schema))
    if name in _TASKS and not overwrite and _TASKS[name].factory is not factory:
        raise ValueError(f"register_task: a task named {name!r} is already registered (pass overwrite=True to replace it)")
    _TASKS[name] = entry


def available_tasks() -> list[str]:
    return sorted(_TASKS)


def _entry(name: str) -> _Entry:
    if name not in _TASKS:
        known = ", ".join(available_tasks()) or "none registered"
        raise ValueError(f"unknown training task {name!r}; known tasks: {known}")
    return _TASKS[name]


def task_schema(name: str) -> type:
    """The dataclass of task `name`'s own parameters (without the loop's)."""
    return _entry(name).schema()


def get_task(name: str, params: Any = None) -> Any:
    """The task built by `name`'s factory from `params` (its schema instance, or a mapping checked against it)."""
    from sahmr.config import from_mapping

    entry = _entry(name)
    schema = entry.schema()
    if not isinstance(params, schema):
        params = from_mapping(schema, dict(params or {}), where=f"task {name!r} params")
    task = entry.factory(params)
    for attr in ("build_model", "training_step", "validation_metrics"):
        if not callable(getattr(task, attr, None)):
            raise TypeError(f"task {name!r}: the factory returned {type(task).__name__} without a callable {attr}()")
    return task


def train_schema(name: str) -> type:
    """The schema of the ``train_<name>`` section: `TrainConfig`'s fields ∪ the task's (a dataclass)."""
    return _train_schema(name, task_schema(name))


@functools.cache
def _train_schema(name: str, task_cls: type) -> type:
    from sahmr.train.config import TrainConfig

    hints = typing.get_type_hints(TrainConfig)
    task_hints = typing.get_type_hints(task_cls)
    specs: list[tuple[str, Any, dataclasses.Field]] = []
    for f in dataclasses.fields(TrainConfig):
        if f.name in ("data", "out"):  # given by --data / --out; may also be set in the section
            specs.append((f.name, str | None, dataclasses.field(default=None)))
        elif f.name not in task_hints:
            specs.append((f.name, hints[f.name], _copy_field(f)))
    specs += [(f.name, task_hints[f.name], _copy_field(f)) for f in dataclasses.fields(task_cls)]
    return dataclasses.make_dataclass(f"Train_{name}_Params", specs)


def _copy_field(f: dataclasses.Field) -> dataclasses.Field:
    if f.default_factory is not dataclasses.MISSING:
        return dataclasses.field(default_factory=f.default_factory)
    return dataclasses.field(default=f.default)


def load_train_params(
    name: str, params: str | Path | Mapping[str, Any], overrides: Iterable[str] | Mapping[str, Any] = (), *, source: str | None = None
) -> tuple[dict[str, Any], Any]:
    """``(loop fields, task params)`` of ``train_<name>``: the globals ``seed``/``preset`` <- the section <-
    `overrides`. The loop fields are a dict of `TrainConfig` keywords; the task params a `task_schema(name)`."""
    from sahmr.train.config import TrainConfig

    if not isinstance(params, Mapping):
        source = source or str(params)
        params = load_params(params)
    schema, task_cls = train_schema(name), task_schema(name)
    names = {f.name for f in dataclasses.fields(schema)}
    extra = {k: params[k] for k in GLOBAL_KEYS if k in params and k in names}
    merged = load_section(params, f"train_{name}", schema, overrides, source=source, extra=extra)
    loop_keys = {f.name for f in dataclasses.fields(TrainConfig)}
    task_keys = [f.name for f in dataclasses.fields(task_cls)]
    loop = {k: getattr(merged, k) for k in loop_keys if hasattr(merged, k)}
    task_params = task_cls(**{k: getattr(merged, k) for k in task_keys})
    return loop, task_params


def load_task(
    name: str,
    params: str | Path | Mapping[str, Any],
    overrides: Iterable[str] | Mapping[str, Any] = (),
    *,
    data: str | Path | None = None,
    out: str | Path | None = None,
    resume: bool | None = None,
    source: str | None = None,
) -> tuple[Any, Any]:
    """``(TrainConfig, task)`` for ``sahmr train <name>``: the section checked, `data`/`out` given or from it."""
    from sahmr.train.config import TrainConfig

    loop, task_params = load_train_params(name, params, overrides, source=source)
    if data is not None:
        loop["data"] = str(data)
    if out is not None:
        loop["out"] = str(out)
    for k in ("data", "out"):
        if not loop.get(k):
            raise ValueError(f"no {k} folder: pass --{k} DIR (or set '{k}' under 'train_{name}' in {source or 'the params'})")
    if resume is not None:
        loop["resume"] = bool(resume)
    task = get_task(name, task_params)
    return TrainConfig.from_dict(loop), task


@dataclass
class Trained:
    """A trained stage-2 model ready for inference: its task (sizes, crop, body model), the network in eval
    mode, and the params' ``seed`` (the test-time contact draws of contact_sampling "original")."""

    task: Any
    model: Any
    seed: int


def load_trained(
    name: str,
    ckpt: str | Path,
    params: str | Path | Mapping[str, Any] = "params.yaml",
    overrides: Iterable[str] | Mapping[str, Any] = (),
    *,
    source: str | None = None,
) -> Trained:
    """The stage-2 model of task `name` (sahmr / baseline) in eval mode, with `ckpt` loaded
    strictly (the loop's ``final.ckpt``, RCNet's weights included, or a converted release checkpoint).

    params: the parameters the checkpoint was trained with (``train_<name>`` + globals, and `overrides`).
    Clear errors for a missing file or weights of another preset."""
    loop, task_params = load_train_params(name, params, overrides, source=source)
    task = get_task(name, task_params)
    ckpt = Path(ckpt)
    if not ckpt.is_file():
        raise FileNotFoundError(
            f"checkpoint not found: {ckpt}. Train it first (`sahmr train {name}`, or `make repro`, which writes runs/{name}/final.ckpt)"
        )
    from sahmr.models.convert import load_converted

    model = task.build_model(load_rcnet=False)
    load_converted(model, ckpt, what=f"{name} model of preset {task.rcnet_cfg.name!r}")
    return Trained(task, model.eval(), int(loop.get("seed") or 0))


# ---------------------------------------------------------------------------------------------- built-ins
def _rcnet_schema() -> type:
    from sahmr.train.rcnet_task import RCNetTaskParams

    return RCNetTaskParams


def _stage2_schema() -> type:
    from sahmr.train.sahmr_task import Stage2Params

    return Stage2Params


def _rcnet_factory(p: Any) -> Any:
    from sahmr.train.rcnet_task import RCNetTask

    return RCNetTask.from_params(p)


def _sahmr_factory(p: Any) -> Any:
    from sahmr.train.sahmr_task import SAHMRTask

    return SAHMRTask.from_params(p)


def _baseline_factory(p: Any) -> Any:
    from sahmr.train.sahmr_task import BaselineTask

    return BaselineTask.from_params(p)


register_task("rcnet", _rcnet_factory, _rcnet_schema)  # stage 1 (spec §5.5)
register_task("sahmr", _sahmr_factory, _stage2_schema)  # stage 2: frozen RCNet + the mesh transformer
register_task("baseline", _baseline_factory, _stage2_schema)  # stage 2 without the scene branch
