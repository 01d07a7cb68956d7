"""Parameters: ``params.yaml`` sections -> typed dataclasses, one loader for every command.

    cfg = load_section("params.yaml", "synth", SynthParams, overrides=["seed=1", "scenes.train=4"])
    rc = with_preset(RCNetConfig, base, {"voxel_size": 0.05})    # a model preset + its overrides

Every section has one schema dataclass, beside the code it configures (``body_open`` ->
`sahmr.body.open_model.OpenModelParams`, ``synth`` -> `sahmr.data.synth.generate.SynthParams`,
``train_<task>`` -> `sahmr.train.tasks.train_schema(task)`). Loading goes through OmegaConf structured
configs: the schema's defaults <- the YAML section <- the ``-S key=value`` overrides (dotted keys, YAML
values: ``epochs=2``, ``milestones=[1]``, ``dataset.bbx_zoom=0.4``). An unknown key or a value of the wrong
type raises `ParamsError` (a ValueError) naming the file, the section and the key, so a misspelt parameter
can never be silently ignored. Within a section, mappings merge key by key; a model's preset fields are
replaced by what the section's ``model:`` mapping gives (`with_preset`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import yaml

__all__ = ["ParamsError", "load_params", "parse_overrides", "load_section", "from_mapping", "with_preset", "section_of", "add_params_arguments"]

T = TypeVar("T")


class ParamsError(ValueError):
    """A parameter that does not fit its schema (unknown key, wrong type, bad override syntax)."""


def load_params(path: str | Path = "params.yaml") -> dict[str, Any]:
    """The parsed params file; a clear error if it is missing or not a mapping."""
    path = Path(path)
    if path.is_dir():
        raise ParamsError(f"{path}: is a folder; --params expects a YAML file such as params.yaml")
    if not path.is_file():
        raise FileNotFoundError(f"parameters file not found: {path}")
    try:
        text = path.read_text()
        data = yaml.safe_load(text)
    except UnicodeDecodeError:
        raise ParamsError(f"{path}: not a text file; --params expects YAML such as params.yaml") from None
    except yaml.YAMLError as e:
        raise ParamsError(f"{path}: not valid YAML ({' '.join(str(e).split())})") from None
    if data is None:  # an empty file: almost always a mistake (a truncated copy, the wrong path)
        raise ParamsError(f"{path}: is empty; expected a mapping of sections (preset, train_rcnet, synth, ...)")
    if not isinstance(data, dict):
        raise ParamsError(f"{path}: expected a mapping at the top level, got {type(data).__name__}")
    return data


def parse_overrides(items: Iterable[str]) -> dict[str, Any]:
    """``["a=1", "b.c=[1, 2]"]`` -> ``{"a": 1, "b": {"c": [1, 2]}}`` (values parsed as YAML)."""
    from omegaconf import OmegaConf

    out: dict[str, Any] = {}
    for item in items:
        key, sep, _ = item.partition("=")
        if not sep:
            raise ParamsError(f"override {item!r}: expected key=value (e.g. -S epochs=2)")
        if not key.strip() or any(not part for part in key.strip().split(".")):
            raise ParamsError(f"override {item!r}: empty key")
        try:
            one = OmegaConf.to_container(OmegaConf.from_dotlist([item.strip()]))
        except Exception as e:  # omegaconf's grammar errors
            raise ParamsError(f"override {item!r}: not a valid key=value ({_first_line(e)})") from None
        out = _merge(out, one)
    return out


def section_of(params: Mapping[str, Any], section: str, source: str = "params") -> dict[str, Any]:
    """``params[section]`` as a dict ({} when absent or empty); an error if it is not a mapping."""
    value = params.get(section)
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ParamsError(f"{source}: '{section}' must be a mapping of parameters, got {type(value).__name__}")
    return dict(value)


def load_section(
    params: str | Path | Mapping[str, Any],
    section: str,
    schema: type[T],
    overrides: Iterable[str] | Mapping[str, Any] = (),
    *,
    source: str | None = None,
    extra: Mapping[str, Any] | None = None,
) -> T:
    """The `schema` dataclass filled from `params[section]`, then `extra`, then `overrides`.

    params: a params file path or an already-parsed mapping. overrides: ``key=value`` strings (or a
    nested mapping). extra: values merged under the section (e.g. the globals ``seed``/``preset``).
    Raises `ParamsError` naming `source`, the section and the key for unknown keys and wrong types."""
    if not isinstance(params, Mapping):
        source = source or str(params)
        params = load_params(params)
    source = source or "params"
    data = _merge(dict(extra or {}), section_of(params, section, source))
    if not isinstance(overrides, Mapping):
        overrides = parse_overrides(overrides)
    return _fill(schema, [(data, f"{source}: {section}"), (dict(overrides), f"override of {section}")])


def with_preset(schema: type[T], base: T, overrides: Mapping[str, Any], *, what: str | None = None) -> T:
    """`base` (a preset instance of `schema`) with `overrides` set, type-checked like a params section.

    A mapping given for a mapping field replaces the preset's (``loss_weights={"pelvis_hm": 1}`` keeps one
    loss), as keyword arguments read."""
    if not dataclasses.is_dataclass(base):
        raise TypeError(f"with_preset: base must be a {schema.__name__} instance, got {type(base).__name__}")
    known = {f.name for f in dataclasses.fields(base)}
    cleared = {k: {} for k, v in overrides.items() if k in known and isinstance(v, Mapping) and isinstance(getattr(base, k), dict)}
    if cleared:
        base = dataclasses.replace(base, **cleared)
    return _fill(schema, [(dict(overrides), what or schema.__name__)], base=base)


# ---------------------------------------------------------------------------------------------- internals
def _fill(schema: type[T], layers: list[tuple[dict[str, Any], str]], base: Any = None) -> T:
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    if not dataclasses.is_dataclass(schema):
        raise TypeError(f"{schema!r} is not a dataclass")
    conf = OmegaConf.structured(base if base is not None else schema)
    for data, where in layers:
        try:
            conf = OmegaConf.merge(conf, _plain(data))
        except OmegaConfBaseException as e:
            raise ParamsError(_explain(e, schema, where)) from None
    try:
        obj = OmegaConf.to_object(conf)
    except OmegaConfBaseException as e:
        raise ParamsError(_explain(e, schema, layers[-1][1])) from None
    return _retuple(obj)


def _plain(d: Any) -> Any:
    # OmegaConf merges a tuple as a list anyway; paths become strings (params are YAML scalars).
    if isinstance(d, Mapping):
        return {str(k): _plain(v) for k, v in d.items()}
    if isinstance(d, (list, tuple)):
        return [_plain(v) for v in d]
    if isinstance(d, Path):
        return str(d)
    return d


def _explain(e: Exception, schema: type, where: str) -> str:
    key = getattr(e, "full_key", None) or ""
    msg = _first_line(e)
    known = ", ".join(f.name for f in dataclasses.fields(schema))
    if type(e).__name__ == "ConfigKeyError" or "not in" in msg:
        return f"{where}.{key}: unknown parameter (a typo?); known: {known}"
    if type(e).__name__ == "MissingMandatoryValue":
        return f"{where}.{key}: required, but not set"
    return f"{where}.{key}: {msg}"


def _first_line(e: Exception) -> str:
    return str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__


def _merge(base: dict[str, Any], upd: Mapping[str, Any]) -> dict[str, Any]:
    res = dict(base)
    for k, v in upd.items():
        res[k] = _merge(res[k], v) if isinstance(v, Mapping) and isinstance(res.get(k), dict) else v
    return res


def _retuple(obj: T) -> T:
    """OmegaConf hands sequences back as lists: restore the tuples a schema declares (frozen sizes)."""
    for f in dataclasses.fields(obj):  # type: ignore[arg-type]
        value = getattr(obj, f.name)
        if isinstance(value, list) and str(f.type).replace("typing.", "").lower().startswith("tuple"):
            object.__setattr__(obj, f.name, tuple(value))
    return obj


def from_mapping(schema: type[T], data: Mapping[str, Any], *, where: str) -> T:
    """`schema` filled from one mapping (e.g. a task's params given in Python), checked as a params section."""
    return _fill(schema, [(dict(data), where)])


def add_params_arguments(parser: Any, section: str, default: str | None = "params.yaml") -> None:
    """``--params FILE`` and repeatable ``-S key=value``: the same two options on every command that reads params."""
    parser.add_argument(
        "--params", default=default, help=f"parameters file; its '{section}' section is used (default: {default or 'none: the built-in defaults'})"
    )
    parser.add_argument(
        "-S",
        "--set",
        dest="set_overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help=f"override a key of '{section}' (repeatable; dotted keys, YAML values: -S key=2 -S group.key=[1, 2])",
    )
