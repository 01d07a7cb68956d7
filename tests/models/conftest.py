"""Fixtures of the model tests: a small collated batch of the tiny synthetic dataset at the cpu crop."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def rcnet_cpu_batch(tiny_synth):
    from sahmr.data.dataset import HumanSceneDataset, collate_human_scene
    from sahmr.models.rcnet import RCNetConfig

    root, _ = tiny_synth
    ds = HumanSceneDataset(root, "train", RCNetConfig.preset("cpu").crop_size, train_augment=False,
                           max_scene_points=20000)
    return collate_human_scene([ds[i] for i in range(3)])
