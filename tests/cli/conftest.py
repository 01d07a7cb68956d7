"""The valid world the bad-input cases break one piece of: a body model, a dataset, checkpoints, a params file,
predictions and one user frame (image, scene, camera), plus a factory of broken files."""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
import torch


@dataclass
class World:
    root: Path  # everything below is snapshotted before and after each case
    body: Path
    data: Path
    rcnet: Path
    ckpt: Path
    params: Path
    pred: Path
    image: Path
    scene: Path
    camera: Path
    box: str
    frame_ids: list[str] = field(default_factory=list)
    keypoints: Path | None = None  # a valid 2D keypoints file of the test split (sahmr fit's input)
    outputs: list[Path] = field(default_factory=list)  # the paths new() handed out (a case clears it)
    _n: int = 0

    def new(self, name: str) -> Path:
        """A path below root/out that does not exist yet (the case's output)."""
        self._n += 1
        path = self.root / "out" / f"{self._n:03d}-{name}"
        self.outputs.append(path)
        return path

    def bad(self, kind: str, like: Path | None = None, suffix: str | None = None) -> Path:
        """A broken stand-in for ``like``: missing, empty, garbage, truncated (first 40 % of its bytes), dir (a
        folder), text (a JSON object where binary data is expected); with ``like``'s suffix."""
        self._n += 1
        suffix = suffix if suffix is not None else (like.suffix if like is not None else ".bin")
        p = self.root / "bad" / f"{self._n:03d}-{kind}{suffix}"
        p.parent.mkdir(parents=True, exist_ok=True)
        if kind == "missing":
            return p
        if kind == "empty":
            p.write_bytes(b"")
        elif kind == "garbage":
            p.write_bytes(bytes(range(256)) * 7)
        elif kind == "truncated":
            raw = like.read_bytes()
            p.write_bytes(raw[: max(1, int(len(raw) * 0.4))])
        elif kind == "dir":
            p.mkdir()
            (p / "inside.txt").write_text("x")
        elif kind == "text":
            p.write_text(json.dumps({"hello": "world"}))
        else:
            raise ValueError(kind)
        return p

    def npy(self, array, name="array.npy") -> Path:
        self._n += 1
        p = self.root / "bad" / f"{self._n:03d}-{name}"
        p.parent.mkdir(parents=True, exist_ok=True)
        np.save(p, array, allow_pickle=False)
        return p

    def write(self, name: str, text: str) -> Path:
        self._n += 1
        p = self.root / "bad" / f"{self._n:03d}-{name}"
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
        return p

    def copy_of(self, src: Path, name: str) -> Path:
        self._n += 1
        p = self.root / "bad" / f"{self._n:03d}-{name}"
        p.parent.mkdir(parents=True, exist_ok=True)
        (shutil.copytree if src.is_dir() else shutil.copyfile)(src, p)
        return p

    def snapshot(self) -> dict[str, tuple[int, int]]:
        """(size, mtime_ns) of every file and folder below root (folders: their entry count)."""
        snap = {}
        for dirpath, dirnames, filenames in os.walk(self.root):
            rel = os.path.relpath(dirpath, self.root)
            snap[rel + "/"] = (len(dirnames) + len(filenames), 0)
            for f in filenames:
                st = os.stat(os.path.join(dirpath, f), follow_symlinks=False)
                snap[os.path.join(rel, f)] = (st.st_size, st.st_mtime_ns)
        return snap


@pytest.fixture(scope="session")
def world(tiny_synth, open_model_path, tmp_path_factory) -> World:
    from PIL import Image

    from sahmr.data.format import DatasetReader
    from sahmr.eval.predictions import Predictions, write_predictions
    from sahmr.models.rcnet import RCNet, RCNetConfig
    from sahmr.train.sahmr_task import SAHMRTask

    root = tmp_path_factory.mktemp("bad-input-world")
    body = root / "body" / open_model_path.name
    body.parent.mkdir()
    shutil.copyfile(open_model_path, body)
    shutil.copyfile(open_model_path.with_suffix(".json"), body.with_suffix(".json"))
    data = root / "data"
    shutil.copytree(tiny_synth[0], data)

    torch.manual_seed(0)
    rcnet = root / "ckpt" / "rcnet.ckpt"
    rcnet.parent.mkdir()
    torch.save(RCNet(RCNetConfig.preset("cpu")).state_dict(), rcnet)
    params = root / "params.yaml"
    section = f"  rcnet_ckpt: {rcnet}\n  body_model: {body}\n  val_split: test\n"  # the tiny set has no val split
    params.write_text(f"preset: cpu\ntrain_sahmr:\n{section}train_baseline:\n{section}train_rcnet:\n  val_split: test\n")
    task = SAHMRTask.from_params({"preset": "cpu", "rcnet_ckpt": str(rcnet), "body_model": str(body)})
    ckpt = root / "ckpt" / "final.ckpt"
    torch.save(task.build_model().state_dict(), ckpt)

    r = DatasetReader(data)
    a = r.split("test")
    ids = [str(x) for x in a["frame_id"]]
    pred = root / "pred.npz"
    write_predictions(
        pred,
        Predictions(
            frame_ids=np.array(ids),
            body_model=body.stem,
            num_vertices=int(a["verts_world"].shape[1]),
            verts_world=np.asarray(a["verts_world"], np.float32),
        ),
    )
    frame = root / "frame"
    frame.mkdir()
    image = frame / "image.png"
    with Image.open(r.image_file(str(a["image_path"][0]))) as im:
        im.save(image)
        w, h = im.size
    scene = frame / "scene.npy"
    np.save(scene, np.asarray(r.scene_points(str(a["scene_id"][0]))))
    camera = frame / "camera.json"
    camera.write_text(
        json.dumps({"K": np.asarray(a["K"][0]).tolist(), "T_world_to_cam": np.asarray(a["T_world_to_cam"][0]).tolist(), "image_size": [w, h]})
    )
    box = ",".join(f"{v:.1f}" for v in np.asarray(a["person_box_xyxy"][0], np.float64))
    from sahmr.refine.keypoints import KeypointNoise, synthetic_keypoints, write_keypoints

    keypoints = root / "keypoints.npz"
    g = {k: np.asarray(a[k]) for k in ("joints14_world", "T_world_to_cam", "K", "image_size", "frame_id")}
    write_keypoints(keypoints, synthetic_keypoints(g["joints14_world"], g["T_world_to_cam"], g["K"], g["image_size"], g["frame_id"], KeypointNoise()))
    return World(root, body, data, rcnet, ckpt, params, pred, image, scene, camera, box, ids, keypoints=keypoints)
