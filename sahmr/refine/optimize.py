"""Scene-constrained refinement of predicted meshes (the library behind ``sahmr refine``).

For a batch of frames of one scene: explain each predicted mesh by the body model (`fit_to_vertices`), then
optimise the body parameters θ under

    E(θ) = w_3d · articulation + w_t · translation (keep_3d) + w_2d · keep_2d + w_pen · penetration + w_con · contact
           + w_prior · pose prior + w_limits · joint limits + w_betas · ‖β‖²

(`sahmr.refine.terms`). The refined mesh keeps what the body model could not explain:
``v_out(θ) = v_pred + M(θ) − M(θ_fit)``, so at θ = θ_fit the output IS the prediction (a correct, plausible
prediction is left unchanged) and every term is evaluated on v_out. Contact vertices are the prediction's own
``contact_vertex`` when present, else PROX's part prior: of each of the 7 contact parts
(`sahmr.body.parts`) that comes within ``part_prior_dist`` of the scene, its vertices closest to the scene
(`part_prior_contact`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from sahmr.body.model import BodyModel
from sahmr.body.parts import NUM_PARTS
from sahmr.geometry.sdf import SDFGrid, query_sdf
from sahmr.refine import terms
from sahmr.refine.body_fit import BodyParams, fit_to_vertices, pose_body
from sahmr.refine.prior import PosePrior, joint_limit_violation

__all__ = ["RefineWeights", "RefineParams", "RefineResult", "part_prior_contact", "refine_batch", "CONTACT_SOURCES"]

CONTACT_SOURCES = ("auto", "predicted", "parts", "none")


@dataclass
class RefineWeights:
    """Weights of the refinement energy (units of each term: `sahmr.refine.terms`)."""

    verts3d: float = 1000.0  # per m² of mean squared vertex displacement about the centroid (articulation)
    transl3d: float = 100.0  # per m² of centroid displacement (a 5 cm shift -> 0.25)
    verts2d: float = 0.01  # per px² of mean squared reprojection change (5 px -> 0.25)
    penetration: float = 5.0  # per m of summed penetration depth (PenE)
    contact: float = 1.0  # per contact vertex off the surface (robust, saturates at 1 per vertex)
    pose_prior: float = 0.05  # per unit of Mahalanobis² per DOF
    joint_limits: float = 10.0  # per rad² of backward knee/elbow bend
    betas: float = 0.001  # per unit of ‖β‖²


@dataclass
class RefineParams:
    """Parameters of ``sahmr refine`` (params.yaml section ``refine``)."""

    batch_size: int = 64  # frames optimised together (one scene per batch)
    fit_iters: int = 60  # Adam steps fitting the body model to the predicted vertices
    fit_lr: float = 0.08
    iters: int = 80  # Adam steps of the refinement
    lr: float = 0.01  # Adam step of the placement (global orientation rad, translation m)
    pose_lr_scale: float = 0.2  # the articulation's (body pose, shape) step relative to lr
    adam_eps: float = 0.01  # gradients (energy per m or rad) well below this take steps ∝ their size, not ~lr
    contact_sigma: float = 0.05  # m: the robust contact cost is half-saturated at this distance
    contact_source: str = "auto"  # auto: the file's contact_vertex if any, else parts; predicted | parts | none
    part_prior_dist: float = 0.10  # m: a contact part this close to the scene in the prediction gets contact ...
    part_prior_band: float = 0.03  # m: ... on its vertices at most this much farther than its closest one
    prior_split: str = "train"  # the dataset split whose body poses give the Gaussian pose prior
    weights: RefineWeights = field(default_factory=RefineWeights)

    def __post_init__(self) -> None:
        for name in ("batch_size", "fit_iters", "iters"):
            if int(getattr(self, name)) < (1 if name == "batch_size" else 0):
                raise ValueError(
                    f"refine.{name}: expected a {'positive' if name == 'batch_size' else 'non-negative'} integer, got {getattr(self, name)}"
                )
        for name in ("fit_lr", "lr", "contact_sigma", "part_prior_dist", "part_prior_band"):
            if not float(getattr(self, name)) > 0:
                raise ValueError(f"refine.{name}: expected a positive number, got {getattr(self, name)}")
        if self.contact_source not in CONTACT_SOURCES:
            raise ValueError(f"refine.contact_source: expected one of {CONTACT_SOURCES}, got {self.contact_source!r}")
        for k, v in vars(self.weights).items():
            if not float(v) >= 0:
                raise ValueError(f"refine.weights.{k}: expected a non-negative number, got {v}")


@dataclass
class RefineResult:
    """verts_world (B, V, 3) refined meshes; contact_mask (B, V) the contact vertices used;
    params the refined body parameters; energy_before / energy_after: term -> (B,) weighted values."""

    verts_world: torch.Tensor
    contact_mask: torch.Tensor
    params: BodyParams
    energy_before: dict[str, torch.Tensor]
    energy_after: dict[str, torch.Tensor]


def part_prior_contact(body: BodyModel, sdf_at_verts: torch.Tensor, max_dist: float, band: float) -> torch.Tensor:
    """(B, V) bool: PROX's part prior — per contact part (ids 1..7) whose closest vertex lies within max_dist m
    of the scene surface, its vertices within `band` m of that closest one (the layer that would touch if the
    part moved onto the surface; the sides of a foot on the floor are not pulled down too)."""
    d = sdf_at_verts.abs()
    mask = torch.zeros_like(d, dtype=torch.bool)
    for part in range(1, NUM_PARTS + 1):
        sel = body.part_ids == part
        if not bool(sel.any()):
            continue
        closest = d[:, sel].min(-1, keepdim=True).values  # (B, 1)
        mask[:, sel] = (d[:, sel] <= closest + band) & (closest <= max_dist)
    return mask


def _energy(body, p, base, fit_verts, T, K, grid, mask, prior, prm: RefineParams) -> dict[str, torch.Tensor]:
    """Weighted terms, each (B,), of E(θ) on v_out = base + M(θ) − M(θ_fit)."""
    w = prm.weights
    verts = base + pose_body(body, p).verts - fit_verts
    sdf = query_sdf(grid, verts)
    cam = terms.to_camera(verts, T)
    base_cam = terms.to_camera(base, T)
    articulation, shift = terms.keep_3d(verts, base)
    return {
        "verts3d": w.verts3d * articulation,
        "transl3d": w.transl3d * shift,
        "verts2d": w.verts2d * terms.keep_2d(cam, base_cam, K),
        "penetration": w.penetration * terms.penetration(sdf),
        "contact": w.contact * terms.contact(sdf, mask, prm.contact_sigma),
        "pose_prior": w.pose_prior * prior.energy(p.body_pose),
        "joint_limits": w.joint_limits * joint_limit_violation(p.body_pose),
        "betas": w.betas * p.betas.pow(2).sum(-1),
        "_verts": verts,
    }


def refine_batch(
    body: BodyModel,
    prior: PosePrior,
    pred_verts_world: torch.Tensor,
    T_world_to_cam: torch.Tensor,
    K: torch.Tensor,
    grid: SDFGrid,
    params: RefineParams,
    contact_vertex: torch.Tensor | None = None,
) -> RefineResult:
    """Refine B predicted meshes of one scene.

    pred_verts_world: (B, V, 3) m; T_world_to_cam: (B, 4, 4); K: (B, 3, 3) px; grid: the scene's SDF (world
    frame); contact_vertex: (B, V) bool predicted contact, or None. Tensors on the body model's device."""
    if pred_verts_world.dim() != 3 or pred_verts_world.shape[1:] != (body.num_verts, 3):
        raise ValueError(f"pred_verts_world: expected (B, {body.num_verts}, 3) for {body.name}, got {tuple(pred_verts_world.shape)}")
    base = pred_verts_world.float()
    source = params.contact_source
    if source == "predicted" and contact_vertex is None:
        raise ValueError("refine.contact_source is 'predicted' but the predictions have no contact_vertex; use 'auto' or 'parts'")
    with torch.no_grad():
        sdf0 = query_sdf(grid, base)
        if source in ("auto", "predicted") and contact_vertex is not None:
            mask = contact_vertex.bool()
        elif source == "none":
            mask = torch.zeros_like(sdf0, dtype=torch.bool)
        else:
            mask = part_prior_contact(body, sdf0, params.part_prior_dist, params.part_prior_band)
    with torch.enable_grad():
        fit, fit_verts = fit_to_vertices(body, base, prior, iters=params.fit_iters, lr=params.fit_lr)
        p = fit.detached(requires_grad=True)
        with torch.no_grad():
            before = _energy(body, p, base, fit_verts, T_world_to_cam, K, grid, mask, prior, params)
        # Adam steps each parameter by ~lr whatever its gradient's size: the articulation gets a smaller step
        # than the placement, or the first steps bend every joint by lr radians before the 3D term pulls back.
        small = params.lr * params.pose_lr_scale
        opt = torch.optim.Adam(
            [{"params": [p.global_orient, p.transl]}, {"params": [p.body_pose, p.betas], "lr": small}], lr=params.lr, eps=params.adam_eps
        )
        for _ in range(params.iters):
            opt.zero_grad(set_to_none=True)
            e = _energy(body, p, base, fit_verts, T_world_to_cam, K, grid, mask, prior, params)
            sum(v for k, v in e.items() if not k.startswith("_")).sum().backward()
            opt.step()
        with torch.no_grad():
            after = _energy(body, p, base, fit_verts, T_world_to_cam, K, grid, mask, prior, params)
    verts = after.pop("_verts")
    before.pop("_verts")
    return RefineResult(verts.detach(), mask, p.detached(), before, after)
