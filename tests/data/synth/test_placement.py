"""People placed on affordances: real contacts, no penetration, parameters reproduce the mesh."""

from types import SimpleNamespace

import numpy as np
import pytest
import torch

from sahmr.data.synth.placement import MAX_PENETRATION, place_person
from sahmr.data.synth.poses import POSE_CLASSES, sample_poses
from sahmr.geometry.sdf import SDFGrid


def _box_sdf(p, c, h):
    q = np.abs(p - c) - h
    return np.linalg.norm(np.maximum(q, 0), axis=-1) + np.minimum(q.max(-1), 0)


@pytest.fixture(scope="module")
def room():
    """Floor z=0, a chair seat (top 0.45, front edge y=0) with a backrest 0.5 m behind the edge,
    a table top (a 5 cm slab at 0.70–0.75, front edge y=0; legs omitted) at x=2 and a bed (top 0.55, front edge y=0) at x=−2.5."""

    def sdf(p):
        d = p[..., 2].copy()
        for c, h in (
            ([0, -0.25, 0.225], [0.3, 0.25, 0.225]),
            ([0, -0.525, 0.45], [0.3, 0.025, 0.45]),
            ([2, -0.4, 0.725], [0.6, 0.4, 0.025]),
            ([-2.5, -1.0, 0.275], [0.8, 1.0, 0.275]),
        ):
            d = np.minimum(d, _box_sdf(p, np.array(c), np.array(h)))
        return d

    xs, ys, zs = np.linspace(-4, 4, 161), np.linspace(-3, 3, 121), np.linspace(-0.5, 2.5, 61)
    X, Y, Z = np.meshgrid(xs, ys, zs, indexing="ij")
    grid = SDFGrid(
        values=sdf(np.stack([X, Y, Z], -1)).astype(np.float32),
        min_world=np.array([-4, -3, -0.5], np.float32),
        max_world=np.array([4, 3, 2.5], np.float32),
    )

    def T(o):
        t = np.eye(4)
        t[:3, 3] = o
        return t

    floor = (T([0, 1.5, 0]), SimpleNamespace(width=0.0, depth=0.0, height=0.0, backrest=None))
    cases = {c: floor for c in ("stand", "walk", "reach", "crouch", "kneel")}
    cases["sit"] = (T([0, 0, 0.45]), SimpleNamespace(width=0.6, depth=0.5, height=0.45, backrest=0.5))
    cases["lean"] = (T([2, 0, 0.75]), SimpleNamespace(width=1.2, depth=0.8, height=0.75, backrest=None))
    cases["lie"] = (T([-2.5, 0, 0.55]), SimpleNamespace(width=1.6, depth=2.0, height=0.55, backrest=None))
    return grid, sdf, cases


REQUIRED_PARTS = {
    "stand": (1, 2),
    "walk": (1, 2),
    "reach": (1, 2),
    "crouch": (1, 2),
    "sit": (6, 7),
    "lean": (3, 4),
    "lie": None,
    "kneel": None,
}  # lying may be on the side


@pytest.mark.parametrize("pose_class", POSE_CLASSES)
def test_placement_contacts_and_penetration(open_model, room, pose_class):
    grid, sdf, cases = room
    T, aff = cases[pose_class]
    rng = np.random.default_rng(3)
    placed = [p for p in (place_person(open_model, grid, pose_class, T, aff, rng) for _ in range(6)) if p is not None]
    assert len(placed) >= 3, f"{pose_class}: only {len(placed)}/6 placements succeeded"
    pid = open_model.part_ids.numpy()
    for p in placed:
        exact = sdf(p.verts_world.astype(np.float64))  # analytic, not the grid used for placing
        assert -exact.min() < MAX_PENETRATION + 0.005
        assert p.contact.any()
        if REQUIRED_PARTS[pose_class]:
            assert (p.contact & np.isin(pid, REQUIRED_PARTS[pose_class])).any()
        with torch.no_grad():
            out = open_model(
                betas=torch.as_tensor(p.betas)[None],
                body_pose=torch.as_tensor(p.body_pose)[None],
                global_orient=torch.as_tensor(p.global_orient)[None],
                transl=torch.as_tensor(p.transl)[None],
            )
        np.testing.assert_allclose(out.verts[0].numpy(), p.verts_world, atol=1e-5)


def test_pose_sign_conventions(open_model):
    """The conventions documented in sahmr.data.synth.poses hold on the body model."""
    rng = np.random.default_rng(0)
    with torch.no_grad():
        rest = open_model().joints[0].numpy()
        sit = open_model(body_pose=torch.as_tensor(sample_poses("sit", 1, rng))).joints[0].numpy()
        lean = open_model(body_pose=torch.as_tensor(sample_poses("lean", 1, rng))).joints[0].numpy()
    # sitting: knees in front of the hips (+z), ankles below the knees
    assert sit[4, 2] > rest[1, 2] + 0.25 and sit[7, 1] < sit[4, 1] - 0.2
    # leaning: head moves forward, wrists in front of the body and below the shoulders
    assert lean[15, 2] > rest[15, 2] + 0.1 and lean[20, 2] > rest[20, 2] + 0.2 and lean[20, 1] < lean[16, 1]


def test_unknown_pose_class():
    with pytest.raises(ValueError, match="unknown pose class"):
        sample_poses("dance", 1, np.random.default_rng(0))


def test_pose_candidates_equal_the_body_model(open_model):
    """The placement's shared-shape skinning gives the body model's vertices and root joint."""
    from sahmr.data.synth.placement import pose_candidates

    rng = np.random.default_rng(3)
    betas = np.clip(rng.normal(0, 1, open_model.num_betas), -2.0, 2.0)
    poses = np.concatenate([sample_poses(c, 3, rng) for c in ("sit", "lie", "reach")])
    verts, root = pose_candidates(open_model, betas, poses)
    with torch.no_grad():
        out = open_model(betas=torch.as_tensor(np.repeat(betas[None], len(poses), 0), dtype=torch.float32), body_pose=torch.as_tensor(poses))
    assert verts.shape == tuple(out.verts.shape) and verts.dtype == np.float64
    np.testing.assert_allclose(verts, out.verts.numpy(), atol=2e-6)
    np.testing.assert_allclose(np.broadcast_to(root, (len(poses), 3)), out.joints[:, 0].numpy(), atol=1e-6)
