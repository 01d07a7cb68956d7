"""dvc.yaml deps can never go stale: every repo source file a stage's command executes is a dep of the stage.

For each stage of dvc.yaml and of pipelines/*/dvc.yaml (foreach expanded), the
static import closure (tests/helpers/import_closure.py) of the files its command runs must be covered
by the stage's deps (a dep covers a file when it is the file or a folder above it). Otherwise editing
such a file would not rerun the stage and `dvc repro` would keep stale outputs.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from tests.helpers.import_closure import (
    CLI_FILE,
    closure,
    imports_of,
    module_file,
    package_dep,
    stage_entry_files,
    verb_modules,
)

ROOT = Path(__file__).resolve().parents[2]
DVC_FILES = ["dvc.yaml", "pipelines/rich/dvc.yaml", "pipelines/prox/dvc.yaml", "pipelines/convergence/dvc.yaml", "pipelines/long/dvc.yaml"]
SOURCE_DIRS = ("sahmr", "notebooks", "tools", "benchmarks")


# ------------------------------------------------------------------------------------------ dvc.yaml reading
def _path_of(entry) -> str:
    """A deps/outs entry is `path` or `{path: {options}}`."""
    return next(iter(entry)) if isinstance(entry, dict) else str(entry)


def _substitute(obj, mapping: dict[str, str]):
    if isinstance(obj, str):
        return re.sub(r"\$\{\s*([\w.]+)\s*\}", lambda m: str(mapping.get(m.group(1), m.group(0))), obj)
    if isinstance(obj, list):
        return [_substitute(x, mapping) for x in obj]
    if isinstance(obj, dict):
        return {_substitute(k, mapping): _substitute(v, mapping) for k, v in obj.items()}
    return obj


def _expand(name: str, stage: dict) -> list[tuple[str, dict]]:
    """dvc's foreach/do: `foreach: [a, b]` -> name@a, name@b with ${item} substituted (also dict foreach:
    ${key} / ${item})."""
    if "foreach" not in stage:
        return [(name, stage)]
    items = stage["foreach"]
    if isinstance(items, dict):
        pairs = [(str(k), {"key": k, "item": v}) for k, v in items.items()]
    else:
        pairs = [(str(v), {"item": v}) for v in items]
    out = []
    for key, mapping in pairs:
        flat = dict(mapping)
        if isinstance(mapping.get("item"), dict):
            flat.update({f"item.{k}": v for k, v in mapping["item"].items()})
        out.append((f"{name}@{key}", _substitute(stage["do"], flat)))
    return out


def _load(dvc_file: str) -> list[tuple[str, dict]]:
    doc = yaml.safe_load((ROOT / dvc_file).read_text())
    return [x for name, stage in doc["stages"].items() for x in _expand(name, stage)]


def _wdir(dvc_file: str, stage: dict) -> Path:
    return ((ROOT / dvc_file).parent / stage.get("wdir", ".")).resolve()


def _repo_rel(path: str, wdir: Path) -> str | None:
    """`path` (relative to the stage's wdir) as a repo-relative posix path, None when outside the repo."""
    try:
        return (wdir / path).resolve().relative_to(ROOT).as_posix()
    except ValueError:
        return None


def _stage_deps(dvc_file: str, stage: dict) -> list[str]:
    wdir = _wdir(dvc_file, stage)
    return [r for r in (_repo_rel(_path_of(d), wdir) for d in stage.get("deps", [])) if r is not None]


def _covered(file: str, deps: list[str]) -> bool:
    return any(file == d or file.startswith(d.rstrip("/") + "/") for d in deps)


def _minimal(deps: set[str]) -> list[str]:
    """Drop the deps already covered by another one."""
    return sorted(d for d in deps if not _covered(d, sorted(deps - {d})))


def stage_files(dvc_file: str, stage: dict) -> list[str]:
    """Repo-relative source files executed by the stage's cmd (static, over-approximate)."""
    cmd = stage["cmd"] if isinstance(stage["cmd"], str) else " && ".join(stage["cmd"])
    entries = stage_entry_files(cmd, ROOT, wdir=_wdir(dvc_file, stage))
    return sorted(p.relative_to(ROOT).as_posix() for p in closure(entries, ROOT))


def uncovered(dvc_file: str, stage: dict) -> list[str]:
    deps = _stage_deps(dvc_file, stage)
    return [f for f in stage_files(dvc_file, stage) if not _covered(f, deps)]


def coverage_message(dvc_file: str, name: str, stage: dict) -> str | None:
    missing = uncovered(dvc_file, stage)
    if not missing:
        return None
    files = stage_files(dvc_file, stage)
    add = _minimal({package_dep(ROOT / f, ROOT) for f in missing})
    full = _minimal({package_dep(ROOT / f, ROOT) for f in files})
    return (
        f"{dvc_file}: stage {name!r} executes {len(missing)} source file(s) none of its deps cover:\n"
        + "".join(f"    {f}   (suggested dep: {package_dep(ROOT / f, ROOT)})\n" for f in missing)
        + f"  add to deps: {add}\n"
        + f"  (package-level deps of the whole closure: {full})"
    )


STAGES = [(f, name, stage) for f in DVC_FILES for name, stage in _load(f)]


# ------------------------------------------------------------------------------------------------- tests
@pytest.mark.parametrize("dvc_file,name,stage", STAGES, ids=[f"{f}:{n}" for f, n, _ in STAGES])
def test_stage_deps_cover_executed_sources(dvc_file, name, stage):
    assert stage_entry_files(stage["cmd"], ROOT, wdir=_wdir(dvc_file, stage)), (
        f"{dvc_file}: stage {name!r}: no repo entry point found in cmd {stage['cmd']!r}"
    )
    msg = coverage_message(dvc_file, name, stage)
    assert msg is None, msg


def test_every_pipeline_file_is_checked():
    """A new pipelines/<name>/dvc.yaml is checked too: it must be listed in DVC_FILES."""
    found = {"dvc.yaml", *(str(p.relative_to(ROOT)) for p in ROOT.glob("pipelines/*/dvc.yaml"))}
    assert found == set(DVC_FILES)


def test_foreach_is_expanded():
    names = {n for f, n, _ in STAGES if f == "dvc.yaml"}
    assert {"dump@sahmr", "dump@baseline", "evaluate@sahmr", "evaluate@baseline"} <= names
    dump = dict((n, s) for f, n, s in STAGES if f == "dvc.yaml")["dump@baseline"]
    assert "runs/baseline/final.ckpt" in dump["deps"] and "${item}" not in dump["cmd"]


@pytest.mark.parametrize("dvc_file", DVC_FILES)
def test_source_deps_exist(dvc_file):
    stages = _load(dvc_file)
    outs = {_repo_rel(_path_of(o), _wdir(dvc_file, s)) for _, s in stages for o in s.get("outs", [])}
    missing = []
    for name, stage in stages:
        for dep in _stage_deps(dvc_file, stage):
            if dep in outs or "${" in dep or dep.split("/")[0] not in SOURCE_DIRS:
                continue
            if not (ROOT / dep).exists():
                missing.append(f"{name}: {dep}")
    assert not missing, f"{dvc_file}: deps that do not exist in the repo:\n  " + "\n  ".join(missing)


# ------------------------------------------------------------------------------- the checker itself can fail
def test_omitted_package_is_reported():
    stage = {"cmd": "sahmr evaluate --pred p.npz --data d --split test --out m.json --quiet", "deps": ["sahmr/eval"]}
    missing = uncovered("dvc.yaml", stage)
    assert CLI_FILE in missing and "sahmr/__init__.py" in missing
    assert "sahmr/eval/cli.py" not in missing  # covered by the folder dep
    assert any(f.startswith("sahmr/geometry/") for f in missing), missing  # evaluate computes metrics on geometry
    msg = coverage_message("dvc.yaml", "fake", stage)
    assert msg and "sahmr/geometry" in msg and "suggested dep" in msg
    stage["deps"] = _minimal({package_dep(ROOT / f, ROOT) for f in stage_files("dvc.yaml", stage)})
    assert uncovered("dvc.yaml", stage) == []  # the suggestion is sufficient


def test_train_closure_reaches_sparse_and_dataset():
    files = stage_files("dvc.yaml", {"cmd": "sahmr train rcnet --params params.yaml --data d --out o"})
    assert "sahmr/train/cli.py" in files and CLI_FILE in files
    assert any(f.startswith("sahmr/sparse/") for f in files), files
    assert "sahmr/data/dataset.py" in files
    assert "sahmr/viz/cli.py" not in files  # build_parser's imports of every verb are not followed


def test_report_includes_notebook_and_its_imports():
    files = stage_files("dvc.yaml", {"cmd": "sahmr report failures --out r -p data_dir=d -p split=test"})
    assert "notebooks/failures.py" in files and "sahmr/viz/cli.py" in files
    assert "sahmr/viz/frames.py" in files and "sahmr/eval/predictions.py" in files
    assert "notebooks/report.py" not in files


def test_scripts_and_chained_commands():
    entries = stage_entry_files("mkdir -p x && python tools/check_real_data.py --quiet\n && sahmr dump sahmr --ckpt c", ROOT)
    rel = [p.relative_to(ROOT).as_posix() for p in entries]
    assert rel == ["tools/check_real_data.py", CLI_FILE, "sahmr/eval/cli.py"]
    with pytest.raises(ValueError, match="not a verb"):
        stage_entry_files("sahmr no-such-verb", ROOT)


def test_imports_resolution():
    assert module_file("sahmr.sparse", ROOT) == ROOT / "sahmr/sparse/__init__.py"
    assert module_file("sahmr.sparse.nn", ROOT) == ROOT / "sahmr/sparse/nn.py"
    assert module_file("sahmr.sparse.nn.x", ROOT) is None and module_file("numpy", ROOT) is None
    sparse = imports_of(ROOT / "sahmr/sparse/nn.py", ROOT)  # `from .conv import ...` + lazy `from .spconv_backend`
    assert {"sahmr", "sahmr.sparse", "sahmr.sparse.conv", "sahmr.sparse.spconv_backend"} <= sparse
    cli = imports_of(ROOT / CLI_FILE, ROOT)  # main() only: build_parser's verb imports are skipped
    assert "sahmr.errors" in cli and "sahmr.train.cli" not in cli


def test_verb_table_is_complete():
    """Every top-level `sub.add_parser("<verb>")` in the package (a function's first parameter receiving it)
    is in the AST-derived table, under the module that holds it: a verb registered some other way fails here."""
    import ast

    table = verb_modules(ROOT)
    assert table["train"] == "sahmr.train.cli" and table["dump"] == table["evaluate"] == "sahmr.eval.cli"
    assert table["synth"] == "sahmr.data.synth.cli" and table["import"] == "sahmr.data.importers.cli"
    assert table["report"] == "sahmr.viz.cli" and table["convert"] == "sahmr.models.cli"
    found = {}
    for f in sorted((ROOT / "sahmr").rglob("*.py")):
        tree = ast.parse(f.read_text(encoding="utf-8"))
        for fn in (n for n in tree.body if isinstance(n, ast.FunctionDef)):
            params = [a.arg for a in fn.args.posonlyargs + fn.args.args]
            for node in ast.walk(fn):
                if (
                    isinstance(node, ast.Call)
                    and isinstance(node.func, ast.Attribute)
                    and node.func.attr == "add_parser"
                    and isinstance(node.func.value, ast.Name)
                    and params
                    and node.func.value.id == params[0]
                    and node.args
                    and isinstance(node.args[0], ast.Constant)
                ):
                    found[node.args[0].value] = ".".join(f.relative_to(ROOT).with_suffix("").parts)
    assert found == table


@pytest.mark.slow  # imports every cli module, hence torch (~5 s); runs with `make test-slow`
def test_verb_table_matches_cli_registration():
    """The AST-derived verb table agrees with the real parser on the verbs and their handlers' modules."""
    import argparse

    from sahmr.cli import build_parser

    table = verb_modules(ROOT)
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    assert set(sub.choices) == set(table), f"build_parser verbs {sorted(sub.choices)} != AST table {sorted(table)}"
    for verb, module in table.items():  # the handler lives in the module the table names
        func = sub.choices[verb].get_default("func")
        if func is not None:
            assert func.__module__ == module, (verb, func.__module__, module)


# ------------------------------------------------------------------- params deps: sections listed key by key
# A training run's length and lr schedule: read by `sahmr train` only (a dump or evaluation builds the same model
# whatever they are), so a stage that does not train need not list them.
TRAIN_ONLY_KEYS = {"epochs", "limit_train_batches", "milestones", "gamma", "schedule", "warmup_steps", "min_lr_ratio", "canonical_lr", "canonical_bs"}


def _set_keys(cmd: str) -> set[str]:
    """The top-level keys a cmd overrides with `-S key=value` (quoted or not)."""
    return {m.split(".")[0] for m in re.findall(r"-S\s+'?([\w.]+)=", cmd)}


def _keyed_sections(stage: dict) -> dict[str, set[str]]:
    """{section: keys} for the params entries written `section.key`."""
    out: dict[str, set[str]] = {}
    for entry in stage.get("params", []):
        if isinstance(entry, str) and "." in entry:
            section, key = entry.split(".", 1)
            out.setdefault(section, set()).add(key)
    return out


KEYED = [(f, n, s) for f, n, s in STAGES if _keyed_sections(s)]


def test_keyed_params_exist():
    """The long pipeline lists its training sections key by key (so a change of the default budget, which its
    cmds override, does not stale it); the test below must have stages to check."""
    assert {n for f, n, _ in KEYED if f == "pipelines/long/dvc.yaml"} >= {"train_rcnet", "train_sahmr", "train_baseline", "dump@sahmr"}


def keyed_params_problems(stage: dict, params: dict) -> list[str]:
    """A section listed key by key must list every key of params.yaml's section except the ones the cmd sets with
    -S (and, for a stage that does not train, the training-only keys): a key added to the section later is then tracked,
    and a listed key that the cmd overrides would stale the stage for nothing."""
    cmd = stage["cmd"] if isinstance(stage["cmd"], str) else " && ".join(stage["cmd"])
    trains = re.search(r"\bsahmr train\b", cmd) is not None
    problems = []
    for section, listed in _keyed_sections(stage).items():
        expected = set(params[section]) - _set_keys(cmd) - (set() if trains else TRAIN_ONLY_KEYS)
        if listed != expected:
            problems.append(f"{section}: missing {sorted(expected - listed)}, not to be listed {sorted(listed - expected)}")
    return problems


@pytest.mark.parametrize("dvc_file,name,stage", KEYED, ids=[f"{f}:{n}" for f, n, _ in KEYED])
def test_keyed_params_cover_the_section(dvc_file, name, stage):
    problems = keyed_params_problems(stage, yaml.safe_load((ROOT / "params.yaml").read_text()))
    assert not problems, f"{dvc_file}: stage {name!r}: " + "; ".join(problems)


def test_keyed_params_check_can_fail():
    params = {"train_rcnet": {"epochs": 1, "gamma": 0.5, "batch_size": 8}}
    ok = {"cmd": "sahmr train rcnet -S epochs=2", "params": ["seed", "train_rcnet.gamma", "train_rcnet.batch_size"]}
    assert keyed_params_problems(ok, params) == []
    forgot = {**ok, "params": ["train_rcnet.gamma"]}
    assert keyed_params_problems(forgot, params) == ["train_rcnet: missing ['batch_size'], not to be listed []"]
    overridden = {"cmd": "sahmr train rcnet -S 'epochs=2'", "params": [*ok["params"], "train_rcnet.epochs"]}
    assert keyed_params_problems(overridden, params) == ["train_rcnet: missing [], not to be listed ['epochs']"]
    dump = {"cmd": "sahmr dump rcnet", "params": ["train_rcnet.batch_size"]}  # no training-only keys
    assert keyed_params_problems(dump, params) == []
    dump_lists_gamma = {**dump, "params": ["train_rcnet.gamma", "train_rcnet.batch_size"]}
    assert keyed_params_problems(dump_lists_gamma, params) == ["train_rcnet: missing [], not to be listed ['gamma']"]


# ------------------------------------------------ make repro never runs another pipeline's stage by surprise
def upstream_stages(dvc_file: str, files: list[str]) -> set[tuple[str, str]]:
    """(file, stage) of the stages in *other* pipeline files whose outputs `dvc repro <dvc_file>` needs, directly
    or through each other: DVC joins every dvc.yaml of the repo into one graph and runs them first when stale."""
    producer = {}
    for f in files:
        for name, stage in _load(f):
            for o in stage.get("outs", []) + stage.get("metrics", []) + stage.get("plots", []):
                rel = _repo_rel(_path_of(o), _wdir(f, stage))
                if rel is not None:
                    producer[rel] = (f, name)
    found: set[tuple[str, str]] = set()
    todo = [(dvc_file, name, stage) for name, stage in _load(dvc_file)]
    while todo:
        f, _, stage = todo.pop()
        for dep in _stage_deps(f, stage):
            hit = next((p for out, p in producer.items() if dep == out or dep.startswith(out + "/") or out.startswith(dep + "/")), None)
            if hit and hit[0] != dvc_file and hit not in found:
                found.add(hit)
                todo += [(hit[0], n, s) for n, s in _load(hit[0]) if n == hit[1]]
    return found


def test_stages_make_repro_pulls_in_are_frozen_and_locked():
    """`make repro` (dvc repro dvc.yaml) runs a stage of another pipeline whose outputs it reads when that stage is
    stale: a fresh clone ran the 2.5-hour convergence study inside the one-hour pipeline (it had no lock entry, and a
    retrain on another machine changes the RCNet it depends on). Every such stage must be `frozen: true` (dvc repro
    never runs it) and recorded in its dvc.lock (what it was measured with)."""
    ups = upstream_stages("dvc.yaml", DVC_FILES)
    assert ("pipelines/convergence/dvc.yaml", "convergence") in ups  # the report plots the study
    problems = []
    for f, name in sorted(ups):
        stage = dict(_load(f))[name]
        lock = ROOT / Path(f).with_suffix(".lock")
        entries = yaml.safe_load(lock.read_text()).get("stages", {}) if lock.is_file() else {}
        if stage.get("frozen") is not True:
            problems.append(f"{f}:{name} is not frozen")
        if name not in entries:
            problems.append(f"{f}:{name} has no lock entry")
    assert not problems, problems
