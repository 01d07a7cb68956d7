"""Execute a parameterised notebook (jupytext percent ``.py`` in ``notebooks/``) with papermill and
export it to self-contained HTML. Outputs appear only when the whole notebook ran (atomic)."""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

from sahmr.cliargs import check_out_dir
from sahmr.errors import UserError

NOTEBOOK_DIR = Path(__file__).resolve().parents[2] / "notebooks"


class NotebookError(UserError, RuntimeError):
    """A notebook cell raised; the message names the cell and the error."""


def parse_parameters(items: list[str]) -> dict:
    """``["k=v", ...]`` → dict; values parsed as YAML scalars (numbers, booleans, lists)."""
    import yaml

    out = {}
    for item in items:
        if "=" not in item:
            raise ValueError(f"parameter {item!r}: expected key=value")
        k, v = item.split("=", 1)
        try:
            out[k.strip()] = yaml.safe_load(v) if v.strip() else ""
        except yaml.YAMLError as e:
            raise ValueError(f"-p {k.strip()}: {v!r} is not a plain value (number, string, list; {' '.join(str(e).split())[:120]})") from None
    return out


def run_notebook(
    name: str,
    out_dir: str | Path,
    parameters: dict | None = None,
    html: bool = True,
    notebook_dir: str | Path = NOTEBOOK_DIR,
    cwd: str | Path | None = None,
    timeout_s: int = 1800,
) -> dict[str, Path]:
    """Run ``notebooks/<name>.py`` with ``parameters``; write ``<out_dir>/<name>.ipynb`` (+ ``.html``).

    Raises NotebookError naming the failing cell when the notebook fails (nothing is written then).
    """
    import jupytext

    available = sorted(p.stem for p in Path(notebook_dir).glob("*.py"))
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_-]*", name) or not (Path(notebook_dir) / f"{name}.py").is_file():
        raise FileNotFoundError(f"notebook {name!r} not found in {notebook_dir} (available: {available})")
    src = Path(notebook_dir) / f"{name}.py"
    nb = jupytext.read(src)
    known = notebook_parameters(nb)
    unknown = sorted(set(parameters or {}) - set(known))
    if unknown:
        raise ValueError(f"-p {unknown[0]}: not a parameter of notebooks/{name}.py (a typo?); its parameters: {known}")
    out_dir = check_out_dir(out_dir, "--out")
    created = not out_dir.exists()
    out_dir.mkdir(parents=True, exist_ok=True)
    try:
        return _execute(nb, name, out_dir, parameters, html, cwd, timeout_s)
    except BaseException:
        if created and not any(out_dir.iterdir()):
            out_dir.rmdir()  # ours, and empty: the failed run leaves nothing behind
        raise


def notebook_parameters(nb) -> list[str]:
    """Names assigned in the notebook's cell tagged ``parameters`` (what ``-p`` may set), sorted."""
    import ast

    for cell in nb.cells:
        if cell.cell_type == "code" and "parameters" in cell.get("metadata", {}).get("tags", []):
            names = set()
            for node in ast.parse(cell.source).body:
                targets = node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(node, ast.AnnAssign) else []
                names |= {t.id for t in targets if isinstance(t, ast.Name)}
            return sorted(names)
    return []


def _execute(nb, name: str, out_dir: Path, parameters, html: bool, cwd, timeout_s: int) -> dict[str, Path]:
    import nbformat
    import papermill as pm

    with tempfile.TemporaryDirectory(dir=out_dir, prefix=f".{name}.") as tmp:
        tmp_in, tmp_out = Path(tmp) / f"{name}.in.ipynb", Path(tmp) / f"{name}.ipynb"
        nbformat.write(nb, tmp_in)
        # The kernel inherits our environment; MPLBACKEND=Agg (set by make/tests for headless scripts)
        # would stop matplotlib figures from reaching the notebook outputs.
        saved_backend = os.environ.get("MPLBACKEND")
        os.environ["MPLBACKEND"] = "module://matplotlib_inline.backend_inline"
        try:
            pm.execute_notebook(
                str(tmp_in),
                str(tmp_out),
                parameters=parameters or {},
                kernel_name="python3",
                cwd=str(cwd or Path.cwd()),
                progress_bar=False,
                execution_timeout=timeout_s,
            )
        except pm.PapermillExecutionError as e:
            raise NotebookError(f"notebook {name} failed in cell {e.exec_count}: {e.ename}: {e.evalue}") from None
        finally:
            if saved_backend is None:
                os.environ.pop("MPLBACKEND", None)
            else:
                os.environ["MPLBACKEND"] = saved_backend
        written = {"ipynb": out_dir / f"{name}.ipynb"}
        if html:
            from nbconvert import HTMLExporter

            body, _ = HTMLExporter().from_notebook_node(nbformat.read(tmp_out, as_version=4))
            tmp_html = Path(tmp) / f"{name}.html"
            tmp_html.write_text(body)
            os.replace(tmp_html, out_dir / f"{name}.html")
            written["html"] = out_dir / f"{name}.html"
        os.replace(tmp_out, written["ipynb"])
    return written
