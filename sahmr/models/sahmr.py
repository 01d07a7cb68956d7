"""SAHMR = frozen RCNet + the METRO-style mesh transformer (spec §4.3), and the image-only baseline.

    model = SAHMR(rcnet, MeshTransformerConfig.preset("cpu"), body)     # body: BodyModel (sizes, template)
    model = SAHMR(rcnet, mesh_transformer, eval_regressor=J17)         # from given modules (no body model)
    out = model(image, K, crop_box_xyxy, points_cam, points_batch)          # SAHMROutput
    out = model.forward_batch(batch, generator)                        # a `collate_human_scene` batch

SAHMR (spec §4.3): RCNet runs without gradient and always in eval mode (`model.train()` leaves it in eval;
its parameters have `requires_grad=False`). Its packed contact points become a fixed set of N slots
(`pad_contact_points`: zero padding + mask; deterministic strided sub-sampling when a sample has more than N
points and no generator is given, a seeded random subset in training; `contact_sampling="original"` draws
with replacement as the original does, at test time too, from a seeded generator; explicit indices can be
injected with `contact_indices`). The origin pelvis `p` is RCNet's
refined pelvis (detached); in training mode, with the GT pelvis and a generator, a sample whose `p` is
farther than `pelvis_noise_thr` (0.5 m) from the GT gets `p = GT + N(0, pelvis_noise_std²)` (0.08 m,
spec §5.5). The transformer sees the contact points relative to `p` and predicts the mesh relative to
`p`; `verts_cam = verts_crm + p`.

`ImageOnlyBaseline`: the same transformer without the scene branch (no contact tokens, no linear
attention layers) and `p` = RCNet's coarse, image-only pelvis, computed from RCNet's image branch alone —
scene points are never read, so the comparison isolates what the scene adds. Same training noise rule.

Both are thin modules with parameters `rcnet.*` and `metro_enhanced.*` (the original's release-checkpoint
layout, `net.` stripped).

One definitional difference from the original (documented, not a quirk we reproduce): the original's
root-relative outputs subtract the H36M pelvis regressed from the *origin-relative* ("crm") mesh, the kit's
`verts_root` the pelvis regressed from the camera-frame mesh. Both are the same when the regressor's pelvis
row sums to 1; the original's `J_regressor_h36m_correct` pelvis row sums to 0.99991, so the two differ by
9e-5 · |p| (≈0.5 mm at 5 m). `verts_cam` / `verts_crm` are unaffected.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from sahmr.body.regressors import regress_h36m

from .mesh_transformer import MeshTransformer, MeshTransformerConfig, pad_contact_points

CONTACT_SAMPLING_MODES = ("kit", "original")
from .rcnet import RCNet, RCNetOutput, check_camera_inputs, coarse_pelvis_from_maps

__all__ = ["SAHMR", "ImageOnlyBaseline", "SAHMROutput"]


@dataclass
class SAHMROutput:
    """Predictions for B samples (V vertices, N contact slots), float32 on the input's device.

    verts_cam (B, V, 3): final mesh, camera frame. joints14_cam (B, 14, 3): H36M joints of verts_cam.
    pelvis_cam (B, 3): the origin pelvis used (SAHMR: refined; baseline: coarse; noisy GT where replaced).
    pelvis_mesh_cam (B, 3): the H36M pelvis of verts_cam. verts_root (B, V, 3), joints14_root (B, 14, 3):
    relative to pelvis_mesh_cam. verts_crm (B, V, 3): network output (verts_cam − pelvis_cam).
    pelvis_coarse_cam, pelvis_refined_cam (B, 3) (refined = coarse for the baseline).
    noisy_gt_pelvis (B,) bool. contact_points_cam (B, N, 3) padded contact points (camera frame),
    contact_points_crm (B, N, 3) = contact_points_cam − pelvis_cam (the transformer's input),
    contact_points_crm_out (B, N, 3) the contact branch's output, contact_points_part (B, N) int64 (0 =
    padding), contact_points_mask (B, N) bool; all contact fields None for the baseline.
    rcnet: the full RCNetOutput (None for the baseline). mesh_intermediates: the mesh transformer's
    (`return_intermediates=True`; RCNet's are then in `rcnet.intermediates`).
    """

    verts_cam: Tensor
    joints14_cam: Tensor
    pelvis_cam: Tensor
    pelvis_mesh_cam: Tensor
    verts_root: Tensor
    joints14_root: Tensor
    verts_crm: Tensor
    pelvis_coarse_cam: Tensor
    pelvis_refined_cam: Tensor
    noisy_gt_pelvis: Tensor
    contact_points_cam: Tensor | None = None
    contact_points_crm: Tensor | None = None
    contact_points_crm_out: Tensor | None = None
    contact_points_part: Tensor | None = None
    contact_points_mask: Tensor | None = None
    rcnet: RCNetOutput | None = None
    mesh_intermediates: dict[str, Tensor] | None = None


class SAHMR(nn.Module):
    """Frozen RCNet + MeshTransformer (scene branch on). See the module docstring."""

    use_scene = True

    def __init__(self, rcnet: RCNet, mesh: MeshTransformerConfig | MeshTransformer | None, body=None,
                 pelvis_noise_thr: float = 0.5, pelvis_noise_std: float = 0.08, *, eval_regressor: Tensor | None = None,
                 contact_sampling: str = "kit"):
        """rcnet: an RCNet (frozen here). mesh: a MeshTransformerConfig (built with `body`) or a built
        MeshTransformer (used as is; its `use_scene` must be this class's). body: the BodyModel (mesh sizes,
        template, `eval_regressor`); eval_regressor (17, V): the H36M regressor when no body is given.
        contact_sampling: "kit" (training: random subsets without replacement; inference: evenly strided,
        deterministic) or "original" (with replacement, train and test, from the given generator; a
        generator seeded 0 when none is given at inference — spec §4.3)."""
        super().__init__()
        if isinstance(mesh, MeshTransformer):
            if mesh.cfg.use_scene != self.use_scene:
                raise ValueError(f"{type(self).__name__} needs a mesh transformer with use_scene={self.use_scene}")
            self.metro_enhanced = mesh
        else:
            mesh_cfg = mesh or MeshTransformerConfig()
            if mesh_cfg.use_scene != self.use_scene:
                from dataclasses import replace

                mesh_cfg = replace(mesh_cfg, use_scene=self.use_scene)
            if body is None:
                raise ValueError("SAHMR: a body model is needed to build the mesh transformer from a config")
            self.metro_enhanced = MeshTransformer(mesh_cfg, body)
        if eval_regressor is None:
            if body is None:
                raise ValueError("SAHMR: pass body or eval_regressor (the (17, V) H36M joint regressor)")
            eval_regressor = body.eval_regressor
        if contact_sampling not in CONTACT_SAMPLING_MODES:
            raise ValueError(f"contact_sampling: expected one of {CONTACT_SAMPLING_MODES}, got {contact_sampling!r}")
        self.contact_sampling = contact_sampling
        self.rcnet = rcnet
        self.rcnet.requires_grad_(False)
        self.rcnet.eval()
        self.pelvis_noise_thr = float(pelvis_noise_thr)
        self.pelvis_noise_std = float(pelvis_noise_std)
        self.register_buffer("eval_regressor", eval_regressor.detach().clone().float(), persistent=False)

    @property
    def num_contact_points(self) -> int:
        return self.metro_enhanced.cfg.num_contact_points

    def train(self, mode: bool = True) -> "SAHMR":
        super().train(mode)
        self.rcnet.eval()  # always: no anchor noise, no dropout, BN running statistics (spec §4.3)
        return self

    # ------------------------------------------------------------------------------------------------
    def _origin(self, image, K, crop_box_xyxy, points_cam, points_batch, return_intermediates=False
                ) -> tuple[Tensor, Tensor, RCNetOutput | None]:
        """(coarse pelvis (B, 3), origin pelvis before noise (B, 3), RCNet output | None), no grad."""
        rc = self.rcnet(image, K, crop_box_xyxy, points_cam, points_batch, return_intermediates=return_intermediates)
        return rc.pelvis_coarse_cam, rc.pelvis_refined_cam, rc

    def _noisy_gt(self, p: Tensor, pelvis_gt_cam: Tensor | None, generator: torch.Generator | None):
        noisy = torch.zeros(p.shape[0], dtype=torch.bool, device=p.device)
        if self.training and pelvis_gt_cam is not None and generator is not None:
            gt = pelvis_gt_cam.to(p.dtype)
            noisy = (p - gt).norm(dim=1) > self.pelvis_noise_thr
            noise = torch.randn(p.shape[0], 3, generator=generator, device=generator.device).to(p.device, p.dtype)
            p = torch.where(noisy[:, None], gt + self.pelvis_noise_std * noise, p)
        return p, noisy

    def forward(self, image: Tensor, K: Tensor, crop_box_xyxy: Tensor, points_cam: Tensor | None = None,
                points_batch: Tensor | None = None, pelvis_gt_cam: Tensor | None = None,
                generator: torch.Generator | None = None, *, contact_indices: Tensor | None = None,
                return_intermediates: bool = False) -> SAHMROutput:
        """image (B, 3, S, S) RGB in [0, 1]; K (B, 3, 3); crop_box_xyxy (B, 4); points_cam (P, 3) frustum scene
        points (camera frame) with points_batch (P,) int64 (ignored by the baseline); pelvis_gt_cam (B, 3)
        and generator: training (noisy-GT origin, random contact subsets) and, with contact_sampling
        "original", the test-time draw. contact_indices (B, N) int64: explicit contact slots (ranks into each
        sample's contact points in RCNet's order, −1 = padding), e.g. the original's recorded draw.
        return_intermediates: RCNet's and the mesh transformer's intermediate tensors in the output."""
        b = image.shape[0]
        if points_cam is None:
            points_cam = image.new_zeros(0, 3)
            points_batch = torch.zeros(0, dtype=torch.long, device=image.device)
        with torch.no_grad():
            coarse, p, rc = self._origin(image, K, crop_box_xyxy, points_cam, points_batch, return_intermediates)
            refined = p.detach().clone()
            p, noisy = self._noisy_gt(p.detach(), pelvis_gt_cam, generator)
            extra = {}
            if self.use_scene:
                sampling, gen = self._contact_sampling(generator)
                pts, pid, mask = pad_contact_points(rc.contact_points_cam, rc.contact_points_part, rc.contact_points_batch,
                                                    b, self.num_contact_points, gen, sampling=sampling,
                                                    indices=contact_indices)
                crm = pts - p[:, None]  # padding rows become −p; they are masked
                extra = dict(contact_points_cam=pts, contact_points_crm=crm, contact_points_part=pid, contact_points_mask=mask)
        if self.use_scene:
            out = self.metro_enhanced(image, extra["contact_points_crm"], extra["contact_points_part"], extra["contact_points_mask"],
                                      return_intermediates=return_intermediates)
            extra["contact_points_crm_out"] = out.contact_crm_out
        else:
            out = self.metro_enhanced(image, return_intermediates=return_intermediates)
        verts_cam = out.verts_crm + p[:, None]
        j14, pel = regress_h36m(verts_cam, self.eval_regressor)
        return SAHMROutput(
            verts_cam=verts_cam, joints14_cam=j14, pelvis_cam=p, pelvis_mesh_cam=pel,
            verts_root=verts_cam - pel[:, None], joints14_root=j14 - pel[:, None], verts_crm=out.verts_crm,
            pelvis_coarse_cam=coarse, pelvis_refined_cam=refined, noisy_gt_pelvis=noisy, rcnet=rc,
            mesh_intermediates=out.intermediates, **extra,
        )

    def _contact_sampling(self, generator: torch.Generator | None) -> tuple[str, torch.Generator | None]:
        """(pad_contact_points sampling mode, generator) for this call (see __init__'s contact_sampling)."""
        if self.contact_sampling == "original":
            return "with_replacement", generator if generator is not None else torch.Generator().manual_seed(0)
        if self.training and generator is not None:
            return "permutation", generator
        return "strided", None

    def forward_batch(self, batch: dict, generator: torch.Generator | None = None) -> SAHMROutput:
        """forward on a `collate_human_scene` batch (GT pelvis used for the origin noise in training)."""
        return self(batch["image"], batch["K"], batch["crop_box_xyxy"], batch.get("points_cam"), batch.get("points_batch"),
                    batch.get("pelvis_cam") if self.training else None, generator)


class ImageOnlyBaseline(SAHMR):
    """The image-only baseline: no scene branch, origin = RCNet's coarse (image-branch) pelvis."""

    use_scene = False

    def _origin(self, image, K, crop_box_xyxy, points_cam, points_batch, return_intermediates=False):
        rc = self.rcnet
        K = K.float()
        crop_box_xyxy = crop_box_xyxy.float()
        check_camera_inputs(K, crop_box_xyxy)
        maps = rc.root_net(rc.prepare_image(image.float()))
        _, _, _, coarse, _ = coarse_pelvis_from_maps(maps[:, 0:1], maps[:, 1:2], K, crop_box_xyxy, rc.bi_w)
        return coarse, coarse, None
