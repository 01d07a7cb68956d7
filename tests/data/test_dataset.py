"""HumanSceneDataset + collate: geometry of every item, crops, determinism, packing of ragged points."""

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from sahmr.data.dataset import HumanSceneDataset, collate_human_scene, worker_init_fn
from sahmr.data.format import DatasetWriter, open_dataset, write_image
from sahmr.data.sampler import EpochSampler
from sahmr.geometry.camera import project, square_crop_box, transform
from tests.helpers.reference_camera import crop_image, points_in_box_frustum
from tests.helpers.tiny_dataset import BODY_META, SCENES, floor_sdf, image_for, make_tiny_dataset, scene_points, split_arrays

S = 32


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    r = tmp_path_factory.mktemp("dsx") / "ds"
    make_tiny_dataset(r, splits={"train": 8, "val": 3})
    return r


def test_item_geometry_matches_the_arrays(root):
    ds = HumanSceneDataset(root, "train", S, train_augment=True, bbx_center_px=3.0, seed=1)
    src = open_dataset(root).split("train")
    assert len(ds) == 8
    for i in range(len(ds)):
        it = ds[i]
        assert it["image"].shape == (3, S, S) and it["image"].dtype == torch.float32
        assert 0 <= it["image"].min() and it["image"].max() <= 1
        T = src["T_world_to_cam"][i].astype(np.float64)
        K = src["K"][i].astype(np.float64)
        np.testing.assert_allclose(it["verts_cam"].numpy(), transform(T, src["verts_world"][i].astype(np.float64)), atol=2e-5)
        np.testing.assert_allclose(it["joints14_cam"].numpy(), transform(T, src["joints14_world"][i].astype(np.float64)), atol=2e-5)
        np.testing.assert_allclose(it["pelvis_cam"].numpy(), transform(T, src["pelvis_world"][i][None].astype(np.float64))[0], atol=2e-5)
        np.testing.assert_array_equal(it["K"].numpy(), src["K"][i])
        np.testing.assert_array_equal(it["contact"].numpy(), src["contact"][i])
        assert it["contact_part"].dtype == torch.int64
        np.testing.assert_array_equal(it["contact_part"].numpy(), src["contact_part"][i])
        # projected GT vertices land inside the square crop box
        box = it["crop_box_xyxy"].numpy().astype(np.float64)
        assert np.isclose(box[2] - box[0], box[3] - box[1], rtol=1e-5)
        uv = project(it["verts_cam"].numpy().astype(np.float64), K)
        assert (uv >= box[:2] - 1e-3).all() and (uv <= box[2:] + 1e-3).all()
        side = (box[2] - box[0]) / np.max(src["person_box_xyxy"][i][2:] - src["person_box_xyxy"][i][:2])
        assert 1.15 - 1e-4 <= side <= 1.55 + 1e-4
        # the crop is the box of the full image
        full = open_dataset(root).image("train", i)
        # the 8-bit crop of sahmr.data.crop: the float bilinear crop to within one level
        np.testing.assert_allclose(it["image"].numpy(), crop_image(full, box, S).transpose(2, 0, 1) / 255, atol=1.001 / 255, rtol=0)
        # scene points: exactly those of the box frustum, camera frame
        pc = transform(T, open_dataset(root).scene_points(str(src["scene_id"][i])).astype(np.float64))
        want = pc[points_in_box_frustum(pc, K, box)]
        got = it["points_cam"].numpy()
        assert abs(len(got) - len(want)) <= 1 and len(want) > 20
        assert points_in_box_frustum(got.astype(np.float64), K, box + [-1e-3, -1e-3, 1e-3, 1e-3]).all()
        assert it["meta"]["frame_id"] == src["frame_id"][i] and it["meta"]["scene_id"] in SCENES
        assert it["index"].item() == i


def test_eval_crop_is_unjittered_1_15_box(root):
    ds = HumanSceneDataset(root, "val", S, train_augment=False)
    src = open_dataset(root).split("val")
    for i in range(len(ds)):
        np.testing.assert_allclose(ds[i]["crop_box_xyxy"].numpy(), square_crop_box(src["person_box_xyxy"][i]), rtol=1e-6)
    ds.set_epoch(5)  # eval items do not depend on the epoch
    a, b = ds[0], HumanSceneDataset(root, "val", S, train_augment=False)[0]
    assert torch.equal(a["image"], b["image"]) and torch.equal(a["crop_box_xyxy"], b["crop_box_xyxy"])


def test_determinism_seed_epoch(root):
    a = HumanSceneDataset(root, "train", S, train_augment=True, seed=3)
    b = HumanSceneDataset(root, "train", S, train_augment=True, seed=3)
    c = HumanSceneDataset(root, "train", S, train_augment=True, seed=4)
    for i in (0, 5):
        x, y = a[i], b[i]
        for k in x:
            if isinstance(x[k], torch.Tensor):
                assert torch.equal(x[k], y[k]), k
        assert x["meta"] == y["meta"]
        assert not torch.equal(x["crop_box_xyxy"], c[i]["crop_box_xyxy"])
    box0 = a[0]["crop_box_xyxy"].clone()
    a.set_epoch(1)
    assert a.epoch == 1 and not torch.equal(a[0]["crop_box_xyxy"], box0)
    a.set_epoch(0)
    assert torch.equal(a[0]["crop_box_xyxy"], box0)


