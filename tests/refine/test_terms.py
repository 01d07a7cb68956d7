"""Energy terms: hand-computed values, and every gradient against finite differences (float64 gradcheck)."""

import numpy as np
import pytest
import torch

from sahmr.geometry.sdf import SDFGrid, query_sdf
from sahmr.refine import terms
from sahmr.refine.prior import HINGE_LIMITS, PosePrior, joint_limit_violation

D = torch.float64


def test_hand_computed_values():
    s = torch.tensor([[-0.1, 0.2, -0.05, 0.0]], dtype=D)
    assert terms.penetration(s).item() == pytest.approx(0.15)
    assert terms.gmof(torch.tensor(4.0, dtype=D), 2.0).item() == pytest.approx(2.0)  # r² = σ²: half of σ²
    mask = torch.tensor([[True, True, False, True]])
    # contact at |s| = σ costs 1/2, at 0 nothing: σ = 0.1 -> 0.5 + 0.2²/(0.2²+0.1²) + 0 = 0.5 + 0.8
    assert terms.contact(s, mask, 0.1).item() == pytest.approx(0.5 + 0.8)
    v = torch.zeros(1, 4, 3, dtype=D)
    moved = v + torch.tensor([0.0, 0.0, 0.3], dtype=D)
    art, shift = terms.keep_3d(moved, v)
    assert art.item() == pytest.approx(0.0) and shift.item() == pytest.approx(0.09)
    K = torch.tensor([[[100.0, 0, 50], [0, 100.0, 40], [0, 0, 1]]], dtype=D)
    p = torch.tensor([[[0.1, -0.2, 2.0]]], dtype=D)
    np.testing.assert_allclose(terms.project(p, K).numpy(), [[[55.0, 30.0]]])
    kp = torch.tensor([[[58.0, 34.0, 1.0]]], dtype=D)  # 5 px away
    assert terms.keypoints_2d(p, K, kp, 1e6).item() == pytest.approx(25.0, rel=1e-9)
    kp[..., 2] = 0.0
    assert terms.keypoints_2d(p, K, kp, 1e6).item() == 0.0


def _away_from_zero(x: torch.Tensor, eps: float = 0.02) -> torch.Tensor:
    return torch.where(x.abs() < eps, x.sign() * eps + (x == 0) * eps, x)  # relu's kink is not differentiable


def test_gradients_of_every_term_match_finite_differences():
    g = torch.Generator().manual_seed(0)
    r = lambda *shape: torch.randn(*shape, generator=g, dtype=D)  # noqa: E731
    s = _away_from_zero(r(2, 7) * 0.1).requires_grad_()
    mask = torch.rand(2, 7, generator=g) > 0.4
    v, ref = r(2, 5, 3).requires_grad_(), r(2, 5, 3)
    cam = (r(2, 5, 3) * 0.3 + torch.tensor([0, 0, 3.0], dtype=D)).requires_grad_()
    ref_cam = r(2, 5, 3) * 0.3 + torch.tensor([0, 0, 3.0], dtype=D)
    K = torch.tensor([[400.0, 0, 250], [0, 410.0, 190], [0, 0, 1]], dtype=D).expand(2, 3, 3)
    kp = torch.cat([r(2, 5, 2) * 30 + 200, torch.rand(2, 5, 1, generator=g, dtype=D)], -1)
    T = torch.eye(4, dtype=D).repeat(2, 1, 1)
    T[:, :3, 3] = r(2, 3)
    checks = {
        "penetration": (terms.penetration, (s,)),
        "contact": (lambda x: terms.contact(x, mask, 0.05), (s,)),
        "keep_3d": (lambda x: torch.stack(terms.keep_3d(x, ref)), (v,)),
        "keep_2d": (lambda x: terms.keep_2d(x, ref_cam, K), (cam,)),
        "keypoints_2d": (lambda x: terms.keypoints_2d(x, K, kp, 20.0), (cam,)),
        "to_camera": (lambda x: terms.to_camera(x, T), (v,)),
    }
    for name, (fn, args) in checks.items():
        assert torch.autograd.gradcheck(fn, args, eps=1e-6, atol=1e-6), name


def test_pose_prior_and_joint_limits_gradients_and_values():
    rng = np.random.default_rng(0)
    poses = rng.normal(0, 0.3, (500, 69))
    prior = PosePrior.fit(poses, source="test")
    prior = PosePrior(prior.mean.double(), prior.precision_chol.double(), prior.source)
    # Mahalanobis per DOF of the training poses averages ≈ 1 (the ridge makes it a little less)
    assert 0.8 < prior.energy(torch.as_tensor(poses)).mean().item() < 1.01
    x = torch.as_tensor(rng.normal(0, 0.3, (3, 69))).requires_grad_()
    assert torch.autograd.gradcheck(prior.energy, (x,), eps=1e-6, atol=1e-6)
    y = _away_from_zero(torch.as_tensor(rng.normal(0, 0.5, (3, 69)))).requires_grad_()
    assert torch.autograd.gradcheck(joint_limit_violation, (y,), eps=1e-6, atol=1e-6)
    bent = torch.zeros(1, 69, dtype=D)
    for i, sign in HINGE_LIMITS:
        bent[0, i] = sign * 1.0  # anatomical bends cost nothing
    assert joint_limit_violation(bent).item() == 0.0
    assert joint_limit_violation(-0.5 * bent).item() == pytest.approx(4 * 0.25)
    with pytest.raises(ValueError, match="63"):
        prior.energy(torch.zeros(1, 63, dtype=D))
    with pytest.raises(ValueError, match="at least 2"):
        PosePrior.fit(poses[:1])


def test_sdf_query_gradient_matches_finite_differences():
    rng = np.random.default_rng(1)
    grid = SDFGrid(rng.normal(0, 0.2, (6, 7, 5)), np.zeros(3), np.array([1.0, 1.2, 0.8]))
    # points strictly inside cells (the trilinear map is smooth there)
    pts = torch.as_tensor(rng.uniform(0.05, 0.75, (20, 3))).requires_grad_()
    assert torch.autograd.gradcheck(lambda p: query_sdf(grid, p), (pts,), eps=1e-7, atol=1e-6)
