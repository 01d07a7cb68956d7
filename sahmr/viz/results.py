"""Loading evaluation outputs (``sahmr evaluate``) and the tables/plots of the report notebooks."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

PAPER_COLUMNS = [
    ("G-MPJPE", "g_mpjpe"),
    ("G-MPVE", "g_mpve"),
    ("MPJPE", "mpjpe"),
    ("MPVE", "mpve"),
    ("PA-MPJPE", "pa_mpjpe"),
    ("PenE", "pene"),
    ("ConFE", "confe"),
    ("Contact P", "contact_precision"),
    ("Contact R", "contact_recall"),
    ("Contact F1", "contact_f1"),
    ("PelvisE", "pelvis_error"),
]


def load_results(metrics_dir: str | Path, models: list[str] | None = None):
    """(summaries {model: dict}, frames DataFrame with a ``model`` column) from ``<model>.json`` +
    ``<model>_frames.csv`` files. `models` None: every ``<model>.json`` that has its ``<model>_frames.csv``
    beside it (other JSON files in the folder, e.g. analyses, are not models). Raises FileNotFoundError
    naming what is missing."""
    import pandas as pd

    metrics_dir = Path(metrics_dir)
    if models is None:
        models = sorted(p.stem for p in metrics_dir.glob("*.json") if (metrics_dir / f"{p.stem}_frames.csv").is_file())
    if not models:
        raise FileNotFoundError(
            f"no <model>.json + <model>_frames.csv metrics in {metrics_dir}: run `sahmr evaluate --out {metrics_dir}/<model>.json` (it writes both)"
        )
    summaries, frames = {}, []
    for m in models:
        js, csv = metrics_dir / f"{m}.json", metrics_dir / f"{m}_frames.csv"
        for p in (js, csv):
            if not p.is_file():
                raise FileNotFoundError(f"missing evaluation output {p} for model {m!r}")
        summaries[m] = json.loads(js.read_text())
        df = pd.read_csv(csv)
        df.insert(0, "model", m)
        frames.append(df)
    return summaries, pd.concat(frames, ignore_index=True)


def paper_table(summaries: dict, baseline: str | None = None):
    """DataFrame: one row per model, the paper's columns (mm; PenE/ConFE in m); with a baseline, the
    difference of every model to it (negative = lower error)."""
    import pandas as pd

    rows = {m: {name: s.get(key, np.nan) for name, key in PAPER_COLUMNS} | {"frames": s.get("n_frames")} for m, s in summaries.items()}
    table = pd.DataFrame.from_dict(rows, orient="index")
    if baseline is not None and baseline in table.index:
        diff = table.drop(columns="frames") - table.loc[baseline].drop("frames")
        table = table.join(diff.add_prefix("Δ "))
    return table


REFINE_COLUMNS = [("G-MPJPE", "g_mpjpe"), ("MPJPE", "mpjpe"), ("PenE", "pene"), ("ConFE", "confe"), ("Contact F1", "contact_f1")]


def load_timings(timing_dir: str | Path | None) -> dict[str, dict]:
    """{method: stats} from the ``--stats`` JSONs of ``sahmr refine`` / ``sahmr fit`` in `timing_dir`
    (``<method>.json``, e.g. ``sahmr_refined.json``, ``fit.json``); {} for an empty or absent folder name."""
    if not timing_dir:
        return {}
    folder = Path(timing_dir)
    if not folder.is_dir():
        raise FileNotFoundError(f"timing_dir {folder} does not exist: run `sahmr refine/fit --stats {folder}/<method>.json`, or pass timing_dir=''")
    return {p.stem: json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))}


def refinement_table(summaries: dict, timings: dict, suffix: str = "_refined"):
    """One row per refined method ``<m><suffix>`` whose unrefined ``<m>`` is also evaluated: each metric
    before, after and the relative change (%), plus the refinement's seconds per frame."""
    import pandas as pd

    rows = {}
    for name, after in summaries.items():
        base = name.removesuffix(suffix)
        if name == base or base not in summaries:
            continue
        before = summaries[base]
        row = {}
        for label, key in REFINE_COLUMNS:
            b, a = before.get(key, np.nan), after.get(key, np.nan)
            row[(label, "before")], row[(label, "after")] = b, a
            row[(label, "change %")] = 100.0 * (a - b) / b if b else np.nan
        row[("s/frame", "")] = timings.get(name, {}).get("seconds_per_frame", np.nan)
        rows[base] = row
    table = pd.DataFrame.from_dict(rows, orient="index")
    if len(table):
        table.columns = pd.MultiIndex.from_tuples(table.columns)
    return table


