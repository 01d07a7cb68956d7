"""Canonical dataset format: write -> read round trip, determinism of the content hash, atomic completion,
writer refusals."""

import json
import shutil

import numpy as np
import pytest

from sahmr.data.format import (
    FIELDS,
    FORMAT_VERSION,
    DatasetFormatError,
    DatasetWriter,
    coerce_split_arrays,
    open_dataset,
    read_image,
    write_image,
)
from sahmr.data.format.validate import validate_dataset
from tests.helpers.tiny_dataset import BODY_META, SCENES, V, floor_sdf, image_for, make_tiny_dataset, scene_points, split_arrays


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    root = tmp_path_factory.mktemp("fmt") / "ds"
    return root, make_tiny_dataset(root)


def test_round_trip_arrays_meta_scenes_images(built):
    root, src = built
    ds = open_dataset(root)
    assert ds.meta == json.loads((root / "dataset.json").read_text()) == src["meta"]
    assert ds.meta["format_version"] == FORMAT_VERSION and ds.meta["body_model"] == BODY_META
    assert ds.splits == {"train": 6, "val": 3} and ds.scenes == sorted(SCENES) and ds.num_verts == V
    assert ds.meta["generator"] == {"seed": 0, "kind": "test fixture"}
    for split, arrays in src["arrays"].items():
        sp = ds.split(split)
        assert sorted(sp.keys()) == sorted(arrays)
        expected = coerce_split_arrays(arrays)
        for key, want in expected.items():
            got = sp[key]
            assert isinstance(got, np.memmap), key  # memory-mapped, no copy
            assert got.dtype == want.dtype and got.shape == want.shape, key
            np.testing.assert_array_equal(got, want, err_msg=key)
            if key in FIELDS and FIELDS[key].dtype == "float32":
                np.testing.assert_allclose(got, np.asarray(arrays[key], dtype=np.float64), rtol=1e-6, atol=1e-6)
        for i, fid in enumerate(arrays["frame_id"]):
            assert sp.index(fid) == i and ds.frame_index(fid) == (split, i)
            np.testing.assert_array_equal(ds.image(split, i), src["images"][arrays["image_path"][i]])  # lossless PNG
        fr = sp.frame(1)
        assert fr["frame_id"] == arrays["frame_id"][1] and fr["K"].shape == (3, 3)
    for sid in SCENES:
        np.testing.assert_array_equal(ds.scene_points(sid), src["points"][sid])
        assert ds.scene_points(sid) is ds.scene_points(sid)  # cached
        grid = ds.scene_sdf(sid)
        np.testing.assert_array_equal(grid.values, floor_sdf().values)
        assert ds.scene_sdf(sid) is grid
        mesh = ds.scene_mesh(sid)
        np.testing.assert_allclose(mesh.vertices, [[0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1]])
        np.testing.assert_array_equal(mesh.faces, [[0, 1, 2], [0, 1, 3]])
        assert ds.scene_info(sid)["meta"] == {"pitch": 0.02} and ds.scene_info(sid)["num_points"] == 3000
    with pytest.raises(KeyError, match="no split 'test'"):
        ds.split("test")
    with pytest.raises(KeyError, match="unknown frame id"):
        ds.frame_index("nope")
    assert validate_dataset(root) == []


def test_every_array_file_is_plain_npy(built):
    root, _ = built
    files = list(root.rglob("*.npy"))
    assert len(files) > 30
    for f in files:
        np.load(f, allow_pickle=False)  # raises if an object array needed pickle


def test_content_hash_is_deterministic_and_content_sensitive(tmp_path, built):
    root, src = built
    again = make_tiny_dataset(tmp_path / "again")
    assert again["meta"]["content_hash"] == src["meta"]["content_hash"]
    assert (tmp_path / "again" / "dataset.json").read_bytes() == (root / "dataset.json").read_bytes()
    assert (tmp_path / "again" / "manifest.json").read_bytes() == (root / "manifest.json").read_bytes()
    other = make_tiny_dataset(tmp_path / "other", seed=1)
    assert other["meta"]["content_hash"] != src["meta"]["content_hash"]
    # one pixel changed -> another hash
    copy = tmp_path / "copy"
    shutil.copytree(root, copy)
    rel = src["arrays"]["val"]["image_path"][0]
    img = read_image(copy, rel).copy()
    img[0, 0, 0] ^= 1
    write_image(copy, rel, img)
    w = DatasetWriter(copy, "tiny", BODY_META, {"seed": 0, "kind": "test fixture"}, overwrite=True)
    assert not (copy / "dataset.json").exists()  # incomplete while rewriting
    for sid in SCENES:
        w.write_scene(
            sid,
            src["points"][sid],
            floor_sdf(),
            mesh=(np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1]], float), np.array([[0, 1, 2], [0, 1, 3]])),
            meta={"pitch": 0.02},
        )
    for split, arrays in src["arrays"].items():
        w.write_split(split, arrays)
    meta = w.finalize()
    assert meta["content_hash"] != src["meta"]["content_hash"]
    man_a = json.loads((root / "manifest.json").read_text())
    man_b = json.loads((copy / "manifest.json").read_text())
    assert [k for k in man_a if man_a[k] != man_b[k]] == [rel]


