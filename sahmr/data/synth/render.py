"""A CPU ray-casting renderer (Embree through embreex; no OpenGL, no display, no EGL).

One primary ray per pixel into meshes with instance ids; returns an RGB image, an instance map, camera
depth, surface normals, hit faces and the unoccluded silhouettes of per-frame items.

* Camera: OpenCV pinhole, ``K`` (3, 3) in pixels, ``T_world_to_cam`` (4, 4) (x right, y down, z forward),
  image ``width`` x ``height``. Pixel ``[row v, column u]`` samples the image point ``(u, v)``: pixel
  centres sit at integer coordinates (OpenCV), so a world point projecting to ``(x, y)`` lands in pixel
  ``(round(y), round(x))``. No lens distortion.
* Items: :class:`RenderItem` or ``(mesh, colours, instance_id)`` tuples. ``instance_id`` is an int >= 1 or
  an (F,) int array (one id per face: a whole scene in one item, see :func:`scene_render_item`).
  ``colours``: per-face RGB ``(F, 3)``, per-vertex RGB ``(V, 3)`` (interpolated; implies smooth shading),
  one RGB ``(3,)``, or a colour source with ``albedo(face_index (N,), points_world (N, 3)) -> (N, 3)``
  (:class:`BoxTexture` evaluates the boxes' procedural textures at the hit point). Floats in [0, 1].
* Shading: Lambert, ``rgb = albedo * (ambient + Σ_lights intensity * max(0, n·l) * visible)``, two-sided
  (normals are flipped to face the camera), no gamma; ``visible`` comes from one shadow ray per lit pixel
  and light when that light casts shadows. Pixels that hit nothing get a soft vertical gradient.
* Optional sensor noise: Gaussian, ``noise_std`` in 8-bit levels, drawn from the explicit ``rng``.

Fast path for many frames of one scene: ``r = Renderer(static_items)`` builds the static BVH once and,
per camera (the last 4), casts and shades the static items' primary rays once (hits, normals, albedo);
then ``r.render(K, T, W, H, extra_items=[person])`` builds only the person's BVH (~10 ms for 13.7k
triangles), casts the person's rays only inside the projection of its bounding box, overwrites the
pixels the person wins, and returns its unoccluded silhouette (``result.silhouettes[0]``) for free; the
per-frame lights' shadow rays are the main remaining cost. Outputs equal an uncached render bit for bit.
:func:`render` is ``Renderer(items).render``. Measured (one core, 512 x 384, furnished room + 6,890-vertex
body, key light with shadows, a known camera): ~40 ms per frame (~70 ms when the camera's static rays are
cast too, ~5 M rays/s). Hot loops work on (3, N) float32 planes: strided (N, 3) columns and BLAS 3x3
matmuls were 5-100x slower on the shared 2-core machines.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field

import numpy as np

from .scenes import TEXTURE_KINDS, Box, Scene, box_mesh_arrays

__all__ = [
    "Light",
    "RenderItem",
    "RenderResult",
    "Renderer",
    "BoxTexture",
    "render",
    "render_mask",
    "visible_mask",
    "visible_fraction",
    "box_item",
    "scene_render_item",
    "default_lights",
    "random_lights",
    "DEFAULT_BACKGROUND",
]

DEFAULT_BACKGROUND = ((0.86, 0.88, 0.92), (0.62, 0.64, 0.68))  # top, bottom (RGB in [0, 1])
_MISS = -1


# ------------------------------------------------------------------------------------------------ inputs


@dataclass(frozen=True)
class Light:
    """A light. kind "directional": `direction` (3,) points from the scene TOWARD the light (normalised
    here); kind "point": `position` (3,) world, no falloff. intensity: scalar or RGB (3,).
    cast_shadows: trace one shadow ray per lit pixel (when rendering with shadows=True)."""

    kind: str = "directional"
    direction: tuple[float, float, float] | None = (0.3, -0.4, 1.0)
    position: tuple[float, float, float] | None = None
    intensity: float | tuple[float, float, float] = 0.6
    cast_shadows: bool = True

    def __post_init__(self) -> None:
        if self.kind == "directional":
            d = np.asarray(self.direction, dtype=np.float64).reshape(-1)
            if d.shape != (3,) or not np.isfinite(d).all() or np.linalg.norm(d) == 0:
                raise ValueError(f"Light: a directional light needs a non-zero direction (3,), got {self.direction!r}")
        elif self.kind == "point":
            p = np.asarray(self.position, dtype=np.float64).reshape(-1)
            if p.shape != (3,) or not np.isfinite(p).all():
                raise ValueError(f"Light: a point light needs a position (3,), got {self.position!r}")
        else:
            raise ValueError(f"Light.kind must be 'directional' or 'point', got {self.kind!r}")
        rgb = np.broadcast_to(np.asarray(self.intensity, dtype=np.float64), (3,))
        if not np.isfinite(rgb).all() or (rgb < 0).any():
            raise ValueError(f"Light.intensity must be >= 0 (scalar or RGB), got {self.intensity!r}")

    @property
    def rgb(self) -> np.ndarray:
        return np.broadcast_to(np.asarray(self.intensity, dtype=np.float32), (3,)).copy()


@dataclass
class RenderItem:
    """One mesh to render. mesh: trimesh.Trimesh (or anything with .vertices (V,3) and .faces (F,3));
    colours: see module doc; instance_id: int >= 1, or (F,) ints >= 1 (per face); smooth: interpolate
    vertex normals (default: True for per-vertex colours, else flat). A colour array with V == F rows is
    read as per-face unless smooth=True."""

    mesh: object
    colours: object
    instance_id: object
    smooth: bool | None = None


@dataclass
class RenderResult:
    """rgb (H, W, 3) uint8; instance (H, W) int32, 0 = background; depth (H, W) float32 camera z in metres,
    inf where nothing was hit; normals (H, W, 3) float32 unit world-frame normals facing the camera, 0 on
    background; face (H, W) int32 index of the hit face within its item's mesh, -1 on background;
    silhouettes: one (H, W) bool unoccluded mask per extra (per-frame) item, in the order given."""

    rgb: np.ndarray
    instance: np.ndarray
    depth: np.ndarray
    normals: np.ndarray
    face: np.ndarray
    silhouettes: list = field(default_factory=list)


def default_lights() -> list[Light]:
    """A shadow-casting key light from above and a soft fill light from the other side."""
    return [
        Light("directional", direction=(0.3, -0.4, 1.0), intensity=0.6, cast_shadows=True),
        Light("directional", direction=(-0.6, 0.5, 0.35), intensity=0.22, cast_shadows=False),
    ]


def random_lights(rng: np.random.Generator, scene: Scene | None = None, point_prob: float = 0.4) -> list[Light]:
    """Randomised key (+ fill) lights: a warm/cool-tinted shadow-casting key light — directional from a
    random azimuth and 45–80° elevation, or (with `point_prob`, when `scene` is given) a point light
    under the ceiling inside the room — and a weak directional fill without shadows."""
    tint = np.array([1.0, 1.0, 1.0]) + rng.uniform(-0.08, 0.08) * np.array([1.0, 0.0, -1.0])
    key_i = tuple(float(x) for x in rng.uniform(0.5, 0.75) * tint)
    if scene is not None and rng.random() < point_prob:
        lo, hi = scene.room_min, scene.room_max
        pos = (
            float(rng.uniform(lo[0] + 0.5, hi[0] - 0.5)),
            float(rng.uniform(lo[1] + 0.5, hi[1] - 0.5)),
            float(hi[2] - rng.uniform(0.1, 0.3)),
        )
        key = Light("point", direction=None, position=pos, intensity=key_i, cast_shadows=True)
    else:
        az, el = rng.uniform(-math.pi, math.pi), rng.uniform(math.radians(45), math.radians(80))
        key = Light(
            "directional", direction=(math.cos(az) * math.cos(el), math.sin(az) * math.cos(el), math.sin(el)), intensity=key_i, cast_shadows=True
        )
    az = rng.uniform(-math.pi, math.pi)
    fill = Light(
        "directional", direction=(math.cos(az), math.sin(az), rng.uniform(0.2, 0.8)), intensity=float(rng.uniform(0.12, 0.3)), cast_shadows=False
    )
    return [key, fill]


# -------------------------------------------------------------------------------------- box textures


_KIND_ID = {k: i for i, k in enumerate(TEXTURE_KINDS)}


class BoxTexture:
    """Colour source evaluating the procedural textures of a list of boxes at hit points.

    Texture coordinates are box-local, measured from a corner, in units of the box's texture_scale, on two
    in-plane axes (u, v) of the hit face: checker = alternating unit squares; stripes = unit bands along
    the face's first horizontal axis (vertical stripes on walls); wood = planks of unit width across v
    (the face's shorter axis, so planks run along the longer one) with a hashed tone per plank, wavy
    grain and dark seams. Faces must come from :func:`box_mesh_arrays` of the same boxes (12 per box).
    """

    def __init__(self, boxes: list[Box]):
        boxes = list(boxes)
        _, _, face_box, face_axis = box_mesh_arrays(boxes)
        self.face_box = face_box
        half = np.array([b.half for b in boxes]).reshape(-1, 3)[face_box]
        centre = np.array([b.centre for b in boxes]).reshape(-1, 3)[face_box]
        yaw = np.array([b.yaw for b in boxes])[face_box]
        scale = np.array([b.texture_scale for b in boxes])[face_box]
        kind = np.array([_KIND_ID[b.texture] for b in boxes], dtype=np.int8)[face_box]
        rows = np.arange(len(face_box))
        plane = np.array([[1, 2], [0, 2], [0, 1]])[face_axis]  # in-plane local axes, ascending
        longer_first = half[rows, plane[:, 0]] >= half[rows, plane[:, 1]]
        u_ax = np.where(longer_first, plane[:, 0], plane[:, 1])
        v_ax = np.where(longer_first, plane[:, 1], plane[:, 0])
        stripes = kind == _KIND_ID["stripes"]
        u_ax = np.where(stripes, np.where(face_axis == 0, 1, 0), u_ax)  # stripes: local x (y on x-faces)
        v_ax = np.where(stripes, 2, v_ax)
        # world direction of local axis k: x (c, s, 0), y (-s, c, 0), z (0, 0, 1)
        c, s = np.cos(yaw), np.sin(yaw)
        axes_world = np.stack(
            [np.stack([c, s, 0 * c], 1), np.stack([-s, c, 0 * c], 1), np.tile([0.0, 0.0, 1.0], (len(c), 1))], 1
        )  # (F, 3 local axes, 3)

        def affine(ax):
            d = axes_world[rows, ax] / scale[:, None]
            off = (half[rows, ax] - (axes_world[rows, ax] * centre).sum(1)) / scale
            return d.astype(np.float64), off

        au, bu = affine(u_ax)
        av, bv = affine(v_ax)
        c1 = np.array([b.colour for b in boxes]).reshape(-1, 3)[face_box]
        c2 = np.array([b.colour2 for b in boxes]).reshape(-1, 3)[face_box]
        # one packed column per face: au(3) bu av(3) bv c1(3) c2(3) kind -> one gather per hit
        self._table = np.ascontiguousarray(
            np.concatenate([au, bu[:, None], av, bv[:, None], c1, c2, kind[:, None].astype(np.float64)], 1).T.astype(np.float32)
        )  # (15, F)
        self._kinds_present = set(int(k) for k in np.unique(kind))

    def albedo(self, face_index: np.ndarray, points_world: np.ndarray) -> np.ndarray:
        """(N, 3) float32 colours at hits on faces `face_index` (N,) located at `points_world` (N, 3)."""
        return np.ascontiguousarray(self.albedo_planes(face_index, np.asarray(points_world, np.float32).T).T)

    def albedo_planes(self, face_index: np.ndarray, points_planes: np.ndarray) -> np.ndarray:
        """(3, N) float32 colours; points_planes (3, N) world coordinates (the renderer's fast path)."""
        if self._kinds_present == {_KIND_ID["plain"]}:
            return np.take(self._table[8:11], face_index, axis=1)
        row = np.take(self._table, face_index, axis=1)  # (15, N)
        p = points_planes
        kind = row[14]
        u = p[0] * row[0] + p[1] * row[1] + p[2] * row[2] + row[3]
        v = p[0] * row[4] + p[1] * row[5] + p[2] * row[6] + row[7]
        fv = np.floor(v)
        iu, iv = np.floor(u).astype(np.int32), fv.astype(np.int32)
        t = np.zeros(len(u), dtype=np.float32)
        if _KIND_ID["checker"] in self._kinds_present:
            np.copyto(t, ((iu + iv) & 1).astype(np.float32), where=kind == _KIND_ID["checker"])
        if _KIND_ID["stripes"] in self._kinds_present:
            np.copyto(t, (iu & 1).astype(np.float32), where=kind == _KIND_ID["stripes"])
        if _KIND_ID["wood"] in self._kinds_present:
            m = np.nonzero(kind == _KIND_ID["wood"])[0]
            um, vm, pm = u[m], v[m], fv[m]
            # integer hash of the plank index -> tone in [0, 1]
            h = ((iv[m].astype(np.uint32) * np.uint32(2654435761)) >> np.uint32(16)) & np.uint32(1023)
            h = h.astype(np.float32) * np.float32(1.0 / 1023.0)
            grain = 0.5 + 0.5 * np.sin(np.float32(2 * np.pi) * (vm * 3.0 + 0.4 * np.sin(um * 0.35 + h * 6.2832) + h))
            t[m] = np.where(vm - pm < 0.04, np.float32(1.0), 0.4 * h + 0.45 * grain)
        c1 = row[8:11]
        return c1 + (row[11:14] - c1) * t


def box_item(boxes: list[Box], instance_id) -> RenderItem:
    """A RenderItem of boxes (12 triangles each, flat shading, procedural textures). instance_id: int or
    (12 * len(boxes),) per-face ids."""
    import trimesh

    verts, faces, _, _ = box_mesh_arrays(boxes)
    return RenderItem(trimesh.Trimesh(verts, faces, process=False), BoxTexture(boxes), instance_id, smooth=False)


def scene_render_item(scene: Scene, first_instance_id: int = 1) -> RenderItem:
    """The whole scene as one textured RenderItem; faces of object i get instance id
    ``first_instance_id + i`` (floor = object 0, walls next, then furniture in ``scene.objects`` order)."""
    _, _, face_box, _ = box_mesh_arrays(scene.boxes)
    ids = (scene.box_object_index[face_box] + int(first_instance_id)).astype(np.int32)
    return box_item(scene.boxes, ids)


# ------------------------------------------------------------------------------------------- internals


_RAY_CACHE: dict[tuple, tuple[np.ndarray, np.ndarray]] = {}
_BVH_CACHE_SIZE = 4  # per Renderer: BVHs of the last extra meshes, keyed by a hash of their geometry


def _pixel_dirs(K: np.ndarray, width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
    """Camera-frame directions K^-1 [u, v, 1] / z of all pixel centres, row-major: x (N,), y (N,) float32 (z = 1)."""
    key = (K.tobytes(), width, height)
    dirs = _RAY_CACHE.get(key)
    if dirs is None:
        u, v = np.meshgrid(np.arange(width, dtype=np.float64), np.arange(height, dtype=np.float64))
        Ki = np.linalg.inv(K)
        x = Ki[0, 0] * u + Ki[0, 1] * v + Ki[0, 2]
        y = Ki[1, 0] * u + Ki[1, 1] * v + Ki[1, 2]
        z = Ki[2, 0] * u + Ki[2, 1] * v + Ki[2, 2]
        dirs = ((x / z).ravel().astype(np.float32), (y / z).ravel().astype(np.float32))
        if len(_RAY_CACHE) > 8:
            _RAY_CACHE.clear()
        _RAY_CACHE[key] = dirs
    return dirs


def _check_camera(K, T, width, height) -> tuple[np.ndarray, np.ndarray, int, int]:
    K = np.asarray(K, dtype=np.float64)
    T = np.asarray(T, dtype=np.float64)
    if K.shape != (3, 3) or not np.isfinite(K).all() or K[0, 0] <= 0 or K[1, 1] <= 0 or K[2, 2] == 0:
        raise ValueError(f"render: K must be a finite (3, 3) intrinsics matrix with fx, fy > 0, got {K.tolist()}")
    if T.shape != (4, 4) or not np.isfinite(T).all():
        raise ValueError(f"render: T_world_to_cam must be a finite (4, 4) matrix, got shape {T.shape}")
    if not np.allclose(T[:3, :3] @ T[:3, :3].T, np.eye(3), atol=1e-5):
        raise ValueError("render: T_world_to_cam[:3, :3] is not a rotation")
    width, height = int(width), int(height)
    if width <= 0 or height <= 0:
        raise ValueError(f"render: image size must be positive, got {width} x {height}")
    return K, T, width, height


def _as_item(it) -> RenderItem:
    if isinstance(it, RenderItem):
        return it
    try:
        mesh, colours, iid = it
    except (TypeError, ValueError) as e:
        raise ValueError("render: each item must be a RenderItem or a (mesh, colours, instance_id) tuple") from e
    return RenderItem(mesh, colours, iid)


class _Prepared:
    """Per-item arrays for casting and shading."""

    def __init__(self, item: RenderItem):
        self.item = item
        self.verts = np.asarray(item.mesh.vertices, dtype=np.float64).reshape(-1, 3)
        self.faces = np.asarray(item.mesh.faces, dtype=np.int64).reshape(-1, 3)
        nv, nf = len(self.verts), len(self.faces)
        iid = np.asarray(item.instance_id)
        if iid.ndim == 0:
            self.instance_scalar, self.instance_faces = int(iid), None
            if self.instance_scalar < 1:
                raise ValueError(f"render: instance ids must be >= 1 (0 is the background), got {self.instance_scalar}")
        else:
            if iid.shape != (nf,) or iid.dtype.kind not in "iu":
                raise ValueError(f"render: a per-face instance_id must be ({nf},) ints, got {iid.shape} {iid.dtype}")
            if nf and iid.min() < 1:
                raise ValueError("render: instance ids must be >= 1 (0 is the background)")
            self.instance_scalar, self.instance_faces = None, iid.astype(np.int32)
        if nf and (self.faces.min() < 0 or self.faces.max() >= nv):
            raise ValueError(f"render: item faces index vertices out of range [0, {nv})")
        self.lo = self.verts.min(0) if nv else np.zeros(3)
        self.hi = self.verts.max(0) if nv else np.zeros(3)
        self.source = self.face_colours = self.vertex_colours = None
        self._normals: tuple | None = None
        col = item.colours
        if hasattr(col, "albedo"):
            self.source = col
        else:
            c = np.asarray(col, dtype=np.float32)
            if c.shape == (3,):
                self.face_colours = np.ascontiguousarray(np.broadcast_to(c[:, None], (3, nf)))
            elif c.ndim == 2 and c.shape[1] in (3, 4) and c.shape[0] in (nf, nv):
                c = np.ascontiguousarray(c[:, :3])
                if c.max(initial=0) > 1.0 or c.min(initial=0) < 0.0:
                    raise ValueError("render: colours must be floats in [0, 1] (divide uint8 colours by 255)")
                if c.shape[0] == nv and (c.shape[0] != nf or bool(item.smooth)):
                    self.vertex_colours = np.ascontiguousarray(c.T)  # (3, V)
                else:
                    self.face_colours = np.ascontiguousarray(c.T)  # (3, F)
            else:
                raise ValueError(f"render: item colours must be (3,), (F={nf}, 3) or (V={nv}, 3) floats, got shape {c.shape}")
        self.smooth = item.smooth if item.smooth is not None else self.vertex_colours is not None
        self.faces_t = np.ascontiguousarray(self.faces.T)  # (3, F)

    def _compute_normals(self) -> tuple:
        if self._normals is None:
            tri = self.verts[self.faces]
            fn = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
            face_n = np.ascontiguousarray((fn / np.maximum(np.linalg.norm(fn, axis=1, keepdims=True), 1e-30)).T, dtype=np.float32)
            vert_n = None
            if self.smooth:
                idx, nv = self.faces.ravel(), len(self.verts)
                vn = np.stack([np.bincount(idx, weights=np.repeat(fn[:, a], 3), minlength=nv) for a in range(3)], 1)
                vert_n = np.ascontiguousarray((vn / np.maximum(np.linalg.norm(vn, axis=1, keepdims=True), 1e-30)).T, dtype=np.float32)
            self._normals = (face_n, vert_n)
        return self._normals

    @property
    def face_normals(self) -> np.ndarray:
        """(3, F) float32 unit face normals (right-hand rule)."""
        return self._compute_normals()[0]

    @property
    def vertex_normals(self) -> np.ndarray | None:
        """(3, V) float32 area-weighted unit vertex normals, for smooth items only (else None)."""
        return self._compute_normals()[1]


class _Layer:
    """A set of prepared items sharing one Embree scene (geomID k = k-th item with faces)."""

    def __init__(self, prepared: list[_Prepared], bvh_cache: dict | None = None):
        self.prepared = [p for p in prepared if len(p.faces)]
        self._scene = None
        self._geoms: list = []
        self._cache = bvh_cache
        if self.prepared:
            self.lo = np.min([p.lo for p in self.prepared], axis=0)
            self.hi = np.max([p.hi for p in self.prepared], axis=0)

    @property
    def scene(self):
        if self._scene is None:
            from embreex import rtcore_scene
            from embreex.mesh_construction import TriangleMesh

            key = None
            if self._cache is not None:  # same geometry again (e.g. one person seen by several cameras)
                h = hashlib.sha1()
                for p in self.prepared:
                    h.update(p.verts.astype(np.float32).tobytes() + p.faces.astype(np.int32).tobytes())
                key = h.hexdigest()
                if key in self._cache:
                    self._scene, self._geoms = self._cache[key]
                    return self._scene
            self._scene = rtcore_scene.EmbreeScene()
            # keep the geometry objects alive as long as the scene
            self._geoms = [TriangleMesh(self._scene, p.verts.astype(np.float32), p.faces.astype(np.int32)) for p in self.prepared]
            if key is not None:
                self._cache[key] = (self._scene, self._geoms)
                while len(self._cache) > _BVH_CACHE_SIZE:
                    self._cache.pop(next(iter(self._cache)))
        return self._scene

    def roi(self, K: np.ndarray, T: np.ndarray, width: int, height: int) -> np.ndarray | None:
        """Pixel indices whose rays can hit this layer (projection of its bounding box), or None = all."""
        corners = np.array([[x, y, z] for x in (self.lo[0], self.hi[0]) for y in (self.lo[1], self.hi[1]) for z in (self.lo[2], self.hi[2])])
        cam = corners @ T[:3, :3].T + T[:3, 3]
        if (cam[:, 2] <= 1e-6).any():
            return None
        pix = cam @ K.T
        uv = pix[:, :2] / pix[:, 2:3]
        u0, v0 = np.floor(uv.min(0)).astype(np.int64) - 1
        u1, v1 = np.ceil(uv.max(0)).astype(np.int64) + 1
        u0, v0, u1, v1 = max(u0, 0), max(v0, 0), min(u1, width - 1), min(v1, height - 1)
        if u1 < u0 or v1 < v0:
            return np.zeros(0, dtype=np.int64)
        return (np.arange(v0, v1 + 1)[:, None] * width + np.arange(u0, u1 + 1)[None, :]).ravel()


def _ray_box_mask(o: np.ndarray, d: np.ndarray, lo: np.ndarray, hi: np.ndarray, tmax: np.ndarray | None) -> np.ndarray:
    """(N,) bool: may ray o + s d, s in [0, tmax] (inf if None), meet the box [lo, hi]? Conservative.
    o (N, 3) float32; d (3,) (one direction for all rays) or (N, 3)."""
    t0 = np.zeros(len(o), dtype=np.float32)
    t1 = np.full(len(o), np.inf, dtype=np.float32) if tmax is None else np.array(tmax, dtype=np.float32)
    shared = np.ndim(d) == 1
    for a in range(3):
        oa = o[:, a]
        if shared:
            da = float(d[a])
            if abs(da) < 1e-12:  # parallel to the slab: inside it or never
                inside = (oa >= lo[a]) & (oa <= hi[a])
                t1 = np.where(inside, t1, np.float32(-1.0))
                continue
            inv = np.float32(1.0 / da)
        else:
            da = d[:, a]
            inv = np.float32(1.0) / np.where(np.abs(da) < 1e-12, np.float32(1e-12), da)
        ta = (np.float32(lo[a]) - oa) * inv
        tb = (np.float32(hi[a]) - oa) * inv
        t0 = np.maximum(t0, np.minimum(ta, tb))
        t1 = np.minimum(t1, np.maximum(ta, tb))
    return t0 <= t1 + np.float32(1e-4)


def _background(background, width: int, height: int) -> np.ndarray:
    """(3, H*W) float32 background planes."""
    bg = np.asarray(background, dtype=np.float32)
    if bg.shape == (3,):
        bg = np.stack([bg, bg])
    if bg.shape != (2, 3):
        raise ValueError(f"render: background must be an RGB (3,) or (top, bottom) (2, 3), got shape {bg.shape}")
    a = np.linspace(0.0, 1.0, height, dtype=np.float32)
    col = bg[0][:, None] * (1 - a) + bg[1][:, None] * a  # (3, H)
    return np.repeat(col, width, axis=1)


# ------------------------------------------------------------------------------------------------ render


class _StaticView:
    """Everything of one camera that does not change between frames: ray directions and the static
    layer's hits with their shading inputs (hit points, instance ids, camera-facing normals, albedo,
    hit faces). Per-frame renders copy these and overwrite only the pixels an extra item wins."""

    def __init__(self, renderer: Renderer, K: np.ndarray, T: np.ndarray, width: int, height: int):
        n_pix = width * height
        R, t = T[:3, :3], T[:3, 3]
        self.eye32 = (-R.T @ t).astype(np.float32)
        cx, cy = _pixel_dirs(K, width, height)
        self.dplanes = np.empty((3, n_pix), dtype=np.float32)
        for a in range(3):  # world direction = R^T d_cam (camera z component = 1, so t = camera depth)
            self.dplanes[a] = np.float32(R[0, a]) * cx + np.float32(R[1, a]) * cy + np.float32(R[2, a])
        self.dirs = np.ascontiguousarray(self.dplanes.T)  # (N, 3) for Embree
        self.origins = np.ascontiguousarray(np.broadcast_to(self.eye32, self.dirs.shape))
        static = renderer._static
        self.t = np.full(n_pix, np.inf, dtype=np.float32)
        self.layer = np.full(n_pix, -1, dtype=np.int16)
        self.geom = np.zeros(n_pix, dtype=np.int32)
        self.prim = np.zeros(n_pix, dtype=np.int32)
        self.u = np.zeros(n_pix, dtype=np.float32)
        self.v = np.zeros(n_pix, dtype=np.float32)
        self.pts = np.repeat(self.eye32[:, None], n_pix, axis=1)  # (3, N) hit points (the eye on misses)
        self.instance = np.zeros(n_pix, dtype=np.int32)
        self.normals = np.zeros((3, n_pix), dtype=np.float32)  # facing the camera, 0 on misses
        self.albedo = np.zeros((3, n_pix), dtype=np.float32)
        self.face = np.full(n_pix, -1, dtype=np.int32)
        if not static.prepared:
            return
        res = static.scene.run(self.origins, self.dirs, output=1)
        ok = res["geomID"] != _MISS
        self.t = np.where(ok, res["tfar"], np.float32(np.inf))
        self.layer = np.where(ok, np.int16(0), np.int16(-1))
        self.geom, self.prim, self.u, self.v = res["geomID"], res["primID"], res["u"], res["v"]
        t0 = np.where(ok, self.t, np.float32(0.0))
        self.pts = self.eye32[:, None] + self.dplanes * t0
        # the geometry with the most hits is evaluated on every pixel (no gathers/scatters), the others on theirs
        main = int(np.argmax(np.bincount(self.geom[ok], minlength=len(static.prepared))))
        for gi, pr in enumerate(static.prepared):
            if gi == main:
                sel = None
                f = np.clip(self.prim, 0, len(pr.faces) - 1)
                uu, vv, pp = self.u, self.v, self.pts
            else:
                sel = np.nonzero(ok & (self.geom == gi))[0]
                if len(sel) == 0:
                    continue
                f = self.prim[sel]
                uu, vv, pp = self.u[sel], self.v[sel], np.take(self.pts, sel, axis=1)
            inst = pr.instance_scalar if pr.instance_scalar is not None else np.take(pr.instance_faces, f)
            nn, aa = _shade_group(pr, f, uu, vv, pp, True)
            if sel is None:
                self.instance[:] = inst
                self.normals[:] = nn
                self.albedo[:] = aa
            else:
                self.instance[sel] = inst
                self.normals[:, sel] = nn
                self.albedo[:, sel] = aa
        self.instance *= ok
        _face_camera(self.normals, self.dplanes, ok)
        self.face = np.where(ok, self.prim, -1).astype(np.int32)


def _face_camera(nrm: np.ndarray, dplanes: np.ndarray, valid: np.ndarray) -> None:
    """Flip normals (3, M) in place to face the rays dplanes (3, M); zero them where not `valid`."""
    facing = dplanes[0] * nrm[0] + dplanes[1] * nrm[1] + dplanes[2] * nrm[2]
    nrm *= np.where(facing > 0, np.float32(-1.0), np.float32(1.0)) * valid


class Renderer:
    """Renders frames of a static set of items (e.g. a scene) plus per-frame extra items (e.g. a person).

    items: the static items; their acceleration structure is built once, on the first render. The BVHs of
    the last 4 extra meshes are kept too (keyed by a hash of vertices and faces), so rendering one posed
    person from several cameras builds its BVH once. Per camera (K, T_world_to_cam, size), the static
    items' primary hits, normals and albedo are cast and shaded once and kept for the ``view_cache``
    cameras seen last (first-seen order; ~20 MB each at 512 x 384; 0 = no cache): a frame of a known
    camera casts only the extra items' rays (and the shadow rays). Results are identical either way.
    """

    def __init__(self, items=(), view_cache: int = 4):
        self._static = _Layer([_Prepared(_as_item(it)) for it in items])
        self._extra_bvh: dict = {}  # insertion-ordered; the last few extra meshes' BVHs
        self._views: dict = {}  # insertion-ordered; the last few cameras' _StaticView
        self._view_cache = int(view_cache)

    def _view(self, K: np.ndarray, T: np.ndarray, width: int, height: int) -> _StaticView:
        key = (K.tobytes(), T.tobytes(), width, height)
        view = self._views.get(key)
        if view is None:
            view = _StaticView(self, K, T, width, height)
            if self._view_cache > 0:
                self._views[key] = view
                while len(self._views) > self._view_cache:
                    self._views.pop(next(iter(self._views)))
        return view

    def render(
        self,
        K,
        T_world_to_cam,
        width: int,
        height: int,
        extra_items=(),
        lights: list[Light] | None = None,
        ambient: float | tuple[float, float, float] = 0.35,
        shadows: bool = True,
        background=DEFAULT_BACKGROUND,
        rng: np.random.Generator | None = None,
        noise_std: float = 0.0,
        shade: bool = True,
    ) -> RenderResult:
        """Ray-cast the static items and `extra_items` (see module doc) from the camera.

        extra_items: per-frame items, each with its own (small) BVH and rays limited to its projected
            bounding box; their unoccluded silhouettes come back in ``result.silhouettes``.
        lights: default :func:`default_lights`; ambient: scalar or RGB; shadows: trace shadow rays for
            lights with cast_shadows; background: (top RGB, bottom RGB) gradient or one RGB;
            rng + noise_std: optional Gaussian pixel noise (8-bit levels, float32 draws); shade=False skips
            colours, lights and shadows (rgb is the background only; the other outputs are complete).
        """
        K, T, width, height = _check_camera(K, T_world_to_cam, width, height)
        n_pix = width * height
        view = self._view(K, T, width, height)
        extra = [_Layer([_Prepared(_as_item(it))], bvh_cache=self._extra_bvh) for it in extra_items]
        static_first = bool(self._static.prepared)
        layers = ([self._static] if static_first else []) + [x for x in extra if x.prepared]
        dplanes, dirs, origins, eye32 = view.dplanes, view.dirs, view.origins, view.eye32

        best_t, best_layer = view.t.copy(), view.layer.copy()
        best_geom, best_prim, best_u, best_v = view.geom.copy(), view.prim.copy(), view.u.copy(), view.v.copy()
        silhouettes: dict[int, np.ndarray] = {}
        for li, layer in enumerate(layers):
            if layer is self._static:  # cast once per camera (the view)
                continue
            idx = layer.roi(K, T, width, height)
            sil_idx = np.zeros(0, dtype=np.int64)
            if idx is None or len(idx):
                d = dirs if idx is None else np.ascontiguousarray(dirs[idx])
                res = layer.scene.run(origins[: len(d)], d, output=1)
                g = res["geomID"]
                any_hit = np.nonzero(g != _MISS)[0]
                sil_idx = any_hit if idx is None else idx[any_hit]
                tf = res["tfar"][any_hit]
                closer = tf < best_t[sil_idx]
                sel, hit_idx = any_hit[closer], sil_idx[closer]
                best_t[hit_idx] = tf[closer]
                best_layer[hit_idx] = li
                best_geom[hit_idx] = g[sel]
                best_prim[hit_idx] = res["primID"][sel]
                best_u[hit_idx] = res["u"][sel]
                best_v[hit_idx] = res["v"][sel]
            mask = np.zeros(n_pix, dtype=bool)
            mask[sil_idx] = True
            silhouettes[id(layer)] = mask.reshape(height, width)

        # ---- shading on full-image (3, N) planes: the view's static planes, extra items' pixels overwritten
        valid = best_layer >= 0
        t0 = np.where(valid, best_t, np.float32(0.0))
        pts, instance, nrm, face = view.pts.copy(), view.instance.copy(), view.normals.copy(), view.face.copy()
        alb = view.albedo.copy() if shade else None
        first_extra = 1 if static_first else 0
        won = np.nonzero(best_layer >= first_extra)[0]  # pixels an extra item is the first hit of
        if len(won):
            pts[:, won] = eye32[:, None] + np.take(dplanes, won, axis=1) * best_t[won]
            face[won] = best_prim[won]
        for li in range(first_extra, len(layers)):
            for gi, pr in enumerate(layers[li].prepared):
                sel = won[(best_layer[won] == li) & (best_geom[won] == gi)]
                if len(sel) == 0:
                    continue
                f = best_prim[sel]
                inst = pr.instance_scalar if pr.instance_scalar is not None else np.take(pr.instance_faces, f)
                nn, aa = _shade_group(pr, f, best_u[sel], best_v[sel], np.take(pts, sel, axis=1), shade)
                _face_camera(nn, np.take(dplanes, sel, axis=1), np.ones(len(sel), dtype=bool))
                instance[sel] = inst
                nrm[:, sel] = nn
                if shade:
                    alb[:, sel] = aa

        planes = _background(background, width, height)
        if shade and valid.any():
            light = np.empty((3, n_pix), dtype=np.float32)
            light[:] = np.broadcast_to(np.asarray(ambient, dtype=np.float32), (3,))[:, None]
            for lt in default_lights() if lights is None else lights:
                ndl = _light_term(layers, lt, pts, nrm, t0, valid, shadows, static_first=static_first)
                light += lt.rgb[:, None] * ndl
            col = alb * light
            np.copyto(planes, col, where=valid[None])
        if rng is not None and noise_std > 0:
            planes += rng.standard_normal(size=planes.shape, dtype=np.float32) * np.float32(noise_std / 255.0)
        rgb8 = np.clip(np.rint(planes * np.float32(255.0)), 0, 255).astype(np.uint8)
        empty = np.zeros((height, width), dtype=bool)
        sil_list = [silhouettes.get(id(layer), empty) for layer in extra]
        return RenderResult(
            rgb=np.ascontiguousarray(rgb8.T).reshape(height, width, 3),
            instance=instance.reshape(height, width),
            depth=best_t.reshape(height, width),
            normals=np.ascontiguousarray(nrm.T).reshape(height, width, 3),
            face=face.reshape(height, width),
            silhouettes=sil_list,
        )


def _shade_group(pr: _Prepared, f: np.ndarray, u: np.ndarray, v: np.ndarray, pts: np.ndarray, shade: bool):
    """Normals (3, M) and albedo (3, M) (None unless shade) of hits on faces f of one item; pts (3, M)."""
    vn, vc = pr.vertex_normals, pr.vertex_colours
    if vn is not None or vc is not None:
        w = (1.0 - u - v, u, v)
        corners = np.take(pr.faces_t, f, axis=1)  # (3, M)
    if vn is not None:
        nn = sum(np.take(vn, corners[j], axis=1) * w[j] for j in range(3))
        nn /= np.maximum(np.sqrt(nn[0] * nn[0] + nn[1] * nn[1] + nn[2] * nn[2]), 1e-12)
    else:
        nn = np.take(pr.face_normals, f, axis=1)
    if not shade:
        return nn, None
    if pr.source is not None:
        if hasattr(pr.source, "albedo_planes"):
            aa = pr.source.albedo_planes(f, pts)
        else:
            aa = np.asarray(pr.source.albedo(f, np.ascontiguousarray(pts.T)), dtype=np.float32).T
    elif vc is not None:
        aa = sum(np.take(vc, corners[j], axis=1) * w[j] for j in range(3))
    else:
        aa = np.take(pr.face_colours, f, axis=1)
    return nn, aa


def _light_term(
    layers: list[_Layer], light: Light, p: np.ndarray, n: np.ndarray, depth: np.ndarray, valid: np.ndarray, shadows: bool, static_first: bool
) -> np.ndarray:
    """(N,) float32 max(0, n·l) * visibility of one light at points p (3, N) with normals n (3, N);
    shadow rays only where `valid`."""
    if light.kind == "directional":
        ldir = np.asarray(light.direction, dtype=np.float64)
        ldir = (ldir / np.linalg.norm(ldir)).astype(np.float32)
        ndl = n[0] * ldir[0] + n[1] * ldir[1] + n[2] * ldir[2]
        dist = None
    else:
        to = np.asarray(light.position, dtype=np.float32)[:, None] - p
        dist = np.sqrt(to[0] * to[0] + to[1] * to[1] + to[2] * to[2])
        to /= np.maximum(dist, 1e-9)
        ndl = n[0] * to[0] + n[1] * to[1] + n[2] * to[2]
    ndl = np.maximum(ndl, np.float32(0.0))
    if shadows and light.cast_shadows:
        lit = np.nonzero((ndl > 0) & valid)[0]
        if len(lit):
            eps = np.float32(2e-3) + np.float32(2e-4) * depth[lit]  # past the float32 round-off of the hit point
            o = np.ascontiguousarray((np.take(p, lit, axis=1) + eps * np.take(n, lit, axis=1)).T)
            if dist is None:
                d = np.ascontiguousarray(np.broadcast_to(ldir, o.shape))
                tmax = None
            else:
                d = np.ascontiguousarray(np.take(to, lit, axis=1).T)
                tmax = np.maximum(dist[lit] - 1e-3, 0.0).astype(np.float32)
            blocked = np.zeros(len(lit), dtype=bool)
            for li, layer in enumerate(layers):
                if li == 0 and static_first:
                    occ = layer.scene.run(o, d, query="OCCLUDED") if tmax is None else layer.scene.run(o, d, query="OCCLUDED", dists=tmax)
                    blocked |= occ != -1  # embreex: 0 = occluded, -1 = free
                    continue
                # small per-frame layers: only rays that can cross their bounding box
                cand = np.nonzero(~blocked & _ray_box_mask(o, ldir if dist is None else d, layer.lo, layer.hi, tmax))[0]
                if len(cand) == 0:
                    continue
                oc, dc = np.ascontiguousarray(o[cand]), np.ascontiguousarray(d[cand])
                occ = (
                    layer.scene.run(oc, dc, query="OCCLUDED")
                    if tmax is None
                    else layer.scene.run(oc, dc, query="OCCLUDED", dists=np.ascontiguousarray(tmax[cand]))
                )
                blocked[cand[occ != -1]] = True
            ndl[lit[blocked]] = 0.0
    return ndl


def render(items, K, T_world_to_cam, width: int, height: int, **kwargs) -> RenderResult:
    """Render `items` (all treated as static; see :class:`Renderer` for the fast per-frame path).
    Keyword arguments as in :meth:`Renderer.render` (lights, ambient, shadows, background, rng,
    noise_std, shade, extra_items)."""
    return Renderer(items).render(K, T_world_to_cam, width, height, **kwargs)


# ----------------------------------------------------------------------------------------------- masks


def render_mask(mesh, K, T_world_to_cam, width: int, height: int) -> np.ndarray:
    """(H, W) bool silhouette of `mesh` alone (nothing occludes it): the "unoccluded" person mask.
    Same pixel convention as :func:`render`; rays only inside the mesh's projected bounding box. (Inside
    :meth:`Renderer.render`, ``result.silhouettes`` gives the extra items' masks at no extra cost.)"""
    K, T, width, height = _check_camera(K, T_world_to_cam, width, height)
    layer = _Layer([_Prepared(RenderItem(mesh, (0.5, 0.5, 0.5), 1))])
    mask = np.zeros(width * height, dtype=bool)
    if layer.prepared:
        idx = layer.roi(K, T, width, height)
        if idx is None:
            idx = np.arange(width * height)
        if len(idx):
            R, t = T[:3, :3], T[:3, 3]
            cx, cy = _pixel_dirs(K, width, height)
            cx, cy = cx[idx], cy[idx]
            d = np.empty((len(idx), 3), dtype=np.float32)
            for a in range(3):
                d[:, a] = np.float32(R[0, a]) * cx + np.float32(R[1, a]) * cy + np.float32(R[2, a])
            o = np.ascontiguousarray(np.broadcast_to((-R.T @ t).astype(np.float32), d.shape))
            prim = layer.scene.run(o, d)
            mask[idx[prim != _MISS]] = True
    return mask.reshape(height, width)


def visible_mask(result: RenderResult, instance_id: int) -> np.ndarray:
    """(H, W) bool: pixels where `instance_id` is the first surface hit (visible, i.e. not occluded)."""
    return result.instance == int(instance_id)


def visible_fraction(result: RenderResult, instance_id: int, full_mask: np.ndarray) -> float:
    """Visible pixels of `instance_id` / pixels of its unoccluded silhouette `full_mask` (1 - occlusion
    ratio; pixels cut by the image border count in neither). 0 when the silhouette is empty."""
    total = int(np.count_nonzero(full_mask))
    if total == 0:
        return 0.0
    return float(np.count_nonzero(visible_mask(result, instance_id) & full_mask)) / total
