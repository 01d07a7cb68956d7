"""Static import closure of the repo's own source files (stdlib only: ast, pathlib, shlex).

Used by tests/pipeline/test_dvc_deps.py to check that every dvc stage depends on every source file its
command executes. Everything is static (no module is imported), and deliberately over-approximate:

* every ``import`` anywhere in a file counts (``ast.walk``: imports inside functions too, since the CLI
  imports lazily; ``if TYPE_CHECKING:`` imports too);
* importing ``a.b.c`` executes ``a/__init__.py`` and ``a/b/__init__.py``, so parent packages count;
* a CLI verb's entry is its whole ``cli.py`` module (every handler in it), not just the one handler.

The one exception to "every import counts" is ``sahmr/cli.py``'s ``build_parser``, which imports every
verb's cli module to register it; following it would make every stage depend on the whole package.
Instead the verb table (:func:`verb_modules`) maps each verb to the module that registers it, and only
that module is followed (see :data:`PARTIAL_FUNCTIONS`).
"""

from __future__ import annotations

import ast
import shlex
from functools import lru_cache
from pathlib import Path

__all__ = [
    "LOCAL_PACKAGES",
    "PARTIAL_FUNCTIONS",
    "CLI_FILE",
    "module_file",
    "imports_of",
    "closure",
    "verb_modules",
    "stage_entry_files",
    "notebook_file",
    "package_dep",
]

LOCAL_PACKAGES = ("sahmr",)
CLI_FILE = "sahmr/cli.py"
# Functions whose imports are NOT followed, per repo-relative file: build_parser imports every verb module.
PARTIAL_FUNCTIONS: dict[str, tuple[str, ...]] = {CLI_FILE: ("build_parser",)}
NOTEBOOK_DIR = "notebooks"  # sahmr/viz/notebooks.py: NOTEBOOK_DIR = <repo>/notebooks, file <name>.py
PYTHONS = {"python", "python3", "python3.10", "python3.11", "python3.12", "python3.13"}
_SHELL_SEPARATORS = {"&&", "||", ";", "|", "&"}


def _root(root) -> Path:
    return Path(root).resolve()


def module_file(name: str, root) -> Path | None:
    """The file of dotted module `name` under `root` (a package -> its ``__init__.py``), or None.

    Only modules of :data:`LOCAL_PACKAGES` are resolved (third-party and stdlib modules give None)."""
    parts = name.split(".")
    if not name or parts[0] not in LOCAL_PACKAGES or not all(p.isidentifier() for p in parts):
        return None
    return _module_file(tuple(parts), _root(root))


@lru_cache(maxsize=4096)
def _module_file(parts: tuple[str, ...], root: Path) -> Path | None:
    base = root.joinpath(*parts)
    if (base / "__init__.py").is_file():
        return base / "__init__.py"
    if base.with_suffix(".py").is_file():
        return base.with_suffix(".py")
    return None


def _package_of(path: Path, root: Path) -> list[str] | None:
    """Dotted package (as parts) that `path` belongs to, for resolving relative imports; None outside one."""
    try:
        rel = path.resolve().relative_to(root)
    except ValueError:
        return None
    parts = list(rel.parent.parts)
    # The package chain must be real packages (every folder has __init__.py) for relative imports to mean anything.
    for i in range(1, len(parts) + 1):
        if not (root.joinpath(*parts[:i]) / "__init__.py").is_file():
            return None
    return parts or None


def _with_parents(name: str) -> list[str]:
    parts = name.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts) + 1)]


def _skipped_nodes(tree: ast.AST, skip_functions: tuple[str, ...]) -> set[int]:
    """ids of every node inside a top-level function named in `skip_functions`."""
    out: set[int] = set()
    for node in getattr(tree, "body", []):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name in skip_functions:
            out.update(id(n) for n in ast.walk(node))
    return out


def imports_of(path, root, skip_functions: tuple[str, ...] | None = None) -> set[str]:
    """Every local (``sahmr...``) module that file `path` imports, parents packages included.

    Static (``ast.walk``), so imports inside functions count. Relative imports are resolved against the
    file's package. ``from a.b import c`` gives ``a.b.c`` when that is a module/package, else ``a.b``
    (``c`` is then a name defined in ``a.b``). ``importlib.import_module("sahmr.x")`` with a literal
    string counts too. Imports inside the top-level functions `skip_functions` (default: from
    :data:`PARTIAL_FUNCTIONS` for this file) are ignored."""
    root = _root(root)
    path = Path(path)
    if not path.is_absolute():
        path = root / path
    path = path.resolve()
    if skip_functions is None:
        try:
            rel = path.relative_to(root).as_posix()
        except ValueError:
            rel = None
        skip_functions = PARTIAL_FUNCTIONS.get(rel, ())
    return set(_imports_of(path, root, tuple(skip_functions), path.stat().st_mtime_ns))


