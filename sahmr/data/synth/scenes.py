"""Procedural indoor scenes made of oriented boxes: rooms, furniture and where people can interact.

Frames and units (kit-wide): world frame in metres, **z up**, the floor's top surface at z = 0.

* A :class:`Box` is an oriented cuboid: ``centre`` (3,), ``half`` extents (3,) along its own axes, ``yaw``
  (radians, rotation about world z), a base ``colour`` (RGB floats in [0, 1]), a procedural ``texture``
  kind (:data:`TEXTURE_KINDS`) with a second colour ``colour2`` and a period ``texture_scale`` (metres).
  Box-local coordinates: ``local = Rz(yaw)^T (world - centre)``.
* A :class:`SceneObject` is a floor, a wall or one piece of furniture: ``kind`` (:data:`OBJECT_KINDS`),
  its boxes and its :class:`Affordance` s.
* An :class:`Affordance` says where a person can interact: ``kind`` in :data:`AFFORDANCE_KINDS`, and a
  frame ``T_world_aff`` (4, 4) whose origin is the **centre of the front edge of the top surface**, with
  x = right, y = forward (away from the backrest / toward where the legs go; for ``lean``: out of the
  table toward the person standing at it), z = up. The usable top surface is the rectangle
  ``x ∈ [-width/2, width/2], y ∈ [-depth, 0], z = 0`` of that frame; ``height`` is its height above the
  floor (= the origin's z); ``backrest`` is the distance from the front edge to the backrest's front
  face (None: nothing to lean back on); ``foot_height`` is the height of the surface the feet rest on
  (sit/lean: the floor, 0, or a lower stair tread; stand/lie: the top surface itself, = ``height``).
  Every sit/lean affordance and the lowest stair tread also
  reserve an *access zone* in front of the edge (``x ∈ [-width/2, width/2], y ∈ [0, access]``) that
  no other furniture covers.
* A :class:`Scene` is a list of objects (floor first, then walls, then furniture) plus the room's
  interior box ``room_min``/``room_max`` (z from 0 to the wall height). :meth:`Scene.sdf` is the analytic
  signed distance of the union of all boxes: ``min`` over the boxes' exact box distances — exact
  outside the geometry and inside non-overlapping boxes; in regions where boxes overlap it is a lower
  bound of the depth's magnitude (generated scenes have no overlapping boxes, only touching ones).

:func:`sahmr.data.synth.layout.generate_scene` builds a random room with
:class:`sahmr.data.synth.furniture.SceneParams`; all randomness comes from the ``np.random.Generator``
argument, so the same seed gives the identical scene.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
from dataclasses import dataclass
from functools import cached_property

import numpy as np

__all__ = [
    "TEXTURE_KINDS",
    "OBJECT_KINDS",
    "FURNITURE_KINDS",
    "AFFORDANCE_KINDS",
    "Box",
    "Affordance",
    "SceneObject",
    "Scene",
    "box_sdf",
    "union_sdf",
    "box_mesh_arrays",
    "scene_to_dict",
    "scene_from_dict",
]

TEXTURE_KINDS = ("plain", "checker", "stripes", "wood")
OBJECT_KINDS = ("floor", "wall", "chair", "sofa", "bed", "table", "step", "box")
FURNITURE_KINDS = ("chair", "sofa", "bed", "table", "step", "box")
AFFORDANCE_KINDS = ("sit", "lie", "lean", "stand")

# (N x B) elements per chunk in the vectorised box SDF: bounded memory (~16 temporaries of 8 MB).
_SDF_CHUNK_ELEMS = 1 << 20


# ------------------------------------------------------------------------------------------------ boxes


def _rgb(value, name: str) -> np.ndarray:
    c = np.asarray(value, dtype=np.float64).reshape(-1)
    if c.shape != (3,) or not np.isfinite(c).all() or (c < 0).any() or (c > 1).any():
        raise ValueError(f"Box.{name} must be 3 floats in [0, 1], got {value!r}")
    return c


@dataclass(frozen=True, eq=False)
class Box:
    """An oriented box. centre (3,) and half (3,) float64 metres; yaw radians about world z; colours RGB."""

    centre: np.ndarray
    half: np.ndarray
    yaw: float = 0.0
    colour: np.ndarray = (0.7, 0.7, 0.7)
    texture: str = "plain"
    colour2: np.ndarray | None = None
    texture_scale: float = 0.25

    def __post_init__(self) -> None:
        centre = np.asarray(self.centre, dtype=np.float64).reshape(-1)
        half = np.asarray(self.half, dtype=np.float64).reshape(-1)
        if centre.shape != (3,) or not np.isfinite(centre).all():
            raise ValueError(f"Box.centre must be 3 finite numbers, got {self.centre!r}")
        if half.shape != (3,) or not np.isfinite(half).all() or (half <= 0).any():
            raise ValueError(f"Box.half must be 3 positive numbers, got {self.half!r}")
        if self.texture not in TEXTURE_KINDS:
            raise ValueError(f"Box.texture must be one of {TEXTURE_KINDS}, got {self.texture!r}")
        if not (self.texture_scale > 0 and math.isfinite(self.texture_scale)):
            raise ValueError(f"Box.texture_scale must be a positive number, got {self.texture_scale!r}")
        colour = _rgb(self.colour, "colour")
        colour2 = colour * 0.75 if self.colour2 is None else _rgb(self.colour2, "colour2")
        object.__setattr__(self, "centre", centre)
        object.__setattr__(self, "half", half)
        object.__setattr__(self, "yaw", float(self.yaw))
        object.__setattr__(self, "colour", colour)
        object.__setattr__(self, "colour2", colour2)
        object.__setattr__(self, "texture_scale", float(self.texture_scale))

    @property
    def rotation(self) -> np.ndarray:
        """(3, 3) float64 box-local -> world rotation (about z by yaw)."""
        return rot_z(self.yaw)

    def corners(self) -> np.ndarray:
        """(8, 3) float64 world corners; corner i has local signs ((i>>2)&1, (i>>1)&1, i&1) -> (-1 | +1)."""
        return _UNIT_CORNERS * self.half @ self.rotation.T + self.centre

    def to_local(self, points: np.ndarray) -> np.ndarray:
        """(N, 3) world points -> (N, 3) box-local coordinates."""
        return (np.asarray(points, dtype=np.float64) - self.centre) @ self.rotation

    def transformed(self, yaw: float, translation) -> Box:
        """This box rotated about the world z axis (through the origin) by `yaw`, then translated."""
        centre = rot_z(yaw) @ self.centre + np.asarray(translation, dtype=np.float64)
        return dataclasses.replace(self, centre=centre, yaw=_wrap_angle(self.yaw + yaw))

    def sdf(self, points: np.ndarray) -> np.ndarray:
        """(N,) exact signed distance of (N, 3) world points to this box (negative inside)."""
        return box_sdf(points, self.centre[None], self.half[None], np.array([self.yaw]))[:, 0]


def rot_z(yaw: float) -> np.ndarray:
    c, s = math.cos(yaw), math.sin(yaw)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def _wrap_angle(a: float) -> float:
    return float((a + math.pi) % (2.0 * math.pi) - math.pi)


_UNIT_CORNERS = np.array([[(i >> 2) & 1, (i >> 1) & 1, i & 1] for i in range(8)], dtype=np.float64) * 2.0 - 1.0


def _box_template() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Unit cube mesh: corners (8,3) in {-1,1}, faces (12,3) outward CCW, face normal axis (12,), sign (12,)."""
    faces, axes, signs = [], [], []
    for axis in range(3):
        for sign in (-1, 1):
            idx = [i for i in range(8) if _UNIT_CORNERS[i, axis] == sign]
            # the 4 corners of the face in cyclic order around the face
            u, v = [a for a in range(3) if a != axis]
            ring = sorted(idx, key=lambda i: math.atan2(_UNIT_CORNERS[i, v], _UNIT_CORNERS[i, u]))
            for tri in ((ring[0], ring[1], ring[2]), (ring[0], ring[2], ring[3])):
                a, b, c = (_UNIT_CORNERS[j] for j in tri)
                n = np.cross(b - a, c - a)
                if n[axis] * sign < 0:  # orient outward
                    tri = (tri[0], tri[2], tri[1])
                faces.append(tri)
                axes.append(axis)
                signs.append(sign)
    return _UNIT_CORNERS.copy(), np.array(faces, dtype=np.int64), np.array(axes), np.array(signs)


