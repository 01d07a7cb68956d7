"""Notebooks executed by papermill on a tiny dataset: figures and tables present; missing input fails loudly."""

import json

import numpy as np
import pytest

from sahmr.viz.notebooks import NotebookError, parse_parameters, run_notebook
from sahmr.viz.plots import dataset_distributions
from sahmr.viz.scene3d import contact_points, scene_figure


def test_parse_parameters():
    assert parse_parameters(["a=1", "b=x", "c=[1, 2]", "d="]) == {"a": 1, "b": "x", "c": [1, 2], "d": ""}
    with pytest.raises(ValueError, match="key=value"):
        parse_parameters(["oops"])


def test_scene_figure_traces():
    v = np.random.default_rng(0).normal(size=(10, 3))
    fig = scene_figure(v, [{"verts": v, "faces": np.array([[0, 1, 2]]), "name": "m"}],
                       [contact_points(v, np.arange(10) < 3, np.array([1] * 10))])
    assert [t.type for t in fig.data] == ["scatter3d", "mesh3d", "scatter3d"]
    assert len(fig.data[2].x) == 3


def test_dataset_distributions_axes():
    n = 20
    fig = dataset_distributions({"distance": np.linspace(2, 7, n), "pose_class": np.array(["sit", "stand"] * 10),
                                 "contact_part": np.zeros((n, 5), np.uint8), "occlusion": np.zeros(n)})
    assert len(fig.axes) == 4


def test_dataset_notebook_runs_with_figures(tiny_synth, tmp_path):
    root, _ = tiny_synth
    written = run_notebook("dataset", tmp_path, {"data_dir": str(root), "n_samples": 4, "split": "train"})
    nb = json.loads(written["ipynb"].read_text())
    mimes = [set(o.get("data", {})) for c in nb["cells"] if c["cell_type"] == "code" for o in c.get("outputs", [])]
    assert any("application/vnd.plotly.v1+json" in m and "text/html" in m for m in mimes), "interactive 3D figure missing"
    assert sum("image/png" in m for m in mimes) >= 2, "montage and distribution figures missing"
    html = written["html"].read_text()
    assert "plotly" in html and "pose_class" in html and "data:image/png;base64" in html


def test_notebook_with_missing_data_fails_loudly(tmp_path):
    with pytest.raises(NotebookError, match=r"cell \d+: FileNotFoundError: no dataset at"):
        run_notebook("dataset", tmp_path / "out", {"data_dir": str(tmp_path / "nowhere")}, html=False)
    assert not (tmp_path / "out" / "dataset.ipynb").exists()
