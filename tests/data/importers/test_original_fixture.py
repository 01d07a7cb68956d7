"""The original-format fixture (tests/helpers/original_fixture.py) follows original-spec.md §1.1-§1.6, §2.1.

Every slot is read back the way the ORIGINAL code reads it (np.load(allow_pickle=True).tolist(), pickle.load,
ElementTree ``find('./CameraMatrix/data').text``, np.unpackbits(count=6890), cv2 / PIL, trimesh, grid_sample
with reversed coordinates) and compared with the truth the writer returned; nothing of sahmr's importers is
used, so this checks the fixture independently of them. The only pickles not loaded with plain pickle are the
chumpy SMPL-H models (chumpy is not installed) and the hostile pickle: both go through sahmr's restricted
unpickler only.
"""

from __future__ import annotations

import json
import pickle
import pickletools
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse
import torch
import trimesh
from PIL import Image

from sahmr.body.model_file import load_body_model_file
from sahmr.body.unpickle import UnsafePickleError, safe_load_pickle, safe_loads
from tests.helpers.original_fixture import (
    DEFTRAFO_SEED,
    hostile_pickle_bytes,
    write_deftrafo,
    write_ply_mesh,
    write_prox_fixture,
    write_rich_fixture,
)

try:
    import cv2
except ImportError:  # pragma: no cover
    cv2 = None

N_X, N_H = 10475, 6890
PORTRAIT = ("Pavallion_3", "Pavallion_5")
_TIMES = {}


@pytest.fixture(scope="module")
def rich(open_model_path, tmp_path_factory):
    arrays = load_body_model_file(open_model_path).arrays
    root = tmp_path_factory.mktemp("rich_original")
    t = time.perf_counter()
    truth = write_rich_fixture(root, arrays)
    _TIMES["rich"] = time.perf_counter() - t
    return truth


@pytest.fixture(scope="module")
def prox(tmp_path_factory):
    root = tmp_path_factory.mktemp("prox_original")
    t = time.perf_counter()
    truth = write_prox_fixture(root)
    _TIMES["prox"] = time.perf_counter() - t
    return truth


# ----------------------------------------------------------------------------- readers, as the original


def _xml_matrix(root, name, shape):
    return np.array(root.find(f"./{name}/data").text.split(), dtype=np.float32).reshape(shape)


def _npy_dict(path):
    return np.load(path, allow_pickle=True).tolist()


def _pickle_load(path):
    with open(path, "rb") as fp:
        return pickle.load(fp)


def _contact(path):
    return np.unpackbits(np.load(path), count=N_H).astype(bool)


def _cv2_rgb(path):
    return cv2.imread(str(path))[..., ::-1]


def _pil_rgb(path):
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"))


def _ply_verts_faces(path):
    m = trimesh.load(str(path), process=False)
    return np.asarray(m.vertices), np.asarray(m.faces)


def _project(K, T_w2c, pts):
    pc = pts @ np.asarray(T_w2c, float)[:3, :3].T + np.asarray(T_w2c, float)[:3, 3]
    uv = pc @ np.asarray(K, float).T
    return uv[:, :2] / uv[:, 2:]


def _grid_sample_sdf(values, gmin, gmax, pts):
    """The original's lookup (§6.2): grid_sample(align_corners=True, border) with coordinates as (z, y, x)."""
    gmin, gmax = np.float32(gmin), np.float32(gmax)  # errata: min/max rounded to float32
    g = torch.from_numpy((((pts - gmin) / (gmax - gmin)) * 2 - 1)[:, [2, 1, 0]].astype(np.float32))
    vol = torch.from_numpy(np.asarray(values, np.float32))[None, None]
    out = torch.nn.functional.grid_sample(vol, g[None, None, None], mode="bilinear", padding_mode="border", align_corners=True)
    return out.reshape(-1).numpy().astype(np.float64)


