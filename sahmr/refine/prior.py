"""Body priors for test-time optimisation: a Gaussian pose prior learned from a dataset's poses, SMPLify's
hinge-joint limits, and the shape prior.

The Gaussian is fitted to the ``body_pose`` of a training split (the synthetic benchmark's train split; any
dataset of the kit that stores body-model parameters), so it knows the poses of that body model's joint
space without a network (no VPoser or GMM download is possible offline). Joint limits are SMPLify's: the
knees and elbows may not bend backwards (sign conventions in `sahmr.body.poses`; joints 1..21 mean the same
in SMPL, SMPL-H, SMPL-X and sahmr-open).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from sahmr.body.model_file import SMPL_JOINT_NAMES

__all__ = ["PosePrior", "joint_limit_violation", "prior_from_dataset", "HINGE_LIMITS"]

_J = {n: i for i, n in enumerate(SMPL_JOINT_NAMES)}
# (body_pose index, sign): the component `sign * body_pose[index]` must be >= 0 (sahmr.body.poses):
# knee bend (heel back) = +x; elbow flexion = -y (left) / +y (right).
HINGE_LIMITS = (
    (3 * (_J["left_knee"] - 1) + 0, +1.0),
    (3 * (_J["right_knee"] - 1) + 0, +1.0),
    (3 * (_J["left_elbow"] - 1) + 1, -1.0),
    (3 * (_J["right_elbow"] - 1) + 1, +1.0),
)


def joint_limit_violation(body_pose: torch.Tensor) -> torch.Tensor:
    """Σ over the hinge joints of relu(−sign·θ)²: (B, P) body pose -> (B,) rad²; 0 for anatomical bends."""
    idx = torch.tensor([i for i, _ in HINGE_LIMITS], device=body_pose.device)
    sign = torch.tensor([s for _, s in HINGE_LIMITS], dtype=body_pose.dtype, device=body_pose.device)
    return torch.relu(-sign * body_pose[:, idx]).pow(2).sum(-1)


@dataclass
class PosePrior:
    """A Gaussian over ``body_pose`` (P = 3 x body joints).

    mean: (P,) rad; precision_chol: (P, P) upper-triangular U with Σ⁻¹ = Uᵀ U; source: where it came from.
    ``energy(pose)`` = ‖U (θ − μ)‖² / P, the squared Mahalanobis distance per DOF (≈1 for a typical pose).
    """

    mean: torch.Tensor
    precision_chol: torch.Tensor
    source: str

    @classmethod
    def fit(cls, poses: np.ndarray, *, ridge: float = 0.01, source: str = "poses") -> PosePrior:
        """Maximum-likelihood Gaussian of poses (N, P) with `ridge` rad² added to the diagonal (N may be < P)."""
        poses = np.asarray(poses, dtype=np.float64)
        if poses.ndim != 2 or poses.shape[0] < 2 or not np.isfinite(poses).all():
            raise ValueError(f"{source}: a pose prior needs at least 2 finite poses of shape (N, P), got {poses.shape}")
        mean = poses.mean(0)
        cov = np.cov(poses, rowvar=False) + ridge * np.eye(poses.shape[1])
        precision = np.linalg.inv(cov)
        upper = np.linalg.cholesky(precision).T  # precision = L Lᵀ = Uᵀ U with U = Lᵀ
        return cls(torch.as_tensor(mean, dtype=torch.float32), torch.as_tensor(upper, dtype=torch.float32), source)

    @classmethod
    def isotropic(cls, dim: int, sigma: float = 0.5) -> PosePrior:
        """Zero mean, σ rad per DOF: the fallback when no training poses are available."""
        return cls(torch.zeros(dim), torch.eye(dim) / sigma, f"isotropic (sigma {sigma} rad)")

    @property
    def dim(self) -> int:
        return int(self.mean.shape[0])

    def energy(self, body_pose: torch.Tensor) -> torch.Tensor:
        """(B, P) -> (B,) squared Mahalanobis distance per DOF."""
        if body_pose.shape[-1] != self.dim:
            raise ValueError(f"pose prior ({self.source}) is over {self.dim} DOF, body_pose has {body_pose.shape[-1]}")
        d = body_pose - self.mean.to(body_pose)
        return (d @ self.precision_chol.to(body_pose).T).pow(2).sum(-1) / self.dim


def prior_from_dataset(data_root, split: str, pose_dim: int) -> PosePrior:
    """The Gaussian of a dataset split's ``body_pose``; isotropic (with a warning) when it has none."""
    import warnings

    from sahmr.data.format import open_dataset

    ds = open_dataset(data_root)
    if split not in ds.splits:
        raise ValueError(
            f"prior_split {split!r}: {data_root} has no such split (it has {sorted(ds.splits)}); the pose prior is fitted to its body poses"
        )
    if "body_pose" in ds.split(split).keys():
        poses = np.asarray(ds.split(split)["body_pose"])
        if poses.shape[1] != pose_dim:
            raise ValueError(f"{data_root} split {split!r}: body_pose has {poses.shape[1]} DOF, the body model {pose_dim}")
        return PosePrior.fit(poses, source=f"{data_root}:{split} ({len(poses)} poses)")
    warnings.warn(f"{data_root}: no body_pose in split {split!r}; using an isotropic pose prior", stacklevel=2)
    return PosePrior.isotropic(pose_dim)
