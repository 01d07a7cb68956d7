"""The energy terms of test-time body optimisation: pure, batched, differentiable functions.

Each returns one value per frame, shape (B,); frames never interact, so the sum over a batch has the
per-frame gradients of each frame optimised alone. Units are stated per term; the weights in
`sahmr.refine.optimize.RefineParams` / `sahmr.refine.fitting.FitParams` make them commensurable.
"""

from __future__ import annotations

import torch

__all__ = ["project", "gmof", "penetration", "penetration_sq", "contact", "keep_3d", "keep_2d", "keypoints_2d", "to_camera"]


def to_camera(points_world: torch.Tensor, T_world_to_cam: torch.Tensor) -> torch.Tensor:
    """(B, P, 3) world points, (B, 4, 4) world->camera -> (B, P, 3) camera-frame points."""
    return points_world @ T_world_to_cam[:, :3, :3].transpose(-1, -2) + T_world_to_cam[:, None, :3, 3]


def project(points_cam: torch.Tensor, K: torch.Tensor, min_depth: float = 0.05) -> torch.Tensor:
    """(B, P, 3) camera points, (B, 3, 3) intrinsics -> (B, P, 2) pixels. Depth clamped to `min_depth` m
    so a point behind the camera cannot produce an infinite gradient."""
    z = points_cam[..., 2:].clamp_min(min_depth)
    uv = points_cam[..., :2] / z
    return uv @ K[:, :2, :2].transpose(-1, -2) + K[:, None, :2, 2]


def gmof(residual_sq: torch.Tensor, sigma: float) -> torch.Tensor:
    """Geman-McClure robust cost of squared residuals: σ² r² / (σ² + r²), ~r² for small r, → σ² for large."""
    s2 = sigma * sigma
    return s2 * residual_sq / (s2 + residual_sq)


def penetration(sdf_at_verts: torch.Tensor) -> torch.Tensor:
    """Σ_v relu(−s_v): (B, V) scene SDF at the vertices (m, negative inside) -> (B,) m. Equals PenE."""
    return torch.relu(-sdf_at_verts).sum(-1)


def penetration_sq(sdf_at_verts: torch.Tensor) -> torch.Tensor:
    """Σ_v relu(−s_v)²: (B, V) -> (B,) m². Its gradient vanishes at the surface, so a body that just
    touches is not kicked away (the L1 `penetration` gives every penetrating vertex a full-size push)."""
    return torch.relu(-sdf_at_verts).pow(2).sum(-1)


def contact(sdf_at_verts: torch.Tensor, mask: torch.Tensor, sigma: float) -> torch.Tensor:
    """Σ_{v in mask} gmof(s_v², σ) / σ²: contact vertices pulled onto the surface (either side).

    sdf_at_verts, mask: (B, V) (m; bool). Robust: a vertex σ away costs half of one far away, so a wrong
    contact label far from the scene pulls little. Returns (B,) in [0, |mask|]."""
    cost = gmof(sdf_at_verts.pow(2), sigma) / (sigma * sigma)
    return torch.where(mask, cost, torch.zeros_like(cost)).sum(-1)


def keep_3d(verts: torch.Tensor, reference: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Change of a mesh split into shape and place: (B, V, 3) x2 -> (articulation (B,) m², translation (B,) m²).

    articulation = mean_v ‖(verts_v − c) − (reference_v − c_ref)‖² (c: the centroid), translation = ‖c − c_ref‖²,
    so a refinement can weigh moving the whole body (depth is what a monocular prediction gets most wrong)
    against bending it."""
    d = verts - reference
    shift = d.mean(-2)
    return (d - shift[:, None]).pow(2).sum(-1).mean(-1), shift.pow(2).sum(-1)


def keep_2d(verts_cam: torch.Tensor, reference_cam: torch.Tensor, K: torch.Tensor) -> torch.Tensor:
    """mean_v ‖π(verts_v) − π(reference_v)‖²: camera-frame (B, V, 3) x2, K (B, 3, 3) -> (B,) px²."""
    return (project(verts_cam, K) - project(reference_cam, K)).pow(2).sum(-1).mean(-1)


def keypoints_2d(joints_cam: torch.Tensor, K: torch.Tensor, keypoints: torch.Tensor, sigma_px: float) -> torch.Tensor:
    """Σ_j c_j · gmof(‖π(J_j) − k_j‖², σ): joints (B, J, 3) camera frame, keypoints (B, J, 3) = [x, y, c] px.

    Confidence c = 0 drops a keypoint. Returns (B,) px² (bounded by σ² per keypoint)."""
    r2 = (project(joints_cam, K) - keypoints[..., :2]).pow(2).sum(-1)
    return (keypoints[..., 2] * gmof(r2, sigma_px)).sum(-1)
