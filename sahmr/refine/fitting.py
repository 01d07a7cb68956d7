"""The PROX-style fitting baseline: a body fitted to 2D keypoints under scene constraints, with no learned
3D network (the optimisation methods the paper compares against; SMPLify-X/PROX take about a minute a frame).

Per batch of frames of one scene (world-frame body parameters, the dataset's camera):

1. **Start**: the prior's mean pose and mean shape, upright in the camera (head up the image) and facing it,
   turned by each of ``yaw_candidates`` angles about its vertical axis; depth from the ratio of the 3D to the
   2D spread of the visible joints (``z = f · L3D / L2D``), placed on the keypoints' centroid.
2. **Rigid** (``rigid_iters``): orientation and translation against the keypoints; the best yaw per frame is kept.
3. **Pose** (``pose_iters``): all parameters; keypoints + pose prior + joint limits + shape prior.
4. **Scene** (``scene_iters``): plus penetration and contact; contact vertices are PROX's part prior (vertices
   of the 7 contact parts within ``part_prior_dist`` of the scene when the stage starts).

The keypoint term is Geman-McClure robust (σ = ``keypoint_sigma_px``), normalised by σ² so each keypoint
costs at most 1.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import roma
import torch

from sahmr.body.model import BodyModel
from sahmr.geometry.sdf import SDFGrid, query_sdf
from sahmr.refine import terms
from sahmr.refine.body_fit import BodyParams, pose_body
from sahmr.refine.optimize import part_prior_contact
from sahmr.refine.prior import PosePrior, joint_limit_violation

__all__ = ["FitWeights", "FitParams", "FitResult", "initial_params", "fit_batch"]


@dataclass
class FitWeights:
    """Weights of the fitting energy (units: `sahmr.refine.terms`)."""

    keypoints: float = 1.0  # per keypoint, robust and normalised: at most 1 each
    pose_prior: float = 0.02  # per unit of Mahalanobis² per DOF
    joint_limits: float = 10.0  # per rad² of backward knee/elbow bend
    betas: float = 0.005  # per unit of ‖β‖²
    penetration: float = 1.0  # per m of summed penetration depth
    contact: float = 0.05  # per part-prior contact vertex off the surface (saturates at 1)


@dataclass
class FitParams:
    """Parameters of ``sahmr fit`` (params.yaml section ``fit``)."""

    batch_size: int = 64
    yaw_candidates: int = 4  # starting orientations about the vertical axis (SMPLify tries 2: front and back)
    rigid_iters: int = 60
    pose_iters: int = 150
    scene_iters: int = 60
    lr: float = 0.03
    keypoint_sigma_px: float = 30.0
    contact_sigma: float = 0.05
    part_prior_dist: float = 0.10
    part_prior_band: float = 0.01
    prior_split: str = "train"
    weights: FitWeights = field(default_factory=FitWeights)

    def __post_init__(self) -> None:
        for name in ("batch_size", "yaw_candidates"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"fit.{name}: expected a positive integer, got {getattr(self, name)}")
        for name in ("rigid_iters", "pose_iters", "scene_iters"):
            if int(getattr(self, name)) < 0:
                raise ValueError(f"fit.{name}: expected a non-negative integer, got {getattr(self, name)}")
        for name in ("lr", "keypoint_sigma_px", "contact_sigma", "part_prior_dist", "part_prior_band"):
            if not float(getattr(self, name)) > 0:
                raise ValueError(f"fit.{name}: expected a positive number, got {getattr(self, name)}")
        for k, v in vars(self.weights).items():
            if not float(v) >= 0:
                raise ValueError(f"fit.weights.{k}: expected a non-negative number, got {v}")


@dataclass
class FitResult:
    """verts_world (B, V, 3); params; energy: term -> (B,) weighted values at the end."""

    verts_world: torch.Tensor
    params: BodyParams
    energy: dict[str, torch.Tensor]


def _rot_x_pi_then_yaw(yaw: torch.Tensor) -> torch.Tensor:
    """(Y,) yaw -> (Y, 3, 3) camera-from-body rotations: body y up -> image up, body facing the camera."""
    c, s = torch.cos(yaw), torch.sin(yaw)
    o, one = torch.zeros_like(yaw), torch.ones_like(yaw)
    ry = torch.stack([c, o, s, o, one, o, -s, o, c], -1).reshape(-1, 3, 3)
    rx = torch.diag(torch.tensor([1.0, -1.0, -1.0])).to(yaw)
    return rx @ ry


def initial_params(body: BodyModel, prior: PosePrior, keypoints: torch.Tensor, T: torch.Tensor, K: torch.Tensor, yaw_candidates: int):
    """Starting parameters for every (frame, yaw): BodyParams of batch B·Y (frame-major), plus the posed
    mean body's joints14 / root joint (B·Y, 14, 3) / (B·Y, 3) at zero orientation and translation."""
    B, Y = keypoints.shape[0], yaw_candidates
    dev = keypoints.device
    mean_pose = prior.mean.to(dev).expand(B, -1)
    out0 = body(body_pose=mean_pose)
    j14, j0 = out0.joints14, out0.joints[:, 0]
    yaws = torch.arange(Y, device=dev, dtype=torch.float32) * (2 * math.pi / Y)
    r_cb = _rot_x_pi_then_yaw(yaws)  # (Y, 3, 3)
    rep = lambda x: x.repeat_interleave(Y, 0)  # noqa: E731  (frame-major: frame b's candidates are rows b*Y..b*Y+Y-1)
    kp, Tr, Kr, j14r, j0r = rep(keypoints), rep(T), rep(K), rep(j14), rep(j0)
    r_cb = r_cb.repeat(B, 1, 1)
    vis = (kp[..., 2] > 0).float()
    n_vis = vis.sum(-1, keepdim=True).clamp_min(1.0)
    p = j14r @ r_cb.transpose(-1, -2)  # joints in the camera orientation, about the model origin
    c2 = (vis[..., None] * kp[..., :2]).sum(1) / n_vis
    c3 = (vis[..., None] * p).sum(1) / n_vis
    l2 = ((vis * (kp[..., :2] - c2[:, None]).pow(2).sum(-1)).sum(-1) / n_vis[:, 0]).sqrt()
    l3 = ((vis * (p[..., :2] - c3[:, None, :2]).pow(2).sum(-1)).sum(-1) / n_vis[:, 0]).sqrt()
    f = 0.5 * (Kr[:, 0, 0] + Kr[:, 1, 1])
    z = torch.where(l2 > 1.0, f * l3 / l2.clamp_min(1.0), torch.full_like(l2, 3.0)).clamp(0.5, 20.0)
    ray = (c2 - Kr[:, :2, 2]) / torch.stack([Kr[:, 0, 0], Kr[:, 1, 1]], -1)
    centre_cam = torch.cat([ray * z[:, None], z[:, None]], -1)
    t_cam = centre_cam - c3  # body origin in the camera frame
    r_wc = Tr[:, :3, :3].transpose(-1, -2)
    t_wc = -(r_wc @ Tr[:, :3, 3:4]).squeeze(-1)
    r_wb = r_wc @ r_cb
    t_w = (r_wc @ t_cam[..., None]).squeeze(-1) + t_wc
    transl = t_w - j0r + (r_wb @ j0r[..., None]).squeeze(-1)
    params = BodyParams(torch.zeros(B * Y, body.num_betas, device=dev), rep(mean_pose).clone(), roma.rotmat_to_rotvec(r_wb), transl)
    return params, j14r, j0r


