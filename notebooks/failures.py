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
# # Failure explorer
# The worst frames of one method by a chosen metric: the crop with the projected predicted (red) and
# GT (green) meshes — and, with `compare_pred_file`, a second prediction such as the refined one (blue) —
# an interactive 3D view (scene points, the meshes, contacts, pelvis; click the legend to toggle), and
# per-part contact errors. Change `metric`, `k` or `frame_id` and re-run.

# %% tags=["parameters"]
data_dir = "datasets/synth"
split = "test"
pred_file = "predictions/sahmr_test.npz"
frames_csv = "reports/metrics/sahmr_frames.csv"
metric = "g_mpve"
k = 4
frame_id = ""  # non-empty: explore this frame instead of the worst k
body_model = ""  # name or .npz path; empty: the body model the dataset was made with
compare_pred_file = ""  # a second predictions file shown beside (blue), e.g. the refined predictions; "" = none

# %%
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import plotly.io as pio
from IPython.display import display

from sahmr.body.model import BodyModel
from sahmr.body.parts import PART_NAMES
from sahmr.data.format import open_dataset
from sahmr.eval.predictions import read_predictions
from sahmr.geometry.camera import transform
from sahmr.viz.frames import crop_overlay, frame_scene_figure, per_part_contact, predicted_contact, world_from_cam

pio.renderers.default = "plotly_mimetype+notebook"
pd.set_option("display.max_columns", 60)
pd.set_option("display.width", 250)
for p in (Path(data_dir, "dataset.json"), Path(pred_file), Path(frames_csv)):
    if not p.is_file():
        raise FileNotFoundError(f"missing input {p}: run the pipeline (make repro) or pass the parameter")
ds = open_dataset(data_dir)
arr = ds.split(split)
pred = read_predictions(pred_file, expected_num_vertices=ds.num_verts)
frames = pd.read_csv(frames_csv)
if metric not in frames.columns:
    raise KeyError(f"metric {metric!r} not in {frames_csv}; columns: {list(frames.columns)}")
body = BodyModel.load(body_model or ds.meta["body_model"]["name"])
faces, part_ids = body.faces.numpy(), body.part_ids.numpy()
pred_index = {str(f): i for i, f in enumerate(pred.frame_ids)}
other = read_predictions(compare_pred_file, expected_num_vertices=ds.num_verts) if compare_pred_file else None
other_index = {str(f): i for i, f in enumerate(other.frame_ids)} if other is not None else {}

# %%
worst = frames.sort_values(metric, ascending=False)
chosen = [frame_id] if frame_id else worst["frame_id"].head(k).tolist()
shown = ["frame_id", "scene_id", "pose_class", "distance", "occlusion", "g_mpjpe", "g_mpve", "mpjpe", "pene", "confe", "contact_f1"]
cols = [c for c in shown if c in frames.columns]
frames.set_index("frame_id").loc[chosen].reset_index()[cols].round(3)


# %%
def views(fid):
    _, i = ds.frame_index(fid)
    T, K = np.asarray(arr["T_world_to_cam"][i], np.float64), np.asarray(arr["K"][i], np.float64)
    gt_world = np.asarray(arr["verts_world"][i], np.float64)
    j = pred_index[fid]
    pred_world = np.asarray(pred.verts_world[j], np.float64) if pred.verts_world is not None else world_from_cam(T, pred.verts_cam[j])
    return i, T, K, gt_world, pred_world


def other_world(fid, T):
    """The comparison prediction of frame fid in the world frame, or None."""
    if other is None or fid not in other_index:
        return None
    j = other_index[fid]
    return np.asarray(other.verts_world[j], np.float64) if other.verts_world is not None else world_from_cam(T, other.verts_cam[j])


part_rows = []
for fid in chosen:
    i, T, K, gt_world, pred_world = views(fid)
    sid = str(arr["scene_id"][i])
    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    crop_overlay(
        ax,
        ds.image(split, i),
        K,
        np.asarray(arr["person_box_xyxy"][i]),
        [(transform(T, gt_world), "#2ca02c", "GT"), (transform(T, pred_world), "#d62728", "predicted")]
        + ([(transform(T, ow), "#1f77b4", Path(compare_pred_file).stem)] if (ow := other_world(fid, T)) is not None else []),
    )
    row = frames.set_index("frame_id").loc[fid]
    ax.set_title(f"{fid}  {metric} = {row[metric]:.1f}", fontsize=9)
    display(fig)
    plt.close(fig)
    pc = predicted_contact(pred_world, ds.scene_sdf(sid))
    gc = np.asarray(arr["contact"][i])
    part_rows += [dict(frame_id=fid, **r) for r in per_part_contact(pc, gc, part_ids, PART_NAMES)]
    gt_pelvis, _ = np.asarray(arr["pelvis_world"][i]), None
    pred_pelvis = (body.eval_regressor.numpy().astype(np.float64) @ pred_world)[0]
    frame_scene_figure(
        ds.scene_points(sid),
        faces,
        gt_world,
        pred_world,
        gc,
        np.asarray(arr["contact_part"][i]),
        pc,
        gt_pelvis,
        pred_pelvis,
        title=f"{fid} ({arr['pose_class'][i]}, scene {sid})",
        other_world=ow,
        other_name=Path(compare_pred_file).stem if compare_pred_file else "",
    ).show()

# %% [markdown]
# ## Per-part contact errors of these frames
# Predicted contact = predicted vertex within 7 cm of the scene surface (as the metrics).

# %%
pd.DataFrame(part_rows).round(3)
