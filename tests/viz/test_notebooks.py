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


def test_command_line_values_never_become_code():
    """`-p key=value` values are YAML scalars that papermill injects as Python literals: a value that looks like
    code stays a string (checked on papermill's own parameter cell), and a key must be a notebook parameter."""
    import ast

    import jupytext
    from papermill.translators import translate_parameters

    from sahmr.viz.notebooks import NOTEBOOK_DIR, notebook_parameters

    evil = "__import__('os').system('touch /tmp/sahmr-pwned')"
    params = parse_parameters([f"data_dir={evil}", "n_samples=3", "split=[1, 2]"])
    cell = translate_parameters("python3", "python", params, "Parameters")
    assigned = {n.targets[0].id: ast.literal_eval(n.value) for n in ast.parse(cell).body if isinstance(n, ast.Assign)}
    assert assigned == {"data_dir": evil, "n_samples": 3, "split": [1, 2]}  # literal_eval: plain data, nothing runs
    with pytest.raises(ValueError, match=r"-p n: .*not a plain value"):
        parse_parameters(["n=!!python/object/apply:os.system ['true']"])  # YAML tags that build objects are refused
    assert notebook_parameters(jupytext.read(NOTEBOOK_DIR / "dataset.py")) == ["body_model", "data_dir", "n_samples", "scene_id", "seed", "split"]


def test_scene_figure_traces():
    v = np.random.default_rng(0).normal(size=(10, 3))
    fig = scene_figure(v, [{"verts": v, "faces": np.array([[0, 1, 2]]), "name": "m"}], [contact_points(v, np.arange(10) < 3, np.array([1] * 10))])
    assert [t.type for t in fig.data] == ["scatter3d", "mesh3d", "scatter3d"]
    assert len(fig.data[2].x) == 3


def test_dataset_distributions_axes():
    n = 20
    fig = dataset_distributions(
        {
            "distance": np.linspace(2, 7, n),
            "pose_class": np.array(["sit", "stand"] * 10),
            "contact_part": np.zeros((n, 5), np.uint8),
            "occlusion": np.zeros(n),
        }
    )
    assert len(fig.axes) == 4


def test_dataset_notebook_runs_with_figures(tiny_synth, open_model_path, tmp_path):
    root, _ = tiny_synth
    written = run_notebook("dataset", tmp_path, {"data_dir": str(root), "n_samples": 4, "split": "train", "body_model": str(open_model_path)})
    nb = json.loads(written["ipynb"].read_text())
    mimes = [set(o.get("data", {})) for c in nb["cells"] if c["cell_type"] == "code" for o in c.get("outputs", [])]
    assert any("application/vnd.plotly.v1+json" in m and "text/html" in m for m in mimes), "interactive 3D figure missing"
    assert sum("image/png" in m for m in mimes) >= 3, "montage, distribution and per-scene figures missing"
    html = written["html"].read_text()
    assert "Plotly.newPlot" in html, "plotly.js figure not embedded in the HTML"
    assert "pose_class" in html and "data:image/png;base64" in html
    from sahmr.data.format import open_dataset

    for sid in set(open_dataset(root).split("train")["scene_id"].tolist()):
        assert sid in html, f"scene {sid} missing from the per-scene table"


def test_notebook_with_missing_data_fails_loudly(tmp_path):
    with pytest.raises(NotebookError, match=r"cell \d+: FileNotFoundError: no dataset at"):
        run_notebook("dataset", tmp_path / "out", {"data_dir": str(tmp_path / "nowhere")}, html=False)
    assert not (tmp_path / "out" / "dataset.ipynb").exists()


@pytest.fixture(scope="module")
def evaluated(tiny_synth, open_model_path, tmp_path_factory):
    """Two methods evaluated on the tiny test split: GT shifted 10 cm ("baseline") and GT + 2 cm noise."""
    from sahmr.cli import main
    from sahmr.data.format import open_dataset
    from sahmr.eval.predictions import Predictions, write_predictions

    root, _ = tiny_synth
    arr = open_dataset(root).split("test")
    T = np.asarray(arr["T_world_to_cam"], np.float64)
    cam = np.einsum("nij,nvj->nvi", T[:, :3, :3], np.asarray(arr["verts_world"], np.float64)) + T[:, None, :3, 3]
    out = tmp_path_factory.mktemp("evaluated")
    rng = np.random.default_rng(0)
    for name, verts in (("baseline", cam + [0, 0, 0.1]), ("noisy", cam + rng.normal(0, 0.02, cam.shape))):
        p = Predictions(frame_ids=np.asarray(arr["frame_id"]), body_model="sahmr-open", num_vertices=cam.shape[1], verts_cam=verts.astype(np.float32))
        write_predictions(out / f"{name}_test.npz", p)
        assert (
            main(
                [
                    "evaluate",
                    "--pred",
                    str(out / f"{name}_test.npz"),
                    "--data",
                    str(root),
                    "--split",
                    "test",
                    "--out",
                    str(out / "metrics" / f"{name}.json"),
                    "--body-model",
                    str(open_model_path),
                    "--quiet",
                ]
            )
            == 0
        )
    return root, out


