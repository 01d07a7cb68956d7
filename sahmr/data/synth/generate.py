"""``sahmr synth``: generate the synthetic human-in-scene benchmark into the canonical dataset format.

Per scene (one worker process each, resumable): a furnished room, its scanner-like point cloud and SDF
grid, a few static cameras (1–2.5 m high, 2–7 m from the people, realistic focal lengths), then people
of random adult shapes in interaction poses placed on the room's affordances (contacts real,
penetration < 2 cm checked with the exact scene SDF), each rendered from the cameras that see it.
Test and validation scenes are never used for training frames.

Resuming: every finished scene leaves ``.staging/<scene_id>.npz`` (+ its images and scene files); a rerun
with the same parameters skips those scenes (other parameters start over). The final assembly writes the
splits and ``dataset.json`` last, so an interrupted run never looks complete; then the staged arrays are
removed and a rerun with the same parameters does nothing.
"""

from __future__ import annotations

import hashlib
import json
import math
import multiprocessing as mp
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from sahmr.atomic import atomic_write_bytes

PERSON_ID = 1000
SPLITS = ("train", "val", "test")


@dataclass
class SynthParams:
    """Parameters of the generator (params.yaml section ``synth``; loaded by `sahmr.config.load_section`)."""

    seed: int = 0
    scenes: dict[str, int] = field(default_factory=lambda: {"train": 40, "val": 5, "test": 5})
    frames_per_scene: dict[str, int] = field(default_factory=lambda: {"train": 150, "val": 120, "test": 120})
    image_size: tuple[int, int] = (512, 384)
    cameras_per_scene: int = 4
    views_per_person: int = 2
    pose_class_weights: dict[str, float] = field(
        default_factory=lambda: {"stand": 1.0, "walk": 1.0, "reach": 0.8, "crouch": 0.6, "kneel": 0.6, "sit": 2.2, "lie": 1.0, "lean": 1.2}
    )
    distance_range: tuple[float, float] = (2.0, 7.0)
    hfov_range: tuple[float, float] = (50.0, 75.0)
    camera_height: tuple[float, float] = (1.0, 2.5)
    min_person_pixels: int = 400
    max_occlusion: float = 0.75
    min_in_image: float = 0.5  # fraction of the person's box inside the image
    sdf_spacing: float = 0.04
    scan_spacing: float = 0.02
    scan_noise: float = 0.004
    scan_voxel: float = 0.03
    noise_std: float = 2.0  # sensor noise, 8-bit levels

    def __post_init__(self) -> None:
        """Every value checked before any work: unknown splits, counts, sizes, ranges, finite numbers."""

        def need(ok: bool, key: str, what: str) -> None:
            if not ok:
                raise ValueError(f"synth.{key}: {what}, got {getattr(self, key.split('.')[0])!r}")

        for name in ("scenes", "frames_per_scene"):
            bad = set(getattr(self, name)) - set(SPLITS)
            if bad:
                raise ValueError(f"synth.{name}: unknown split(s) {sorted(bad)}; expected keys among {list(SPLITS)}")
            for split, n in getattr(self, name).items():
                need(int(n) >= 0, f"{name}.{split}", "must be >= 0")
        need(
            sum(self.scenes.values()) >= 1 and sum(self.frames_per_scene.get(s, 0) for s, n in self.scenes.items() if n) >= 1,
            "scenes",
            "needs at least one scene with frames",
        )
        need(len(self.image_size) == 2 and min(self.image_size) >= 16, "image_size", "must be [W, H] with both >= 16 px")
        for key in ("cameras_per_scene", "views_per_person", "min_person_pixels"):
            need(int(getattr(self, key)) >= 1, key, "must be >= 1")
        finite = all(
            math.isfinite(float(v)) for v in (*self.distance_range, *self.hfov_range, *self.camera_height, *self.pose_class_weights.values())
        )
        need(finite, "distance_range", "ranges and weights must be finite numbers")
        for key in ("distance_range", "hfov_range", "camera_height"):
            lo, hi = getattr(self, key)
            need(0 < lo <= hi, key, "must be [min, max] with 0 < min <= max")
        need(self.hfov_range[1] < 180, "hfov_range", "must be below 180 degrees")
        need(
            all(w >= 0 for w in self.pose_class_weights.values()) and sum(self.pose_class_weights.values()) > 0,
            "pose_class_weights",
            "must be >= 0 and not all 0",
        )
        for key in ("max_occlusion", "min_in_image"):
            need(0 <= getattr(self, key) <= 1, key, "must be in [0, 1]")
        for key in ("sdf_spacing", "scan_spacing", "scan_voxel"):
            need(math.isfinite(getattr(self, key)) and getattr(self, key) > 0, key, "must be a finite number > 0")
        for key in ("scan_noise", "noise_std"):
            need(math.isfinite(getattr(self, key)) and getattr(self, key) >= 0, key, "must be a finite number >= 0")

    def digest(self) -> str:
        return hashlib.sha256(json.dumps(asdict(self), sort_keys=True, default=list).encode()).hexdigest()[:16]


