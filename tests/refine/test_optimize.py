"""Refinement on analytic box scenes with the open body model: penetration removed, contact closed, a correct
prediction left alone, frames independent of their batch, and the energy's gradient against finite differences."""

import numpy as np
import pytest
import torch

from sahmr.geometry.sdf import query_sdf
from sahmr.refine import terms
from sahmr.refine.body_fit import fit_to_vertices
from sahmr.refine.optimize import RefineParams, _energy, refine_batch
from sahmr.refine.prior import PosePrior
from tests.helpers.box_scene import camera_for, place_body, scene_grid

GLUTEUS = 6


@pytest.fixture(scope="module")
def prior(open_model):
    return PosePrior.isotropic(open_model.pose_dim, sigma=1.0)


def _split_change(after: torch.Tensor, before: torch.Tensor):
    """(articulation: mean vertex displacement about the centroid, centroid shift (3,)) in m, frame 0."""
    d = (after - before)[0]
    shift = d.mean(0)
    return (d - shift).norm(dim=-1).mean().item(), shift


def _pene(grid, v) -> float:
    return terms.penetration(query_sdf(grid, v)).item()


def test_a_body_sunk_5cm_into_the_floor_comes_out_with_its_pose(open_model, prior):
    grid = scene_grid()
    _, sunk = place_body(open_model, "a-pose", -0.05)
    T, K = camera_for(sunk[0].mean(0).numpy())
    r = refine_batch(open_model, prior, sunk, T, K, grid, RefineParams())
    before, after = _pene(grid, sunk), _pene(grid, r.verts_world)
    assert before > 5.0  # the soles: ~400 vertices up to 5 cm deep
    assert after < 0.05 * before, (before, after)
    articulation, shift = _split_change(r.verts_world, sunk)
    assert articulation < 0.01  # the pose is kept (mean vertex displacement about the centroid < 1 cm)
    assert 0.03 < shift[2].item() < 0.065  # it rose by about the 5 cm it sank (along the view ray: the image is kept)


def seat_scene(body):
    """A body sitting (gluteus on a seat box whose top is the lowest body point above its footprint, feet
    ~1 cm above the floor): (verts (1, V, 3), grid)."""
    _, seated = place_body(body, "sitting", 0.0, part=GLUTEUS)
    seated = seated - torch.tensor([0.0, 0.0, seated[0, :, 2].min().item() - 0.01])
    lo, hi = torch.tensor([-0.25, -0.1]), torch.tensor([0.25, 0.7])
    v = seated[0]
    above = ((v[:, :2] > lo) & (v[:, :2] < hi)).all(-1)
    top = v[above, 2].min().item()
    centre = ((lo + hi) / 2).tolist() + [top / 2]
    half = ((hi - lo) / 2).tolist() + [top / 2]
    return seated, scene_grid(boxes=[(centre, half)])


def test_a_body_floating_above_a_seat_with_gluteus_contact_comes_down(open_model, prior):
    seated, grid = seat_scene(open_model)
    assert _pene(grid, seated) < 0.05  # the scene fits the seated body
    floating = seated + torch.tensor([0.0, 0.0, 0.05])
    T, K = camera_for(floating[0].mean(0).numpy())
    # the predicted contact: the gluteus vertices that touch the seat in the seated pose
    contact = (open_model.part_ids == GLUTEUS)[None] & (query_sdf(grid, seated).abs() < 0.02)
    assert contact.sum() > 20
    r = refine_batch(open_model, prior, floating, T, K, grid, RefineParams(), contact_vertex=contact)
    gap_before = query_sdf(grid, floating)[contact].abs().mean().item()
    gap_after = query_sdf(grid, r.verts_world)[contact].abs().mean().item()
    assert gap_before > 0.045
    assert gap_after < 0.015, gap_after  # on the seat
    articulation, shift = _split_change(r.verts_world, floating)
    assert -0.065 < shift[2].item() < -0.025  # it came down
    assert articulation < 0.015
    assert _pene(grid, r.verts_world) < 0.5  # and did not sink into the seat instead


