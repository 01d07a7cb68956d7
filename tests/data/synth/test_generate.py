"""`sahmr synth` on a tiny set: valid, deterministic, contacts real, no penetration, masks consistent."""

import json
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest
import torch

from sahmr.body.model_file import load_body_model_file, save_body_model, sha256_file
from sahmr.data.format import open_dataset
from sahmr.data.format.validate import validate_dataset
from sahmr.data.synth.generate import SynthParams, generate_dataset
from sahmr.data.synth.render import render_mask
from sahmr.data.synth.scenes import scene_from_dict
from sahmr.geometry.camera import project, transform
from tests.conftest import TINY_SYNTH as TINY


@pytest.fixture(scope="module")
def tiny(tiny_synth):
    return tiny_synth


def test_valid_and_split_by_scene(tiny):
    root, meta = tiny
    errors = [p for p in validate_dataset(root) if p.severity == "error"]
    assert not errors, errors
    ds = open_dataset(root)
    assert ds.splits == {"train": 10, "test": 6}
    train_scenes = set(np.asarray(ds.split("train")["scene_id"]).tolist())
    test_scenes = set(np.asarray(ds.split("test")["scene_id"]).tolist())
    assert train_scenes and test_scenes and not train_scenes & test_scenes


def test_deterministic(tiny, open_model_path, tmp_path):
    root, meta = tiny
    again = generate_dataset(tmp_path / "again", SynthParams(**TINY), open_model_path, workers=1, progress=False)
    assert again["content_hash"] == meta["content_hash"]


def test_contacts_within_7cm_and_no_penetration(tiny):
    root, _ = tiny
    ds = open_dataset(root)
    for split in ds.splits:
        arr = ds.split(split)
        scenes = {}
        for i in range(arr.n_frames):
            sid = str(arr["scene_id"][i])
            if sid not in scenes:
                scenes[sid] = scene_from_dict(ds.scene_info(sid)["meta"]["scene"])
            sdf = scenes[sid].sdf(np.asarray(arr["verts_world"][i], np.float64))  # exact, analytic
            contact = np.asarray(arr["contact"][i])
            assert contact.any(), f"frame {arr['frame_id'][i]} has no contact"
            assert np.all(sdf[contact] <= 0.07 + 1e-6) and np.all(sdf[~contact] > 0.07 - 1e-6)
            assert -sdf.min() < 0.02, f"penetration {-sdf.min():.3f} m in {arr['frame_id'][i]}"


def test_body_params_reproduce_vertices(tiny, open_model):
    root, _ = tiny
    arr = open_dataset(root).split("train")
    with torch.no_grad():
        out = open_model(
            betas=torch.as_tensor(np.array(arr["betas"])),
            body_pose=torch.as_tensor(np.array(arr["body_pose"])),
            global_orient=torch.as_tensor(np.array(arr["global_orient"])),
            transl=torch.as_tensor(np.array(arr["transl"])),
        )
    np.testing.assert_allclose(out.verts.numpy(), np.asarray(arr["verts_world"]), atol=2e-5)


def _rasterise(tris: np.ndarray, W: int, H: int) -> np.ndarray:
    """(H, W) mask of the pixel centres (integer coordinates, as OpenCV) inside any triangle (F, 3, 2)."""
    mask = np.zeros((H, W), bool)
    for a, b, c in tris:
        x0, y0 = np.maximum(np.ceil(np.minimum(np.minimum(a, b), c)), 0).astype(int)
        x1, y1 = np.floor(np.maximum(np.maximum(a, b), c)).astype(int)
        x1, y1 = min(x1, W - 1), min(y1, H - 1)
        if x1 < x0 or y1 < y0:
            continue
        X, Y = np.meshgrid(np.arange(x0, x1 + 1), np.arange(y0, y1 + 1))
        d = (b[1] - c[1]) * (a[0] - c[0]) + (c[0] - b[0]) * (a[1] - c[1])
        if abs(d) < 1e-12:
            continue
        l1 = ((b[1] - c[1]) * (X - c[0]) + (c[0] - b[0]) * (Y - c[1])) / d
        l2 = ((c[1] - a[1]) * (X - c[0]) + (a[0] - c[0]) * (Y - c[1])) / d
        inside = (l1 >= 0) & (l2 >= 0) & (1 - l1 - l2 >= 0)
        mask[Y[inside], X[inside]] = True
    return mask


def test_projected_mesh_matches_rendered_person_mask(tiny, open_model):
    """Rasterising the projected GT triangles (numpy, pixel centres) agrees with the ray-cast silhouette (IoU > 0.9)."""
    root, _ = tiny
    arr = open_dataset(root).split("train")
    faces = open_model.faces.numpy()
    import trimesh

    checked = 0
    for i in range(arr.n_frames):
        if bool(arr["truncated"][i]):
            continue
        K, T = np.asarray(arr["K"][i], np.float64), np.asarray(arr["T_world_to_cam"][i], np.float64)
        W, H = (int(x) for x in arr["image_size"][i])
        verts = np.asarray(arr["verts_world"][i], np.float64)
        uv = project(transform(T, verts), K)
        raster = _rasterise(uv[faces], W, H)
        if raster.sum() < 800:  # too small for a 1-pixel boundary tolerance to keep IoU meaningful
            continue
        mask = render_mask(trimesh.Trimesh(verts, faces, process=False), K, T, W, H)
        iou = (raster & mask).sum() / (raster | mask).sum()
        assert iou > 0.9, f"{arr['frame_id'][i]}: IoU {iou:.3f}"
        checked += 1
    assert checked >= 2


