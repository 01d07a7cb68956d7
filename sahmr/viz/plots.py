"""matplotlib plots used by the report notebooks (static figures survive every export)."""

from __future__ import annotations

import numpy as np

from sahmr.body.parts import PART_NAMES


def dataset_distributions(arrays: dict, title: str = ""):
    """2x2 figure: camera distance histogram, pose classes, contact vertices per part, occlusion histogram.

    arrays: per-frame columns ``distance`` (N,), ``pose_class`` (N,) str ("" = none), ``contact_part`` (N, V),
    ``occlusion`` (N,) (NaN = unknown).
    """
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(2, 2, figsize=(11, 7))
    ax[0, 0].hist(np.asarray(arrays["distance"]), bins=30, color="#4e79a7")
    ax[0, 0].set(xlabel="camera–pelvis distance (m)", ylabel="frames")
    classes, counts = np.unique(np.asarray(arrays["pose_class"]), return_counts=True)
    classes = np.where(classes == "", "(none)", classes)  # real datasets have no pose classes
    ax[0, 1].bar(classes, counts, color="#f28e2b")
    ax[0, 1].set(ylabel="frames", title="pose classes")
    ax[0, 1].tick_params(axis="x", rotation=30)
    cp = np.asarray(arrays["contact_part"])
    per_part = [(cp == p).any(1).mean() for p in range(1, 8)]
    ax[1, 0].bar(PART_NAMES[1:], per_part, color="#59a14f")
    ax[1, 0].set(ylabel="share of frames in contact", ylim=(0, 1))
    ax[1, 0].tick_params(axis="x", rotation=30)
    occ = np.asarray(arrays["occlusion"], dtype=np.float64)
    known = occ[np.isfinite(occ)]  # NaN = unknown (RICH, PROX)
    if len(known):
        ax[1, 1].hist(known, bins=20, color="#e15759")
    else:
        ax[1, 1].text(0.5, 0.5, "occlusion not annotated in this dataset", ha="center", va="center", transform=ax[1, 1].transAxes)
    ax[1, 1].set(xlabel="occluded share of the person", ylabel="frames")
    fig.suptitle(title)
    fig.tight_layout()
    return fig