# What decides synth's output besides its parameters: the body-model file and this code. A folder stamped with
# another run digest is regenerated, never resumed or taken as complete (under `dvc repro` a code change re-runs
# the persisted stage, which must then not find its old dataset "complete").
CODE_PARTS = ("data/synth", "data/format", "body", "geometry", "mesh_io.py")


def code_digest() -> str:
    """sha256 of the source of :data:`CODE_PARTS` (paths and bytes, sorted)."""
    root = Path(__file__).resolve().parents[2]  # the sahmr package
    h = hashlib.sha256()
    for part in CODE_PARTS:
        files = [root / part] if part.endswith(".py") else sorted((root / part).rglob("*.py"))
        for f in files:
            h.update(f.relative_to(root).as_posix().encode() + b"\0" + f.read_bytes() + b"\0")
    return h.hexdigest()


def run_digest(params: SynthParams, body_sha256: str) -> str:
    """The key of one dataset: parameters, body-model file and code."""
    key = {"params": params.digest(), "body_model_sha256": body_sha256, "code": code_digest()}
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]


@dataclass
class SceneJob:
    index: int
    split: str
    n_frames: int


def scene_jobs(p: SynthParams) -> list[SceneJob]:
    jobs, i = [], 0
    for split in SPLITS:
        for _ in range(int(p.scenes.get(split, 0))):
            jobs.append(SceneJob(i, split, int(p.frames_per_scene[split])))
            i += 1
    return jobs


def scene_id_of(job: SceneJob) -> str:
    return f"{job.split}_room{job.index:03d}"


# ---------------------------------------------------------------------------------------------- worker
_STATE: dict = {}


def _init_worker(body_path: str) -> None:
    import torch

    from sahmr.body.model import BodyModel

    torch.set_num_threads(1)
    _STATE["body"] = BodyModel.load(body_path)


def _stand_frame(point: np.ndarray, yaw: float) -> np.ndarray:
    T = np.eye(4)
    c, s = np.cos(yaw), np.sin(yaw)
    T[:3, :3] = [[c, -s, 0], [s, c, 0], [0, 0, 1]]
    T[:3, 3] = point
    return T


class _FloorSpot:
    """A floor point as an affordance-like object for the floor pose classes."""

    width = depth = height = foot_height = 0.0
    backrest = None


def _pick_affordance(scene, kind: str, rng: np.random.Generator):
    if kind == "floor":
        affs = [a for a in scene.affordances if a.kind == "stand" and a.height > 0.05]  # stair treads
        if affs and rng.random() < 0.15:
            a = affs[rng.integers(len(affs))]
            return _stand_frame(a.to_world([[rng.uniform(-0.25, 0.25) * a.width, -a.depth / 2, 0.0]])[0], 0.0), _FloorSpot()
        pts = scene.sample_stand_points(rng, 1, clearance=0.45)
        if len(pts) == 0:
            return None
        return _stand_frame(pts[0], 0.0), _FloorSpot()
    affs = [a for a in scene.affordances if a.kind == kind]
    if kind == "lie":
        affs = [a for a in affs if a.depth >= 1.5]  # long enough to lie on
    if not affs:
        return None
    a = affs[rng.integers(len(affs))]
    return a.T_world_aff, a


