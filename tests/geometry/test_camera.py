"""Camera geometry: projections, rigid transforms, the square crop (spec §1.6) and the box frustum (§1.8)."""

import numpy as np
import pytest
import torch

from sahmr.data.dataset import frustum_points_cam
from sahmr.geometry.camera import crop_affine, invert_rigid, project, square_crop_box, transform
from tests.helpers.reference_camera import backproject, crop_image, crop_images_torch, frustum_corners, points_in_box_frustum


def random_rigid(rng, n=None):
    shape = () if n is None else (n,)
    q = rng.normal(size=shape + (4,))
    q /= np.linalg.norm(q, axis=-1, keepdims=True)
    w, x, y, z = np.moveaxis(q, -1, 0)
    R = np.stack(
        [
            np.stack([1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)], -1),
            np.stack([2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)], -1),
            np.stack([2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)], -1),
        ],
        -2,
    )
    T = np.zeros(shape + (4, 4))
    T[..., :3, :3] = R
    T[..., :3, 3] = rng.normal(size=shape + (3,)) * 2
    T[..., 3, 3] = 1
    return T


def random_K(rng, n=None):
    shape = () if n is None else (n,)
    K = np.zeros(shape + (3, 3))
    K[..., 0, 0] = rng.uniform(300, 900, shape)
    K[..., 1, 1] = rng.uniform(300, 900, shape)
    K[..., 0, 1] = rng.uniform(-2, 2, shape)
    K[..., 0, 2] = rng.uniform(200, 400, shape)
    K[..., 1, 2] = rng.uniform(150, 300, shape)
    K[..., 2, 2] = 1
    return K


def test_project_backproject_round_trip_numpy_and_torch():
    rng = np.random.default_rng(0)
    K = random_K(rng, 4)
    pts = rng.uniform([-2, -2, 0.5], [2, 2, 10], (4, 100, 3))
    uv = project(pts, K)
    assert uv.shape == (4, 100, 2)
    # independent per-point formula
    u_ref = (K[:, None, 0, 0] * pts[..., 0] + K[:, None, 0, 1] * pts[..., 1]) / pts[..., 2] + K[:, None, 0, 2]
    v_ref = K[:, None, 1, 1] * pts[..., 1] / pts[..., 2] + K[:, None, 1, 2]
    np.testing.assert_allclose(uv[..., 0], u_ref, rtol=1e-12)
    np.testing.assert_allclose(uv[..., 1], v_ref, rtol=1e-12)
    np.testing.assert_allclose(backproject(uv, pts[..., 2], K), pts, atol=1e-10)
    tp, tK = torch.from_numpy(pts).float(), torch.from_numpy(K).float()
    tuv = project(tp, tK)
    assert isinstance(tuv, torch.Tensor) and tuv.dtype == torch.float32
    np.testing.assert_allclose(tuv.numpy(), uv, rtol=1e-5, atol=1e-3)
    np.testing.assert_allclose(backproject(tuv, tp[..., 2], tK).numpy(), pts, atol=1e-4)


def test_transform_and_invert_rigid():
    rng = np.random.default_rng(1)
    T = random_rigid(rng, 5)
    p = rng.normal(size=(5, 20, 3))
    q = transform(T, p)
    ref = np.einsum("nij,nkj->nki", T[:, :3, :3], p) + T[:, None, :3, 3]
    np.testing.assert_allclose(q, ref, atol=1e-12)
    Ti = invert_rigid(T)
    np.testing.assert_allclose(Ti @ T, np.broadcast_to(np.eye(4), T.shape), atol=1e-12)
    np.testing.assert_allclose(Ti, np.linalg.inv(T), atol=1e-12)
    np.testing.assert_allclose(transform(Ti, q), p, atol=1e-12)
    tT = torch.from_numpy(T)
    np.testing.assert_allclose(invert_rigid(tT).numpy(), Ti, atol=1e-12)
    np.testing.assert_allclose(transform(tT, torch.from_numpy(p)).numpy(), ref, atol=1e-12)


