"""``sahmr report <notebook>``: execute a parameterised notebook with papermill → .ipynb + HTML."""

from __future__ import annotations

import argparse


def _report(args: argparse.Namespace) -> int:
    from sahmr.viz.notebooks import parse_parameters, run_notebook

    written = run_notebook(args.notebook, args.out, parse_parameters(args.param), html=not args.no_html)
    print("wrote " + ", ".join(str(p) for p in written.values()))
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("report", help="run a notebook of notebooks/ with papermill (parameters -p key=value) and export HTML")
    p.add_argument("notebook", help="notebook name in notebooks/ (e.g. dataset)")
    p.add_argument("--out", required=True, help="output folder, e.g. reports/synth")
    p.add_argument("-p", "--param", action="append", default=[], help="notebook parameter key=value (repeatable)")
    p.add_argument("--no-html", action="store_true")
    p.set_defaults(func=_report)