_TEMPLATE_CORNERS, _TEMPLATE_FACES, _TEMPLATE_FACE_AXIS, _TEMPLATE_FACE_SIGN = _box_template()


def box_mesh_arrays(boxes) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Triangle mesh of a list of boxes (12 outward-facing triangles per box, no shared vertices).

    Returns vertices (8B, 3) float64 world, faces (12B, 3) int64, face_box (12B,) int64 (index of the box
    each face belongs to), face_axis (12B,) int64 (the box-local axis 0/1/2 the face is normal to).
    """
    boxes = list(boxes)
    if not boxes:
        return np.zeros((0, 3)), np.zeros((0, 3), np.int64), np.zeros(0, np.int64), np.zeros(0, np.int64)
    verts = np.concatenate([b.corners() for b in boxes])
    offsets = np.arange(len(boxes), dtype=np.int64)[:, None, None] * 8
    faces = (_TEMPLATE_FACES[None] + offsets).reshape(-1, 3)
    face_box = np.repeat(np.arange(len(boxes), dtype=np.int64), 12)
    face_axis = np.tile(_TEMPLATE_FACE_AXIS, len(boxes))
    return verts, faces, face_box, face_axis


# -------------------------------------------------------------------------------------------------- SDF


def box_sdf(points, centres, halves, yaws) -> np.ndarray:
    """Exact signed distance of points to each of B oriented boxes (negative inside).

    points: (N, 3) world; centres: (B, 3); halves: (B, 3) half extents; yaws: (B,) radians about z.
    Returns: (N, B) float64. Memory is N*B*~10 doubles: chunk large N (see :func:`union_sdf`).
    """
    p = np.asarray(points, dtype=np.float64)
    centres = np.asarray(centres, dtype=np.float64)
    halves = np.asarray(halves, dtype=np.float64)
    yaws = np.asarray(yaws, dtype=np.float64)
    c, s = np.cos(yaws), np.sin(yaws)
    dx = p[:, None, 0] - centres[None, :, 0]
    dy = p[:, None, 1] - centres[None, :, 1]
    qx = np.abs(c * dx + s * dy) - halves[:, 0]
    qy = np.abs(c * dy - s * dx) - halves[:, 1]
    qz = np.abs(p[:, None, 2] - centres[None, :, 2]) - halves[:, 2]
    inside = np.minimum(np.maximum(np.maximum(qx, qy), qz), 0.0)
    outside = np.sqrt(np.maximum(qx, 0.0) ** 2 + np.maximum(qy, 0.0) ** 2 + np.maximum(qz, 0.0) ** 2)
    return outside + inside


def union_sdf(points, centres, halves, yaws) -> np.ndarray:
    """(N,) float64 min over B boxes of :func:`box_sdf` (the union's signed distance; see module doc).

    points (N, 3) world; centres/halves (B, 3); yaws (B,). Chunked over points (bounded memory).
    With B = 0 every distance is +inf.
    """
    p = np.asarray(points, dtype=np.float64).reshape(-1, 3)
    n_boxes = len(np.asarray(yaws).reshape(-1))
    if n_boxes == 0:
        return np.full(len(p), np.inf)
    chunk = max(1024, _SDF_CHUNK_ELEMS // n_boxes)
    out = np.empty(len(p))
    for start in range(0, len(p), chunk):
        out[start : start + chunk] = box_sdf(p[start : start + chunk], centres, halves, yaws).min(axis=1)
    return out


def _rect_sdf_2d(xy: np.ndarray, centres: np.ndarray, halves: np.ndarray, yaws: np.ndarray) -> np.ndarray:
    """(N,) min over B oriented rectangles (their xy footprints) of the 2-D signed distance."""
    if len(yaws) == 0:
        return np.full(len(xy), np.inf)
    c, s = np.cos(yaws), np.sin(yaws)
    out = np.empty(len(xy))
    chunk = max(1024, _SDF_CHUNK_ELEMS // len(yaws))
    for start in range(0, len(xy), chunk):
        p = xy[start : start + chunk]
        dx = p[:, None, 0] - centres[None, :, 0]
        dy = p[:, None, 1] - centres[None, :, 1]
        qx = np.abs(c * dx + s * dy) - halves[:, 0]
        qy = np.abs(c * dy - s * dx) - halves[:, 1]
        d = np.hypot(np.maximum(qx, 0.0), np.maximum(qy, 0.0)) + np.minimum(np.maximum(qx, qy), 0.0)
        out[start : start + chunk] = d.min(axis=1)
    return out


# ------------------------------------------------------------------------------------------- affordances


@dataclass(frozen=True, eq=False)
class Affordance:
    """Where a person can interact with an object (see the module docstring for the frame convention).

    kind: "sit" | "lie" | "lean" | "stand".
    T_world_aff: (4, 4) float64 affordance -> world; origin = front-edge centre of the top surface,
        x right, y forward, z up (z is always world z).
    width: extent along x (metres); depth: extent of the top surface along -y from the front edge.
    height: top surface above the floor (= origin z). backrest: front edge -> backrest front face, or None.
    foot_height: height of the surface the feet rest on (sit/lean: floor = 0 or a lower stair tread;
        stand/lie: = height).
    access: depth of the free zone reserved in front of the edge (0 = none).
    object_index: index of the owning object in ``Scene.objects`` (-1 before the scene assigns it).
    """

    kind: str
    T_world_aff: np.ndarray
    width: float
    depth: float
    height: float
    backrest: float | None = None
    foot_height: float = 0.0
    access: float = 0.0
    object_index: int = -1

    def __post_init__(self) -> None:
        if self.kind not in AFFORDANCE_KINDS:
            raise ValueError(f"Affordance.kind must be one of {AFFORDANCE_KINDS}, got {self.kind!r}")
        T = np.asarray(self.T_world_aff, dtype=np.float64)
        if T.shape != (4, 4) or not np.isfinite(T).all():
            raise ValueError(f"Affordance.T_world_aff must be a finite (4, 4) matrix, got shape {T.shape}")
        object.__setattr__(self, "T_world_aff", T)

    @property
    def origin(self) -> np.ndarray:
        """(3,) world position of the front-edge centre of the top surface."""
        return self.T_world_aff[:3, 3].copy()

    @property
    def right(self) -> np.ndarray:
        """(3,) world x axis of the frame."""
        return self.T_world_aff[:3, 0].copy()

    @property
    def forward(self) -> np.ndarray:
        """(3,) world y axis of the frame (horizontal)."""
        return self.T_world_aff[:3, 1].copy()

    @property
    def yaw(self) -> float:
        """Angle of the frame's x axis about world z (the frame is Rz(yaw) plus the origin)."""
        return math.atan2(self.T_world_aff[1, 0], self.T_world_aff[0, 0])

    def to_world(self, points_aff) -> np.ndarray:
        """(N, 3) points in the affordance frame -> (N, 3) world."""
        p = np.asarray(points_aff, dtype=np.float64)
        return p @ self.T_world_aff[:3, :3].T + self.T_world_aff[:3, 3]

    def surface_corners(self) -> np.ndarray:
        """(4, 3) world corners of the usable top surface (front-right, front-left, back-left, back-right)."""
        w = self.width / 2
        return self.to_world(np.array([[w, 0, 0], [-w, 0, 0], [-w, -self.depth, 0], [w, -self.depth, 0]]))


def affordance_frame(yaw: float, origin) -> np.ndarray:
    T = np.eye(4)
    T[:3, :3] = rot_z(yaw)
    T[:3, 3] = origin
    return T


@dataclass(eq=False)
class SceneObject:
    """A floor, wall or piece of furniture: kind (one of OBJECT_KINDS), boxes, affordances."""

    kind: str
    boxes: tuple[Box, ...]
    affordances: tuple[Affordance, ...] = ()

    def __post_init__(self) -> None:
        if self.kind not in OBJECT_KINDS:
            raise ValueError(f"SceneObject.kind must be one of {OBJECT_KINDS}, got {self.kind!r}")
        self.boxes = tuple(self.boxes)
        self.affordances = tuple(self.affordances)
        if not self.boxes:
            raise ValueError(f"SceneObject of kind {self.kind!r} has no boxes")

    @property
    def is_furniture(self) -> bool:
        return self.kind in FURNITURE_KINDS


# ------------------------------------------------------------------------------------------------ scene


@dataclass(eq=False)
class Scene:
    """A room: objects (floor first, walls, furniture), and the interior box room_min/room_max (3,) metres.

    room_min = (x0, y0, 0) and room_max = (x1, y1, wall height): the free space inside the walls.
    open_sides: the sides without a wall, among "x-", "x+", "y-", "y+".
    """

    scene_id: str
    objects: list[SceneObject]
    room_min: np.ndarray
    room_max: np.ndarray
    open_sides: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        self.objects = list(self.objects)
        self.room_min = np.asarray(self.room_min, dtype=np.float64)
        self.room_max = np.asarray(self.room_max, dtype=np.float64)
        if self.room_min.shape != (3,) or self.room_max.shape != (3,) or not (self.room_max > self.room_min).all():
            raise ValueError(f"Scene {self.scene_id!r}: room_max must exceed room_min, got {self.room_min}, {self.room_max}")
        self.open_sides = tuple(self.open_sides)
        for i, obj in enumerate(self.objects):
            obj.affordances = tuple(dataclasses.replace(a, object_index=i) for a in obj.affordances)

    # -- boxes
    @cached_property
    def boxes(self) -> list[Box]:
        """All boxes of all objects, in object order."""
        return [b for obj in self.objects for b in obj.boxes]

    @cached_property
    def box_object_index(self) -> np.ndarray:
        """(B,) int64: the object each box belongs to."""
        return np.array([i for i, obj in enumerate(self.objects) for _ in obj.boxes], dtype=np.int64)

    @cached_property
    def box_arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(centres (B,3), halves (B,3), yaws (B,)) float64 arrays of all boxes."""
        bs = self.boxes
        return (
            np.array([b.centre for b in bs]).reshape(-1, 3),
            np.array([b.half for b in bs]).reshape(-1, 3),
            np.array([b.yaw for b in bs]),
        )

    def _select(self, object_indices) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        centres, halves, yaws = self.box_arrays
        if object_indices is None:
            return centres, halves, yaws
        keep = np.isin(self.box_object_index, np.asarray(list(object_indices), dtype=np.int64))
        return centres[keep], halves[keep], yaws[keep]

    # -- geometry queries
    def sdf(self, points, object_indices=None) -> np.ndarray:
        """(N,) float64 signed distance of (N, 3) world points to the union of the boxes (negative inside).

        object_indices: restrict to these objects (e.g. :attr:`furniture_indices`); default all.
        """
        p = np.asarray(points, dtype=np.float64)
        if p.ndim != 2 or p.shape[1] != 3:
            raise ValueError(f"Scene.sdf: points must have shape (N, 3), got {p.shape}")
        return union_sdf(p, *self._select(object_indices))

    def footprint_distance(self, xy, object_indices=None) -> np.ndarray:
        """(N,) 2-D signed distance of (N, 2) floor points to the footprints of the objects (default: all
        but the floor), i.e. the horizontal clearance of a vertical line through each point."""
        xy = np.asarray(xy, dtype=np.float64).reshape(-1, 2)
        if object_indices is None:
            object_indices = [i for i, o in enumerate(self.objects) if o.kind != "floor"]
        centres, halves, yaws = self._select(object_indices)
        return _rect_sdf_2d(xy, centres[:, :2], halves[:, :2], yaws)

    def sample_stand_points(self, rng: np.random.Generator, n: int, clearance: float = 0.35, max_tries: int = 200) -> np.ndarray:
        """(M, 3) floor points (z = 0) with at least `clearance` metres of free floor around them
        (horizontal distance to every wall and piece of furniture), uniformly over the free floor.
        M ≤ n: fewer only when the free floor is tiny (rejection sampling, `max_tries` rounds)."""
        lo, hi = self.room_min[:2] + clearance, self.room_max[:2] - clearance
        out: list[np.ndarray] = []
        got = 0
        for _ in range(max_tries):
            if got >= n or (hi <= lo).any():
                break
            cand = rng.uniform(lo, hi, size=(max(4 * (n - got), 16), 2))
            ok = cand[self.footprint_distance(cand) >= clearance]
            out.append(ok[: n - got])
            got += len(out[-1])
        xy = np.concatenate(out) if out else np.zeros((0, 2))
        return np.concatenate([xy, np.zeros((len(xy), 1))], axis=1)

    # -- bookkeeping
    @property
    def affordances(self) -> list[Affordance]:
        """All affordances of all objects (each knows its object_index)."""
        return [a for obj in self.objects for a in obj.affordances]

    @property
    def furniture_indices(self) -> list[int]:
        return [i for i, o in enumerate(self.objects) if o.is_furniture]

    @property
    def furniture(self) -> list[SceneObject]:
        return [o for o in self.objects if o.is_furniture]

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """(min (3,), max (3,)) world AABB of all boxes."""
        corners = np.concatenate([b.corners() for b in self.boxes])
        return corners.min(0), corners.max(0)

    def mesh(self):
        """A trimesh.Trimesh of all boxes (12 triangles per box) with per-face RGBA colours (base colours;
        textures are evaluated by the renderer). ``mesh.metadata["face_box"]`` / ``["face_object"]`` map each
        face to its box / object index."""
        import trimesh

        verts, faces, face_box, _ = box_mesh_arrays(self.boxes)
        colours = np.array([b.colour for b in self.boxes]).reshape(-1, 3)[face_box]
        rgba = np.concatenate([np.round(colours * 255), np.full((len(faces), 1), 255)], axis=1).astype(np.uint8)
        mesh = trimesh.Trimesh(vertices=verts, faces=faces, face_colors=rgba, process=False)
        mesh.metadata["face_box"] = face_box
        mesh.metadata["face_object"] = self.box_object_index[face_box]
        return mesh

    def content_hash(self) -> str:
        """sha256 (hex) of every box and affordance array, for determinism checks and caching."""
        h = hashlib.sha256(self.scene_id.encode())
        for arr in self.box_arrays:
            h.update(np.ascontiguousarray(arr).tobytes())
        for b in self.boxes:
            h.update(b.colour.tobytes() + b.colour2.tobytes() + b.texture.encode() + np.float64(b.texture_scale).tobytes())
        for a in self.affordances:
            h.update(a.kind.encode() + a.T_world_aff.tobytes())
            backrest = -1 if a.backrest is None else a.backrest
            h.update(np.array([a.width, a.depth, a.height, backrest, a.foot_height, a.access, a.object_index]).tobytes())
        h.update(self.room_min.tobytes() + self.room_max.tobytes())
        return h.hexdigest()


# ------------------------------------------------------------------------------------------ serialisation


def scene_to_dict(scene: Scene) -> dict:
    """A JSON-serialisable description of `scene` (round-trips exactly through :func:`scene_from_dict`)."""

    def box(b: Box) -> dict:
        return {
            "centre": b.centre.tolist(),
            "half": b.half.tolist(),
            "yaw": b.yaw,
            "colour": b.colour.tolist(),
            "texture": b.texture,
            "colour2": b.colour2.tolist(),
            "texture_scale": b.texture_scale,
        }

    def aff(a: Affordance) -> dict:
        return {
            "kind": a.kind,
            "T_world_aff": a.T_world_aff.tolist(),
            "width": a.width,
            "depth": a.depth,
            "height": a.height,
            "backrest": a.backrest,
            "foot_height": a.foot_height,
            "access": a.access,
        }

    return {
        "scene_id": scene.scene_id,
        "room_min": scene.room_min.tolist(),
        "room_max": scene.room_max.tolist(),
        "open_sides": list(scene.open_sides),
        "objects": [{"kind": o.kind, "boxes": [box(b) for b in o.boxes], "affordances": [aff(a) for a in o.affordances]} for o in scene.objects],
    }


def scene_from_dict(d: dict) -> Scene:
    """Inverse of :func:`scene_to_dict`. Raises ValueError naming the missing/invalid field."""
    try:
        objects = [
            SceneObject(
                kind=o["kind"],
                boxes=[Box(**b) for b in o["boxes"]],
                affordances=[Affordance(**a) for a in o.get("affordances", [])],
            )
            for o in d["objects"]
        ]
        return Scene(d["scene_id"], objects, d["room_min"], d["room_max"], tuple(d.get("open_sides", ())))
    except KeyError as e:
        raise ValueError(f"scene description is missing field {e}") from e
    except TypeError as e:
        raise ValueError(f"scene description has an invalid field: {e}") from e