def _outputs(nb):
    return [o for c in nb["cells"] if c["cell_type"] == "code" for o in c.get("outputs", [])]


def _dvclive_run(d, scale):
    """A real DVCLive folder with two metrics over 3 steps."""
    from dvclive import Live

    with Live(str(d), save_dvc_exp=False, dvcyaml=False, report=None) as live:  # never touch the repo's dvc.yaml
        for step in range(3):
            live.log_metric("train/loss", scale / (step + 1))
            live.log_metric("val/MPJPE", 100.0 * scale - step)
            live.next_step()
    return d


def test_report_notebook_table(evaluated, tmp_path):
    root, out = evaluated
    runs = {name: _dvclive_run(tmp_path / "runs" / name, s) for name, s in (("noisy", 1.0), ("baseline", 2.0))}
    written = run_notebook(
        "report",
        tmp_path,
        {"metrics_dir": str(out / "metrics"), "baseline": "baseline", "training_dirs": ",".join(f"{k}={v}" for k, v in runs.items())},
    )
    html = written["html"].read_text()
    for col in ("G-MPJPE", "G-MPVE", "MPJPE", "MPVE", "PA-MPJPE", "PenE", "ConFE", "Contact P", "Contact R", "Contact F1", "PelvisE", "Δ G-MPJPE"):
        assert col in html, col
    nb = json.loads(written["ipynb"].read_text())
    table = next(o["data"]["text/plain"] for o in _outputs(nb) if "text/plain" in o.get("data", {}) and "G-MPJPE" in "".join(o["data"]["text/plain"]))
    baseline_row = next(line for line in "".join(table).splitlines() if line.startswith("baseline"))
    assert "100.0" in baseline_row  # the 10 cm shift: G-MPJPE = 100 mm
    # distributions, errors by group, training curves
    assert sum("image/png" in o.get("data", {}) for o in _outputs(nb)) >= 3


def test_load_results_finds_models_by_their_frames_csv(evaluated, tmp_path):
    import shutil

    from sahmr.viz.results import load_results

    _, out = evaluated
    d = tmp_path / "metrics"
    shutil.copytree(out / "metrics", d)
    (d / "pene_breakdown.json").write_text("{}")  # an analysis beside the evaluations is not a model
    summaries, frames = load_results(d)
    assert sorted(summaries) == ["baseline", "noisy"] and sorted(set(frames["model"])) == ["baseline", "noisy"]
    (d / "noisy_frames.csv").unlink()
    assert sorted(load_results(d)[0]) == ["baseline"]
    with pytest.raises(FileNotFoundError, match="noisy_frames.csv"):  # asked for by name: still an error
        load_results(d, ["baseline", "noisy"])


def test_report_notebook_missing_inputs_fail_loudly(evaluated, tmp_path):
    root, out = evaluated
    with pytest.raises(NotebookError, match=r"cell \d+: .*nowhere"):
        run_notebook("report", tmp_path / "a", {"metrics_dir": str(tmp_path / "nowhere")}, html=False)
    with pytest.raises(NotebookError, match=r"cell \d+: FileNotFoundError: training run 'sahmr'.*no DVCLive metrics"):
        run_notebook(
            "report", tmp_path / "b", {"metrics_dir": str(out / "metrics"), "training_dirs": f"sahmr={tmp_path / 'missing_run'}"}, html=False
        )
    assert not (tmp_path / "a" / "report.ipynb").exists() and not (tmp_path / "b" / "report.ipynb").exists()


def test_failures_notebook(evaluated, open_model_path, tmp_path):
    root, out = evaluated
    written = run_notebook(
        "failures",
        tmp_path,
        {
            "data_dir": str(root),
            "split": "test",
            "pred_file": str(out / "noisy_test.npz"),
            "frames_csv": str(out / "metrics" / "noisy_frames.csv"),
            "k": 2,
            "body_model": str(open_model_path),
        },
    )
    nb = json.loads(written["ipynb"].read_text())
    outs = _outputs(nb)
    assert sum("application/vnd.plotly.v1+json" in o.get("data", {}) for o in outs) == 2  # one 3D view per frame
    assert sum("image/png" in o.get("data", {}) for o in outs) == 2  # one crop overlay per frame
    assert "precision" in written["html"].read_text()


def test_failures_notebook_missing_predictions(tiny_synth, tmp_path):
    root, _ = tiny_synth
    with pytest.raises(NotebookError, match="missing input .*nope.npz"):
        run_notebook("failures", tmp_path, {"data_dir": str(root), "pred_file": str(tmp_path / "nope.npz")}, html=False)