def test_max_scene_points_subsamples_deterministically(root):
    full = HumanSceneDataset(root, "train", S)[2]["points_cam"]
    ds = HumanSceneDataset(root, "train", S, max_scene_points=10, seed=2)
    sub = ds[2]["points_cam"]
    assert len(full) > 10 and len(sub) == 10
    assert all((full == p).all(1).any() for p in sub)  # a subset, in the original order
    assert torch.equal(sub, ds[2]["points_cam"])


def test_collate_packs_ragged_points(root):
    ds = HumanSceneDataset(root, "train", S, train_augment=True)
    items = [ds[i] for i in (0, 3, 1)]
    batch = collate_human_scene(items)
    assert batch["image"].shape == (3, 3, S, S) and batch["verts_cam"].shape == (3, 50, 3)
    assert batch["contact"].dtype == torch.bool and batch["contact_part"].dtype == torch.int64
    counts = [len(it["points_cam"]) for it in items]
    assert batch["points_offsets"].tolist() == [0, counts[0], counts[0] + counts[1], sum(counts)]
    assert batch["points_cam"].shape == (sum(counts), 3)
    assert batch["points_batch"].dtype == torch.int64
    for b, it in enumerate(items):
        s, e = batch["points_offsets"][b], batch["points_offsets"][b + 1]
        assert torch.equal(batch["points_cam"][s:e], it["points_cam"])
        assert (batch["points_batch"][s:e] == b).all()
        assert torch.equal(batch["points_cam"][batch["points_batch"] == b], it["points_cam"])
    assert [m["frame_id"] for m in batch["meta"]] == [it["meta"]["frame_id"] for it in items]
    # an item without frustum points still packs
    empty = dict(items[0], points_cam=torch.zeros(0, 3))
    b2 = collate_human_scene([empty, items[1]])
    assert b2["points_offsets"].tolist() == [0, 0, counts[1]] and (b2["points_batch"] == 1).all()


def test_crop_box_override_in_eval(tmp_path):
    rng = np.random.default_rng(9)
    root = tmp_path / "ds"
    w = DatasetWriter(root, "tiny", BODY_META)
    for sid in SCENES:
        w.write_scene(sid, scene_points(rng, 500), floor_sdf())
    arrays = split_arrays(rng, "test", 3)
    arrays["crop_box_xyxy"] = np.array([[10, 5, 90, 85], [np.nan] * 4, [0, 0, 120, 120]], np.float32)
    for rel in arrays["image_path"]:
        write_image(root, rel, image_for(rng))
    w.write_split("test", arrays)
    w.finalize()
    ds = HumanSceneDataset(root, "test", S)
    np.testing.assert_array_equal(ds[0]["crop_box_xyxy"].numpy(), [10, 5, 90, 85])
    np.testing.assert_allclose(ds[1]["crop_box_xyxy"].numpy(), square_crop_box(arrays["person_box_xyxy"][1]), rtol=1e-5)
    # training ignores it (augmented crops around the person box)
    tr = HumanSceneDataset(root, "test", S, train_augment=True)
    assert not np.allclose(tr[0]["crop_box_xyxy"].numpy(), [10, 5, 90, 85])


def test_dataloader_workers_match_and_follow_set_epoch(root):
    ds = HumanSceneDataset(root, "train", S, train_augment=True, seed=7)
    loader = DataLoader(
        ds, batch_size=4, shuffle=False, num_workers=2, persistent_workers=True, collate_fn=collate_human_scene, worker_init_fn=worker_init_fn
    )
    for epoch in (0, 1):
        ds.set_epoch(epoch)
        boxes = torch.cat([b["crop_box_xyxy"] for b in loader])
        ref = HumanSceneDataset(root, "train", S, train_augment=True, seed=7)
        ref.set_epoch(epoch)
        assert torch.equal(boxes, torch.stack([ref[i]["crop_box_xyxy"] for i in range(len(ref))]))


def test_epoch_sampler_keys_are_worker_independent(root):
    ds = HumanSceneDataset(root, "train", S, train_augment=True, seed=11)
    sampler = EpochSampler(len(ds), shuffle=True, seed=5)
    loader = DataLoader(
        ds, batch_size=3, sampler=sampler, num_workers=2, persistent_workers=True, collate_fn=collate_human_scene, worker_init_fn=worker_init_fn
    )
    seen = {}
    for epoch in (0, 1):
        sampler.set_epoch(epoch)
        keys = list(sampler)
        assert sorted(i for _, i in keys) == list(range(len(ds))) and {e for e, _ in keys} == {epoch}
        batches = list(loader)
        idx = torch.cat([b["index"] for b in batches]).tolist()
        assert idx == [i for _, i in keys]  # the sampler's order
        boxes = torch.cat([b["crop_box_xyxy"] for b in batches])
        ref = torch.stack([ds[(epoch, i)]["crop_box_xyxy"] for i in idx])
        assert torch.equal(boxes, ref)
        ds.set_epoch(epoch)
        assert torch.equal(ref, torch.stack([ds[i]["crop_box_xyxy"] for i in idx]))  # same draw as set_epoch + int index
        seen[epoch] = idx
    assert seen[0] != seen[1]
    assert list(EpochSampler(4, shuffle=False)) == [(0, 0), (0, 1), (0, 2), (0, 3)]


def test_bad_arguments(root):
    with pytest.raises(KeyError, match="no split 'nope'"):
        HumanSceneDataset(root, "nope", S)
    with pytest.raises(ValueError, match="seed"):
        HumanSceneDataset(root, "train", S, seed=-1)
    with pytest.raises(IndexError):
        HumanSceneDataset(root, "train", S)[100]