def binned(frames, column: str, bins: list[float]):
    """The frames table with a categorical ``<column>_bin`` column."""
    import pandas as pd

    out = frames.copy()
    out[f"{column}_bin"] = pd.cut(out[column], bins=bins, include_lowest=True)
    return out


def error_by(frames, metric: str, by: str, ax=None, title: str | None = None):
    """Grouped bar plot of the mean ``metric`` per value of ``by`` for every model."""
    import matplotlib.pyplot as plt

    pivot = frames.groupby([by, "model"], observed=True)[metric].mean().unstack("model")
    if ax is None:
        _, ax = plt.subplots(figsize=(8, 3.5))
    pivot.plot.bar(ax=ax, rot=30)
    ax.set_ylabel(metric)
    ax.set_title(title or f"{metric} by {by}")
    return ax


def error_distributions(frames, metrics: list[str], bins: int = 40):
    """Histograms of per-frame errors, one panel per metric, one colour per model."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(metrics), figsize=(4.5 * len(metrics), 3.3), squeeze=False)
    for ax, m in zip(axes[0], metrics):
        for model, g in frames.groupby("model"):
            ax.hist(g[m].dropna(), bins=bins, alpha=0.55, label=model)
        ax.set(xlabel=m, ylabel="frames")
        ax.legend()
    fig.tight_layout()
    return fig


def training_curves(dvclive_dirs: dict):
    """Line plots of every scalar DVCLive logged (``<dir>/plots/metrics/**.tsv``), one panel per metric and
    one line per run; None if no run is given. dvclive_dirs: {run name: DVCLive folder}. A folder that is
    given but holds no logs raises FileNotFoundError naming it (a report must not silently drop a run)."""
    import matplotlib.pyplot as plt
    import pandas as pd

    series = {}
    for name, d in dvclive_dirs.items():
        if not any(Path(d, "plots", "metrics").rglob("*.tsv")):
            raise FileNotFoundError(
                f"training run {name!r}: no DVCLive metrics under {Path(d, 'plots', 'metrics')} (train it first, or drop it from training_dirs)"
            )
        for tsv in sorted(Path(d, "plots", "metrics").rglob("*.tsv")):
            df = pd.read_csv(tsv, sep="\t")
            key = str(tsv.relative_to(Path(d, "plots", "metrics")).with_suffix(""))
            value_col = [c for c in df.columns if c not in ("step", "timestamp")][-1]
            series.setdefault(key, {})[name] = df[["step", value_col]].rename(columns={value_col: "value"})
    if not series:
        return None
    keys = sorted(series)
    cols = min(3, len(keys))
    rows = int(np.ceil(len(keys) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(4.5 * cols, 3 * rows), squeeze=False)
    for ax, k in zip(axes.ravel(), keys):
        for name, df in series[k].items():
            ax.plot(df["step"], df["value"], marker="o", ms=3, label=name)  # markers: a 1-epoch run is one point
        ax.set_title(k, fontsize=9)
        ax.legend(fontsize=7)
    for ax in axes.ravel()[len(keys) :]:
        ax.axis("off")
    fig.tight_layout()
    return fig


def load_convergence(conv_dir: str | Path | None) -> tuple[dict[str, dict], dict]:
    """``({task: record}, summary)`` of the convergence study (``benchmarks/convergence.py``) in `conv_dir`:
    ``<task>.json`` (points: step, wall_s, validation metrics) and ``summary.json`` (goals, power-law fits);
    ({}, {}) for an empty folder name."""
    if not conv_dir:
        return {}, {}
    folder = Path(conv_dir)
    if not folder.is_dir():
        raise FileNotFoundError(f"convergence_dir {folder} does not exist: run `python benchmarks/convergence.py`, or pass convergence_dir=''")
    records = {p.stem: json.loads(p.read_text()) for p in sorted(folder.glob("*.json")) if p.stem != "summary"}
    summary_file = folder / "summary.json"
    summary = json.loads(summary_file.read_text()) if summary_file.is_file() else {}
    return records, summary


def convergence_table(summary: dict):
    """One row per (task, metric) with a goal: the last and best measured value, the goal, and the steps and
    CPU hours at which the fitted power law reaches it (empty when reached or when the fit never does)."""
    import pandas as pd

    rows = []
    for task, t in summary.get("tasks", {}).items():
        for metric, e in t["metrics"].items():
            if e.get("goal") is None:
                continue
            rows.append(
                {
                    "task": task,
                    "metric": metric,
                    "steps measured": t["last_step"],
                    "last": e["last"],
                    "best": e["best"],
                    "goal": e["goal"],
                    "reached": e.get("reached"),
                    "steps to goal (fit)": e.get("steps_to_goal"),
                    "CPU h to goal (fit)": e.get("cpu_hours_to_goal"),
                    "wall h to goal (fit)": e.get("wall_hours_to_goal"),
                    "note": e.get("note", ""),
                }
            )
    return pd.DataFrame(rows)


def convergence_figure(records: dict, summary: dict):
    """Validation metric against training steps (log x), one panel per (task, metric) of the summary: the
    measured points, the goal (dotted), the power-law fit extended to where it meets the goal (dashed) and,
    for MPJPE / PA-MPJPE, the error of predicting the train split's mean pose every time (dash-dot) and, for
    MPJPE, the floor of a perfect crop-only network that cannot see the ray direction (red dashed).
    None when there is nothing to plot."""
    import matplotlib.pyplot as plt

    panels = [(task, metric, e) for task, t in summary.get("tasks", {}).items() if task in records for metric, e in t["metrics"].items()]
    if not panels:
        return None
    cols = min(4, len(panels))
    rows = int(np.ceil(len(panels) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.1 * rows), squeeze=False)
    for ax, (task, metric, e) in zip(axes.ravel(), panels):
        pts = [p for p in records[task]["points"] if metric in p["metrics"]]
        xs = np.array([p["step"] for p in pts], float)
        ys = np.array([p["metrics"][metric] for p in pts], float)
        ax.plot(xs, ys, "o-", ms=4, label="validation")
        if e.get("goal") is not None:
            ax.axhline(e["goal"], ls=":", c="k", lw=1, label=f"goal {e['goal']:g}")
        ref = summary.get("constant_pose_reference", {}).get(metric) if task != "rcnet" else None
        if ref is not None:
            ax.axhline(ref, ls="-.", c="0.5", lw=1, label=f"train-mean pose {ref:.0f}")
        floor = summary.get("constant_pose_reference", {}).get("ray_frame_MPJPE") if (task != "rcnet" and metric == "MPJPE") else None
        if floor is not None:
            ax.axhline(floor, ls="--", c="C3", lw=1, label=f"crop-only floor {floor:.0f}")
        if "fit_a" in e and len(xs):
            end = max(xs.max(), min(float(e.get("steps_to_goal") or 0), xs.max() * 1000))
            fx = np.geomspace(xs[max(len(xs) - 4, 0)], end, 50)
            ax.plot(fx, e["fit_a"] * fx ** (-e["fit_b"]), "--", c="C1", lw=1, label="power-law fit")
        ax.set_xscale("log")
        ax.xaxis.set_minor_formatter(plt.NullFormatter())  # a short log axis would label every minor tick
        ax.set(title=f"{task}: {metric}", xlabel="training steps")
        ax.title.set_fontsize(9)
        ax.legend(fontsize=7)
    for ax in axes.ravel()[len(panels) :]:
        ax.axis("off")
    fig.tight_layout()
    return fig