def test_square_crop_box_eval_and_train_follow_spec():
    bbox = np.array([100.0, 50.0, 160.0, 250.0])  # w 60, h 200, centre (130, 150)
    box = square_crop_box(bbox)
    np.testing.assert_allclose(box, [130 - 115, 150 - 115, 130 + 115, 150 + 115])  # half = 200/2 * 1.15
    rng = np.random.default_rng(7)
    ref_rng = np.random.default_rng(7)
    box = square_crop_box(bbox, 10.0, 0.4, rng)
    ux, uy, uz = ref_rng.uniform(-1, 1), ref_rng.uniform(-1, 1), ref_rng.uniform(0, 1)
    cx, cy, half = 130 + 10 * ux, 150 + 10 * uy, 100 * (1 + 0.15 + 0.4 * uz)
    np.testing.assert_allclose(box, [cx - half, cy - half, cx + half, cy + half])
    # ranges over many draws: side 1.15..1.55 x max(w, h), centre within the jitter
    boxes = square_crop_box(np.tile(bbox, (2000, 1)), 10.0, 0.4, np.random.default_rng(3))
    side = (boxes[:, 2] - boxes[:, 0]) / 200
    assert side.min() >= 1.15 and side.max() <= 1.55 and side.max() - side.min() > 0.35
    np.testing.assert_allclose(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1])
    c = (boxes[:, :2] + boxes[:, 2:]) / 2 - [130, 150]
    assert np.abs(c).max() <= 10 and np.abs(c).max() > 9
    with pytest.raises(ValueError, match="rng"):
        square_crop_box(bbox, 10.0, 0.4)


def test_crop_affine_maps_box_normalised_t_to_t_times_s_minus_1():
    box = np.array([37.5, -12.0, 301.25, 252.0])
    S = 128
    A = crop_affine(box, S)
    t = np.random.default_rng(2).uniform(-0.2, 1.2, (50, 2))
    p = box[:2] + t * (box[2:] - box[:2])
    q = p @ A[:, :2].T + A[:, 2]
    np.testing.assert_allclose(q, t * (S - 1), atol=1e-9)
    corners = np.array([[box[0], box[1], 1], [box[2], box[3], 1]]) @ A.T
    np.testing.assert_allclose(corners, [[0, 0], [S - 1, S - 1]], atol=1e-9)


def reference_crop(img, box, S):
    """Per-pixel bilinear sampling, zero outside the image (cv2.warpAffine INTER_LINEAR, constant 0)."""
    H, W = img.shape[:2]
    l, u, r, b = box
    out = np.zeros((S, S) + img.shape[2:])
    for i in range(S):
        for j in range(S):
            x = l + j * (r - l) / (S - 1)
            y = u + i * (b - u) / (S - 1)
            x0, y0 = int(np.floor(x)), int(np.floor(y))
            fx, fy = x - x0, y - y0
            acc = 0.0
            for yy, wy in ((y0, 1 - fy), (y0 + 1, fy)):
                for xx, wx in ((x0, 1 - fx), (x0 + 1, fx)):
                    if 0 <= yy < H and 0 <= xx < W:
                        acc = acc + wy * wx * img[yy, xx].astype(np.float64)
            out[i, j] = acc
    return out


@pytest.mark.parametrize("box", [[10.3, 5.7, 40.9, 36.3], [-8.0, -5.5, 30.0, 32.5], [20.0, 15.0, 60.0, 55.0]])
def test_crop_image_matches_per_pixel_reference(box):
    rng = np.random.default_rng(4)
    img = rng.integers(0, 256, (30, 45, 3), dtype=np.uint8)
    S = 17
    got = crop_image(img, box, S)
    assert got.shape == (S, S, 3) and got.dtype == np.float32
    np.testing.assert_allclose(got, reference_crop(img, box, S), atol=1e-3)
    # batched torch / grid_sample path: same sampling
    timg = torch.from_numpy(img).permute(2, 0, 1)[None].float()
    tgot = crop_images_torch(timg, torch.tensor([box], dtype=torch.float32), S)[0].permute(1, 2, 0).numpy()
    np.testing.assert_allclose(tgot, got, atol=2e-2)
    gray = crop_image(img[..., 0], box, S)
    np.testing.assert_allclose(gray, got[..., 0], atol=1e-4)


def test_crop_image_of_linear_pattern_is_exact_inside():
    H, W = 40, 60
    y, x = np.mgrid[0:H, 0:W].astype(np.float64)
    img = np.stack([2 * x + 0.5 * y + 3, x - y + 50], -1)
    box = [5.25, 3.5, 50.75, 30.0]
    S = 25
    got = crop_image(img, box, S)
    t = np.arange(S) / (S - 1)
    xs = box[0] + t * (box[2] - box[0])
    ys = box[1] + t * (box[3] - box[1])
    want = np.stack([2 * xs[None, :] + 0.5 * ys[:, None] + 3, xs[None, :] - ys[:, None] + 50], -1)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-4)