def test_other_body_model_or_code_is_regenerated_not_taken_as_complete(open_model_path, tmp_path, monkeypatch, capsys):
    """Same parameters, but another body-model file or other synth code: the finished dataset is stale and is
    regenerated (under `dvc repro` a code change re-runs the persisted stage, which found it "complete")."""
    from sahmr.data.synth import generate as G

    small = SynthParams(**dict(TINY, scenes={"train": 1, "val": 0, "test": 0}, frames_per_scene={"train": 3, "val": 0, "test": 0}))
    out = tmp_path / "ds"
    first = generate_dataset(out, small, open_model_path, workers=1, progress=False)
    generate_dataset(out, small, open_model_path, workers=1, progress=True)
    assert "nothing to do" in capsys.readouterr().out  # the same key: complete

    monkeypatch.setattr(G, "code_digest", lambda: "other code")
    again = generate_dataset(out, small, open_model_path, workers=1, progress=True)
    assert "nothing to do" not in capsys.readouterr().out
    assert again["content_hash"] == first["content_hash"]  # (the code did not really change)
    monkeypatch.undo()

    body = load_body_model_file(open_model_path)
    taller = type(body)(arrays={**body.arrays, "v_template": body.arrays["v_template"] * 1.02}, meta=dict(body.meta))
    other_body = save_body_model(taller, tmp_path / "taller.npz")
    third = generate_dataset(out, small, other_body, workers=1, progress=True)
    assert "nothing to do" not in capsys.readouterr().out
    assert third["content_hash"] != first["content_hash"]
    assert third["body_model"]["sha256"] == sha256_file(other_body)


def test_resume_after_interruption(open_model_path, tmp_path):
    """A run that died after its first scene resumes: finished scenes are kept, the result is the same."""
    from sahmr.data.synth import generate as G

    params = SynthParams(**TINY)
    reference = generate_dataset(tmp_path / "ref", params, open_model_path, workers=1, progress=False)
    out = tmp_path / "resumed"
    # Simulate the interrupted run: the parameter stamp and one finished scene, no dataset.json.
    (out / ".staging").mkdir(parents=True)
    digest = G.run_digest(params, sha256_file(open_model_path))
    (out / ".staging" / "params.json").write_text(json.dumps({"digest": digest, "params": asdict(params)}, default=list))
    G._init_worker(str(open_model_path))
    first = G.scene_jobs(params)[0]
    staged = G.generate_scene_frames(first, params, str(out))
    assert Path(staged).is_file()
    calls = []
    real = G.generate_scene_frames

    def spy(job, p, root):
        calls.append((job.index, Path(root, ".staging", f"{G.scene_id_of(job)}.npz").is_file()))
        return real(job, p, root)

    G.generate_scene_frames = spy
    try:
        meta = generate_dataset(out, params, open_model_path, workers=1, progress=False)
    finally:
        G.generate_scene_frames = real
    assert meta["content_hash"] == reference["content_hash"]
    assert calls[0] == (first.index, True)  # the finished scene was found, not regenerated
    assert not list((out / ".staging").glob("*.npz"))
    again = generate_dataset(out, params, open_model_path, workers=1, progress=False)  # complete: no work
    assert again["content_hash"] == reference["content_hash"]


def test_same_content_hash_under_other_threads_and_code_paths(open_model_path, tmp_path):
    """The dataset does not depend on the machine's thread count or BLAS/SIMD code path (one scene per split;
    the stand-ins of tests/body/test_open_model.py). Under MKL's AVX-512 kernels the float32 posing of the
    candidates differed in its last bits (now float64, rounded once when stored)."""
    import os
    import subprocess
    import sys

    from tests.body.test_open_model import CODE_PATHS

    root = Path(__file__).resolve().parents[3]
    small = dict(TINY, scenes={"train": 1, "val": 0, "test": 1}, frames_per_scene={"train": 4, "val": 0, "test": 3})
    hashes = {}
    for name, env in CODE_PATHS.items():
        threads = int(env.get("OMP_NUM_THREADS", 2))
        code = (
            f"import torch; torch.set_num_threads({threads})\n"
            "from sahmr.data.synth.generate import SynthParams, generate_dataset\n"
            f"m = generate_dataset({str(tmp_path / str(len(hashes)))!r}, SynthParams(**{small!r}), {str(open_model_path)!r},\n"
            "                     workers=1, progress=False)\n"
            "print(m['content_hash'])"
        )
        res = subprocess.run([sys.executable, "-c", code], cwd=root, env={**os.environ, **env}, check=True, capture_output=True, text=True)
        hashes[name] = res.stdout.split()[-1]
    assert len(set(hashes.values())) == 1, hashes
