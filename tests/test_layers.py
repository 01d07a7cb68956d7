"""The package's import graph: layers only import downward, no circles, no module imports a ``cli`` module.

Static (every ``import`` anywhere in a file counts, lazy ones too), over modules of ``sahmr``. A module may
import its own package's siblings; across packages, only lower layers.
"""

from __future__ import annotations

from pathlib import Path

from tests.helpers.import_closure import imports_of, module_file

ROOT = Path(__file__).resolve().parents[1]
# Bottom to top. A module may import modules of its own layer's package and of lower layers.
LAYERS = [
    ["sahmr.errors", "sahmr.atomic", "sahmr.reading", "sahmr.cliargs"],  # leaves: import nothing of sahmr
    ["sahmr.config", "sahmr.mesh_io", "sahmr.metrics", "sahmr.geometry", "sahmr.sparse"],
    ["sahmr.body"],
    ["sahmr.data"],
    ["sahmr.models"],
    ["sahmr.train"],
    ["sahmr.eval"],
    ["sahmr.refine"],
    ["sahmr.infer"],
    ["sahmr.viz"],
    ["sahmr.cli"],
]


def _modules() -> dict[str, Path]:
    out = {}
    for p in sorted((ROOT / "sahmr").rglob("*.py")):
        parts = list(p.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = p
    return out


def _layer(mod: str) -> int:
    best = None
    for i, names in enumerate(LAYERS):
        for n in names:
            if (mod == n or mod.startswith(n + ".")) and (best is None or len(n) > len(best[1])):
                best = (i, n)
    assert best is not None, f"{mod} is in no layer: add it to LAYERS in tests/test_layers.py"
    return best[0]


def _graph() -> dict[str, set[str]]:
    mods = _modules()
    g = {}
    for mod, path in mods.items():
        deps = set()
        for name in imports_of(path, ROOT):
            f = module_file(name, ROOT)
            if f is None or f == path:
                continue
            target = next(m for m, p in mods.items() if p == f)
            if mod.startswith(target + "."):  # its own parent packages run first: not an edge
                continue
            deps.add(target)
        g[mod] = deps
    return g


def _cycles(g: dict[str, set[str]]) -> list[list[str]]:
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in g[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in g:
        if v not in index:
            visit(v)
    return out


def test_no_import_circles():
    assert _cycles(_graph()) == []


def test_imports_only_run_downward():
    g = _graph()
    upward = [f"{m} (layer {_layer(m)}) imports {d} (layer {_layer(d)})" for m, ds in g.items() for d in ds if _layer(d) > _layer(m)]
    assert upward == []


def test_no_module_imports_a_cli_module():
    g = _graph()
    bad = [f"{m} imports {d}" for m, ds in g.items() for d in ds if d.endswith(".cli") or d == "sahmr.cli"]
    assert bad == []


def test_the_checks_can_fail():
    assert _cycles({"a": {"b"}, "b": {"a"}, "c": set()}) == [["a", "b"]]
    assert _layer("sahmr.models.rcnet") > _layer("sahmr.body.model") > _layer("sahmr.metrics")