def test_a_correct_prediction_is_left_almost_unchanged(open_model, prior):
    grid = scene_grid()
    _, standing = place_body(open_model, "a-pose", 0.0)  # soles on the floor
    T, K = camera_for(standing[0].mean(0).numpy())
    r = refine_batch(open_model, prior, standing, T, K, grid, RefineParams())
    moved = (r.verts_world - standing).norm(dim=-1)
    # the part prior pulls the soles' lowest 3 cm layer (part_prior_band) onto the floor: the feet flatten by mm
    assert moved.mean().item() < 0.008, moved.mean().item()
    assert moved.max().item() < 0.03


def test_frames_are_refined_independently_of_their_batch(open_model, prior):
    grid = scene_grid()
    _, a = place_body(open_model, "a-pose", -0.04)
    _, b = place_body(open_model, "walking", 0.03, xy=(0.4, 0.2))
    T, K = camera_for(a[0].mean(0).numpy())
    prm = RefineParams(fit_iters=20, iters=20)
    both = refine_batch(open_model, prior, torch.cat([a, b]), T.repeat(2, 1, 1), K.repeat(2, 1, 1), grid, prm)
    alone = refine_batch(open_model, prior, b, T, K, grid, prm)
    assert (both.verts_world[1:] - alone.verts_world).abs().max().item() < 1e-3


def test_refinement_energy_gradient_matches_finite_differences(open_model, prior):
    grid = scene_grid(boxes=[((0.3, 0.0, 0.4), (0.2, 0.2, 0.4))])
    _, v = place_body(open_model, "walking", -0.03)
    T, K = camera_for(v[0].mean(0).numpy())
    prm = RefineParams()
    fit, fit_verts = fit_to_vertices(open_model, v, prior, iters=10, lr=0.05)
    mask = (open_model.part_ids > 0)[None]
    p = fit.detached(requires_grad=True)
    g = torch.Generator().manual_seed(0)
    direction = [torch.randn(t.shape, generator=g) * s for t, s in zip(p.tensors(), (0.5, 0.2, 0.2, 0.05))]

    def total(q) -> torch.Tensor:
        e = _energy(open_model, q, v, fit_verts, T, K, grid, mask, prior, prm)
        return sum(x for k, x in e.items() if not k.startswith("_")).sum()

    total(p).backward()
    analytic = sum((t.grad * d).sum() for t, d in zip(p.tensors(), direction)).item()
    h = 1e-3
    with torch.no_grad():
        plus = total(type(p)(*(t + h * d for t, d in zip(p.tensors(), direction)))).double()
        minus = total(type(p)(*(t - h * d for t, d in zip(p.tensors(), direction)))).double()
    numeric = ((plus - minus) / (2 * h)).item()
    assert numeric == pytest.approx(analytic, rel=0.03, abs=1e-3)


def test_bad_inputs_are_named(open_model, prior):
    grid = scene_grid()
    T, K = camera_for((0, 0, 1))
    with pytest.raises(ValueError, match="pred_verts_world"):
        refine_batch(open_model, prior, torch.zeros(1, 10, 3), T, K, grid, RefineParams())
    _, v = place_body(open_model, "a-pose", 0.0)
    with pytest.raises(ValueError, match="contact_vertex"):
        refine_batch(open_model, prior, v, T, K, grid, RefineParams(contact_source="predicted"))
    for bad, field in [
        (dict(iters=-1), "iters"),
        (dict(lr=0.0), "lr"),
        (dict(contact_source="gt"), "contact_source"),
        (dict(batch_size=0), "batch_size"),
    ]:
        with pytest.raises(ValueError, match=field):
            RefineParams(**bad)
    assert np.isfinite(v.numpy()).all()
