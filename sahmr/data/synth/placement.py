"""Placing posed people in a scene so that their contacts are real and they do not penetrate it.

A person is posed by the body model in SMPL axes, turned into the world frame (z up) facing +y,
then placed relative to an affordance of the scene (a seat, a mattress, a table edge, or the floor):
the contact surfaces of the body (soles, gluteus/thighs, back, hands) are brought onto the affordance's
surface. Several random candidates are tried at once; the scene SDF grid scores them (penetration depth,
distance of the required contact parts, feet on the floor) and the best one within the limits wins.

Cost per call (16 candidates, 32 for sit/lean; one core): ~25-50 ms, mostly skinning the candidates
(:func:`pose_candidates`: one shape, K poses; the pose-corrective matmul dominates) and the trilinear
SDF lookups of all their vertices (:func:`sahmr.data.synth.sdf.query_grid`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from scipy.spatial.transform import Rotation

from sahmr.body.model import BodyModel
from sahmr.data.synth.poses import sample_poses
from sahmr.data.synth.sdf import query_grid  # query_sdf's values bit for bit, ~2.5x faster on bodies
from sahmr.geometry.grid import snap_to_grid
from sahmr.geometry.sdf import SDFGrid

# SMPL axes (x left, y up, z forward) -> world (z up) for a person facing +y: left = -x.
SMPL_TO_WORLD = np.array([[-1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, 1.0, 0.0]])
CONTACT_THRESHOLD = 0.07  # the original's human–scene contact distance (m)
MAX_PENETRATION = 0.02
# World-frame GT (vertices, joints) is stored on a 2^-20 m (~1 µm) grid: float64 results move in their last bits
# on other processors; on the grid the stored float32 values are the same on every machine (sahmr/geometry/grid.py).
STORED_GRID = 2.0**-20

# part ids (spec §2.4)
SOLES, HANDS, BACK, GLUTEUS, THIGHS = (1, 2), (3, 4), (5,), (6,), (7,)
AFFORDANCE_FOR_CLASS = {
    "stand": "floor",
    "walk": "floor",
    "reach": "floor",
    "crouch": "floor",
    "kneel": "floor",
    "sit": "sit",
    "lie": "lie",
    "lean": "lean",
}


def rot_z(theta: float) -> np.ndarray:
    c, s = np.cos(theta), np.sin(theta)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def rot_x(theta: float) -> np.ndarray:
    c, s = np.cos(theta), np.sin(theta)
    return np.array([[1.0, 0.0, 0.0], [0.0, c, -s], [0.0, s, c]])


def rot_y(theta: float) -> np.ndarray:
    c, s = np.cos(theta), np.sin(theta)
    return np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])


@dataclass
class PlacedPerson:
    """One placed person. Body params reproduce ``verts_world`` through BodyModel (world frame)."""

    pose_class: str
    betas: np.ndarray  # (S,)
    body_pose: np.ndarray  # (69,)
    global_orient: np.ndarray  # (3,) axis-angle, world frame
    transl: np.ndarray  # (3,)
    verts_world: np.ndarray  # (V, 3) float32
    sdf: np.ndarray  # (V,) scene signed distance at each vertex
    affordance_kind: str

    @property
    def contact(self) -> np.ndarray:
        return self.sdf <= CONTACT_THRESHOLD

    @property
    def penetration(self) -> float:
        return float(max(0.0, -self.sdf.min()))


def _mask(part_ids: np.ndarray, parts: tuple[int, ...]) -> np.ndarray:
    return np.isin(part_ids, parts)


def _body_frame_to_aff(pose_class: str, rng: np.random.Generator) -> np.ndarray:
    """Rotation from the upright, +y-facing world-axes body to its orientation in the affordance frame."""
    if pose_class == "lie":
        r = rot_x(np.pi / 2)  # face up, head toward −y (the headboard), feet toward +y
        if rng.random() < 0.35:  # on the side, facing ±x
            r = rot_y(rng.choice([-1.0, 1.0]) * np.pi / 2 * rng.uniform(0.85, 1.0)) @ r
        return rot_z(rng.normal(0, 0.05)) @ r
    if pose_class == "lean":
        return rot_z(np.pi + rng.normal(0, 0.1))  # facing the table (−y)
    if pose_class == "sit":
        return rot_z(rng.normal(0, 0.12))
    return rot_z(rng.uniform(-np.pi, np.pi))


def pose_candidates(body: BodyModel, betas: np.ndarray, poses: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Vertices (K, V, 3) float64 and rest root joint (3,) float64 of one shape ``betas`` (S,) in K
    ``poses`` (K, 69): ``body(betas, body_pose)`` with zero global orientation and translation, i.e.
    SMPL linear blend skinning (smplx.lbs), but the shape terms (shaped template, joint regression) are
    computed once for all K and the (K, V, 4, 4) per-vertex matrix products become 12 multiply-adds
    (~10-15% faster than the batched forward, which also regresses unused evaluation joints)."""
    from smplx.lbs import batch_rigid_transform, batch_rodrigues

    layer = body.layer
    K = len(poses)
    f64 = torch.float64  # the dataset's GT must not depend on the CPU's BLAS code path (MKL picks other float32
    # kernels on other processors: the float32 GT differed in its last bits); float64, rounded to the stored
    # float32, gives the same bytes on every machine
    with torch.no_grad():
        b = torch.as_tensor(np.asarray(betas)[None], dtype=f64)
        v_shaped = layer.v_template.to(f64) + torch.einsum("bl,mkl->bmk", b, layer.shapedirs.to(f64))[0]  # (V, 3)
        J = torch.einsum("bik,ji->bjk", v_shaped[None], layer.J_regressor.to(f64))  # (1, J, 3)
        full = torch.cat([torch.zeros(K, 3, dtype=f64), torch.as_tensor(poses, dtype=f64)], 1)
        rot = batch_rodrigues(full.view(-1, 3)).view(K, -1, 3, 3)
        pose_feature = (rot[:, 1:] - torch.eye(3, dtype=f64)).view(K, -1)
        v_posed = (v_shaped + torch.matmul(pose_feature, layer.posedirs.to(f64)).view(K, -1, 3)).numpy()
        _, A = batch_rigid_transform(rot, J.expand(K, -1, -1), layer.parents)
        T = torch.matmul(layer.lbs_weights.to(f64), A.view(K, -1, 16)).numpy()  # (K, V, 16) row-major 4 x 4
    x, y, z = v_posed[..., 0], v_posed[..., 1], v_posed[..., 2]
    verts = np.empty(v_posed.shape, dtype=np.float64)
    for i in range(3):
        verts[..., i] = T[..., 4 * i] * x + T[..., 4 * i + 1] * y + T[..., 4 * i + 2] * z + T[..., 4 * i + 3]
    return verts, J[0, 0].numpy().astype(np.float64)