def _select(metas, boxes, interval):
    """Spec §1.4 frame selection, in its order; returns (kept img_keys, {img_key: dropping rule})."""
    dropped = {}
    keep = []
    for m in metas:
        f, c = int(m["frame_name"]), int(m["cam_id"])
        if f > 45 and (f + c) % interval == 0:
            keep.append(m)
        else:
            dropped[m["img_key"]] = "rule1"
    keep = sorted(keep, key=lambda m: m["img_key"])  # rule 2
    keep3 = []
    for m in keep:
        if m["seq_name"] == "LectureHall_009_021_reparingprojector1":
            dropped[m["img_key"]] = "rule3"
        else:
            keep3.append(m)
    out = []
    for m in keep3:
        l, u, r, b = boxes[m["img_key"]]
        cx, cy = (l + r) / 2, (u + b) / 2
        xmax, ymax = (3007, 4111) if m["cam_key"] in PORTRAIT else (4111, 3007)
        if 0 <= cx <= xmax and 0 <= cy <= ymax:
            out.append(m["img_key"])
        else:
            dropped[m["img_key"]] = "rule4"
    return out, dropped


def _same_meta(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(
        np.array_equal(a[k], b[k]) and type(a[k]) is type(b[k]) and np.asarray(a[k]).dtype == np.asarray(b[k]).dtype for k in a
    )


def _pickle_globals(data: bytes):
    found, strings = [], []
    for op, arg, _ in pickletools.genops(data):
        if op.name in ("GLOBAL", "INST"):
            found.append(tuple(arg.split(" ", 1)))
        elif op.name == "STACK_GLOBAL":
            found.append((strings[-2], strings[-1]))
        elif isinstance(arg, str) and ("UNICODE" in op.name or op.name in ("STRING", "BINSTRING", "SHORT_BINSTRING")):
            strings.append(arg)
    return found


# ------------------------------------------------------------------------------------------------ RICH


def test_rich_calibration_xml(rich):
    xmls = sorted(rich.support_dir.glob("scene_info/*/calibration/*.xml"))
    keys = {f"{x.parent.parent.name}_{int(x.stem)}": x for x in xmls}
    assert set(keys) == set(rich.cameras) == {"ParkingLot2_3", "Gym_1", "Gym_7", "Pavallion_3", "LectureHall_0"}
    assert {x.stem for x in xmls} == {"003", "001", "007", "000"}
    for key, path in keys.items():
        cam = rich.cameras[key]
        root = ET.parse(path).getroot()
        ext = _xml_matrix(root, "CameraMatrix", (3, 4))
        T = np.concatenate([ext, np.array([[0, 0, 0, 1]], np.float32)])
        K = _xml_matrix(root, "Intrinsics", (3, 3))
        dist = _xml_matrix(root, "Distortion", (5,))
        assert np.array_equal(T, cam.T_w2c) and np.array_equal(K, cam.K) and np.array_equal(dist, cam.distortion)
        assert np.count_nonzero(dist) >= 4
        R, t = T[:3, :3].astype(float), T[:3, 3].astype(float)
        np.testing.assert_allclose(R @ R.T, np.eye(3), atol=1e-6)
        assert 3.0 <= np.linalg.norm(-R.T @ t) <= 5.0  # camera 3-5 m from the origin
        W, H = cam.image_size
        assert (W, H) == ((3008, 4112) if key in PORTRAIT else (4112, 3008))
        assert 4000 <= K[0, 0] <= 5000 and 4000 <= K[1, 1] <= 5000
        assert abs(K[0, 2] - W / 2) < 20 and abs(K[1, 2] - H / 2) < 20 and K[2, 2] == 1
        u, v = _project(K, T, np.array([[0.0, 0.0, 0.9]]))[0]  # looks at the scene centre
        assert 0 < u < W and 0 < v < H
        if cv2 is not None:  # a genuine OpenCV storage file
            fs = cv2.FileStorage(str(path), cv2.FILE_STORAGE_READ)
            assert np.array_equal(fs.getNode("CameraMatrix").mat(), ext)
            assert np.array_equal(fs.getNode("Intrinsics").mat(), K)
            fs.release()


def test_rich_scene_clouds(rich):
    info = rich.support_dir / "scene_info"
    files = sorted(info.glob("*/*_world.npy"))
    clouds = {f"{f.parent.name}_{f.stem[: f.stem.find('camcoord') + 8]}": f for f in files}
    assert set(clouds) == set(rich.scene_clouds) and len(clouds) == 5
    assert "Gym_scan_table_camcoord" in clouds and clouds["Gym_scan_table_camcoord"].stem != "scan_table_camcoord_world"
    dtypes = set()
    for key, f in clouds.items():
        d = _npy_dict(f)
        truth = rich.scene_clouds[key]
        assert f == truth.path and d["points"].dtype == truth.points.dtype and d["points"].shape[1] == 3
        assert np.array_equal(d["points"], truth.points) and 1500 <= len(d["points"]) <= 2500
        assert d["pitch"][0] == 0.05 and np.array_equal(d["pitch"], truth.pitch)
        dtypes.add(d["points"].dtype)
    assert dtypes == {np.dtype(np.float32), np.dtype(np.float64)}
    for f in rich.ignored_scene_files:  # the "az" sibling exists, holds other points, and is not globbed
        assert f.is_file() and f not in files
        assert not np.allclose(_npy_dict(f)["points"], rich.scene_clouds["Gym_scan_camcoord"].points)


def test_rich_sdf_grids(rich):
    info = rich.support_dir / "scene_info"
    rng = np.random.default_rng(0)
    storages = set()
    for key, truth in rich.sdf.items():
        meta = json.loads((info / f"{key}_mysdf.json").read_text())
        raw = np.load(info / f"{key}_mysdf.npy")
        storages.add((raw.ndim, raw.dtype.name))
        dim = meta["dim"]
        assert 12 <= dim <= 20 and dim == truth.dim and raw.size == dim**3
        vol = raw.reshape(dim, dim, dim).astype(np.float32)
        assert np.array_equal(raw.reshape(dim, dim, dim).astype(np.float64), truth.values)
        gmin, gmax = np.array(meta["min"]), np.array(meta["max"])
        assert np.array_equal(gmin, truth.min) and np.array_equal(gmax, truth.max)
        # node (i, j, k) at min + (i, j, k) * (max - min) / (dim - 1), array axes (x, y, z)
        i, j, k = 3, dim - 2, 5
        node = gmin + np.array([i, j, k]) * (gmax - gmin) / (dim - 1)
        assert abs(raw.reshape(dim, dim, dim)[i, j, k] - rich.sdf_field(node)) < 1e-6
        pts = rng.uniform(gmin, gmax, (200, 3))
        np.testing.assert_allclose(_grid_sample_sdf(vol, gmin, gmax, pts), rich.sdf_field(pts), atol=2e-6)
        assert np.abs(_grid_sample_sdf(vol.transpose(2, 1, 0), gmin, gmax, pts) - rich.sdf_field(pts)).max() > 0.05
    assert storages == {(1, "float32"), (3, "float64"), (1, "float64"), (3, "float32")}


def test_rich_test_split(rich):
    tdir = rich.support_dir / "test_split"
    metas = np.load(tdir / "meta" / "test3116.npy", allow_pickle=True).tolist()
    assert isinstance(metas, list) and all(isinstance(m, dict) for m in metas)
    keys = [m["img_key"] for m in metas]
    assert keys == rich.test_img_keys and keys != sorted(keys) and len(keys) == 4
    mtx = _pickle_load(rich.root / "models" / "model_transfer" / "smplx2smplh_deftrafo_setup.pkl")["mtx"]
    M = scipy.sparse.csr_matrix(mtx)[:, :N_X]
    formats = set()
    for m in metas:
        t = rich.test_frames[m["img_key"]]
        assert _same_meta(m, t.meta)
        scene, subj, *_, cam, frame, subj2 = m["img_key"].split("_")
        assert scene == m["cap_name"] and subj == subj2 and frame == m["frame_name"]
        assert m["cam_key"] == f"{scene}_{int(cam)}" == t.cam_key and m["cam_key"] in rich.cameras
        assert m["scene_key"] == f"{m['cap_name']}_{m['scan_name']}" and m["scene_key"] in rich.scene_clouds
        assert f"{m['cap_name']}/{m['scan_name']}" in rich.sdf and m["gender"] in ("male", "female")
        # contact
        assert m["contact_file"].startswith("/") and "test_contact/" in m["contact_file"]
        rel = m["contact_file"].split("test_contact/")[1]
        assert np.array_equal(_contact(tdir / "contact" / rel), t.contact) and 0 < t.contact.sum() < N_H
        # image
        png = tdir / "image" / f"{m['img_key']}.png"
        rgb = _pil_rgb(png)
        assert rgb.shape == (224, 224, 3) and np.array_equal(rgb, t.image_rgb)
        if cv2 is not None:
            assert np.array_equal(_cv2_rgb(png), t.image_rgb)
        assert not np.array_equal(rgb, rgb[:, ::-1]) and not np.array_equal(rgb, rgb[::-1])
        assert not np.array_equal(rgb, rgb[..., ::-1])
        assert rgb[100, 200, 0] > rgb[100, 20, 0] and rgb[200, 100, 1] > rgb[20, 100, 1]  # red along x, green along y
        # GT SMPL-X mesh, world frame
        v, f = _ply_verts_faces(tdir / "gt_smplx_mesh" / f"{m['img_key']}.ply")
        assert v.shape == (N_X, 3) and np.array_equal(f, rich.smplx_faces)
        assert np.array_equal(v.astype(t.gt_w_smplx_verts.dtype), t.gt_w_smplx_verts)
        formats.add((t.ply_format, t.gt_w_smplx_verts.dtype.name))
        # square box = tight box of the projected SMPL-H GT, side max(w, h) + 206, same centre
        smplh = M @ v
        np.testing.assert_allclose(smplh, t.gt_w_smplh_verts, atol=1e-9)
        cam = rich.cameras[m["cam_key"]]
        assert (smplh @ cam.T_w2c[:3, :3].T.astype(float) + cam.T_w2c[:3, 3])[:, 2].min() > 1.0
        uv = _project(cam.K, cam.T_w2c, smplh)
        l, u = uv.min(0)
        r, b = uv.max(0)
        sq = np.asarray(m["test_squared_bbx_lurb"])
        assert sq.shape == (4,) and sq.dtype.kind == "f"
        assert abs((sq[2] - sq[0]) - (sq[3] - sq[1])) < 1e-9
        np.testing.assert_allclose(sq[2] - sq[0], max(r - l, b - u) + 206, atol=1e-6)
        np.testing.assert_allclose([(sq[0] + sq[2]) / 2, (sq[1] + sq[3]) / 2], [(l + r) / 2, (u + b) / 2], atol=1e-6)
        np.testing.assert_allclose(t.tight_bbx, [l, u, r, b], atol=1e-6)
        W, H = cam.image_size
        assert 0 <= l and r <= W and 0 <= u and b <= H
    assert ("ascii", "float32") in formats and ("binary_little_endian", "float64") in formats
    assert ("binary_little_endian", "float32") in formats


@pytest.mark.parametrize("split", ["train", "val"])
def test_rich_train_val_selection(rich, split):
    s = rich.splits[split]
    mdir = rich.support_dir / f"{split}_split" / "meta"
    idx2meta = _pickle_load(mdir / "idx2meta.pkl")
    boxes = _pickle_load(mdir / "img2gtbbx.pkl")
    assert isinstance(idx2meta, dict) and isinstance(boxes, dict)
    metas = list(idx2meta.values())
    order = [m["img_key"] for m in metas]
    assert order == s.meta_order and order != sorted(order) and set(boxes) == set(order)
    kept, dropped = _select(metas, boxes, s.sample_interval)
    assert s.sample_interval == {"train": 15, "val": 30}[split]
    assert kept == s.selected_img_keys and dropped == s.dropped
    assert {"rule1", "rule3"} <= set(dropped.values()) and len(kept) >= 3
    if split == "train":  # every boundary of §1.4 is exercised
        fr = {m["img_key"]: (int(m["frame_name"]), int(m["cam_id"])) for m in metas}
        assert any(f == 45 and (f + c) % 15 == 0 and dropped.get(k) == "rule1" for k, (f, c) in fr.items())
        assert any(f == 60 and c == 0 and k in kept for k, (f, c) in fr.items())
        assert any((f + c) % 15 and f > 45 and dropped.get(k) == "rule1" for k, (f, c) in fr.items())
        centres = {k: ((b[0] + b[2]) / 2, (b[1] + b[3]) / 2) for k, b in boxes.items()}
        by = {m["img_key"]: m for m in metas}
        assert any(cx == 4111 and k in kept for k, (cx, _) in centres.items())
        assert any(cx == 4111.5 and dropped.get(k) == "rule4" for k, (cx, _) in centres.items())
        assert any(cy == 3500 and by[k]["cam_key"] == "Pavallion_3" and k in kept for k, (_, cy) in centres.items())
        assert any(cx == 3500 and by[k]["cam_key"] == "Pavallion_3" and dropped.get(k) == "rule4" for k, (cx, _) in centres.items())
        assert {type(m["frame_name"]) for m in metas} == {str, int} and {type(m["cam_id"]) for m in metas} == {str, int}
    else:  # interval 30, not 15
        assert any((int(m["frame_name"]) + int(m["cam_id"])) % 15 == 0 and dropped.get(m["img_key"]) == "rule1" for m in metas)


@pytest.mark.parametrize("split", ["train", "val"])
def test_rich_train_val_files(rich, split):
    s = rich.splits[split]
    metas = list(_pickle_load(rich.support_dir / f"{split}_split" / "meta" / "idx2meta.pkl").values())
    boxes = _pickle_load(rich.support_dir / f"{split}_split" / "meta" / "img2gtbbx.pkl")
    param_dtypes, hand_flags = set(), set()
    for m in metas:
        t = s.frames[m["img_key"]]
        assert _same_meta(m, t.meta) and m["gender"] in ("male", "female") and m["scene_key"] in rich.scene_clouds
        assert m["cam_key"] in rich.cameras and t.cam_key == m["cam_key"]
        for k in ("img_file", "body_file", "contact_file"):
            assert m[k].startswith("/") and len(Path(m[k]).parts) > 5
        last3 = {k: "/".join(Path(m[k]).parts[-3:]) for k in ("img_file", "body_file", "contact_file")}
        seq, camdir, fname = Path(last3["img_file"]).parts
        cid = int(m["cam_id"])
        assert seq == m["seq_name"] and camdir == f"cam_{cid:02d}" and fname == f"{int(m['frame_name']):05d}_{cid:02d}.jpeg"
        assert last3["body_file"].endswith(".pkl") and last3["contact_file"].endswith(".npy")
        assert last3["img_file"] == t.image_relpath and last3["body_file"] == t.body_relpath
        assert last3["contact_file"] == t.contact_relpath
        box = boxes[m["img_key"]]
        assert box.shape == (4,) and box.dtype == t.tight_bbx.dtype and np.array_equal(box, t.tight_bbx)
        # body params
        params = _pickle_load(rich.root / "bodies" / split / last3["body_file"])
        assert set(params) == set(t.body_params)
        for k, v in params.items():
            assert isinstance(v, np.ndarray) and v.ndim == 1 and v.dtype == t.body_params[k].dtype
            assert np.array_equal(v, t.body_params[k])
        assert {k: len(v) for k, v in params.items() if "hand" not in k} == dict(betas=10, global_orient=3, body_pose=63, transl=3)
        param_dtypes.add(params["betas"].dtype.name)
        hand_flags.add("left_hand_pose" in params)
        if "left_hand_pose" in params:
            assert len(params["left_hand_pose"]) == len(params["right_hand_pose"]) == 45
        # contact
        assert np.array_equal(_contact(rich.support_dir / f"{split}_split" / "contact" / last3["contact_file"]), t.contact)
        # ds4 JPEG
        jpg = rich.root / "images_ds4" / split / last3["img_file"]
        rgb = _pil_rgb(jpg)
        W, H = (752, 1028) if m["cam_key"] in PORTRAIT else (1028, 752)
        assert rgb.shape == (H, W, 3) and t.image_size == (W, H) and np.array_equal(rgb, t.image_rgb)
        if cv2 is not None:
            d = np.abs(_cv2_rgb(jpg).astype(int) - rgb)
            assert d.max() <= 8 and d.mean() < 0.5
    assert param_dtypes == {"float32", "float64"} and hand_flags == {True, False}


def test_deftrafo_file(rich, tmp_path):
    d = _pickle_load(rich.deftrafo_path)
    mtx = d["mtx"]
    assert scipy.sparse.issparse(mtx) and mtx.shape == (N_H, 2 * N_X)
    assert any(isinstance(v, (int, str)) for k, v in d.items() if k != "mtx")
    assert (scipy.sparse.csr_matrix(mtx) != rich.deftrafo).nnz == 0
    M = scipy.sparse.csr_matrix(mtx)[:, :N_X].tocsr()
    assert np.all(np.diff(M.indptr) == 3) and np.all(M.data > 0)
    np.testing.assert_allclose(np.asarray(M.sum(1)).ravel(), 1.0, atol=1e-12)
    assert scipy.sparse.csr_matrix(mtx)[:, N_X:].nnz > 0  # forgetting the slice changes the numbers
    with pytest.raises(ValueError):
        _ = mtx @ np.zeros((N_X, 3))
    again = write_deftrafo(tmp_path / "d.pkl", DEFTRAFO_SEED)
    assert (again != rich.deftrafo).nnz == 0 and (write_deftrafo(tmp_path / "e.pkl", 1) != again).nnz > 0


def test_smplh_model_pickles(rich):
    smplh_dir = rich.root / "models" / "smplh"
    assert {p.name for p in smplh_dir.iterdir()} == {"SMPLH_MALE.pkl", "SMPLH_FEMALE.pkl"}
    for gender in ("male", "female"):
        path = smplh_dir / f"SMPLH_{gender.upper()}.pkl"
        assert path == rich.smplh_model_paths[gender]
        assert ("chumpy.ch", "Ch") in _pickle_globals(path.read_bytes())  # the official (chumpy) layout
        d = safe_load_pickle(path)
        assert np.array_equal(d["v_template"], rich.smplh_v_templates[gender])
        assert d["v_template"].shape == (N_H, 3) and d["kintree_table"].shape == (2, 52)
        assert d["posedirs"].shape == (N_H, 3, 459) and d["hands_componentsl"].shape == (45, 45)
    m, f = rich.smplh_v_templates["male"], rich.smplh_v_templates["female"]
    np.testing.assert_allclose(f - f.mean(0), 0.95 * (m - m.mean(0)), atol=1e-12)


# ------------------------------------------------------------------------------------------------ PROX


def test_prox_quantitative(prox, tmp_path):
    sup = prox.root / "sahmr_support"
    metas = _pickle_load(sup / "meta" / "mosh_mesh_test.pkl")
    boxes = _pickle_load(sup / "img2gtbbx" / "mosh_mesh.pkl")
    assert isinstance(metas, list) and [m["img_key"] for m in metas] == prox.img_keys and len(metas) == 3
    assert prox.img_keys != sorted(prox.img_keys)
    # calibration: K from zeros (+ K[2,2] = 1), T_c2w from the json
    color = json.loads((sup / "vicon" / "calibration" / "Color.json").read_text())
    K = np.zeros((3, 3))
    K[0, 0], K[1, 1] = color["f"]
    K[0, 2], K[1, 2] = color["c"]
    K[2, 2] = 1
    assert np.array_equal(K, prox.K) and len(color["k"]) == 5
    T_c2w = np.array(json.loads((sup / "vicon" / "calibration" / "cam2world_vicon.json").read_text()))
    assert T_c2w.shape == (4, 4) and np.array_equal(T_c2w, prox.T_c2w)
    np.testing.assert_allclose(np.linalg.inv(T_c2w), prox.T_w2c, atol=1e-12)
    np.testing.assert_allclose(T_c2w[:3, :3] @ T_c2w[:3, :3].T, np.eye(3), atol=1e-12)
    # scene
    vox = _npy_dict(sup / "vicon" / "vicon_voxel_world.npy")
    assert np.array_equal(vox["points"], prox.voxel.points) and vox["pitch"][0] == 0.05
    meta = json.loads((sup / "vicon" / "vicon.json").read_text())
    raw = np.load(sup / "vicon" / "vicon_sdf.npy")
    dim = meta["dim"]
    vol = raw.reshape(dim, dim, dim)
    assert np.array_equal(vol.astype(np.float64), prox.sdf.values)
    pts = np.random.default_rng(1).uniform(meta["min"], meta["max"], (100, 3))
    np.testing.assert_allclose(_grid_sample_sdf(vol, meta["min"], meta["max"], pts), prox.sdf_field(pts), atol=2e-6)
    # frames
    M = write_deftrafo(tmp_path / "deftrafo.pkl", DEFTRAFO_SEED)[:, :N_X]
    formats = set()
    for m in metas:
        t = prox.frames[m["img_key"]]
        assert _same_meta(m, t.meta) and m["scene_name"] == "vicon"
        assert m["img_file"].count("recordings/") == 1 and m["body_file"].count("mosh/") == 1
        img_rel = m["img_file"].split("recordings/")[1]
        body_rel = m["body_file"].split("mosh/")[1]
        assert img_rel == t.image_relpath and body_rel == t.body_relpath
        path = sup / "image" / img_rel
        raw_rgb = _pil_rgb(path)
        assert raw_rgb.shape == (1080, 1920, 3)
        assert np.array_equal(raw_rgb[:, ::-1], t.image_rgb)  # the model sees the flipped image
        assert not np.array_equal(raw_rgb, t.image_rgb)
        if cv2 is not None:
            d = np.abs(cv2.flip(cv2.imread(str(path)), 1)[..., ::-1].astype(int) - t.image_rgb)
            assert d.max() <= 8 and d.mean() < 0.5
        v, f = _ply_verts_faces(sup / "gt_mosh_mesh" / body_rel)
        assert v.shape == (N_X, 3) and np.array_equal(f, prox.smplx_faces)
        assert np.array_equal(v.astype(t.gt_c_smplx_verts.dtype), t.gt_c_smplx_verts)
        formats.add(t.ply_format)
        smplh = M @ v
        assert smplh[:, 2].min() > 1.0  # camera frame: in front of the camera
        uv = _project(K, np.eye(4), smplh)
        box = boxes[m["img_key"]]
        assert box.dtype == np.float64 and np.array_equal(box, t.tight_bbx)
        np.testing.assert_allclose(box, np.concatenate([uv.min(0), uv.max(0)]), atol=1e-6)
        assert 0 <= box[0] < box[2] <= 1920 and 0 <= box[1] < box[3] <= 1080
    assert formats == {"binary_big_endian", "binary_little_endian"}


# ------------------------------------------------------------------------------------------- helpers


def test_hostile_pickle_is_hostile(tmp_path):
    marker = tmp_path / "pwned"
    data = hostile_pickle_bytes(marker)
    refs = set(_pickle_globals(data))
    assert refs & {("os", "system"), ("posix", "system"), ("nt", "system")}
    assert refs & {("builtins", "exec"), ("__builtin__", "exec")}
    assert str(marker).encode() in data
    with pytest.raises(UnsafePickleError):
        safe_loads(data, allow_chumpy=False)
    assert not marker.exists()


@pytest.mark.parametrize("fmt", ["binary_little_endian", "binary_big_endian", "ascii"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_write_ply_mesh_round_trip(tmp_path, fmt, dtype):
    rng = np.random.default_rng(3)
    v = rng.normal(size=(40, 3)) * [0.3, 0.2, 0.9]
    f = rng.integers(0, 40, (25, 3))
    path = tmp_path / "m.ply"
    write_ply_mesh(path, v, f, fmt=fmt, vertex_dtype=dtype)
    head = path.read_bytes().split(b"end_header\n")[0].decode()
    assert f"format {fmt} 1.0" in head and "property list uchar int vertex_indices" in head
    assert ("property float x" if dtype == "float32" else "property double x") in head
    rv, rf = _ply_verts_faces(path)
    assert np.array_equal(rv.astype(dtype), v.astype(dtype)) and np.array_equal(rf, f)


def test_writing_is_fast(rich, prox):
    """Both folders are written in a few seconds (budget: < 5 s on 2 cores; guard with slack)."""
    assert _TIMES["rich"] + _TIMES["prox"] < 10.0, _TIMES
