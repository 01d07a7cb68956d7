"""Build ``sahmr-open``: an open SMPL-format body model from Anny (Apache-2.0 code, CC0 assets).

Pipeline (deterministic for a seed):
1. sample adult phenotypes (both sexes, the full height/weight/muscle/proportion range);
2. pose each Anny body into a T-pose (arms, forearms and hands aligned with ±x), read its mesh and
   the heads of its 104 bones; convert Anny axes (z up, facing −y) to SMPL axes (y up, facing +z);
3. group Anny's bones into SMPL's 24 joints (skinning weights summed per group; joint = head of the
   group's first bone);
4. decimate the mean T-pose mesh to ~6,890 vertices; every decimated vertex is a barycentric
   combination of an Anny triangle, which transfers meshes and skinning weights;
5. shape space = PCA of the decimated sample meshes (components scaled by their standard deviation,
   so betas ~ N(0, 1)); template = sample mean;
6. fit the 24-joint regressor and build the H36M evaluation regressor, the 7 contact parts and the
   mesh hierarchy (1/4, 1/16 of the vertices);
7. write ``sahmr-open.npz`` + ``sahmr-open.json`` (no pose correctives: ``posedirs`` are zero).
"""

from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from sahmr.body.hierarchy import barycentric_upsampling, build_hierarchy, decimate_symmetric, mirror_map
from sahmr.body.model_file import SMPL_JOINT_NAMES, SMPL_PARENTS, BodyModelFile, save_body_model
from sahmr.body.parts import compute_part_ids
from sahmr.body.regressors import fit_joint_regressor, h36m_regressor_from_skeleton, posed_samples
from sahmr.geometry.grid import snap_to_grid

# SMPL joint -> Anny bones whose skinning weights it takes. The joint sits at the head of the first
# bone listed, except where JOINT_POSITION_BONES says otherwise.
_TOES = [f"toe{i}-{j}" for i in range(1, 6) for j in (1, 2, 3) if not (i == 1 and j == 3)]
_FINGERS = [f"finger{i}-{j}" for i in range(1, 6) for j in (1, 2, 3)] + [f"metacarpal{i}" for i in range(1, 5)]
BONE_GROUPS: dict[str, list[str]] = {
    "pelvis": ["root", "pelvis.L", "pelvis.R"],
    "left_hip": ["upperleg01.L", "upperleg02.L"],
    "right_hip": ["upperleg01.R", "upperleg02.R"],
    "spine1": ["spine05", "spine04"],
    "left_knee": ["lowerleg01.L", "lowerleg02.L"],
    "right_knee": ["lowerleg01.R", "lowerleg02.R"],
    "spine2": ["spine03", "spine02"],
    "left_ankle": ["foot.L"],
    "right_ankle": ["foot.R"],
    "spine3": ["spine01"],
    "left_foot": [f"{t}.L" for t in _TOES],
    "right_foot": [f"{t}.R" for t in _TOES],
    "neck": ["neck01", "neck02", "neck03"],
    "left_collar": ["clavicle.L", "shoulder01.L"],
    "right_collar": ["clavicle.R", "shoulder01.R"],
    "head": ["head", "eye.L", "eye.R"],
    "left_shoulder": ["upperarm01.L", "upperarm02.L"],
    "right_shoulder": ["upperarm01.R", "upperarm02.R"],
    "left_elbow": ["lowerarm01.L", "lowerarm02.L"],
    "right_elbow": ["lowerarm01.R", "lowerarm02.R"],
    "left_wrist": ["wrist.L"],
    "right_wrist": ["wrist.R"],
    "left_hand": [f"{b}.L" for b in _FINGERS],
    "right_hand": [f"{b}.R" for b in _FINGERS],
}
# Joints placed at the mean head of several bones (spine05 starts at the root; toes/fingers fan out).
JOINT_POSITION_BONES: dict[str, list[str]] = {
    "spine1": ["spine04"],
    "left_foot": [f"toe{i}-1.L" for i in range(1, 6)],
    "right_foot": [f"toe{i}-1.R" for i in range(1, 6)],
    "left_hand": [f"finger{i}-1.L" for i in range(2, 6)],
    "right_hand": [f"finger{i}-1.R" for i in range(2, 6)],
}
# SMPL joint index of each joint's mirror image (left <-> right).
SMPL_MIRROR = (0, 2, 1, 3, 5, 4, 6, 8, 7, 9, 11, 10, 12, 14, 13, 15, 17, 16, 19, 18, 21, 20, 23, 22)
# Anny (x, y, z) -> SMPL (x, z, -y)
ANNY_TO_SMPL = np.array([[1.0, 0, 0], [0, 0, 1.0], [0, -1.0, 0]])