@lru_cache(maxsize=4096)
def _imports_of(path: Path, root: Path, skip_functions: tuple[str, ...], _mtime: int) -> frozenset[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    skipped = _skipped_nodes(tree, skip_functions) if skip_functions else set()
    package = _package_of(path, root)

    names: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                if package is None or node.level - 1 > len(package):
                    continue  # a relative import outside a package: not resolvable (and would fail at runtime)
                base_parts = package[: len(package) - (node.level - 1)]
                base = ".".join(base_parts + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            if not base:
                continue
            names.add(base)
            for alias in node.names:
                if alias.name != "*":
                    names.add(f"{base}.{alias.name}")  # kept below only if it is a module
        elif isinstance(node, ast.Call):
            func = node.func
            fname = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else None
            if (
                fname in ("import_module", "__import__")
                and node.args
                and isinstance(node.args[0], ast.Constant)
                and isinstance(node.args[0].value, str)
            ):
                names.add(node.args[0].value)

    out: set[str] = set()
    for name in names:
        for prefix in _with_parents(name):
            if module_file(prefix, root) is not None:
                out.add(prefix)
    return frozenset(out)


def _own_packages(path: Path, root: Path) -> set[Path]:
    """``__init__.py`` of every package containing `path` (importing a module executes them)."""
    package = _package_of(path, root) or []
    return {root.joinpath(*package[:i]) / "__init__.py" for i in range(1, len(package) + 1)}


def closure(start_files, root) -> set[Path]:
    """Every file (absolute paths) executed by running/importing `start_files`: transitive over
    :func:`imports_of`, plus the ``__init__.py`` of the packages containing each file."""
    root = _root(root)
    todo = [Path(f) if Path(f).is_absolute() else root / f for f in start_files]
    todo = [p.resolve() for p in todo]
    seen: set[Path] = set()
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        todo.extend(_own_packages(path, root) - seen)
        for name in imports_of(path, root):
            f = module_file(name, root)
            if f is not None and f.resolve() not in seen:
                todo.append(f.resolve())
    return seen


# ----------------------------------------------------------------------------------------------- verbs
def _sub_action_param(fn: ast.FunctionDef) -> str | None:
    args = fn.args.posonlyargs + fn.args.args
    return args[0].arg if args else None


def _top_level_verbs(module: str, func: str, root: Path) -> list[str]:
    """Verbs registered by ``module.func(sub)``: ``sub.add_parser("verb", ...)`` calls on its first parameter
    (nested ``bsub.add_parser`` calls are subverbs and are not returned)."""
    f = module_file(module, root)
    if f is None:
        raise ValueError(f"{CLI_FILE}: build_parser uses {module}, which is not a file under {root}")
    tree = ast.parse(f.read_text(encoding="utf-8"))
    fns = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == func]
    if not fns:
        raise ValueError(f"{f.relative_to(root)}: no top-level function {func}() (called by build_parser)")
    param = _sub_action_param(fns[0])
    verbs = []
    for node in ast.walk(fns[0]):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "add_parser"
            and isinstance(node.func.value, ast.Name)
            and node.func.value.id == param
        ):
            if not (node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)):
                raise ValueError(f"{f.relative_to(root)}:{node.lineno}: add_parser without a literal verb name")
            verbs.append(node.args[0].value)
    return verbs


@lru_cache(maxsize=8)
def _verb_modules_cached(root: Path) -> tuple[tuple[str, str], ...]:
    tree = ast.parse((root / CLI_FILE).read_text(encoding="utf-8"))
    fns = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "build_parser"]
    if not fns:
        raise ValueError(f"{CLI_FILE}: no build_parser()")
    aliases: dict[str, str] = {}  # local name -> dotted module
    calls: list[tuple[str, str]] = []  # (alias, function)
    for node in ast.walk(fns[0]):
        if isinstance(node, ast.ImportFrom) and node.module and not node.level:
            for a in node.names:
                full = f"{node.module}.{a.name}"
                aliases[a.asname or a.name] = full if module_file(full, root) else node.module
        elif isinstance(node, ast.Import):
            for a in node.names:
                aliases[a.asname or a.name.split(".")[0]] = a.name if a.asname else a.name.split(".")[0]
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and isinstance(node.func.value, ast.Name)
            and node.func.value.id in aliases
            and node.func.attr.startswith("register")
        ):
            calls.append((node.func.value.id, node.func.attr))
    table: dict[str, str] = {}
    for alias, func in calls:
        module = aliases[alias]
        for verb in _top_level_verbs(module, func, root):
            if verb in table:
                raise ValueError(f"verb {verb!r} registered twice ({table[verb]}, {module})")
            table[verb] = module
    if not table:
        raise ValueError(f"{CLI_FILE}: build_parser registers no verb this parser understands")
    return tuple(sorted(table.items()))


