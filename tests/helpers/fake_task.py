"""A tiny real task for the training-loop tests: a small CNN regressing the camera-frame pelvis from the crop."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn


class SimulatedCrash(RuntimeError):
    pass


class PelvisTask:
    """Loss = mean L1 of the pelvis (m); metric PelvisE = per-sample L2 error (mm).

    Test hooks through the environment: FAKE_TASK_SLEEP (seconds per training step),
    FAKE_TASK_NOISE (input noise std, default 0.01), FAKE_TASK_SEEN (folder: each rank appends the dataset indices it trains on to seen_rank<r>.txt).
    """

    name = "fake_pelvis"
    crop_size = 32

    def __init__(self, params: dict | None = None):
        self.params = dict(params or {})
        self.width = int(self.params.get("width", 8))
        self.crash_at: int | None = None  # raise in the crash_at-th training step (1-based): a simulated crash
        self.steps = 0

    def build_model(self) -> nn.Module:
        w = self.width
        net = nn.Sequential(
            nn.Conv2d(3, w, 3, stride=2, padding=1),
            nn.ReLU(),
            nn.Conv2d(w, 2 * w, 3, stride=2, padding=1),
            nn.ReLU(),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
            nn.Linear(2 * w, 3),
        )
        with torch.no_grad():  # start near a typical pelvis (4 m ahead) so a few epochs show real progress
            net[-1].bias.copy_(torch.tensor([0.0, 0.0, 4.0]))
        return net

    def _predict(self, model, batch):
        return model(batch["image"])

    def training_step(self, model, batch, generator):
        self.steps += 1
        if self.crash_at is not None and self.steps >= self.crash_at:
            raise SimulatedCrash(f"simulated crash in training step {self.steps}")
        seen = os.environ.get("FAKE_TASK_SEEN")
        if seen:
            rank = torch.distributed.get_rank() if torch.distributed.is_initialized() else 0
            with open(Path(seen) / f"seen_rank{rank}.txt", "a") as f:
                f.write(" ".join(str(int(i)) for i in batch["index"]) + "\n")
        if float(os.environ.get("FAKE_TASK_SLEEP", 0)) > 0:
            time.sleep(float(os.environ["FAKE_TASK_SLEEP"]))
        # a touch of generator-driven input noise, so the generator's state matters for resume
        noise = float(os.environ.get("FAKE_TASK_NOISE", 0.01))
        img = batch["image"] + noise * torch.randn(batch["image"].shape, generator=generator, device=batch["image"].device)
        pred = model(img)
        per_sample = (pred - batch["pelvis_cam"]).abs().sum(-1)
        loss = per_sample.mean()
        return loss, {"pelvis_L1": float(loss.detach())}

    def validation_metrics(self, model, batch):
        pred = self._predict(model, batch)
        return {"PelvisE": 1000.0 * (pred - batch["pelvis_cam"]).norm(dim=-1)}


@dataclass
class PelvisParams:
    """The fake task's own keys of ``train_<name>``."""

    width: int = 8


def factory(params: PelvisParams) -> PelvisTask:
    return PelvisTask({"width": params.width})
