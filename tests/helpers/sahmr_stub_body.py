"""A stand-in body model with SMPL's sizes (6890 / 1723 / 431), for shape-parity tests of the paper preset.

Only what `MeshTransformer` / `SAHMR` read: `level_sizes`, `sampler` (a real `MeshSampler` over a random
hierarchy), `part_ids`, `faces`, `eval_regressor`, and `__call__(global_orient=...)` returning a template.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import torch

from sahmr.body.hierarchy import HierarchyLevel, MeshSampler


class StubBody(torch.nn.Module):
    def __init__(self, sizes=(6890, 1723, 431), seed: int = 0):
        super().__init__()
        rng = np.random.default_rng(seed)
        levels = []
        for fine, coarse in zip(sizes[:-1], sizes[1:]):
            down = np.sort(rng.choice(fine, coarse, replace=False))
            up_idx = rng.integers(0, coarse, (fine, 3))
            w = rng.random((fine, 3))
            levels.append(HierarchyLevel(down, up_idx, (w / w.sum(1, keepdims=True)).astype(np.float32), np.zeros((0, 3), np.int64)))
        self.sampler = MeshSampler(levels)
        self.level_sizes = self.sampler.level_sizes
        self.register_buffer("part_ids", torch.as_tensor(rng.integers(0, 8, sizes[0])), persistent=False)
        self.register_buffer("faces", torch.zeros(0, 3, dtype=torch.long), persistent=False)
        reg = rng.random((17, sizes[0])).astype(np.float32)
        self.register_buffer("eval_regressor", torch.as_tensor(reg / reg.sum(1, keepdims=True)), persistent=False)
        self.verts = torch.as_tensor(rng.normal(size=(1, sizes[0], 3)).astype(np.float32)) * 0.3

    def forward(self, global_orient=None):
        j17 = torch.einsum("jv,bvc->bjc", self.eval_regressor, self.verts)
        return SimpleNamespace(verts=self.verts, joints14=j17[:, 1:15], pelvis=j17[:, 0])
