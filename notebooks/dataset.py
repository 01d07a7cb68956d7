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
# # Dataset overview
# Sample frames, the distributions of distance, pose class, contact parts, occlusion and scenes, and an
# interactive 3D view of one scene with its people. Run by papermill per dataset
# (`sahmr report dataset --data <dir>`), or open it in JupyterLab (`make lab`).

# %% tags=["parameters"]
data_dir = "datasets/synth"
split = "train"
n_samples = 12
scene_id = ""  # empty: the scene with the most frames
seed = 0
body_model = ""  # name or .npz path; empty: the body model the dataset was made with

# %%
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import plotly.io as pio
from IPython.display import Image, display

from sahmr.data.format import open_dataset
from sahmr.data.preview import render_montage
from sahmr.viz.plots import dataset_distributions
from sahmr.viz.scene3d import contact_points, scene_figure

pio.renderers.default = "plotly_mimetype+notebook"  # embed plotly.js so figures survive the HTML export
if not Path(data_dir, "dataset.json").is_file():
    raise FileNotFoundError(f"no dataset at {data_dir!r} (dataset.json missing): run `sahmr synth` or pass data_dir")
ds = open_dataset(data_dir)
arr = ds.split(split)
print(f"{ds.name}: splits {ds.splits}, {len(ds.scenes)} scenes, body model {ds.meta['body_model']['name']} (V={ds.num_verts})")

# %% [markdown]
# ## Sample frames
# Projected GT mesh (white), contact vertices coloured by part, scene points in the box frustum (by depth).

# %%
montage = render_montage(data_dir, Path("build") / "notebooks" / f"{ds.name}-{split}-montage.png", split=split, n=n_samples, seed=seed)
display(Image(filename=str(montage)))

# %% [markdown]
# ## Distributions

# %%
cols = {k: np.asarray(arr[k]) for k in ("distance", "pose_class", "contact_part", "occlusion")}
fig = dataset_distributions(cols, title=f"{ds.name} / {split}: {arr.n_frames} frames")
display(fig)  # explicit: works whatever matplotlib backend the kernel inherited
plt.close(fig)

# %%
import pandas as pd

table = pd.DataFrame(
    {
        "pose_class": cols["pose_class"],
        "distance": cols["distance"],
        "occlusion": cols["occlusion"],
        "truncated": np.asarray(arr["truncated"]),
        "scene": np.asarray(arr["scene_id"]),
    }
)
table.groupby("pose_class").agg(
    frames=("distance", "size"), distance_m=("distance", "mean"), occlusion=("occlusion", "mean"), truncated=("truncated", "mean")
).round(3)

# %% [markdown]
# ## Scenes: frames per scene and pose class

# %%
per_scene = pd.crosstab(table["scene"], table["pose_class"])
fig, ax = plt.subplots(figsize=(9, max(2.5, 0.22 * len(per_scene))))
per_scene.plot.barh(stacked=True, ax=ax, width=0.8)
ax.set_xlabel("frames")
ax.set_ylabel("scene")
ax.legend(fontsize=7, ncol=4)
fig.tight_layout()
display(fig)
plt.close(fig)
table.groupby("scene").agg(
    frames=("distance", "size"),
    distance_m=("distance", "mean"),
    occlusion=("occlusion", "mean"),
    truncated=("truncated", "mean"),
    pose_classes=("pose_class", "nunique"),
).round(3)

# %% [markdown]
# ## A scene with its people (interactive: drag to rotate, click legend entries to toggle)

# %%
scenes, counts = np.unique(table["scene"], return_counts=True)
sid = scene_id or str(scenes[np.argmax(counts)])
rows = np.flatnonzero(table["scene"].to_numpy() == sid)
where = np.asarray(arr["transl"] if "transl" in arr.keys() else arr["pelvis_world"])[rows]  # real test splits: no params
_, first = np.unique(np.round(where, 4), axis=0, return_index=True)  # one per placed person
rows = rows[np.sort(first)][:8]
from sahmr.body.model import BodyModel

body = BodyModel.load(body_model or ds.meta["body_model"]["name"])
meshes = [
    {"verts": np.asarray(arr["verts_world"][i]), "faces": body.faces.numpy(), "name": f"{arr['frame_id'][i]} ({arr['pose_class'][i]})"} for i in rows
]
pts = [
    contact_points(
        np.asarray(arr["verts_world"][i]), np.asarray(arr["contact"][i]), np.asarray(arr["contact_part"][i]), name=f"contacts {arr['frame_id'][i]}"
    )
    for i in rows
]
scene_figure(ds.scene_points(sid), meshes, pts, title=f"scene {sid}: {len(rows)} people").show()
