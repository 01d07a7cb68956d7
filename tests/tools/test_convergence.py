"""benchmarks/convergence.py: the power-law fit and its goal budget (hand values), and a real resumable study
of RCNet on the tiny dataset read back by the report's table and figure."""

import json
import math

import pytest
import yaml

from sahmr.viz.results import convergence_figure, convergence_table, load_convergence
from tests.helpers.scripts import load_script


def _mod():
    return load_script("benchmarks/convergence.py")


def test_power_law_fit_and_steps_to_goal_hand_values():
    conv = _mod()
    steps = [25, 50, 100, 200, 400]
    err = [1000.0 * s**-0.5 for s in steps]  # 200, 141.4, 100, 70.7, 50
    a, b = conv.fit_power_law(steps, err)
    assert a == pytest.approx(1000.0) and b == pytest.approx(0.5)
    assert conv.steps_to_goal((a, b), 25.0, "lower") == pytest.approx(1600.0)  # 1000 / sqrt(1600) = 25
    iou = [0.01 * s**0.5 for s in steps]  # a rising metric: b < 0
    fit = conv.fit_power_law(steps, iou)
    assert fit[1] == pytest.approx(-0.5) and conv.steps_to_goal(fit, 0.3, "higher") == pytest.approx(900.0)
    # only the last 4 points count: a noisy first point does not bend the fit
    a2, b2 = conv.fit_power_law(steps, [5000.0, *err[1:]])
    assert (a2, b2) == (pytest.approx(1000.0), pytest.approx(0.5))
    assert conv.steps_to_goal((100.0, 0.0), 50.0, "lower") is None  # flat: never
    assert conv.steps_to_goal((100.0, -0.2), 50.0, "lower") is None  # getting worse: never
    assert conv.fit_power_law([25, 50], [3.0, 2.0]) is None  # too few points


def test_study_runs_resumes_and_reports(tiny_synth, tmp_path):
    conv = _mod()
    root, _ = tiny_synth
    params = tmp_path / "params.yaml"
    params.write_text(
        yaml.safe_dump(
            {
                "seed": 0,
                "preset": "cpu",
                "train_rcnet": {
                    "val_split": "test",
                    "batch_size": 2,
                    "val_batch_size": 3,
                    "limit_val_batches": 1,
                    "canonical_lr": 5e-4,
                    "canonical_bs": 2,
                    "dataset": {"max_scene_points": 8000},
                    "num_workers": 0,
                },
            }
        )
    )
    out, work = tmp_path / "out", tmp_path / "work"
    rec = conv.run_task("rcnet", [1, 2], params, root, work, out, [])
    assert [p["step"] for p in rec["points"]] == [1, 2] and [p["steps_this_call"] for p in rec["points"]] == [1, 1]
    first = json.loads((out / "rcnet.json").read_text())
    assert first["points"][1]["metrics"]["voxseg_iou"] == rec["points"][1]["metrics"]["voxseg_iou"]
    # resumed: only the new budget trains (from step 2), the measured points are kept as they were
    rec2 = conv.run_task("rcnet", [1, 2, 3], params, root, work, out, [])
    assert [p["step"] for p in rec2["points"]] == [1, 2, 3] and rec2["points"][:2] == first["points"]
    assert rec2["points"][2]["steps_this_call"] == 1 and rec2["points"][2]["samples_seen"] == 6
    summary = conv.summarize(out)
    m = summary["tasks"]["rcnet"]["metrics"]["pelvis_error_refined_mm"]
    assert m["last"] == rec2["points"][2]["metrics"]["pelvis_error_refined_mm"] and m["goal"] == 200.0
    assert all(math.isfinite(m[k]) for k in ("fit_a", "fit_b"))
    timed = conv.summarize(out, step_seconds={"rcnet": 2.0})  # s/step from bench_train instead of wall times
    assert timed["tasks"]["rcnet"]["s_per_step"] == 2.0 and timed["tasks"]["rcnet"]["s_per_step_source"].startswith("bench_train")
    for e in timed["tasks"]["rcnet"]["metrics"].values():
        if e.get("steps_to_goal") is not None:
            assert e["cpu_hours_to_goal"] == pytest.approx(e["steps_to_goal"] * 2.0 / 3600, abs=0.05)
            wall = timed["tasks"]["rcnet"]["wall_s_per_step"]  # the study's own clock, whatever the bench says
            assert wall == pytest.approx(rec2["points"][2]["wall_s"] / rec2["points"][2]["steps_this_call"], abs=1e-3)
            assert e["wall_hours_to_goal"] == pytest.approx(e["steps_to_goal"] * wall / 3600, abs=0.05)
    (out / "summary.json").write_text(json.dumps(summary))
    records, summary2 = load_convergence(out)
    assert set(records) == {"rcnet"} and summary2 == summary
    table = convergence_table(summary2)
    assert set(table["metric"]) == {"voxseg_iou", "pelvis_error_refined_mm"}  # the metrics with a goal
    fig = convergence_figure(records, summary2)
    assert fig is not None and len([ax for ax in fig.axes if ax.lines]) == 3
    with pytest.raises(FileNotFoundError, match="convergence_dir"):
        load_convergence(tmp_path / "nope")
    assert load_convergence("") == ({}, {})


