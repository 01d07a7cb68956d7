"""Refinement on a CUDA device agrees with the CPU (``make test-gpu``; skipped without CUDA)."""

import pytest
import torch

from sahmr.refine.optimize import RefineParams, refine_batch
from sahmr.refine.prior import PosePrior
from tests.helpers.box_scene import camera_for, place_body, scene_grid

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")]


def test_refinement_on_cuda_matches_cpu(open_model):
    grid = scene_grid()
    _, sunk = place_body(open_model, "a-pose", -0.05)
    T, K = camera_for(sunk[0].mean(0).numpy())
    prior = PosePrior.isotropic(open_model.pose_dim, sigma=1.0)
    cpu = refine_batch(open_model, prior, sunk, T, K, grid, RefineParams())
    gpu_model = open_model.to("cuda")
    try:
        gpu = refine_batch(gpu_model, prior, sunk.cuda(), T.cuda(), K.cuda(), grid, RefineParams())
    finally:
        open_model.to("cpu")
    assert (gpu.verts_world.cpu() - cpu.verts_world).abs().max().item() < 2e-3
