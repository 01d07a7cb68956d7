"""``BodyModel``: one batched torch interface over SMPL / SMPL-H / SMPL-X files and ``sahmr-open``.

Everything downstream takes its sizes from here: ``num_verts`` (V), ``level_sizes`` (V, V_mid,
V_coarse), ``num_parts`` (7), 14 evaluation joints. Posing goes through smplx's LBS; the model file is a
plain ``.npz`` handed to smplx as a ``data_struct`` (nothing is unpickled at run time).
"""

from __future__ import annotations

import contextlib
import io
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from sahmr.body.hierarchy import HierarchyLevel, MeshSampler
from sahmr.body.model_file import H36M_J17_TO_J14, NUM_LEVELS, BodyModelFile, load_body_model_file
from sahmr.body.parts import NUM_PARTS

DEFAULT_MODEL = "sahmr-open"


def models_dir() -> Path:
    """Folder of body-model files: ``$SAHMR_MODELS_DIR`` or ``./models``."""
    return Path(os.environ.get("SAHMR_MODELS_DIR", "models"))


def resolve_model_path(name_or_path: str | Path = DEFAULT_MODEL) -> Path:
    """A model name (``sahmr-open``, ``smpl_neutral``…) or a path → an existing ``.npz`` path."""
    p = Path(name_or_path)
    candidates = [p] if p.suffix == ".npz" else [p.with_suffix(".npz"), models_dir() / f"{p.name}.npz"]
    for c in candidates:
        if c.is_file():
            return c
    expected = candidates[-1]
    if p.name.startswith("sahmr-open"):
        how = "build the open model with `sahmr body build-open` (or `make repro`)"
    else:
        how = (
            "obtain the official SMPL/SMPL-H/SMPL-X file from its authors' website (registration required; "
            "place it under data/body_models/) and convert it once with `sahmr body import <file.pkl>`"
        )
    raise FileNotFoundError(f"body model '{name_or_path}' not found: expected {expected}. To get it, {how}.")


@dataclass
class BodyOutput:
    """verts (B, V, 3); joints (B, K, 3) kinematic joints; joints14 (B, 14, 3); pelvis (B, 3)."""

    verts: torch.Tensor
    joints: torch.Tensor
    joints14: torch.Tensor
    pelvis: torch.Tensor