def test_constant_pose_reference_equals_numpy(tiny_synth):
    import numpy as np

    from sahmr.data.format import open_dataset

    conv = _mod()
    root, _ = tiny_synth
    ref = conv.constant_pose_reference(root, "train", "test", 4)

    def rel(split):
        a = open_dataset(root).split(split)
        R = np.asarray(a["T_world_to_cam"], np.float64)[:, :3, :3]
        return np.einsum("nij,nkj->nki", R, np.asarray(a["joints14_world"]) - np.asarray(a["pelvis_world"])[:, None])

    gt, mean = rel("test")[:4], rel("train").mean(0)
    assert ref["num_val_samples"] == 4
    assert ref["MPJPE"] == pytest.approx(np.linalg.norm(gt - mean, axis=-1).mean() * 1000, rel=1e-9)
    assert 0 < ref["PA_MPJPE"] < ref["MPJPE"]  # the Procrustes fit can only lower it


def test_rotation_to_ray_maps_the_optical_axis_onto_the_ray():
    import numpy as np

    conv = _mod()
    pts = np.array([[0.0, 0.0, 3.0], [1.0, -0.5, 4.0], [-2.0, 1.0, 2.0]])
    R = conv.rotation_to_ray(pts)
    ray = pts / np.linalg.norm(pts, axis=1, keepdims=True)
    np.testing.assert_allclose(np.einsum("nij,j->ni", R, [0.0, 0.0, 1.0]), ray, atol=1e-12)
    np.testing.assert_allclose(np.einsum("nji,njk->nik", R, R), np.repeat(np.eye(3)[None], 3, 0), atol=1e-12)
    np.testing.assert_allclose(np.linalg.det(R), 1.0, atol=1e-12)
    np.testing.assert_allclose(R[0], np.eye(3))  # on the axis: no rotation


def test_summary_marks_flat_curves_instead_of_absurd_budgets(tmp_path):
    conv = _mod()

    def rec(err_of_step):
        pts = [
            {
                "step": s,
                "wall_s": s / 2,  # 1 s a step
                "steps_this_call": s // 2 or 1,
                "num_val_samples": 8,
                "metrics": {"pelvis_error_refined_mm": err_of_step(s)},
            }
            for s in (100, 200, 400, 800)
        ]
        return {"task": "rcnet", "points": pts}

    (tmp_path / "rcnet.json").write_text(json.dumps(rec(lambda s: 20000.0 * s**-0.5)))  # 707 mm at 800; 200 mm at 10,000 steps
    e = conv.summarize(tmp_path)["tasks"]["rcnet"]["metrics"]["pelvis_error_refined_mm"]
    assert e["steps_to_goal"] == 10000 and "note" not in e and e["cpu_hours_to_goal"] == pytest.approx(10000 / 3600, abs=0.05)
    half = conv.summarize(tmp_path, step_seconds={"rcnet": 0.5})["tasks"]["rcnet"]["metrics"]["pelvis_error_refined_mm"]
    assert half["cpu_hours_to_goal"] == pytest.approx(5000 / 3600, abs=0.05)  # the bare step's clock ...
    assert half["wall_hours_to_goal"] == pytest.approx(10000 / 3600, abs=0.05)  # ... and the loop's (1 s a step)
    (tmp_path / "rcnet.json").write_text(json.dumps(rec(lambda s: 400.0 * s**-0.02)))  # nearly flat: ~1e15 steps
    e = conv.summarize(tmp_path)["tasks"]["rcnet"]["metrics"]["pelvis_error_refined_mm"]
    assert e["steps_to_goal"] is None and e["cpu_hours_to_goal"] is None and e["wall_hours_to_goal"] is None and "beyond 100x" in e["note"]