def test_unfinished_dataset_is_not_readable(tmp_path):
    rng = np.random.default_rng(0)
    root = tmp_path / "ds"
    w = DatasetWriter(root, "tiny", BODY_META)
    w.write_scene("scene_a", scene_points(rng), floor_sdf())
    arrays = split_arrays(rng, "train", 3)
    arrays["scene_id"] = ["scene_a"] * 3
    for rel in arrays["image_path"]:
        write_image(root, rel, image_for(rng))
    w.write_split("train", arrays)
    assert not (root / "dataset.json").exists()
    with pytest.raises(FileNotFoundError, match="dataset.json.*not found"):
        open_dataset(root)
    problems = validate_dataset(root)
    assert len(problems) == 1 and problems[0].where == "dataset.json" and "missing" in problems[0].message
    w.finalize()
    assert open_dataset(root).splits == {"train": 3}
    assert not list(root.rglob("*.tmp"))
    with pytest.raises(DatasetFormatError, match="overwrite=True"):
        DatasetWriter(root, "tiny", BODY_META)


def _writer_with_scenes(root, rng):
    w = DatasetWriter(root, "tiny", BODY_META)
    for sid in SCENES:
        w.write_scene(sid, scene_points(rng, 100), floor_sdf())
    return w


@pytest.mark.parametrize(
    "corrupt, match",
    [
        (
            lambda a: a.update(verts_world=a["verts_world"][:, :-1]),
            r"frames/train/verts_world\.npy \[verts_world\]: shape \(4, 49, 3\), expected \(4, 50, 3\)",
        ),
        (lambda a: a.pop("K"), r"frames/train/K\.npy \[K\]: missing required array"),
        (lambda a: a["K"].__setitem__((1, 0, 0), np.nan), r"\[K\]: non-finite.*train_000001"),
        (lambda a: a.__setitem__("contact", a["contact"].astype(float) * 0.5), r"contact.*bool"),
        (lambda a: a.pop("betas"), r"body-model parameters must be given together"),
        (lambda a: a.__setitem__("frame_id", ["a/b"] + a["frame_id"][1:]), r"invalid frame id.*a/b"),
        (lambda a: a.__setitem__("occlusion", np.array([0.1, 1.5, 0.0, 0.2])), r"occlusion must be in \[0, 1\].*train_000001"),
    ],
)
def test_write_split_refuses_bad_arrays_and_writes_nothing(tmp_path, corrupt, match):
    rng = np.random.default_rng(0)
    w = _writer_with_scenes(tmp_path / "ds", rng)
    arrays = split_arrays(rng, "train", 4)
    arrays["K"] = np.asarray(arrays["K"]).copy()
    corrupt(arrays)
    with pytest.raises(DatasetFormatError, match=match):
        w.write_split("train", arrays)
    assert not (tmp_path / "ds" / "frames" / "train").exists()


def test_finalize_refuses_missing_images_and_scenes(tmp_path):
    rng = np.random.default_rng(0)
    root = tmp_path / "ds"
    w = DatasetWriter(root, "tiny", BODY_META)
    w.write_scene("scene_a", scene_points(rng, 100), floor_sdf())
    arrays = split_arrays(rng, "train", 3)  # references scene_a and scene_b
    w.write_split("train", arrays)
    with pytest.raises(DatasetFormatError, match=r"scene\(s\) never written.*scene_b"):
        w.finalize()
    w.write_scene("scene_b", scene_points(rng, 100), floor_sdf())
    with pytest.raises(DatasetFormatError, match=r"3 referenced image\(s\) missing.*images/train/train_000000.png"):
        w.finalize()
    assert not (root / "dataset.json").exists()
    with pytest.raises(DatasetFormatError, match="frame ids also in split 'train'"):
        w.write_split("val", arrays)


def test_string_arrays_and_extras(tmp_path):
    """Extra per-frame arrays (importers' annotations) are kept; str arrays are fixed-width unicode."""
    rng = np.random.default_rng(3)
    root = tmp_path / "ds"
    w = _writer_with_scenes(root, rng)
    arrays = split_arrays(rng, "test", 3)
    arrays["gender"] = np.array(["male", "female", "neutral"], dtype=object)
    arrays["crop_box_xyxy"] = np.array([[0, 0, 100, 100], [np.nan] * 4, [10, 10, 50, 50]])
    arrays["rich_frame_number"] = np.array([46, 60, 75])
    for rel in arrays["image_path"]:
        write_image(root, rel, image_for(rng))
    w.write_split("test", arrays)
    w.finalize()
    sp = open_dataset(root).split("test")
    assert sp["gender"].dtype.kind == "U" and sp["gender"].tolist() == ["male", "female", "neutral"]
    np.testing.assert_array_equal(sp["rich_frame_number"], [46, 60, 75])
    assert np.isnan(sp["crop_box_xyxy"][1]).all()
    assert validate_dataset(root) == []


def test_scene_mesh_from_trimesh_keeps_vertex_colours(tmp_path):
    import trimesh

    from sahmr.data.format import write_scene

    m = trimesh.creation.box(extents=(1.0, 2.0, 0.5))
    m.visual.vertex_colors = np.tile([10, 20, 30, 255], (len(m.vertices), 1)).astype(np.uint8)
    d = write_scene(tmp_path, "room_1", scene_points(np.random.default_rng(0), 100), floor_sdf(), mesh=m)
    back = trimesh.load(d / "mesh.ply", process=False)
    np.testing.assert_allclose(back.vertices, m.vertices, atol=1e-6)
    np.testing.assert_array_equal(back.faces, m.faces)
    np.testing.assert_array_equal(back.visual.vertex_colors[:, :3], np.tile([10, 20, 30], (len(m.vertices), 1)))
    with pytest.raises(DatasetFormatError, match="not a valid id"):
        write_scene(tmp_path, "../evil", scene_points(np.random.default_rng(0), 10), floor_sdf())
