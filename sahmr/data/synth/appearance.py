"""Skin- and clothing-like colours per body region, so that body parts are distinguishable in renders."""

from __future__ import annotations

import numpy as np

SKIN_TONES = np.array([[0.96, 0.80, 0.69], [0.89, 0.68, 0.54], [0.78, 0.57, 0.44], [0.61, 0.43, 0.31], [0.45, 0.31, 0.22], [0.33, 0.22, 0.15]])
# Dominant SMPL joint of a vertex -> region: 0 skin, 1 top (shirt), 2 bottom (trousers), 3 shoes.
_REGION_OF_JOINT = np.array([2, 2, 2, 1, 2, 2, 1, 3, 3, 1, 3, 3, 0, 1, 1, 0, 1, 1, 1, 1, 0, 0, 0, 0])


def body_regions(weights: np.ndarray) -> np.ndarray:
    """(V,) region id from skinning weights (V, 24): 0 skin, 1 top, 2 bottom, 3 shoes."""
    return _REGION_OF_JOINT[weights[:, :24].argmax(1)]


def random_outfit(rng: np.random.Generator, short_sleeves: bool | None = None) -> np.ndarray:
    """(4, 3) RGB in [0, 1] for skin, top, bottom, shoes."""
    skin = SKIN_TONES[rng.integers(len(SKIN_TONES))] * rng.uniform(0.95, 1.05)
    top = rng.uniform(0.05, 0.95, 3)
    bottom = rng.uniform(0.05, 0.6, 3) * rng.choice([1.0, 0.5])
    shoes = np.full(3, rng.uniform(0.05, 0.4)) + rng.uniform(0, 0.1, 3)
    return np.clip(np.stack([skin, top, bottom, shoes]), 0, 1)


def vertex_colors(regions: np.ndarray, outfit: np.ndarray, verts: np.ndarray | None = None, forearm_skin: np.ndarray | None = None) -> np.ndarray:
    """(V, 3) colours; ``forearm_skin`` (V,) bool marks vertices shown as skin (short sleeves)."""
    col = outfit[regions].copy()
    if forearm_skin is not None:
        col[forearm_skin] = outfit[0]
    return col
