"""snap_to_grid: exact hand-computed values, no -0.0, float32-exact multiples."""

import numpy as np

from sahmr.geometry.grid import snap_to_grid


def test_rounds_to_the_nearest_multiple():
    got = snap_to_grid([0.3, -0.3, 0.26, 1.0, -1e-16], 0.25)
    assert got.tolist() == [0.25, -0.25, 0.25, 1.0, 0.0]
    assert got.dtype == np.float64


def test_no_negative_zero_and_last_bit_noise_removed():
    a = np.array([-1e-17, 1e-17, 0.5 + 2e-16, 0.5 - 2e-16])
    got = snap_to_grid(a, 2.0**-20)
    assert got.tobytes() == np.array([0.0, 0.0, 0.5, 0.5]).tobytes()


def test_multiples_of_2_to_minus_20_below_16_are_exact_in_float32():
    rng = np.random.default_rng(0)
    got = snap_to_grid(rng.uniform(-15.9, 15.9, 10000), 2.0**-20)
    assert np.array_equal(got.astype(np.float32).astype(np.float64), got)
