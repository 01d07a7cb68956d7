"""The kit's canonical on-disk dataset format (``format_version`` 2): layout, writer and reader.

Every dataset of the kit — the synthetic benchmark now, RICH / PROX importers later — is one folder::

    <root>/dataset.json                  written LAST (atomically): a folder without it is not a dataset
    <root>/manifest.json                 {relative path: sha256 digest} of every content file (below)
    <root>/scenes/<scene_id>/points_world.npy   (M, 3) float32  scanner-like point cloud, world frame, m
                            sdf.npz             signed distance grid (sahmr.geometry.sdf.save_sdf_npz);
                                                optional: absent when the source has none (RICH training
                                                scans), then scene.json says "has_sdf": false and
                                                PenE / ConFE / contact metrics cannot be computed there
                            scene.json          scene metadata (sizes, SDF box, free-form "meta")
                            mesh.ply            optional: the scene mesh (binary little-endian PLY)
    <root>/frames/<split>/<key>.npy     one plain .npy per per-frame array (no pickles: mmap-able)
    <root>/images/<split>/<frame_id>.png         RGB images (any path below root; PNG or JPEG)

``dataset.json``::

    format: "sahmr-dataset", format_version: 2, name: str,
    body_model: {name: str, num_verts: int (V), sha256: str, ...},   # what verts_world / contact index
    splits: {split: n_frames}, scenes: [scene_id, ...] (sorted),
    arrays: {split: {key: {shape: [...], dtype: str}}},
    content_hash: hex sha256 (see below), hash_algorithm: "sha256-manifest-v1",
    generator: {...} (the producer's parameters), created_by: "sahmr <version>"

Per-frame arrays of a split (N frames; V = ``body_model.num_verts``; frame i of every array is the same
frame; ``str`` = numpy unicode ``<U``):

==================  ===========  =======  =========================================================
key                 shape        dtype    meaning
==================  ===========  =======  =========================================================
frame_id            (N,)         str      unique over the whole dataset; ``[A-Za-z0-9][A-Za-z0-9_.+-]*``
image_path          (N,)         str      image file, relative to root (posix, inside root)
scene_id            (N,)         str      one of ``dataset.json`` scenes
camera_id           (N,)         str      frames sharing (scene_id, camera_id) share K, T, image_size
K                   (N, 3, 3)    float32  intrinsics in pixels of the stored image; upper-triangular,
                                          K[2,2] = 1, fx, fy > 0
T_world_to_cam      (N, 4, 4)    float32  rigid world -> OpenCV camera (x right, y down, z forward)
image_size          (N, 2)       int32    [W, H] of the stored image
person_box_xyxy     (N, 4)       float32  tight person box [l, u, r, b] in px (may extend past the border
                                          for truncated people; must overlap the image; ``bbox_xyxy`` in v1)
verts_world         (N, V, 3)    float32  GT mesh vertices, world frame, metres
joints14_world      (N, 14, 3)   float32  GT H36M-14 joints (spec §2.2), world frame
pelvis_world        (N, 3)       float32  GT H36M pelvis (row 0 of the 17-joint regressor), world
contact             (N, V)       bool     GT human-scene contact per vertex (all False when unknown)
contact_part        (N, V)       uint8    part id 1..7 (spec §2.4) of contact vertices, else 0
pose_class          (N,)         str      descriptive tag ("sit_chair", ...; "" when unknown)
occlusion           (N,)         float32  fraction of the person hidden by the scene, [0, 1]; NaN unknown
distance            (N,)         float32  camera-pelvis distance ``|T . pelvis_world|``, metres
truncated           (N,)         bool     the person is cut by the image border
==================  ===========  =======  =========================================================

Optional per-frame arrays:

==================  ===========  =======  =========================================================
betas               (N, S)       float32  body-model parameters, world frame (all four or none)
body_pose           (N, P)       float32  axis-angle, P = 3 x body joints
global_orient       (N, 3)       float32  axis-angle
transl              (N, 3)       float32  metres
left_hand_pose      (N, Q)       float32  SMPL-H / SMPL-X full axis-angle hand poses
right_hand_pose     (N, Q)       float32
gender              (N,)         str      "neutral" | "male" | "female"
crop_box_xyxy       (N, 4)       float32  fixed evaluation crop box (RICH test ``test_squared_bbx_lurb``);
                                          rows of NaN = none; the Dataset uses it when not augmenting
==================  ===========  =======  =========================================================

Any other key ``[a-z][a-z0-9_]*`` with leading dimension N and a numeric, bool or str dtype is kept as
an extra (importers' additional annotations).

Holding the real datasets (how importers map them):

* RICH: ``K`` scaled to the stored images (``images_ds4``: ``K[:2] /= 4``; the original scales plain x4,
  no half-pixel shift), ``T_world_to_cam`` from the calibration XML, GT SMPL-H vertices (V = 6890) in the
  world, contact from the packbits files, body params + hand poses + gender, the voxel cloud as
  ``points_world`` (its ``pitch`` in ``scene.json`` meta), the ``*_mysdf`` grid as ``sdf.npz``;
  the pre-cropped 224² test images are stored as images of size 224² with ``K`` mapped into the crop
  (``K_crop = [A; 0 0 1] @ K``, ``A`` = :func:`sahmr.geometry.camera.crop_affine`) and ``crop_box_xyxy``
  = the full crop.
* PROX quantitative: images stored already flipped horizontally (as the model must see them), ``K`` with
  ``K[2,2] = 1``, ``T_world_to_cam = inverse(cam2world)``, GT vertices mapped to the world (any V, e.g.
  SMPL-X 10475 or SMPL-H 6890 after transfer), ``contact`` all False, no body params.

Content hash (``hash_algorithm`` "sha256-manifest-v1"): the files of the dataset — scene files of the
listed scenes, the listed per-frame arrays, every referenced image — each get a digest: sha256 of the
bytes, except ``.npz`` archives, whose digest is sha256 over their members in name order
(``name`` NUL ``sha256(member bytes)``), so zip timestamps do not matter. ``manifest.json`` maps the
relative path to the digest; ``content_hash`` = sha256 of the lines ``"<digest>  <relative path>\\n"``
in sorted path order. Same content -> same hash, whatever the machine or write time.

Writing: :class:`DatasetWriter` (scenes, images, splits, then :meth:`DatasetWriter.finalize`). Every file
is written atomically (temporary file + ``os.replace``) and ``dataset.json`` last, so an interrupted
write never looks complete. Reading: :func:`open_dataset` -> :class:`DatasetReader`. Older versions:
:func:`~sahmr.data.format.upgrade.upgrade_dataset` (``sahmr data upgrade``) upgrades them in place.
"""

from __future__ import annotations

from .files import read_image, write_image, write_scene
from .hashing import compute_manifest, content_hash_of, file_digest
from .reader import DatasetReader, SplitArrays, load_meta, open_dataset
from .schema import (
    BODY_PARAM_KEYS,
    FIELDS,
    FORMAT_NAME,
    FORMAT_VERSION,
    HASH_ALGORITHM,
    REQUIRED_KEYS,
    DatasetFormatError,
    FieldSpec,
    coerce_split_arrays,
    is_valid_id,
)
from .upgrade import upgrade_dataset
from .writer import DatasetWriter

__all__ = [
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "HASH_ALGORITHM",
    "FieldSpec",
    "FIELDS",
    "REQUIRED_KEYS",
    "BODY_PARAM_KEYS",
    "DatasetFormatError",
    "DatasetWriter",
    "DatasetReader",
    "SplitArrays",
    "open_dataset",
    "write_image",
    "read_image",
    "write_scene",
    "coerce_split_arrays",
    "file_digest",
    "compute_manifest",
    "content_hash_of",
    "is_valid_id",
    "load_meta",
    "upgrade_dataset",
]