def _offsets(pose_class: str, v: np.ndarray, part_ids: np.ndarray, aff, rng: np.random.Generator) -> np.ndarray:
    """Translation (K, 3) in the affordance frame placing candidates v (K, V, 3) on the affordance."""
    K = v.shape[0]
    t = np.zeros((K, 3))
    half_w = max(0.0, aff.width / 2 - 0.3)
    if pose_class == "sit":
        seat = _mask(part_ids, GLUTEUS + THIGHS)
        backs = _mask(part_ids, BACK + GLUTEUS)
        t[:, 2] = -v[:, seat, 2].min(1)
        depth = aff.backrest if aff.backrest is not None else aff.depth * rng.uniform(0.6, 0.85, K)
        t[:, 1] = -depth - v[:, backs, 1].min(1) + 0.005
        t[:, 0] = rng.uniform(-half_w, half_w, K) - v[:, seat, 0].mean(1)
    elif pose_class == "lie":
        t[:, 2] = -v[:, :, 2].min(1)
        y_mid = 0.5 * (v[:, :, 1].min(1) + v[:, :, 1].max(1))
        t[:, 1] = -aff.depth / 2 - y_mid + rng.normal(0, 0.05, K)
        x_mid = 0.5 * (v[:, :, 0].min(1) + v[:, :, 0].max(1))
        t[:, 0] = rng.uniform(-half_w, half_w, K) * 0.5 - x_mid
    elif pose_class == "lean":
        hands = _mask(part_ids, HANDS)
        foot = getattr(aff, "foot_height", 0.0)
        t[:, 2] = foot - aff.height - v[:, :, 2].min(1)  # feet on the floor (z = foot − height in this frame)
        t[:, 1] = -rng.uniform(0.06, 0.22, K) - v[:, hands, 1].mean(1)
        t[:, 0] = rng.uniform(-half_w, half_w, K) - v[:, hands, 0].mean(1)
    else:  # floor classes: the affordance frame is a floor point; lowest vertex onto the floor
        t[:, 2] = -v[:, :, 2].min(1)
        t[:, :2] = -v[:, :, :2].mean(1)  # centre the body on the floor point
    return t


