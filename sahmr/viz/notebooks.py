"""Execute a parameterised notebook (jupytext percent ``.py`` in ``notebooks/``) with papermill and
export it to self-contained HTML. Outputs appear only when the whole notebook ran (atomic)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

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
        out[k.strip()] = yaml.safe_load(v) if v.strip() else ""
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
    import nbformat
    import papermill as pm

    src = Path(notebook_dir) / f"{name}.py"
    if not src.is_file():
        raise FileNotFoundError(f"notebook {src} not found (available: {sorted(p.stem for p in Path(notebook_dir).glob('*.py'))})")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    nb = jupytext.read(src)
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
