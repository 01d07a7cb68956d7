"""Name -> task factory registry used by ``sahmr train <task>``.

A factory takes the task's parameters (see :func:`sahmr.train.cli.task_params`: the ``train_<task>``
section of params.yaml merged over the globals ``seed`` and ``preset``) and returns a task object with
``name``, ``build_model()``, ``training_step(model, batch, generator)``, ``validation_metrics(model, batch)``
and optionally ``optimizer_groups(model)`` (see :class:`sahmr.train.loop.Task`).

    register_task("rcnet", lambda params: RCNetTask(**params))
    task = get_task("rcnet", {"seed": 0, "preset": "cpu", ...})
"""

from __future__ import annotations

from typing import Any, Callable

__all__ = ["register_task", "get_task", "available_tasks"]

_FACTORIES: dict[str, Callable[[dict[str, Any]], Any]] = {}


def register_task(name: str, factory: Callable[[dict[str, Any]], Any], *, overwrite: bool = False) -> None:
    """Register `factory(params) -> task` under `name` (lowercase letters, digits, '_' and '-')."""
    if not name or not all(c.isalnum() or c in "_-" for c in name):
        raise ValueError(f"register_task: invalid task name {name!r} (letters, digits, '_' or '-')")
    if not callable(factory):
        raise TypeError(f"register_task: factory for {name!r} is not callable")
    if name in _FACTORIES and not overwrite and _FACTORIES[name] is not factory:
        raise ValueError(f"register_task: a task named {name!r} is already registered (pass overwrite=True to replace it)")
    _FACTORIES[name] = factory


def available_tasks() -> list[str]:
    return sorted(_FACTORIES)


def get_task(name: str, params: dict[str, Any] | None = None) -> Any:
    """The task built by the factory registered under `name`; ValueError listing the known tasks if absent."""
    if name not in _FACTORIES:
        known = ", ".join(available_tasks()) or "none registered"
        raise ValueError(f"unknown training task {name!r}; known tasks: {known}")
    task = _FACTORIES[name](dict(params or {}))
    for attr in ("build_model", "training_step", "validation_metrics"):
        if not callable(getattr(task, attr, None)):
            raise TypeError(f"task {name!r}: the factory returned {type(task).__name__} without a callable {attr}()")
    return task