def _score(pose_class: str, sdf: np.ndarray, v_world: np.ndarray, part_ids: np.ndarray, foot_z: float = 0.0) -> np.ndarray:
    """Lower is better; inf where a hard requirement fails. sdf, v_world: (K, V[, 3]); foot_z: world
    height of the surface the feet should rest on (the floor, or a lower stair tread)."""
    pen = np.maximum(0.0, -sdf.min(1))
    score = 10.0 * pen
    soles = _mask(part_ids, SOLES)
    if pose_class == "sit":
        score += np.abs(v_world[:, soles, 2].min(1) - foot_z)  # feet resting on the floor
        score[sdf[:, _mask(part_ids, GLUTEUS + THIGHS)].min(1) > 0.02] = np.inf
    elif pose_class == "lean":
        hand_gap = np.abs(sdf[:, _mask(part_ids, HANDS)].min(1))
        score += 2.0 * hand_gap + np.abs(v_world[:, soles, 2].min(1) - foot_z)  # hands on the table, feet down
        score[hand_gap > 0.04] = np.inf
    elif pose_class == "lie":
        score[sdf.min(1) > 0.03] = np.inf  # resting on the mattress (back, side or front)
    elif pose_class in ("stand", "walk", "reach"):
        score[sdf[:, soles].min(1) > 0.02] = np.inf
    score[pen > MAX_PENETRATION] = np.inf
    return score


def place_person(
    body: BodyModel,
    sdf_grid: SDFGrid,
    pose_class: str,
    T_world_aff: np.ndarray,
    aff,
    rng: np.random.Generator,
    num_candidates: int = 16,
    betas: np.ndarray | None = None,
) -> PlacedPerson | None:
    """Try ``num_candidates`` random poses of ``pose_class`` on one affordance; the best valid or None.

    T_world_aff: (4, 4) affordance frame (floor classes: a floor point with z up). ``aff`` carries
    ``width``, ``depth``, ``height``, ``backrest`` (see sahmr.data.synth.scenes.Affordance).
    """
    K = num_candidates * (2 if pose_class in ("lean", "sit") else 1)  # the hardest fits get more tries
    if betas is None:
        betas = np.clip(rng.normal(0, 1, body.num_betas), -2.0, 2.0)
    poses = sample_poses(pose_class, K, rng, seat_height=getattr(aff, "height", None))
    v_smpl, root = pose_candidates(body, betas, poses)  # (K, V, 3) root not rotated, no translation; (3,)
    root = np.repeat(root[None], K, 0)  # rest root joint = rotation centre (one shape: the same for all)
    part_ids = body.part_ids.numpy()
    R_aff = np.stack([_body_frame_to_aff(pose_class, rng) @ SMPL_TO_WORLD for _ in range(K)])  # (K,3,3)
    v_aff = np.matmul(v_smpl, R_aff.transpose(0, 2, 1))  # R_aff v per candidate (BLAS; einsum was ~15x slower)
    t_aff = _offsets(pose_class, v_aff, part_ids, aff, rng)
    v_aff = v_aff + t_aff[:, None]
    Rw, ow = T_world_aff[:3, :3], T_world_aff[:3, 3]
    v_world = v_aff @ Rw.T + ow
    sdf = query_grid(sdf_grid, v_world.reshape(-1, 3).astype(np.float32)).reshape(K, -1)
    # Lift seated/lying candidates out of shallow penetration once, then score.
    if pose_class in ("sit", "lie"):
        lift = np.clip(-sdf.min(1), 0.0, 0.05)
        v_world[:, :, 2] += lift[:, None]
        t_aff[:, 2] += lift
        moved = np.nonzero(lift > 0)[0]  # only lifted candidates need a new query
        if len(moved):
            sdf[moved] = query_grid(sdf_grid, v_world[moved].reshape(-1, 3).astype(np.float32)).reshape(len(moved), -1)
    score = _score(pose_class, sdf, v_world, part_ids, foot_z=getattr(aff, "foot_height", 0.0))
    best = int(np.argmin(score))
    if not np.isfinite(score[best]):
        return None
    # World-frame body parameters: v_world = Rt (v_smpl − root) + root + transl with Rt = Rw R_aff.
    Rt = Rw @ R_aff[best]
    transl = Rt @ root[best] + Rw @ t_aff[best] + ow - root[best]
    go = Rotation.from_matrix(Rt).as_rotvec()  # (scipy: roma would import torch._dynamo, 1.6 s per worker)
    return PlacedPerson(
        pose_class=pose_class,
        betas=betas.astype(np.float32),
        body_pose=poses[best],
        global_orient=go.astype(np.float32),
        transl=transl.astype(np.float32),
        verts_world=snap_to_grid(v_world[best], STORED_GRID).astype(np.float32),
        sdf=sdf[best].astype(np.float32),
        affordance_kind=AFFORDANCE_FOR_CLASS[pose_class],
    )
