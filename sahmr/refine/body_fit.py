"""Body-model parameters as optimisation variables, and the fit of a body model to given vertices.

A predictions file holds vertices only; refinement optimises body-model parameters, so each predicted mesh
is first explained by the body model: a rigid (Kabsch) start from the prior's mean pose, then Adam on all
parameters against the vertices (`fit_to_vertices`).
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import roma
import torch

from sahmr.body.model import BodyModel, BodyOutput
from sahmr.refine.prior import PosePrior

__all__ = ["BodyParams", "pose_body", "rigid_start", "fit_to_vertices"]


@dataclass
class BodyParams:
    """One body per frame, world frame: betas (B, S), body_pose (B, P) / global_orient (B, 3) axis-angle, transl (B, 3) m."""

    betas: torch.Tensor
    body_pose: torch.Tensor
    global_orient: torch.Tensor
    transl: torch.Tensor

    def tensors(self) -> list[torch.Tensor]:
        return [getattr(self, f.name) for f in fields(self)]

    def detached(self, requires_grad: bool = False) -> BodyParams:
        """A copy cut from the graph (leaf tensors, optionally requiring grad)."""
        return BodyParams(*(t.detach().clone().requires_grad_(requires_grad) for t in self.tensors()))

    def index(self, i) -> BodyParams:
        return BodyParams(*(t[i] for t in self.tensors()))


def pose_body(body: BodyModel, p: BodyParams) -> BodyOutput:
    return body(betas=p.betas, body_pose=p.body_pose, global_orient=p.global_orient, transl=p.transl)


def rigid_start(body: BodyModel, target_verts: torch.Tensor, body_pose: torch.Tensor) -> BodyParams:
    """Mean shape, the given pose, and the rigid motion that best maps that body onto target_verts (B, V, 3).

    smplx rotates about the root joint J0: v = R (v0 − J0) + J0 + transl, so transl = t − J0 + R J0."""
    B = target_verts.shape[0]
    dev = target_verts.device
    betas = torch.zeros(B, body.num_betas, device=dev)
    out = body(betas=betas, body_pose=body_pose)
    rot, t = roma.rigid_points_registration(out.verts, target_verts)  # target ≈ rot · v + t (Kabsch)
    j0 = out.joints[:, 0]
    transl = t - j0 + (rot @ j0[..., None]).squeeze(-1)
    return BodyParams(betas, body_pose.clone(), roma.rotmat_to_rotvec(rot), transl)


def fit_to_vertices(
    body: BodyModel,
    target_verts: torch.Tensor,
    prior: PosePrior,
    *,
    iters: int,
    lr: float,
    prior_weight: float = 1e-4,
    betas_weight: float = 1e-5,
) -> tuple[BodyParams, torch.Tensor]:
    """Body-model parameters whose mesh best matches target_verts (B, V, 3) (world frame, m).

    Minimises Σ_frames mean_v ‖v − target‖² + prior_weight · prior + betas_weight · ‖β‖² with Adam from
    `rigid_start` at the prior's mean pose (a rotation refit halfway catches a wrong initial twist).
    Returns (params, fitted verts (B, V, 3)), detached."""
    with torch.no_grad():
        mean_pose = prior.mean.to(target_verts).expand(target_verts.shape[0], -1)
        p = rigid_start(body, target_verts, mean_pose).detached(requires_grad=True)
    opt = torch.optim.Adam(p.tensors(), lr=lr)
    for _ in range(iters):
        opt.zero_grad(set_to_none=True)
        out = pose_body(body, p)
        loss = (out.verts - target_verts).pow(2).sum(-1).mean(-1) + prior_weight * prior.energy(p.body_pose) + betas_weight * p.betas.pow(2).sum(-1)
        loss.sum().backward()
        opt.step()
    with torch.no_grad():
        verts = pose_body(body, p).verts
    return p.detached(), verts
