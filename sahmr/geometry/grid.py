"""Rounding to a grid, so that results do not depend on the machine's floating-point code path.

BLAS kernels (MKL, OpenBLAS) pick other SIMD paths and summation orders on other processors and thread
counts, which moves float64 results in their last bits (~1e-16 relative). A value rounded to a grid much
coarser than that is the same on every machine unless it lies within ~1e-16 of a grid midpoint (odds ~1e-10
per value at 2^-20 m): the body model and the synthetic ground truth are stored that way.
"""

from __future__ import annotations

import numpy as np

__all__ = ["snap_to_grid"]


def snap_to_grid(a, step: float) -> np.ndarray:
    """``a`` (any shape) rounded to the nearest multiple of ``step``, as float64; never -0.0 (whose bytes
    differ from 0.0). Multiples of 2^-k below 2^(24-k) are exact in float32, so a cast that follows is exact."""
    return np.round(np.asarray(a, np.float64) / step) * step + 0.0