class BodyModel(torch.nn.Module):
    """A posable SMPL-family body with the kit's evaluation joints, contact parts and hierarchy.

    ``forward(betas (B, S), body_pose (B, 3·(K−1)) for SMPL, global_orient (B, 3), transl (B, 3))``;
    any omitted argument is zero. float32; the device follows ``.to()``.
    """

    def __init__(self, model_file: BodyModelFile, num_betas: int | None = None):
        super().__init__()
        import smplx
        from smplx.utils import Struct

        a = model_file.arrays
        self.meta = dict(model_file.meta)
        self.model_type = model_file.model_type
        self.name = self.meta.get("name", self.model_type)
        max_betas = a["shapedirs"].shape[-1]
        if self.model_type == "smplx":  # smplx's SMPL-X shapedirs also hold the expression space
            max_betas = min(max_betas, 300)
        self.num_betas = int(min(num_betas or 10, max_betas))
        struct = Struct(**a)
        common = dict(model_path="", data_struct=struct, num_betas=self.num_betas)
        with contextlib.redirect_stdout(io.StringIO()):  # smplx prints a warning about 10 betas
            if self.model_type == "smpl":
                layer = smplx.SMPL(**common)
            elif self.model_type == "smplh":
                layer = smplx.SMPLH(**common, use_pca=False, flat_hand_mean=True)
            elif model_file.path is not None:
                # smplx's SMPL-X class takes no data_struct: it np.loads the file itself. The file was
                # already read with allow_pickle=False (load_body_model_file), so it holds no pickles.
                layer = smplx.SMPLX(
                    model_path=str(model_file.path), ext="npz", num_betas=self.num_betas, num_expression_coeffs=10, use_pca=False, flat_hand_mean=True
                )
            else:
                raise ValueError("an SMPL-X BodyModel must be loaded from its .npz file (BodyModel.load)")
        # smplx appends joints picked from hard-coded SMPL vertex ids; meaningless on other meshes.
        layer.vertex_joint_selector.register_buffer("extra_joints_idxs", torch.zeros(0, dtype=torch.long))
        self.layer = layer
        self.num_verts = int(a["v_template"].shape[0])
        self.num_joints = int(a["kintree_table"].shape[1])
        self.register_buffer("faces", torch.as_tensor(a["f"].astype(np.int64)), persistent=False)
        self.register_buffer("eval_regressor", torch.as_tensor(a["sahmr_eval_regressor"], dtype=torch.float32), persistent=False)
        self.register_buffer("part_ids", torch.as_tensor(a["sahmr_part_ids"].astype(np.int64)), persistent=False)
        levels = [
            HierarchyLevel(a[f"sahmr_down_idx_{i}"], a[f"sahmr_up_idx_{i}"], a[f"sahmr_up_w_{i}"], a[f"sahmr_faces_{i}"])
            for i in range(1, NUM_LEVELS + 1)
        ]
        self.sampler = MeshSampler(levels)
        self.level_faces = [a["f"]] + [lvl.faces for lvl in levels]
        self.register_buffer("j14_index", torch.as_tensor(H36M_J17_TO_J14, dtype=torch.long), persistent=False)

    # ---- construction -------------------------------------------------------------------------
    @classmethod
    def load(cls, name_or_path: str | Path = DEFAULT_MODEL, num_betas: int | None = None) -> BodyModel:
        return cls(load_body_model_file(resolve_model_path(name_or_path)), num_betas=num_betas)

    # ---- sizes --------------------------------------------------------------------------------
    @property
    def level_sizes(self) -> tuple[int, ...]:
        """(V, V_mid, V_coarse), e.g. (6890, 1723, 431) for SMPL."""
        return self.sampler.level_sizes

    num_parts = NUM_PARTS
    num_eval_joints = 14

    @property
    def pose_dim(self) -> int:
        """Length of ``body_pose`` (SMPL: 69 = 23 joints × 3)."""
        return 3 * self.layer.NUM_BODY_JOINTS

    # ---- evaluation joints --------------------------------------------------------------------
    def regress_joints17(self, verts: torch.Tensor) -> torch.Tensor:
        """H36M 17 joints (B, 17, 3) from verts (B, V, 3)."""
        self._check_verts(verts)
        return torch.einsum("jv,bvc->bjc", self.eval_regressor.to(verts.dtype), verts)

    def regress_joints14(self, verts: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(joints14 (B, 14, 3), pelvis (B, 3)) from verts (B, V, 3); pelvis = H36M joint 0 (spec §2.2)."""
        j17 = self.regress_joints17(verts)
        return j17[:, self.j14_index], j17[:, 0]

    def _check_verts(self, verts: torch.Tensor) -> None:
        if verts.dim() != 3 or verts.shape[1:] != (self.num_verts, 3):
            raise ValueError(f"verts: expected shape (B, {self.num_verts}, 3) for {self.name}, got {tuple(verts.shape)}")

    # ---- posing -------------------------------------------------------------------------------
    def forward(
        self,
        betas: torch.Tensor | None = None,
        body_pose: torch.Tensor | None = None,
        global_orient: torch.Tensor | None = None,
        transl: torch.Tensor | None = None,
        **extra_poses: torch.Tensor,
    ) -> BodyOutput:
        given = {"betas": betas, "body_pose": body_pose, "global_orient": global_orient, "transl": transl, **extra_poses}
        sizes = {"betas": self.num_betas, "body_pose": self.pose_dim, "global_orient": 3, "transl": 3}
        if self.model_type in ("smplh", "smplx"):
            sizes.update(left_hand_pose=45, right_hand_pose=45)
        if self.model_type == "smplx":
            sizes.update(jaw_pose=3, leye_pose=3, reye_pose=3, expression=10)
        unknown = set(extra_poses) - set(sizes)
        if unknown:
            raise ValueError(f"unknown pose arguments {sorted(unknown)} for {self.name}; expected {sorted(sizes)}")
        B = {v.shape[0] for v in given.values() if v is not None}
        if len(B) > 1:
            raise ValueError(f"inconsistent batch sizes: { {k: tuple(v.shape) for k, v in given.items() if v is not None} }")
        B = B.pop() if B else 1
        ref = self.faces
        device, dtype = ref.device, torch.float32
        args = {}
        for k, d in sizes.items():
            v = given.get(k)
            if v is None:
                v = torch.zeros(B, d, device=device, dtype=dtype)
            elif v.dim() != 2 or v.shape[1] != d:
                raise ValueError(f"{k}: expected shape (B, {d}) for {self.name}, got {tuple(v.shape)}")
            args[k] = v.to(dtype)
        out = self.layer(**args, return_verts=True)
        verts = out.vertices
        joints14, pelvis = self.regress_joints14(verts)
        return BodyOutput(verts=verts, joints=out.joints[:, : self.num_joints], joints14=joints14, pelvis=pelvis)

    def template_verts(self, betas: torch.Tensor | None = None) -> torch.Tensor:
        """Shaped rest mesh (B, V, 3) (zero pose, no translation)."""
        return self.forward(betas=betas).verts