def generate_scene_frames(job: SceneJob, p: SynthParams, out_root: str) -> str:
    """Generate one scene (files + images) and stage its frame arrays; returns the staged path."""
    import torch
    import trimesh

    from sahmr.data.format import write_image, write_scene
    from sahmr.data.synth.appearance import body_regions, random_outfit, vertex_colors
    from sahmr.data.synth.cameras import project, sample_static_cameras
    from sahmr.data.synth.layout import generate_scene
    from sahmr.data.synth.placement import (
        AFFORDANCE_FOR_CLASS,
        CONTACT_THRESHOLD,
        MAX_PENETRATION,
        STORED_GRID,
        place_person,
    )
    from sahmr.data.synth.render import (
        Renderer,
        RenderItem,
        random_lights,
        scene_render_item,
    )
    from sahmr.data.synth.scan import scan_points
    from sahmr.data.synth.scenes import scene_to_dict
    from sahmr.data.synth.sdf import scene_sdf_grid
    from sahmr.geometry.grid import snap_to_grid

    root = Path(out_root)
    staged = root / ".staging" / f"{scene_id_of(job)}.npz"
    if staged.is_file():
        return str(staged)
    body = _STATE["body"]
    rng = np.random.default_rng([p.seed, job.index])
    sid = scene_id_of(job)
    scene = generate_scene(rng, scene_id=sid)
    grid = scene_sdf_grid(scene, spacing=p.sdf_spacing)
    points = scan_points(scene, rng, spacing=p.scan_spacing, noise_std=p.scan_noise, voxel_size=p.scan_voxel)
    # The exact scene (boxes) travels with the data, so checks can use its analytic SDF.
    write_scene(root, sid, points, grid, mesh=scene.mesh(), meta={"generator": "sahmr synth", "scene": scene_to_dict(scene)})

    W, H = p.image_size
    targets = np.array([a.origin for a in scene.affordances if a.kind != "stand"] or [[0.0, 0.0, 0.8]])
    targets[:, 2] = np.clip(targets[:, 2], 0.5, 1.2)
    cams = sample_static_cameras(
        scene.sdf, scene.room_min, scene.room_max, targets, p.cameras_per_scene, W, H, rng, sid, height_range=p.camera_height, hfov_range=p.hfov_range
    )
    renderer = Renderer([scene_render_item(scene)])
    faces = body.faces.numpy()
    regions = body_regions(body.layer.lbs_weights.numpy())
    part_ids = body.part_ids.numpy()
    classes = list(p.pose_class_weights)
    weights = np.array([p.pose_class_weights[c] for c in classes], float)
    weights /= weights.sum()

    rec: dict[str, list] = {
        k: []
        for k in (
            "frame_id",
            "image_path",
            "scene_id",
            "camera_id",
            "K",
            "T_world_to_cam",
            "image_size",
            "person_box_xyxy",
            "betas",
            "body_pose",
            "global_orient",
            "transl",
            "verts_world",
            "joints14_world",
            "pelvis_world",
            "contact",
            "contact_part",
            "pose_class",
            "occlusion",
            "distance",
            "truncated",
        )
    }
    attempts = 0
    while len(rec["frame_id"]) < job.n_frames and attempts < 30 * job.n_frames and cams:
        attempts += 1
        cls = classes[rng.choice(len(classes), p=weights)]
        picked = _pick_affordance(scene, AFFORDANCE_FOR_CLASS[cls], rng)
        if picked is None:
            continue
        person = place_person(body, grid, cls, picked[0], picked[1], rng)
        if person is None:
            continue
        exact = scene.sdf(person.verts_world.astype(np.float64))  # grid placed it; the exact SDF labels it
        if -exact.min() > MAX_PENETRATION or not (exact <= CONTACT_THRESHOLD).any():
            continue
        with torch.no_grad():  # in float64 (float32 BLAS kernels differ across processors), stored on the grid
            j14, pelvis = body.regress_joints14(torch.as_tensor(person.verts_world, dtype=torch.float64)[None])
        j14 = snap_to_grid(j14[0].numpy(), STORED_GRID).astype(np.float32)
        pelvis = snap_to_grid(pelvis[0].numpy(), STORED_GRID).astype(np.float32)
        contact = exact <= CONTACT_THRESHOLD
        colours = vertex_colors(regions, random_outfit(rng))
        mesh = trimesh.Trimesh(person.verts_world, faces, process=False)
        views = 0
        for ci in rng.permutation(len(cams)):
            if views >= p.views_per_person or len(rec["frame_id"]) >= job.n_frames:
                break
            cam = cams[ci]
            uv, z = project(person.verts_world.astype(np.float64), cam)
            pelvis_cam = cam.T_world_to_cam[:3, :3] @ pelvis + cam.T_world_to_cam[:3, 3]
            dist = float(np.linalg.norm(pelvis_cam))
            if z.min() < 0.5 or not p.distance_range[0] <= dist <= p.distance_range[1]:
                continue
            box = np.array([uv[:, 0].min(), uv[:, 1].min(), uv[:, 0].max(), uv[:, 1].max()])
            inter = max(0.0, min(box[2], W - 1) - max(box[0], 0)) * max(0.0, min(box[3], H - 1) - max(box[1], 0))
            area = (box[2] - box[0]) * (box[3] - box[1])
            if area <= 0 or inter / area < p.min_in_image:
                continue
            res = renderer.render(
                cam.K,
                cam.T_world_to_cam,
                W,
                H,
                extra_items=[RenderItem(mesh, colours, PERSON_ID)],
                lights=random_lights(rng, scene),
                rng=rng,
                noise_std=p.noise_std,
            )
            full = int(res.silhouettes[0].sum())
            vis = int((res.instance == PERSON_ID).sum())
            occlusion = 1.0 - vis / max(full, 1)
            if vis < p.min_person_pixels or occlusion > p.max_occlusion:
                continue
            fid = f"{sid}_{len(rec['frame_id']):04d}"
            rel = f"images/{job.split}/{fid}.jpg"
            write_image(root, rel, res.rgb)  # JPEG q95: decodes ~3x faster than PNG in the Dataset
            truncated = bool(box[0] < 0 or box[1] < 0 or box[2] > W - 1 or box[3] > H - 1)
            for k, v in (
                ("frame_id", fid),
                ("image_path", rel),
                ("scene_id", sid),
                ("camera_id", cam.camera_id),
                ("K", cam.K),
                ("T_world_to_cam", cam.T_world_to_cam),
                ("image_size", (W, H)),
                ("person_box_xyxy", box),
                ("betas", person.betas),
                ("body_pose", person.body_pose),
                ("global_orient", person.global_orient),
                ("transl", person.transl),
                ("verts_world", person.verts_world),
                ("joints14_world", j14),
                ("pelvis_world", pelvis),
                ("contact", contact),
                ("contact_part", np.where(contact, part_ids, 0)),
                ("pose_class", cls),
                ("occlusion", occlusion),
                ("distance", dist),
                ("truncated", truncated),
            ):
                rec[k].append(v)
            views += 1
    arrays = {k: np.asarray(v) for k, v in rec.items()}
    arrays["contact_part"] = arrays["contact_part"].astype(np.uint8) if len(rec["frame_id"]) else np.zeros((0, len(part_ids)), np.uint8)
    staged.parent.mkdir(parents=True, exist_ok=True)
    tmp = staged.with_name(f".{staged.name}.tmp")
    with open(tmp, "wb") as fp:
        np.savez(fp, **arrays)
    os.replace(tmp, staged)
    return str(staged)