def _kp_energy(joints_world, T, K, keypoints, prm: FitParams) -> torch.Tensor:
    s2 = prm.keypoint_sigma_px**2
    return prm.weights.keypoints * terms.keypoints_2d(terms.to_camera(joints_world, T), K, keypoints, prm.keypoint_sigma_px) / s2


def fit_batch(
    body: BodyModel, prior: PosePrior, keypoints: torch.Tensor, T: torch.Tensor, K: torch.Tensor, grid: SDFGrid, params: FitParams
) -> FitResult:
    """Fit B bodies of one scene: keypoints (B, 14, 3) [x, y, conf] px, T (B, 4, 4) world->camera, K (B, 3, 3)."""
    B, Y = keypoints.shape[0], params.yaw_candidates
    w = params.weights
    with torch.enable_grad():
        with torch.no_grad():
            start, j14_0, j0 = initial_params(body, prior, keypoints, T, K, Y)
        # -- rigid: orientation + translation of the mean body, all yaw candidates at once (no re-posing needed)
        orient = start.global_orient.clone().requires_grad_(True)
        transl = start.transl.clone().requires_grad_(True)
        kp_r, T_r, K_r = (x.repeat_interleave(Y, 0) for x in (keypoints, T, K))
        opt = torch.optim.Adam([orient, transl], lr=params.lr)

        def rigid_energy():
            rot = roma.rotvec_to_rotmat(orient)
            joints = (j14_0 - j0[:, None]) @ rot.transpose(-1, -2) + (j0 + transl)[:, None]
            return _kp_energy(joints, T_r, K_r, kp_r, params)

        for _ in range(params.rigid_iters):
            opt.zero_grad(set_to_none=True)
            rigid_energy().sum().backward()
            opt.step()
        with torch.no_grad():
            best = rigid_energy().reshape(B, Y).argmin(-1) + torch.arange(B, device=keypoints.device) * Y
        p = BodyParams(start.betas[best], start.body_pose[best], orient.detach()[best], transl.detach()[best]).detached(requires_grad=True)

        def energy(with_scene: bool, mask=None) -> dict[str, torch.Tensor]:
            out = pose_body(body, p)
            e = {
                "keypoints": _kp_energy(out.joints14, T, K, keypoints, params),
                "pose_prior": w.pose_prior * prior.energy(p.body_pose),
                "joint_limits": w.joint_limits * joint_limit_violation(p.body_pose),
                "betas": w.betas * p.betas.pow(2).sum(-1),
                "_verts": out.verts,
            }
            if with_scene:
                sdf = query_sdf(grid, out.verts)
                e["penetration"] = w.penetration * terms.penetration(sdf)
                e["contact"] = w.contact * terms.contact(sdf, mask, params.contact_sigma)
            return e

        def optimise(iters: int, with_scene: bool, mask=None) -> None:
            opt = torch.optim.Adam(p.tensors(), lr=params.lr)
            for _ in range(iters):
                opt.zero_grad(set_to_none=True)
                e = energy(with_scene, mask)
                sum(v for k, v in e.items() if not k.startswith("_")).sum().backward()
                opt.step()

        optimise(params.pose_iters, False)
        with torch.no_grad():
            mask = part_prior_contact(body, query_sdf(grid, pose_body(body, p).verts), params.part_prior_dist, params.part_prior_band)
        optimise(params.scene_iters, True, mask)
        with torch.no_grad():
            final = energy(True, mask)
    verts = final.pop("_verts")
    return FitResult(verts.detach(), p.detached(), final)