def six_plane_mask(points_world, K, T_w2c, box, z_near=0.5, z_far=12.5):
    """The original's construction: 8 corners back-projected with K^-1, mapped to the world with
    inverse(T), a point is kept when it is on the inner side (<= 0) of all 6 faces."""
    l, u, r, b = box
    Kinv = np.linalg.inv(K)
    pix = np.array([[l, u, 1], [r, u, 1], [r, b, 1], [l, b, 1]], float)
    near = (pix @ Kinv.T) * z_near
    far = (pix @ Kinv.T) * z_far
    corners_c = np.concatenate([near, far])
    Tinv = np.linalg.inv(T_w2c)
    cw = corners_c @ Tinv[:3, :3].T + Tinv[:3, 3]
    centre = cw.mean(0)
    faces = [(0, 1, 2), (4, 6, 5), (0, 4, 1), (1, 5, 2), (2, 6, 3), (3, 7, 0)]
    inside = np.ones(len(points_world), bool)
    signed = []
    for i, j, k in faces:
        n = np.cross(cw[j] - cw[i], cw[k] - cw[i])
        n /= np.linalg.norm(n)
        if (centre - cw[i]) @ n > 0:  # orient outward
            n = -n
        d = (points_world - cw[i]) @ n
        signed.append(d)
        inside &= d <= 0
    return inside, np.abs(np.stack(signed)).min(0)


def test_points_in_box_frustum_equals_six_plane_test():
    rng = np.random.default_rng(5)
    for _trial in range(5):
        K = random_K(rng)
        T = random_rigid(rng)
        box = np.array([rng.uniform(50, 250), rng.uniform(40, 200), 0, 0])
        box[2:] = box[:2] + rng.uniform(60, 300, 2)
        # points around the camera, many inside the frustum
        cam_pts = np.c_[rng.uniform(-6, 6, (20000, 2)), rng.uniform(-1, 14, 20000)]
        Tinv = np.linalg.inv(T)
        pw = cam_pts @ Tinv[:3, :3].T + Tinv[:3, 3]
        want, dist = six_plane_mask(pw, K, T, box)
        got = points_in_box_frustum(transform(T, pw), K, box)
        clear = dist > 1e-9
        assert want.sum() > 100
        np.testing.assert_array_equal(got[clear], want[clear])
        # torch path, batched with a leading dim
        tg = points_in_box_frustum(torch.from_numpy(transform(T, pw))[None], torch.from_numpy(K)[None], torch.from_numpy(box)[None])
        np.testing.assert_array_equal(tg[0].numpy(), got)
        # the dataset's fused path: same set, same order
        fp = frustum_points_cam(pw.astype(np.float32), K, T, box)
        ref = transform(T.astype(np.float32), pw.astype(np.float32))
        ref = ref[points_in_box_frustum(ref, K.astype(np.float32), box.astype(np.float32))]
        assert abs(len(fp) - len(ref)) <= 2  # float32 ties on the boundary only
        if len(fp) == len(ref):
            np.testing.assert_allclose(fp, ref, atol=1e-5)
        # the corners helper is the same construction
        c = frustum_corners(K, box)
        np.testing.assert_allclose(project(c, K), [[box[0], box[1]], [box[2], box[1]], [box[2], box[3]], [box[0], box[3]]] * 2, atol=1e-8)


def test_points_in_box_frustum_is_inclusive():
    K = np.array([[128.0, 0, 64.0], [0, 128.0, 64.0], [0, 0, 1]])
    box = np.array([0.0, 0.0, 96.0, 128.0])
    # points exactly on the left edge / top edge at the near and far planes (exact in binary)
    pts = np.array([[-0.25, 0.0, 0.5], [-6.25, 0.0, 12.5], [0.0, -0.25, 0.5], [0.125, 0.0, 0.5]])
    assert points_in_box_frustum(pts, K, box).all()
    eps = np.array([[-0.25, 0.0, np.nextafter(0.5, 0)], [0.0, 0.0, np.nextafter(12.5, 13)], [np.nextafter(-0.25, -1), 0.0, 0.5]])
    assert not points_in_box_frustum(eps, K, box).any()
    # behind the camera: never inside, even though x/z could project into the box
    assert not points_in_box_frustum(np.array([[0.0, 0.0, -2.0]]), K, box).any()
