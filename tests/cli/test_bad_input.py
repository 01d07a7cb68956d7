"""Every `sahmr` subcommand, driven through the real CLI (`main([...])`), with one input broken at a time:
missing / empty / garbage / truncated files, folders where files are expected (and back), wrong dtype or
shape, NaN/Inf, unknown ids, out-of-range and misspelt parameters, unwritable outputs.

Each case asserts: a non-zero documented exit code (2: the user's input; argparse's usage errors are 2
too), one message naming the culprit (the file, option or key), no traceback, and the filesystem unchanged
(the valid inputs untouched, the output not created).
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import re
import shutil
from collections.abc import Callable
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from sahmr.cli import main

from .conftest import World

FILE_KINDS = ("missing", "empty", "garbage", "truncated", "dir")
UNWRITABLE = "/proc/sahmr-cannot-write-here/out"  # not creatable, even for root


@dataclass(frozen=True)
class Case:
    id: str
    build: Callable[[World], tuple[list[str], str]]  # world -> (argv, regex the error line must match)


CASES: list[Case] = []
SEEN: set[str] = set()  # ids run in this session
SEEN_COMMANDS: set[str] = set()  # "evaluate", "data validate", ...


def add(id_: str, build) -> None:
    CASES.append(Case(id_, build))


def named(path) -> str:
    return re.escape(str(path))


# ------------------------------------------------------------------ file inputs, each broken five ways
FILE_SLOTS: dict[str, tuple[str, Callable]] = {
    # name: (attribute of World holding the valid file, argv with it replaced)
    "body-info-model": ("body", lambda w, f: ["body", "info", "--model", str(f)]),
    "body-preview-model": ("body", lambda w, f: ["body", "preview", "--model", str(f), "--out", str(w.new("p.png"))]),
    "body-import-file": ("body", lambda w, f: ["body", "import", str(f), "--out-dir", str(w.new("models"))]),
    "synth-body-model": ("body", lambda w, f: ["synth", "--body-model", str(f), "--out", str(w.new("synth")), "--quiet"]),
    "synth-params": ("params", lambda w, f: ["synth", "--params", str(f), "--out", str(w.new("synth")), "--body-model", str(w.body)]),
    "evaluate-pred": ("pred", lambda w, f: ["evaluate", "--pred", str(f), "--data", str(w.data), "--out", str(w.new("m.json"))]),
    "evaluate-body-model": (
        "body",
        lambda w, f: ["evaluate", "--pred", str(w.pred), "--data", str(w.data), "--body-model", str(f), "--out", str(w.new("m.json"))],
    ),
    "dump-ckpt": (
        "ckpt",
        lambda w, f: ["dump", "sahmr", "--ckpt", str(f), "--data", str(w.data), "--out", str(w.new("p.npz")), "--params", str(w.params)],
    ),
    "dump-params": (
        "params",
        lambda w, f: ["dump", "sahmr", "--ckpt", str(w.ckpt), "--data", str(w.data), "--out", str(w.new("p.npz")), "--params", str(f)],
    ),
    "train-params": ("params", lambda w, f: ["train", "sahmr", "--params", str(f), "--data", str(w.data), "--out", str(w.new("run"))]),
    "train-rcnet-ckpt": (
        "rcnet",
        lambda w, f: ["train", "sahmr", "--params", str(w.params), "-S", f"rcnet_ckpt={f}", "--data", str(w.data), "--out", str(w.new("run"))],
    ),
    "convert-src": ("ckpt", lambda w, f: ["convert", str(f), "--out", str(w.new("conv"))]),
    "refine-pred": (
        "pred",
        lambda w, f: ["refine", "--pred", str(f), "--data", str(w.data), "--out", str(w.new("r.npz")), "--body-model", str(w.body)],
    ),
    "refine-body-model": (
        "body",
        lambda w, f: ["refine", "--pred", str(w.pred), "--data", str(w.data), "--out", str(w.new("r.npz")), "--body-model", str(f)],
    ),
    "refine-params": (
        "params",
        lambda w, f: [
            "refine",
            "--pred",
            str(w.pred),
            "--data",
            str(w.data),
            "--out",
            str(w.new("r.npz")),
            "--body-model",
            str(w.body),
            "--params",
            str(f),
        ],
    ),
    "fit-keypoints": (
        "keypoints",
        lambda w, f: ["fit", "--keypoints", str(f), "--data", str(w.data), "--out", str(w.new("f.npz")), "--body-model", str(w.body)],
    ),
}
PREDICT_SLOTS = ("image", "scene", "camera", "ckpt", "params", "body")


def predict_argv(w: World, **replace) -> list[str]:
    files = {k: replace.get(k, getattr(w, k)) for k in PREDICT_SLOTS}
    argv = ["predict", "--image", str(files["image"]), "--scene", str(files["scene"]), "--camera", str(files["camera"])]
    argv += ["--box=" + replace.get("box", w.box), "--ckpt", str(files["ckpt"]), "--params", str(files["params"])]
    argv += ["--body-model", str(files["body"]), "--out", str(replace.get("out", w.new("pred")))]
    return argv + list(replace.get("extra", []))


for slot, (attr, make) in FILE_SLOTS.items():
    # a truncated YAML file can be a valid shorter one: no check can tell (its later errors name other things)
    for kind in FILE_KINDS if attr != "params" else ("missing", "empty", "garbage", "dir"):

        def build(w, attr=attr, make=make, kind=kind):
            f = w.bad(kind, like=getattr(w, attr))
            return make(w, f), named(f)

        add(f"{slot}-{kind}", build)

for slot in PREDICT_SLOTS:
    for kind in FILE_KINDS if slot != "params" else ("missing", "empty", "garbage", "dir"):

        def build(w, slot=slot, kind=kind):
            f = w.bad(kind, like=getattr(w, slot))
            return predict_argv(w, **{slot: f}), named(f)

        add(f"predict-{slot}-{kind}", build)

# dataset folders: missing, a file, an empty folder, a folder without dataset.json
DATA_SLOTS: dict[str, Callable] = {
    "data-validate": lambda w, d: ["data", "validate", str(d)],
    "data-upgrade": lambda w, d: ["data", "upgrade", str(d)],
    "data-preview": lambda w, d: ["data", "preview", str(d), "--out", str(w.new("p.png"))],
    "evaluate-data": lambda w, d: ["evaluate", "--pred", str(w.pred), "--data", str(d), "--out", str(w.new("m.json"))],
    "dump-data": lambda w, d: ["dump", "sahmr", "--ckpt", str(w.ckpt), "--data", str(d), "--out", str(w.new("p.npz")), "--params", str(w.params)],
    "train-data": lambda w, d: ["train", "sahmr", "--params", str(w.params), "--data", str(d), "--out", str(w.new("run"))],
    "import-rich-root": lambda w, d: ["import", "rich", str(d), "--out", str(w.new("rich")), "--body-model", str(w.body), "--quiet"],
    "import-prox-root": lambda w, d: ["import", "prox", str(d), "--out", str(w.new("prox")), "--body-model", str(w.body), "--quiet"],
}
for slot, make in DATA_SLOTS.items():
    for kind in ("missing", "file", "empty-dir", "no-meta"):

        def build(w, make=make, kind=kind):
            if kind == "missing":
                d = w.bad("missing", suffix="")
            elif kind == "file":
                d = w.bad("garbage", suffix="")
            elif kind == "empty-dir":
                d = w.bad("missing", suffix="")
                d.mkdir()
            else:
                d = w.copy_of(w.data, "nometa")
                (d / "dataset.json").unlink()
            return make(w, d), named(d)

        add(f"{slot}-{kind}", build)


# ------------------------------------------------------------------ corrupt dataset contents
def _dataset_with(w: World, edit) -> str:
    d = w.copy_of(w.data, "ds")
    edit(d)
    return d


DATASET_EDITS: dict[str, tuple[Callable, str]] = {
    # name: (edit of a copy of the dataset, what the message must name)
    "meta-garbage": (lambda d: (d / "dataset.json").write_bytes(b"\x00garbage"), "dataset.json"),
    "meta-empty": (lambda d: (d / "dataset.json").write_text(""), "dataset.json"),
    "meta-list": (lambda d: (d / "dataset.json").write_text("[1, 2]"), "dataset.json"),
    "K-empty": (lambda d: (d / "frames/test/K.npy").write_bytes(b""), "K.npy"),
    "K-truncated": (lambda d: (d / "frames/test/K.npy").write_bytes((d / "frames/test/K.npy").read_bytes()[:100]), "K.npy"),
    "K-missing": (lambda d: (d / "frames/test/K.npy").unlink(), "K.npy"),
    "verts-garbage": (lambda d: (d / "frames/test/verts_world.npy").write_bytes(b"\x93NUMPY garbage"), "verts_world"),
    "points-empty": (lambda d: next((d / "scenes").glob("test_*/points_world.npy")).write_bytes(b""), "points_world.npy"),
    "sdf-truncated": (lambda d: next((d / "scenes").glob("test_*/sdf.npz")).write_bytes(b"PK\x03\x04trunc"), "sdf.npz"),
    "vertsnan": (lambda d: _edit_npy(d / "frames/test/verts_world.npy", lambda a: a.__setitem__((1, 5, 0), np.nan)), "verts_world"),
    "pointsnan": (lambda d: _edit_npy(next((d / "scenes").glob("test_*/points_world.npy")), lambda a: a.__setitem__((7, 1), np.inf)), "points_world"),
    "Kshape": (lambda d: np.save(d / "frames/test/K.npy", np.zeros((len(np.load(d / "frames/test/K.npy")), 3, 4), np.float32)), "K"),
    "image-truncated": (
        lambda d: [p.write_bytes(p.read_bytes()[:200]) for p in sorted((d / "images" / "test").iterdir())],
        r"images/test/",
    ),
}


def _edit_npy(path, change) -> None:
    a = np.load(path).copy()
    change(a)
    np.save(path, a)


READ_BY = {  # who reads what: evaluation needs no image, K or scene points; only evaluation reads the SDF
    "K": ("dump", "data-preview"),
    "points": ("dump", "data-preview"),
    "pointsnan": ("dump", "train"),
    "vertsnan": ("evaluate", "dump", "train"),
    "Kshape": ("dump", "train", "data-preview"),
    "verts": ("evaluate", "dump", "train", "data-preview"),
    "image": ("dump", "data-preview"),
    "sdf": ("evaluate",),
}
DATASET_USERS: dict[str, Callable] = {
    "train": lambda w, d: ["train", "sahmr", "--params", str(w.params), "--data", str(d), "--out", str(w.new("run"))],
    "evaluate": lambda w, d: ["evaluate", "--pred", str(w.pred), "--data", str(d), "--out", str(w.new("m.json"))],
    "dump": lambda w, d: ["dump", "sahmr", "--ckpt", str(w.ckpt), "--data", str(d), "--out", str(w.new("p.npz")), "--params", str(w.params)],
    "data-preview": lambda w, d: ["data", "preview", str(d), "--split", "test", "--out", str(w.new("p.png"))],
}
for edit_name, (edit, culprit) in DATASET_EDITS.items():
    for user, make in DATASET_USERS.items():
        if user not in READ_BY.get(edit_name.split("-")[0], DATASET_USERS):
            continue  # a command is only expected to fail on what it reads

        def build(w, edit=edit, culprit=culprit, make=make):
            return make(w, _dataset_with(w, edit)), culprit

        add(f"dataset-{edit_name}-{user}", build)
    # validate reports these as problems: exit 1, the file named, no traceback

    def build_v(w, edit=edit, culprit=culprit):
        return ["data", "validate", str(_dataset_with(w, edit))], culprit

    add(f"dataset-{edit_name}-validate", build_v)


# ------------------------------------------------------------------ predictions contents
PRED_EDITS = {
    "nan-verts": lambda w, v: {"verts_world": np.where(np.arange(v.shape[1])[None, :, None] == 3, np.nan, v)},
    "inf-verts": lambda w, v: {"verts_world": np.full_like(v, np.inf)},
    "wrong-shape": lambda w, v: {"verts_world": v[:, :100]},
    "wrong-dtype": lambda w, v: {"verts_world": v.astype(np.int32)},
    "unknown-frames": lambda w, v: {"frame_ids": np.array([f"nope_{i}" for i in range(len(v))])},
    "duplicate-frames": lambda w, v: {"frame_ids": np.array([w.frame_ids[0]] * len(v))},
    "no-verts": lambda w, v: {"verts_world": None},
    "bad-version": lambda w, v: {"format_version": np.int64(99)},
    "bad-num-vertices": lambda w, v: {"num_vertices": np.int64(5)},
    "pickled-object": lambda w, v: {"frame_ids": np.array([object()] * len(v), dtype=object)},
}
for name, edit in PRED_EDITS.items():

    def build(w, edit=edit):
        from sahmr.eval.predictions import read_predictions

        v = read_predictions(w.pred).verts_world
        changes = edit(w, v)
        arrays = {k: a for k, a in read_predictions(w.pred).arrays().items()}
        for k, a in changes.items():
            if a is None:
                arrays.pop(k)
            else:
                arrays[k] = a
        w._n += 1
        bad = w.root / "bad" / f"{w._n:03d}-pred.npz"
        bad.parent.mkdir(parents=True, exist_ok=True)
        with open(bad, "wb") as f:
            np.savez(f, **arrays)
        return ["evaluate", "--pred", str(bad), "--data", str(w.data), "--out", str(w.new("m.json"))], named(bad)

    add(f"pred-{name}", build)


# ------------------------------------------------------------------ body-model contents
def _body_with(w: World, key: str, change) -> str:
    arrays = dict(np.load(w.body))
    arrays[key] = change(arrays[key].copy())
    w._n += 1
    path = w.root / "bad" / f"{w._n:03d}-body.npz"
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, **arrays)
    meta = json.loads(w.body.with_suffix(".json").read_text())
    meta["npz_sha256"] = hashlib.sha256(path.read_bytes()).hexdigest()  # a consistent pair: the contents are the fault
    path.with_suffix(".json").write_text(json.dumps(meta))
    return path


BODY_EDITS = {
    "weights-nan": ("weights", lambda a: np.where(np.arange(a.shape[0])[:, None] == 9, np.nan, a)),
    "shapedirs-inf": ("shapedirs", lambda a: np.full_like(a, np.inf)),
    "tree-parent-after-child": ("kintree_table", lambda a: (a.__setitem__((0, 4), 7), a)[1]),
    "tree-two-roots": ("kintree_table", lambda a: (a.__setitem__((0, 5), -1), a)[1]),
    "faces-out-of-range": ("f", lambda a: a + 100000),
}


def _body_pair_mismatch(w: World) -> Path:
    """The npz of a rebuild beside the JSON of the old file (a build killed between its two renames)."""
    path = _body_with(w, "v_template", lambda a: a * 1.01)
    meta = json.loads(w.body.with_suffix(".json").read_text())
    path.with_suffix(".json").write_text(json.dumps(meta))
    return path


add("body-info-pair-mismatch", lambda w: (lambda f: (["body", "info", "--model", str(f)], named(f)))(_body_pair_mismatch(w)))
add(
    "evaluate-body-pair-mismatch",
    lambda w: (
        lambda f: (["evaluate", "--pred", str(w.pred), "--data", str(w.data), "--body-model", str(f), "--out", str(w.new("m.json"))], named(f))
    )(_body_pair_mismatch(w)),
)
for name, (key, change) in BODY_EDITS.items():
    add(
        f"body-info-{name}", lambda w, key=key, change=change: (lambda f: (["body", "info", "--model", str(f)], named(f)))(_body_with(w, key, change))
    )


# ------------------------------------------------------------------ predict inputs: contents and values
SCENE_ARRAYS = {
    "scene-1d": np.zeros(10, np.float32),
    "scene-4col": np.zeros((10, 4), np.float32),
    "scene-nan": np.full((10, 3), np.nan, np.float32),
    "scene-inf": np.full((10, 3), np.inf, np.float32),
    "scene-no-rows": np.zeros((0, 3), np.float32),
    "scene-str": np.array(["a", "b"]),
    "scene-complex": np.zeros((10, 3), np.complex64),
}
for name, arr in SCENE_ARRAYS.items():
    add(f"predict-{name}", lambda w, arr=arr: (lambda f: (predict_argv(w, scene=f), named(f)))(w.npy(arr, "scene.npy")))

CAMERAS = {
    "camera-no-K": {"T_world_to_cam": np.eye(4).tolist()},
    "camera-K-shape": {"K": [[500, 0], [0, 500]], "T_world_to_cam": np.eye(4).tolist()},
    "camera-K-nan": {"K": [[math.nan, 0, 100], [0, 500, 100], [0, 0, 1]], "T_world_to_cam": np.eye(4).tolist()},
    "camera-K-negative-f": {"K": [[-500, 0, 100], [0, 500, 100], [0, 0, 1]], "T_world_to_cam": np.eye(4).tolist()},
    "camera-T-not-rigid": {"K": [[500, 0, 100], [0, 500, 100], [0, 0, 1]], "T_world_to_cam": (2 * np.eye(4)).tolist()},
    "camera-T-str": {"K": [[500, 0, 100], [0, 500, 100], [0, 0, 1]], "T_world_to_cam": "identity"},
    "camera-list": [1, 2, 3],
}
for name, cam in CAMERAS.items():

    def build(w, cam=cam):

        f = w.write("camera.json", json.dumps(cam).replace("NaN", "NaN"))
        return predict_argv(w, camera=f), named(f)

    add(f"predict-{name}", build)

for name, box in {
    "box-3": "1,2,3",
    "box-5": "1,2,3,4,5",
    "box-text": "a,b,c,d",
    "box-empty-area": "100,100,50,50",
    "box-zero": "10,10,10,10",
    "box-nan": "nan,1,20,30",
    "box-inf": "0,0,inf,30",
    "box-outside": "100000,100000,100100,100100",
    "box-blank": "",
}.items():
    add(f"predict-{name}", lambda w, box=box: (predict_argv(w, box=box), "--box"))

for name, fmt in {"formats-stl": "stl", "formats-empty": "", "formats-typo": "ply,objj"}.items():
    add(f"predict-{name}", lambda w, fmt=fmt: (predict_argv(w, extra=["--formats", fmt]), "--formats"))

add("predict-out-is-file", lambda w: (lambda f: (predict_argv(w, out=f), named(f)))(w.bad("garbage", suffix=".txt")))
add("predict-out-unwritable", lambda w: (predict_argv(w, out=UNWRITABLE), "sahmr-cannot-write-here"))
add("predict-model-unknown", lambda w: (predict_argv(w, extra=["--model", "metro"]), "--model"))
add("predict-S-typo", lambda w: (predict_argv(w, extra=["-S", "presett=cpu"]), "presett"))

# ------------------------------------------------------------------ parameters: misspelt keys, wrong types, ranges
PARAM_COMMANDS: dict[str, Callable] = {
    "synth": lambda w, s: ["synth", "--out", str(w.new("synth")), "--body-model", str(w.body), "--params", str(w.params), *s],
    "train-sahmr": lambda w, s: ["train", "sahmr", "--params", str(w.params), "--data", str(w.data), "--out", str(w.new("run")), *s],
    "train-rcnet": lambda w, s: ["train", "rcnet", "--params", str(w.params), "--data", str(w.data), "--out", str(w.new("run")), *s],
    "dump": lambda w, s: ["dump", "sahmr", "--ckpt", str(w.ckpt), "--data", str(w.data), "--out", str(w.new("p.npz")), "--params", str(w.params), *s],
    "build-open": lambda w, s: ["body", "build-open", "--out", str(w.new("open.npz")), "--params", str(w.params), *s],
    "refine": lambda w, s: [
        "refine",
        "--pred",
        str(w.pred),
        "--data",
        str(w.data),
        "--out",
        str(w.new("r.npz")),
        "--body-model",
        str(w.body),
        "--params",
        str(w.params),
        *s,
    ],
    "fit": lambda w, s: [
        "fit",
        "--keypoints",
        str(w.keypoints),
        "--data",
        str(w.data),
        "--out",
        str(w.new("f.npz")),
        "--body-model",
        str(w.body),
        "--params",
        str(w.params),
        *s,
    ],
    "keypoints": lambda w, s: ["keypoints", "--data", str(w.data), "--out", str(w.new("k.npz")), "--params", str(w.params), *s],
}
BAD_SETTINGS: dict[str, dict[str, tuple[str, str]]] = {
    # command: {case: (-S setting, culprit)}
    "synth": {
        "typo": ("sede=1", "sede"),
        "type": ("seed=abc", "seed"),
        "neg-frames": ("frames_per_scene.train=-3", "frames_per_scene"),
        "zero-image": ("image_size=[0,0]", "image_size"),
        "nan-noise": ("noise_std=.nan", "noise_std"),
        "unknown-split": ("scenes.trian=2", "trian"),
        "occlusion-range": ("max_occlusion=1.5", "max_occlusion"),
    },
    "train-sahmr": {
        "typo": ("epochz=5", "epochz"),
        "type": ("epochs=many", "epochs"),
        "neg-lr": ("lr=-0.1", "lr"),
        "zero-batch": ("batch_size=0", "batch_size"),
        "nan-lr": ("lr=.nan", "lr"),
        "preset": ("preset=huge", "preset"),
        "nested-typo": ("loss_weights.vertz=1", "vertz"),
    },
    "train-rcnet": {
        "typo": ("epoch=5", "epoch"),
        "zero-batch": ("batch_size=0", "batch_size"),
        "neg-epochs": ("epochs=-1", "epochs"),
        "val-split": ("val_split=nope", "nope"),
    },
    "dump": {"typo": ("presett=cpu", "presett"), "preset": ("preset=huge", "preset")},
    "build-open": {"typo": ("n_bodys=3", "n_bodys"), "type": ("seed=x", "seed"), "zero": ("n_bodies=0", "n_bodies")},
    "refine": {
        "typo": ("iterz=5", "iterz"),
        "type": ("iters=many", "iters"),
        "nested-typo": ("weights.penetraton=1", "penetraton"),
        "neg-lr": ("lr=-1", "lr"),
        "nan-lr": ("lr=.nan", "lr"),
        "neg-weight": ("weights.contact=-1", "contact"),
        "contact-source": ("contact_source=gt", "contact_source"),
        "prior-split": ("prior_split=nope", "nope"),
    },
    "fit": {"typo": ("yaw=2", "yaw"), "zero-yaws": ("yaw_candidates=0", "yaw_candidates"), "sigma": ("keypoint_sigma_px=0", "keypoint_sigma_px")},
    "keypoints": {"dropout": ("dropout=1.5", "dropout"), "noise": ("noise_px=-1", "noise_px"), "typo": ("noise=3", "noise")},
}
for cmd, settings in BAD_SETTINGS.items():
    for name, (setting, culprit) in settings.items():
        add(f"params-{cmd}-{name}", lambda w, cmd=cmd, setting=setting, culprit=culprit: (PARAM_COMMANDS[cmd](w, ["-S", setting]), culprit))
    add(f"params-{cmd}-no-equals", lambda w, cmd=cmd: (PARAM_COMMANDS[cmd](w, ["-S", "seed"]), "seed"))

# params files themselves: broken YAML, a list, a section of the wrong type
PARAM_FILES = {
    "yaml-syntax": "preset: cpu\ntrain_sahmr: [unclosed\n",
    "yaml-list": "- 1\n- 2\n",
    "section-scalar": "preset: cpu\ntrain_sahmr: 5\nsynth: 5\ntrain_rcnet: 5\nbody_open: 5\nrefine: 5\nfit: 5\nkeypoints: 5\n",
    "tabs": "preset: cpu\ntrain_sahmr:\n\tlr: 1\n",
}
for name, text in PARAM_FILES.items():
    for cmd in PARAM_COMMANDS:
        add(
            f"params-file-{name}-{cmd}",
            lambda w, cmd=cmd, text=text: (lambda f: (PARAM_COMMANDS[cmd](w, []) + ["--params", str(f)], named(f)))(w.write("params.yaml", text)),
        )

# ------------------------------------------------------------------ plain option values
VALUES = {
    "evaluate-unknown-split": (
        lambda w: ["evaluate", "--pred", str(w.pred), "--data", str(w.data), "--split", "tset", "--out", str(w.new("m.json"))],
        "tset",
    ),
    "refine-unknown-split": (
        lambda w: [
            "refine",
            "--pred",
            str(w.pred),
            "--data",
            str(w.data),
            "--split",
            "tset",
            "--out",
            str(w.new("r.npz")),
            "--body-model",
            str(w.body),
        ],
        "tset",
    ),
    "refine-bad-device": (
        lambda w: [
            "refine",
            "--pred",
            str(w.pred),
            "--data",
            str(w.data),
            "--device",
            "nonsense",
            "--out",
            str(w.new("r.npz")),
            "--body-model",
            str(w.body),
        ],
        "--device",
    ),
    "refine-unwritable-out": (
        lambda w: ["refine", "--pred", str(w.pred), "--data", str(w.data), "--out", UNWRITABLE + ".npz", "--body-model", str(w.body)],
        "--out",
    ),
    "fit-unknown-split": (
        lambda w: [
            "fit",
            "--keypoints",
            str(w.keypoints),
            "--data",
            str(w.data),
            "--split",
            "tset",
            "--out",
            str(w.new("f.npz")),
            "--body-model",
            str(w.body),
        ],
        "tset",
    ),
    "keypoints-unknown-split": (lambda w: ["keypoints", "--data", str(w.data), "--split", "tset", "--out", str(w.new("k.npz"))], "tset"),
    "dump-unknown-split": (
        lambda w: [
            "dump",
            "sahmr",
            "--ckpt",
            str(w.ckpt),
            "--data",
            str(w.data),
            "--split",
            "tset",
            "--out",
            str(w.new("p.npz")),
            "--params",
            str(w.params),
        ],
        "tset",
    ),
    "dump-batch-zero": (
        lambda w: [
            "dump",
            "sahmr",
            "--ckpt",
            str(w.ckpt),
            "--data",
            str(w.data),
            "--out",
            str(w.new("p.npz")),
            "--params",
            str(w.params),
            "--batch-size",
            "0",
        ],
        "--batch-size",
    ),
    "dump-batch-neg": (
        lambda w: [
            "dump",
            "sahmr",
            "--ckpt",
            str(w.ckpt),
            "--data",
            str(w.data),
            "--out",
            str(w.new("p.npz")),
            "--params",
            str(w.params),
            "--batch-size",
            "-4",
        ],
        "--batch-size",
    ),
    "dump-task-unknown": (lambda w: ["dump", "metro", "--ckpt", str(w.ckpt), "--data", str(w.data), "--out", str(w.new("p.npz"))], "metro"),
    "dump-out-unwritable": (
        lambda w: ["dump", "sahmr", "--ckpt", str(w.ckpt), "--data", str(w.data), "--out", UNWRITABLE, "--params", str(w.params)],
        "sahmr-cannot-write-here",
    ),
    "dump-out-is-dir": (
        lambda w: ["dump", "sahmr", "--ckpt", str(w.ckpt), "--data", str(w.data), "--out", str(w.bad("dir")), "--params", str(w.params)],
        "--out",
    ),
    "train-task-unknown": (lambda w: ["train", "metro", "--params", str(w.params), "--data", str(w.data), "--out", str(w.new("run"))], "metro"),
    "train-out-unwritable": (
        lambda w: ["train", "sahmr", "--params", str(w.params), "--data", str(w.data), "--out", UNWRITABLE],
        "sahmr-cannot-write-here",
    ),
    "train-out-is-file": (
        lambda w: (lambda f: ["train", "sahmr", "--params", str(w.params), "--data", str(w.data), "--out", str(f)])(w.bad("garbage")),
        "--out",
    ),
    "evaluate-out-unwritable": (
        lambda w: ["evaluate", "--pred", str(w.pred), "--data", str(w.data), "--out", UNWRITABLE + ".json"],
        "sahmr-cannot-write-here",
    ),
    "evaluate-out-is-dir": (lambda w: ["evaluate", "--pred", str(w.pred), "--data", str(w.data), "--out", str(w.bad("dir"))], "--out"),
    "evaluate-frames-out-unwritable": (
        lambda w: ["evaluate", "--pred", str(w.pred), "--data", str(w.data), "--out", str(w.new("m.json")), "--frames-out", UNWRITABLE + ".csv"],
        "sahmr-cannot-write-here",
    ),
    "synth-workers-zero": (lambda w: ["synth", "--out", str(w.new("s")), "--body-model", str(w.body), "--workers", "0"], "--workers"),
    "synth-scale-zero": (lambda w: ["synth", "--out", str(w.new("s")), "--body-model", str(w.body), "--scale", "0"], "--scale"),
    "synth-scale-nan": (lambda w: ["synth", "--out", str(w.new("s")), "--body-model", str(w.body), "--scale", "nan"], "--scale"),
    "synth-scale-neg": (lambda w: ["synth", "--out", str(w.new("s")), "--body-model", str(w.body), "--scale", "-1"], "--scale"),
    "synth-out-is-file": (lambda w: (lambda f: ["synth", "--out", str(f), "--body-model", str(w.body)])(w.bad("garbage")), "not a folder"),
    "synth-out-user-files": (lambda w: ["synth", "--out", str(w.bad("dir")), "--body-model", str(w.body)], "inside.txt"),
    "synth-out-unwritable": (lambda w: ["synth", "--out", UNWRITABLE, "--body-model", str(w.body)], "sahmr-cannot-write-here"),
    "preview-n-zero": (lambda w: ["data", "preview", str(w.data), "--n", "0", "--out", str(w.new("p.png"))], "--n"),
    "preview-n-neg": (lambda w: ["data", "preview", str(w.data), "--n", "-2", "--out", str(w.new("p.png"))], "--n"),
    "preview-split": (lambda w: ["data", "preview", str(w.data), "--split", "nope", "--out", str(w.new("p.png"))], "nope"),
    "preview-out-unwritable": (lambda w: ["data", "preview", str(w.data), "--out", UNWRITABLE + ".png"], "sahmr-cannot-write-here"),
    "preview-out-is-dir": (lambda w: ["data", "preview", str(w.data), "--out", str(w.bad("dir"))], "--out"),
    "validate-max-listed": (lambda w: ["data", "validate", str(w.data), "--max-listed", "-1"], "--max-listed"),
    "body-preview-out-unwritable": (lambda w: ["body", "preview", "--model", str(w.body), "--out", UNWRITABLE + ".png"], "sahmr-cannot-write-here"),
    "body-info-unknown-name": (lambda w: ["body", "info", "--model", "no_such_model"], "no_such_model"),
    "body-import-assets-missing": (
        lambda w: ["body", "import", str(w.body), "--assets", str(w.bad("missing", suffix="")), "--out-dir", str(w.new("m"))],
        "--assets",
    ),
    "body-import-gender": (lambda w: ["body", "import", str(w.body), "--gender", "other"], "--gender"),
    "build-open-out-unwritable": (
        lambda w: ["body", "build-open", "--out", UNWRITABLE + ".npz", "--params", str(w.params)],
        "sahmr-cannot-write-here",
    ),
    "import-rich-splits": (lambda w: ["import", "rich", str(w.data), "--splits", "test,tset", "--out", str(w.new("r"))], "tset"),
    "import-rich-limit": (lambda w: ["import", "rich", str(w.data), "--limit", "-1", "--out", str(w.new("r"))], "--limit"),
    "import-rich-interval": (lambda w: ["import", "rich", str(w.data), "--sample-interval", "0", "--out", str(w.new("r"))], "--sample-interval"),
    "import-prox-limit": (lambda w: ["import", "prox", str(w.data), "--limit", "0", "--out", str(w.new("r"))], "--limit"),
    "convert-out-is-file": (lambda w: (lambda f: ["convert", str(w.ckpt), "--out", str(f)])(w.bad("garbage")), "--out"),
    "report-unknown-notebook": (lambda w: ["report", "no_such_notebook", "--out", str(w.new("rep"))], "no_such_notebook"),
    "report-param-typo": (lambda w: ["report", "dataset", "--out", str(w.new("rep")), "-p", "data_dri=x"], "data_dri"),
    "report-param-no-equals": (lambda w: ["report", "dataset", "--out", str(w.new("rep")), "-p", "data_dir"], "data_dir"),
    "report-param-name-code": (
        lambda w: ["report", "dataset", "--out", str(w.new("rep")), "-p", "__import__('os').system('touch /tmp/pwned')=1"],
        "__import__",
    ),
    "report-out-escape": (lambda w: ["report", "dataset", "--out", UNWRITABLE], "sahmr-cannot-write-here"),
    "unknown-command": (lambda w: ["trian"], "trian"),
}
for name, (make, culprit) in VALUES.items():
    add(name, lambda w, make=make, culprit=culprit: (make(w), culprit))


# ------------------------------------------------------------------ the test
class StartedWork(BaseException):
    """Raised by the sentinels below: the command began its real work, so the bad input was not caught first."""


WORK = {  # module: the functions where the expensive part of a command begins
    "sahmr.data.synth.generate": ("scene_jobs",),  # in the parent, before the worker pool starts
    "sahmr.body.open_model": ("build_open_model",),
    "pytorch_lightning": ("Trainer.fit",),
    "papermill": ("execute_notebook",),
    "sahmr.refine.optimize": ("refine_batch",),
    "sahmr.refine.fitting": ("fit_batch",),
}


@pytest.fixture
def sentinels(monkeypatch):
    import importlib

    for module, names in WORK.items():
        mod = importlib.import_module(module)
        for name in names:
            owner_name, _, attr = name.rpartition(".")
            owner = getattr(mod, owner_name) if owner_name else mod

            def started(*a, _n=f"{module}.{name}", **k):
                raise StartedWork(_n)

            monkeypatch.setattr(owner, attr, started)


def run_cli(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        try:
            rc = main(argv)
        except SystemExit as e:  # argparse usage errors
            rc = e.code if isinstance(e.code, int) else 2
        except StartedWork as e:
            pytest.fail(f"{argv[:2]} started its work ({e}) instead of rejecting the input first")
    return rc, out.getvalue(), err.getvalue()


@pytest.mark.parametrize("c", CASES, ids=[c.id for c in CASES])
def test_bad_input(c: Case, world: World, sentinels):
    world.outputs.clear()
    argv, culprit = c.build(world)
    if argv[0] == "evaluate" and "--body-model" not in argv:
        argv += ["--body-model", str(world.body)]  # the dataset names "sahmr-open", resolved in models/ of the cwd
    SEEN.add(c.id)
    SEEN_COMMANDS.update({argv[0], " ".join(argv[:2])})
    before = world.snapshot()
    rc, out, err = run_cli(argv)
    text = out + err
    assert rc in (1, 2), f"exit {rc} for {argv}\n{text[-2000:]}"
    assert "Traceback" not in text, text[-3000:]
    assert re.search(culprit, err) or (rc == 1 and re.search(culprit, text)), f"the message does not name {culprit!r}:\n{text[-1500:]}"
    assert world.snapshot() == before, "the filesystem changed"
    assert [p for p in world.outputs if p.exists()] == [], "an output was left behind"
    shutil.rmtree(world.root / "bad", ignore_errors=True)  # this case's broken files (~1.8 GB over all cases if kept)


def test_case_count():
    """At least 250 cases, and every subcommand among them (the commands the parametrized cases ran)."""
    from sahmr.cli import build_parser

    assert len({c.id for c in CASES}) == len(CASES), "case ids must be unique"
    if len(SEEN) < len(CASES):
        pytest.skip("run the whole module to count")
    commands = set()
    for name, sub in build_parser()._subparsers._group_actions[0].choices.items():
        nested = [a for a in sub._actions if a.__class__.__name__ == "_SubParsersAction"]
        commands |= {f"{name} {n}" for n in nested[0].choices} if nested else {name}
    assert len(CASES) >= 250, len(CASES)
    assert commands - SEEN_COMMANDS == set(), "subcommands without a bad-input case"
