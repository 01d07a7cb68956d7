# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Results report
# The paper-style table for every evaluated method (with the difference to the baseline), error
# distributions, errors by distance, occlusion, pose class and scene, and training curves (DVCLive).

# %% tags=["parameters"]
metrics_dir = "reports/metrics"
models = ""  # comma-separated; empty: every <model>.json in metrics_dir
baseline = "baseline"  # the method the others are compared with; "" = none
dataset_name = "synth"
training_dirs = ""  # comma-separated name=dir pairs of DVCLive folders, e.g. "sahmr=runs/sahmr/dvclive"
timing_dir = ""  # folder of `sahmr refine/fit --stats` JSONs (<method>.json), e.g. "reports/refine"; "" = none
convergence_dir = ""  # the convergence study's folder (benchmarks/convergence.py), e.g. "reports/convergence"; "" = none

# %%
import matplotlib.pyplot as plt
import pandas as pd
from IPython.display import display

from sahmr.viz.results import (
    PAPER_COLUMNS,
    binned,
    convergence_figure,
    convergence_table,
    error_by,
    error_distributions,
    load_convergence,
    load_results,
    load_timings,
    paper_table,
    refinement_table,
    training_curves,
)

pd.set_option("display.max_columns", 60)
pd.set_option("display.width", 250)
summaries, frames = load_results(metrics_dir, [m for m in models.split(",") if m] or None)
print(f"{dataset_name}: {len(summaries)} method(s): {', '.join(summaries)}; {frames['frame_id'].nunique()} frames")

# %% [markdown]
# ## Results (mm; PenE/ConFE in m, summed over vertices as the release evaluation)

# %%
if baseline and baseline not in summaries:
    raise FileNotFoundError(
        f"baseline {baseline!r} has no metrics in {metrics_dir} (have: {', '.join(summaries)}); "
        "evaluate it, or pass baseline='' for a table without differences"
    )
timings = load_timings(timing_dir)
table = paper_table(summaries, baseline or None)
table.insert(len(PAPER_COLUMNS), "s/frame", [timings.get(m, {}).get("seconds_per_frame", float("nan")) for m in table.index])
table.round(3)

# %% [markdown]
# `s/frame`: seconds per frame of the optimisation methods (`sahmr refine` — added to the network's own
# time — and `sahmr fit`), from their `--stats` files; the networks' inference is not timed here. **`fit`**
# is the PROX-style fitting baseline: a body fitted to 2D keypoints under scene constraints without any
# learned 3D network. On the synthetic benchmark its keypoints are the GT joints projected with
# 4 px noise and 10% dropout (`sahmr keypoints`, params.yaml `keypoints`) — a stand-in for a detector that is
# far more accurate than a real one, so its row is an optimistic reference, not a like-for-like comparison.

# %% [markdown]
# ## Scene-constrained refinement (`sahmr refine`): before -> after

# %%
refined = refinement_table(summaries, timings)
if len(refined):
    display(refined.round(3))
    pene = frames[frames["model"].isin(list(refined.index) + [f"{m}_refined" for m in refined.index])]
    fig, ax = plt.subplots(figsize=(10, 3.5))
    error_by(pene, "pene", "pose_class", ax=ax, title="PenE (m) by pose class, before and after refinement")
    display(fig)
    plt.close(fig)
else:
    print("no <method>_refined metrics next to their <method> (run sahmr refine and evaluate both)")

# %% [markdown]
# ## Error distributions

# %%
fig = error_distributions(frames, [m for m in ("g_mpjpe", "g_mpve", "mpjpe", "pene") if m in frames.columns])
display(fig)
plt.close(fig)

# %% [markdown]
# ## Errors by distance, occlusion, pose class, scene and sequence (RICH)

# %%
f = binned(binned(frames, "distance", [0, 3, 4, 5, 6, 12]), "occlusion", [0, 0.05, 0.25, 0.5, 1.0])
groups = [
    by
    for by in ["distance_bin", "occlusion_bin", "pose_class", "scene_id", "sequence"]
    if by in f.columns and f[by].dropna().astype(str).ne("").any()
]  # real data: no pose classes / occlusion
fig, axes = plt.subplots((len(groups) + 1) // 2, 2, figsize=(13, 3.5 * ((len(groups) + 1) // 2)), squeeze=False)
for ax, by in zip(axes.ravel(), groups):
    error_by(f, "g_mpjpe", by, ax=ax)
for ax in axes.ravel()[len(groups) :]:
    ax.axis("off")
fig.tight_layout()
display(fig)
plt.close(fig)

# %% [markdown]
# ## Training curves

# %%
dirs = dict(item.split("=", 1) for item in training_dirs.split(",") if "=" in item)
fig = training_curves(dirs)  # a given folder without logs raises, naming it
if fig is None:
    print("no training runs given (parameter training_dirs)")
else:
    display(fig)
    plt.close(fig)

# %% [markdown]
# ## Convergence: validation metrics against training steps (`benchmarks/convergence.py`)
# The default recipe's models at a constant learning rate, validated after log-spaced budgets on the
# validation split. Dashed: a power law fitted to the last four points and extended to the goal — an
# extrapolation that says roughly what budget the goal needs, not a measurement.

# %%
conv_records, conv_summary = load_convergence(convergence_dir)
if not conv_records:
    print("no convergence study given (parameter convergence_dir)")
else:
    display(convergence_table(conv_summary).round(3))
    ref = conv_summary.get("constant_pose_reference")
    if ref:
        print(f"reference, {ref['what']}: MPJPE {ref['MPJPE']:.1f} mm, PA-MPJPE {ref['PA_MPJPE']:.1f} mm")
        print(
            f"crop-only floor: the exact pose in the frame of the ray through the pelvis (mean angle {ref['ray_angle_deg_mean']:.1f}°, "
            f"max {ref['ray_angle_deg_max']:.1f}°), taken as the camera-frame pose: MPJPE {ref['ray_frame_MPJPE']:.1f} mm"
        )
    fig = convergence_figure(conv_records, conv_summary)
    if fig is not None:
        display(fig)
        plt.close(fig)