def _run_job(args) -> tuple[str, str, int, float]:
    job, p, out_root = args
    t = time.time()
    path = generate_scene_frames(job, p, out_root)
    with np.load(path) as z:
        n = len(z["frame_id"])
    return scene_id_of(job), job.split, n, time.time() - t


# -------------------------------------------------------------------------------------------- assembly
def generate_dataset(out: str | Path, params: SynthParams, body_model: str | Path, workers: int = 2, progress=True, force: bool = False) -> dict:
    """Generate (or resume) the dataset at ``out``; returns the dataset meta.

    ``out`` must be new, empty, or synth's own (see :mod:`sahmr.data.synth.outdir`); ``force`` lets synth
    replace a dataset it did not generate or write beside files it did not write — which it never removes."""
    from tqdm import tqdm

    from sahmr.body.model import resolve_model_path
    from sahmr.body.model_file import load_body_model_file, sha256_file
    from sahmr.data.format import FORMAT_VERSION, DatasetWriter
    from sahmr.data.synth.outdir import STAMP, claim_out_dir

    out = Path(out)
    body_path = resolve_model_path(body_model)
    body_file = load_body_model_file(body_path)
    stamp = out / STAMP
    try:
        stamp_digest = json.loads(stamp.read_text()).get("digest") if stamp.is_file() else None
    except (json.JSONDecodeError, UnicodeDecodeError, AttributeError):
        stamp_digest = ""  # synth's own stamp, unreadable (killed mid-write): treat as other parameters
    digest = run_digest(params, sha256_file(body_path))
    state = claim_out_dir(out, stamp_digest, digest, force)
    if state == "complete":
        meta = json.loads((out / "dataset.json").read_text())
        if meta.get("format_version") == FORMAT_VERSION:
            if progress:
                print(f"[synth] {out} is complete for these parameters, body model and code; nothing to do")
            return meta
        # an older format (same parameters): regenerated in place below, file for file
    if (out / "dataset.json").is_file():
        (out / "dataset.json").unlink()  # from here on the folder is incomplete until finalize()
    stamp.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(stamp, json.dumps({"digest": digest, "params": asdict(params)}, default=list).encode())

    jobs = scene_jobs(params)
    done = {}
    args = [(j, params, str(out)) for j in jobs]
    t0 = time.time()
    bar = tqdm(total=len(jobs), desc="synth scenes", unit="scene", disable=not progress)
    if workers > 1:
        ctx = mp.get_context("fork")
        with ctx.Pool(workers, initializer=_init_worker, initargs=(str(body_path),)) as pool:
            for sid, _split, n, _dt in pool.imap_unordered(_run_job, args):
                done[sid] = n
                bar.update(1)
                bar.set_postfix(frames=sum(done.values()))
    else:
        _init_worker(str(body_path))
        for a in args:
            sid, split, n, dt = _run_job(a)
            done[sid] = n
            bar.update(1)
    bar.close()

    meta_body = {"name": body_file.meta.get("name", body_path.stem), "num_verts": body_file.num_verts, "sha256": body_file.meta.get("npz_sha256", "")}
    writer = DatasetWriter(out, "synth", meta_body, overwrite=True, generator_meta={"generator": "sahmr synth", "params": asdict(params)})
    for split in SPLITS:
        parts = [np.load(out / ".staging" / f"{scene_id_of(j)}.npz") for j in jobs if j.split == split]
        parts = [z for z in parts if len(z["frame_id"])]
        if not parts:
            continue
        arrays = {k: np.concatenate([z[k] for z in parts]) for k in parts[0].files}
        writer.write_split(split, arrays)
    meta = writer.finalize(progress=progress)
    for j in jobs:  # the frames now live in the splits; keep only the parameter stamp
        (out / ".staging" / f"{scene_id_of(j)}.npz").unlink(missing_ok=True)
    if progress:
        print(f"[synth] {sum(done.values())} frames in {time.time() - t0:.0f} s -> {out}")
    return meta