def verb_modules(root) -> dict[str, str]:
    """``{verb: dotted module that registers it}`` read from ``sahmr/cli.py``'s ``build_parser`` (each
    ``<alias>.register*(sub)`` call) and the ``sub.add_parser("<verb>", ...)`` calls of those functions."""
    return dict(_verb_modules_cached(_root(root)))


def notebook_file(name: str, root) -> Path:
    """``sahmr report <name>`` runs ``notebooks/<name>.py`` (sahmr/viz/notebooks.py: NOTEBOOK_DIR / f"{name}.py")."""
    return _root(root) / NOTEBOOK_DIR / f"{name}.py"


# Options of `sahmr report` that take a value (sahmr/viz/cli.py); any other token starting with '-' is a flag.
_REPORT_VALUE_OPTIONS = {"--out", "-p", "--param"}


def _report_notebook(args: list[str]) -> str:
    it = iter(args)
    for tok in it:
        if tok in _REPORT_VALUE_OPTIONS:
            next(it, None)
        elif tok.startswith("-"):
            continue
        else:
            return tok
    raise ValueError(f"sahmr report {' '.join(args)}: no notebook name")


def _split_commands(cmd: str) -> list[list[str]]:
    lexer = shlex.shlex(" ".join(cmd.split()), posix=True, punctuation_chars=";&|")
    lexer.whitespace_split = True
    commands, current = [], []
    for tok in lexer:
        if tok in _SHELL_SEPARATORS:
            if current:
                commands.append(current)
            current = []
        else:
            current.append(tok)
    if current:
        commands.append(current)
    return commands


def stage_entry_files(cmd: str, root, wdir=None) -> list[Path]:
    """Files (absolute) that the stage command `cmd` runs first; feed them to :func:`closure`.

    * ``sahmr <verb> ...`` (also ``python -m sahmr`` / ``python -m sahmr.cli``): ``sahmr/cli.py`` (its
      ``build_parser`` imports are not followed, see module doc) + the module registering ``<verb>``;
      ``sahmr report <name>`` also ``notebooks/<name>.py``.
    * ``python path/x.py`` / ``path/x.py``: the script; ``python -m sahmr.x``: that module.
    * other programs (mkdir, echo, ...) contribute nothing.
    `cmd` may hold several commands (``&&``, ``;``, ``|``) and folded newlines. Relative paths are read
    from `wdir` (default `root`). Raises ValueError for an unknown verb or a missing script/notebook."""
    root = _root(root)
    wdir = _root(wdir) if wdir is not None else root
    table = verb_modules(root)
    out: list[Path] = []

    def add(p: Path) -> None:
        p = p.resolve()
        if p not in out:
            out.append(p)

    for tokens in _split_commands(cmd):
        while tokens and "=" in tokens[0] and tokens[0].split("=", 1)[0].isidentifier():
            tokens = tokens[1:]  # VAR=value prefixes
        if not tokens:
            continue
        prog, args = tokens[0], tokens[1:]
        if Path(prog).name in PYTHONS:
            opts = [a for a in args if a.startswith("-") and a != "-m"]
            args = [a for a in args if a not in opts]
            if args[:1] == ["-m"] and len(args) > 1:
                mod = args[1]
                if mod in ("sahmr", "sahmr.cli", "sahmr.__main__"):
                    prog, args = "sahmr", args[2:]
                else:
                    f = module_file(mod, root)
                    if f is not None:
                        add(f)
                    continue
            elif args and args[0].endswith(".py"):
                prog, args = args[0], args[1:]
            else:
                continue
        if prog == "sahmr":
            add(root / CLI_FILE)
            verb = next((a for a in args if not a.startswith("-")), None)
            if verb is None:
                continue  # `sahmr --help`
            if verb not in table:
                raise ValueError(f"`sahmr {verb}`: not a verb registered in {CLI_FILE} (known: {sorted(table)})")
            add(module_file(table[verb], root))
            if verb == "report":
                nb = notebook_file(_report_notebook(args[args.index(verb) + 1 :]), root)
                if not nb.is_file():
                    raise ValueError(f"`sahmr report`: notebook {nb.relative_to(root)} not found")
                add(nb)
        elif prog.endswith(".py"):
            script = wdir / prog
            if not script.is_file():
                raise ValueError(f"script {prog} not found (from {wdir})")
            add(script)
    return out


def package_dep(path, root) -> str:
    """Suggested dvc dep covering repo file `path`: its package folder (``sahmr/data/synth/x.py`` ->
    ``sahmr/data/synth``); files directly in the top package or outside a package (``sahmr/cli.py``,
    ``notebooks/x.py``, ``tools/x.py``) are suggested as themselves."""
    root = _root(root)
    rel = Path(path).resolve().relative_to(root)
    if len(rel.parts) <= 2 or _package_of(root / rel, root) is None:
        return rel.as_posix()
    return rel.parent.as_posix()