@dataclass
class OpenModelParams:
    num_samples: int = 400
    num_betas: int = 10
    target_verts: int = 6890
    level_divisors: tuple[int, int] = (4, 16)
    age_range: tuple[float, float] = (0.77, 0.89)  # Anny age ≈ 18 to 80 years (Anny's own age mapping)
    seed: int = 0


def _anny_model():
    os.environ.setdefault("WARP_CACHE_PATH", str(Path(".cache/warp").resolve()))
    os.environ.setdefault("ANNY_CACHE_DIR", str(Path(".cache/anny").resolve()))
    import anny

    return anny.Anny()


def _rotation_aligning(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Smallest rotation (3, 3) turning direction a onto direction b."""
    import roma

    a, b = a / a.norm(), b / b.norm()
    axis = torch.linalg.cross(a, b)
    s, c = axis.norm(), (a * b).sum()
    if s < 1e-12:
        return torch.eye(3, dtype=a.dtype)
    return roma.rotvec_to_rotmat(axis / s * torch.atan2(s, c))


def tpose_parameters(model, phenotype: dict[str, float]) -> dict[str, torch.Tensor]:
    """Anny pose dict that lifts the A-pose arms into a T-pose (upper arm, forearm, hand along ±x).

    Anny's 'local-ref' rotations act in the frame of the parent's posed reference orientation, so the
    world-frame alignment of a child bone is conjugated by the accumulated parent rotation.
    """
    labels = model.bone_labels
    pose: dict[str, torch.Tensor] = {}

    def heads() -> torch.Tensor:
        out = model(pose_parameters=pose or None, phenotype_kwargs=phenotype)
        return out["bone_poses"][0, :, :3, 3]

    for side, sx in (("L", 1.0), ("R", -1.0)):
        acc = torch.eye(3, dtype=torch.float64)
        for bone, child in (("upperarm01", "lowerarm01"), ("lowerarm01", "wrist"), ("wrist", "finger3-1")):
            h = heads()
            d = h[labels.index(f"{child}.{side}")] - h[labels.index(f"{bone}.{side}")]
            r_world = _rotation_aligning(d, torch.tensor([sx, 0.0, 0.0], dtype=torch.float64))
            m = torch.eye(4, dtype=torch.float64)
            m[:3, :3] = acc.T @ r_world @ acc
            pose[f"{bone}.{side}"] = m[None]
            acc = r_world @ acc
    return pose


def sample_phenotypes(n: int, params: OpenModelParams) -> dict[str, torch.Tensor]:
    """Adult phenotypes: gender, muscle, weight, height, proportions uniform in [0, 1]; age adult."""
    g = torch.Generator().manual_seed(params.seed)
    u = lambda lo=0.0, hi=1.0: lo + (hi - lo) * torch.rand(n, generator=g, dtype=torch.float64)  # noqa: E731
    return dict(gender=u(), age=u(*params.age_range), muscle=u(), weight=u(), height=u(), proportions=u())


def anny_samples(model, phen: dict[str, torch.Tensor], pose: dict[str, torch.Tensor], batch: int = 32):
    """T-posed meshes (S, 13718, 3) and bone heads (S, 104, 3) in SMPL axes, float64 numpy."""
    verts, heads = [], []
    n = len(next(iter(phen.values())))
    for i in range(0, n, batch):
        ph = {k: v[i : i + batch] for k, v in phen.items()}
        b = len(ph["gender"])
        out = model(pose_parameters={k: v.expand(b, 4, 4) for k, v in pose.items()}, phenotype_kwargs=ph)
        verts.append(out["vertices"].detach().numpy() @ ANNY_TO_SMPL.T)
        heads.append(out["bone_poses"][:, :, :3, 3].detach().numpy() @ ANNY_TO_SMPL.T)
    return np.concatenate(verts), np.concatenate(heads)


def grouped_weights(model) -> np.ndarray:
    """Anny's per-vertex bone weights summed into SMPL's 24 joints: (13718, 24)."""
    labels = model.bone_labels
    bone_to_joint = np.full(len(labels), -1)
    for j, name in enumerate(SMPL_JOINT_NAMES):
        for b in BONE_GROUPS[name]:
            bone_to_joint[labels.index(b)] = j
    if (bone_to_joint < 0).any():
        missing = [labels[i] for i in np.flatnonzero(bone_to_joint < 0)]
        raise RuntimeError(f"Anny bones not assigned to an SMPL joint: {missing}")
    idx = model.vertex_bone_indices.numpy()
    w = model.vertex_bone_weights.numpy()
    out = np.zeros((idx.shape[0], 24))
    np.add.at(out, (np.repeat(np.arange(idx.shape[0]), idx.shape[1]), bone_to_joint[idx].ravel()), w.ravel())
    return out / out.sum(1, keepdims=True)


def joint_positions(heads: np.ndarray, labels: list[str]) -> np.ndarray:
    """(S, 24, 3) SMPL joints from Anny bone heads (S, 104, 3)."""
    out = []
    for name in SMPL_JOINT_NAMES:
        bones = JOINT_POSITION_BONES.get(name, BONE_GROUPS[name][:1])
        out.append(heads[:, [labels.index(b) for b in bones]].mean(1))
    return np.stack(out, 1)


def build_open_model(params: OpenModelParams, progress=print) -> BodyModelFile:
    """Run the whole pipeline and return the model (not yet written)."""
    import anny

    t0 = time.time()
    model = _anny_model()
    labels = list(model.bone_labels)
    mean_phen = {k: 0.5 for k in ("gender", "muscle", "weight", "height", "proportions")}
    mean_phen["age"] = float(np.mean(params.age_range))
    pose = tpose_parameters(model, mean_phen)
    phen = sample_phenotypes(params.num_samples, params)
    progress(f"[sahmr-open] posing {params.num_samples} Anny bodies into a T-pose")
    # Anny's float64 posing goes through the CPU's BLAS, whose code path (MKL's kernels on another processor)
    # moves the last bits, and the decimation below turns last bits into other topology: snapped to a 2^-20 m
    # (~1 µm) grid here, every later step sees the same numbers on every machine.
    full_verts, heads = anny_samples(model, phen, pose)
    full_verts, heads = snap_to_grid(full_verts, 2.0**-20), snap_to_grid(heads, 2.0**-20)
    joints = joint_positions(heads, labels)  # (S, 24, 3)
    # Anny's mesh is exactly mirror-symmetric but its rig is not quite (T-posed arms differ by up to
    # ~0.4 mm left vs right): symmetrise so the model, its parts and its hierarchy are symmetric.
    mirror = mirror_map(model.template_vertices.detach().numpy())
    if mirror is None:
        raise RuntimeError("Anny's template is not left/right symmetric: cannot build a symmetric model")
    flip = np.array([-1.0, 1.0, 1.0])
    full_verts = 0.5 * (full_verts + full_verts[:, mirror] * flip)
    joints = 0.5 * (joints + joints[:, list(SMPL_MIRROR)] * flip)
    faces_full = model.get_triangular_faces().numpy().astype(np.int64)
    w_full = grouped_weights(model)

    progress(f"[sahmr-open] decimating {full_verts.shape[1]} -> ~{params.target_verts} vertices")
    mean_full = full_verts.mean(0)
    dec_v, faces = decimate_symmetric(mean_full, faces_full, params.target_verts)
    tidx, tw = barycentric_upsampling(dec_v, mean_full, faces_full)  # decimated vertex = combo of Anny tri
    verts = (full_verts[:, tidx] * tw[None, :, :, None]).sum(2)  # (S, V, 3)
    dec_mirror = mirror_map(dec_v)  # closest-point ties on edges can break exact symmetry: restore it
    verts = 0.5 * (verts + verts[:, dec_mirror] * flip)
    weights = (w_full[tidx] * tw[:, :, None]).sum(1)
    weights /= weights.sum(1, keepdims=True)

    progress("[sahmr-open] shape space (PCA)")
    template = verts.mean(0)
    X = (verts - template).reshape(len(verts), -1)
    _, svals, vt = np.linalg.svd(X, full_matrices=False)
    std = svals[: params.num_betas] / np.sqrt(len(verts) - 1)
    shapedirs = (vt[: params.num_betas] * std[:, None]).T.reshape(-1, 3, params.num_betas)
    # the SVD's last bits depend on the BLAS thread count and SIMD path (shapedirs differed by 2e-16 between
    # 1 and 2 threads): on a 2^-24 grid (6e-8, exact in float32) the file is the same on every machine
    shapedirs = snap_to_grid(_orient_components(shapedirs, template), 2.0**-24)
    std = snap_to_grid(std, 2.0**-24)

    progress("[sahmr-open] joint regressors, contact parts, mesh hierarchy")
    parents = np.array(SMPL_PARENTS)
    posed_v, posed_j = posed_samples(verts, joints, weights, parents, seed=params.seed)
    J_regressor = fit_joint_regressor(np.concatenate([verts, posed_v]), np.concatenate([joints, posed_j]), weights, parents)
    rest_joints = J_regressor @ template
    eval_reg = h36m_regressor_from_skeleton(J_regressor, template, weights)
    part_ids = compute_part_ids(template, faces, weights, rest_joints, parents)
    V = template.shape[0]
    levels = build_hierarchy(template, faces, tuple(round(V / d) for d in params.level_divisors))

    arrays = {
        "v_template": template.astype(np.float32),
        "shapedirs": shapedirs.astype(np.float32),
        "posedirs": np.zeros((V, 3, 9 * 23), np.float32),
        "J_regressor": J_regressor.astype(np.float32),
        "weights": weights.astype(np.float32),
        "kintree_table": np.stack([parents, np.arange(24)]).astype(np.int64),
        "f": faces,
        "sahmr_eval_regressor": eval_reg.astype(np.float32),
        "sahmr_part_ids": part_ids,
    }
    for i, lvl in enumerate(levels, start=1):
        arrays[f"sahmr_down_idx_{i}"] = lvl.down_idx
        arrays[f"sahmr_up_idx_{i}"] = lvl.up_idx
        arrays[f"sahmr_up_w_{i}"] = lvl.up_w.astype(np.float32)
        arrays[f"sahmr_faces_{i}"] = lvl.faces
    meta = {
        "name": "sahmr-open",
        "model_type": "smpl",
        "gender": "neutral",
        "source": "anny",
        "anny_version": anny.__version__,
        "license": "built from Anny (Apache-2.0 code, CC0 MakeHuman assets)",
        "build_params": asdict(params),
        "joint_names": list(SMPL_JOINT_NAMES),
        "level_sizes": [V] + [int(lvl.down_idx.shape[0]) for lvl in levels],
        "shape_std": std.tolist(),
    }
    progress(f"[sahmr-open] built in {time.time() - t0:.1f} s")
    return BodyModelFile(arrays=arrays, meta=meta)


def _orient_components(shapedirs: np.ndarray, template: np.ndarray) -> np.ndarray:
    """Fix PCA sign ambiguity so the build is deterministic: the largest-|.| coordinate is positive."""
    flat = shapedirs.reshape(-1, shapedirs.shape[-1])
    signs = np.sign(flat[np.abs(flat).argmax(0), np.arange(flat.shape[1])])
    return shapedirs * signs


def build_and_save(out: str | Path, params: OpenModelParams | None = None) -> Path:
    """Build sahmr-open and write ``out`` (.npz) + sidecar JSON atomically."""
    model = build_open_model(params or OpenModelParams())
    return save_body_model(model, out)
