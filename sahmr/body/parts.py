"""The 7 contact parts (spec §2.4) computed from any SMPL-family template.

Part ids: 0 none, 1 left sole, 2 right sole, 3 left hand, 4 right hand, 5 back, 6 gluteus,
7 back of the thighs — the PROX contact segments the original uses. The official SMPL assignment
(``seg_part_info.npy``) is used when a user imports it; otherwise these rules compute an equivalent
segmentation from the rest mesh (T-pose, SMPL axes: y up, subject facing +z, subject's left = +x),
its vertex normals and the skinning weights of the SMPL kinematic tree (joint indices 0..21 mean the
same in SMPL, SMPL-H and SMPL-X).
"""

from __future__ import annotations

import numpy as np

# The contact parts (spec §2.4): names by id, the count, the left/right swap of the 7 part channels under a
# horizontal flip, and the one colour table every figure, preview and exported point cloud uses.
PART_NAMES = ("none", "left_sole", "right_sole", "left_hand", "right_hand", "back", "gluteus", "thighs")
NUM_PARTS = len(PART_NAMES) - 1  # 7: the channels of RCNet's contact heads and the mesh transformer's part tokens
PART_FLIP = (1, 0, 3, 2, 4, 5, 6)  # channel i (part i + 1) <-> channel PART_FLIP[i]
# (8, 3) RGB in [0, 1]; row = part id (0 = none, grey)
PART_COLORS = np.array(
    [
        [0.80, 0.80, 0.80],
        [0.90, 0.10, 0.10],
        [0.10, 0.30, 0.90],
        [1.00, 0.55, 0.00],
        [0.00, 0.70, 0.80],
        [0.55, 0.20, 0.75],
        [0.10, 0.70, 0.20],
        [0.95, 0.85, 0.10],
    ]
)
PART_COLORS_RGB8 = np.round(PART_COLORS * 255).astype(np.uint8)  # (8, 3) uint8, for PLY files
PART_COLORS_HEX = ["#{:02x}{:02x}{:02x}".format(*tuple(c)) for c in PART_COLORS_RGB8]  # for plotly

# SMPL joint indices used by the rules.
PELVIS, L_HIP, R_HIP, SPINE1, L_KNEE, R_KNEE, SPINE2, L_ANKLE, R_ANKLE, SPINE3 = range(10)
L_COLLAR, R_COLLAR, L_WRIST, R_WRIST = 13, 14, 20, 21


def subtree(parents: np.ndarray, root: int) -> np.ndarray:
    """Indices of ``root`` and all its descendants in the kinematic tree."""
    keep = {root}
    for j in range(len(parents)):  # parents[j] < j in SMPL-family trees
        if parents[j] in keep:
            keep.add(j)
    return np.array(sorted(keep))


def compute_part_ids(verts: np.ndarray, faces: np.ndarray, weights: np.ndarray, joints: np.ndarray, parents: np.ndarray) -> np.ndarray:
    """Assign each rest vertex a contact part id 0..7.

    verts: (V, 3) T-pose rest mesh; faces: (F, 3); weights: (V, K) skinning weights; joints: (K, 3)
    rest joints; parents: (K,) with parents[0] = -1. Returns (V,) int64.
    """
    import trimesh

    normals = trimesh.Trimesh(verts, faces, process=False).vertex_normals
    nx, ny, nz = normals.T
    x, y, z = verts.T
    w_sub = lambda j: weights[:, subtree(parents, j)].sum(1)  # noqa: E731
    w_of = lambda js: weights[:, list(js)].sum(1)  # noqa: E731
    pid = np.zeros(len(verts), np.int64)

    for _side, (ankle, wrist, part_sole, part_hand) in {
        "L": (L_ANKLE, L_WRIST, 1, 3),
        "R": (R_ANKLE, R_WRIST, 2, 4),
    }.items():
        foot = w_sub(ankle) > 0.5
        sole = foot & (ny < -0.5) & (y < y[foot].min() + 0.02)
        pid[sole] = part_sole
        # Hand: the wrist's subtree beyond the wrist joint, palm side (palms face down in T-pose).
        sx = np.sign(joints[wrist, 0])
        hand = (w_sub(wrist) > 0.5) & (sx * x > sx * joints[wrist, 0]) & (ny < -0.3)
        pid[hand] = part_hand

    hip_y = 0.5 * (joints[L_HIP, 1] + joints[R_HIP, 1])
    knee_y = 0.5 * (joints[L_KNEE, 1] + joints[R_KNEE, 1])
    pelvis_z = joints[PELVIS, 2]
    facing_back = nz < -0.5

    back = (w_of([SPINE1, SPINE2, SPINE3, L_COLLAR, R_COLLAR]) > 0.5) & facing_back & (y > joints[SPINE1, 1])
    pid[back & (pid == 0)] = 5

    # Gluteus: pelvis/hip-weighted skin behind the pelvis, from just above the hips to the gluteal fold.
    fold_y = hip_y - 0.3 * (hip_y - knee_y)
    glut = (w_of([PELVIS, L_HIP, R_HIP, SPINE1]) > 0.4) & facing_back & (z < pelvis_z) & (y > fold_y) & (y < hip_y + 0.08)
    pid[glut & (pid == 0)] = 6

    # Back of the thighs: upper-leg skin facing back, between the fold and the middle of the thigh.
    thigh = (w_of([L_HIP, R_HIP]) > 0.5) & facing_back & (y <= fold_y) & (y > hip_y - 0.7 * (hip_y - knee_y))
    pid[thigh & (pid == 0)] = 7
    return pid
