"""crop_rgb (Pillow) == crop_image (numpy, float) to within one 8-bit level, borders and all."""

import numpy as np
import pytest
from PIL import Image

from sahmr.data.crop import crop_model_input, crop_rgb, open_rgb
from tests.helpers.reference_camera import crop_image


def _boxes(rng, W, H, n):
    out = [
        np.array([-30.0, -20.0, W + 25.0, H + 40.0]),
        np.array([0.0, 0.0, W - 1.0, H - 1.0]),
        np.array([W - 5.5, H - 7.25, W + 60.0, H + 58.0]),
        np.array([3.3, 4.1, 9.9, 10.7]),
    ]
    for _ in range(n):
        c = rng.uniform([-20, -20], [W + 20, H + 20])
        side = rng.uniform(5, 1.5 * max(W, H))
        out.append(np.r_[c - side / 2, c + side / 2])
    return out


@pytest.mark.parametrize("size", [2, 17, 128])
def test_crop_rgb_equals_the_float_crop_within_one_level(size):
    rng = np.random.default_rng(size)
    H, W = 61, 83
    img = (rng.random((H, W, 3)) * 255).astype(np.uint8)
    for box in _boxes(rng, W, H, 40):
        want = crop_image(img, box, size)
        got = crop_rgb(img, box, size)
        assert got.shape == (size, size, 3) and got.dtype == np.uint8
        assert np.abs(got.astype(np.float64) - want).max() <= 1.0 + 1e-3, box  # + float32 rounding of crop_image
        np.testing.assert_array_equal(got, crop_rgb(Image.fromarray(img), box, size))  # array or Pillow image


def test_crop_rgb_is_zero_outside_and_exact_on_pixel_centres():
    img = np.full((10, 12, 3), 200, np.uint8)
    out = crop_rgb(img, [-20.0, -20.0, -5.0, -5.0], 8)  # entirely outside
    assert (out == 0).all()
    img = (np.arange(10 * 12 * 3) % 251).astype(np.uint8).reshape(10, 12, 3)
    # the box is the pixel grid itself: S = 12 samples exactly on pixel centres of row/column 0..11
    got = crop_rgb(img, [0.0, 0.0, 11.0, 11.0], 12)
    np.testing.assert_array_equal(got[:10], img)
    assert (got[10:] == 0).all()  # rows 10, 11 lie outside the 10-row image


def test_model_input_and_bad_boxes(tmp_path):
    rng = np.random.default_rng(0)
    img = (rng.random((40, 50, 3)) * 255).astype(np.uint8)
    Image.fromarray(img[..., 0]).save(tmp_path / "g.png")
    grey = open_rgb(tmp_path / "g.png")
    assert grey.mode == "RGB" and np.asarray(grey).shape == (40, 50, 3)
    x = crop_model_input(img, [5.0, 5.0, 35.0, 35.0], 16)
    assert x.shape == (3, 16, 16) and x.dtype == np.float32 and x.flags.c_contiguous
    assert 0.0 <= x.min() and x.max() <= 1.0
    np.testing.assert_allclose(x, crop_rgb(img, [5.0, 5.0, 35.0, 35.0], 16).transpose(2, 0, 1) / 255.0, rtol=1e-6)
    for bad in ([1.0, 1.0, 1.0, 5.0], [0.0, 0.0, np.nan, 5.0], [0.0, 1.0, 2.0]):
        with pytest.raises(ValueError, match="crop_rgb: box"):
            crop_rgb(img, bad, 8)
    with pytest.raises(ValueError, match="size"):
        crop_rgb(img, [0.0, 0.0, 5.0, 5.0], 1)
