"""Interactive plotly 3D views of scenes, people, contacts and pelvis positions (legend toggles)."""

from __future__ import annotations

import numpy as np

from sahmr.body.parts import PART_COLORS_HEX


def _subsample(points: np.ndarray, n: int, seed: int = 0) -> np.ndarray:
    if len(points) <= n:
        return points
    return points[np.random.default_rng(seed).choice(len(points), n, replace=False)]


def scene_figure(
    scene_points: np.ndarray | None = None,
    meshes: list[dict] | None = None,
    points: list[dict] | None = None,
    max_scene_points: int = 30000,
    title: str = "",
):
    """A plotly Figure.

    scene_points: (N, 3) scan, coloured by height; meshes: dicts with ``verts`` (V, 3), ``faces`` (F, 3),
    ``name``, optional ``color`` and ``opacity``; points: dicts with ``xyz`` (M, 3), ``name``, optional
    ``color`` (str or per-point list), ``size``, ``symbol``. Every trace can be toggled in the legend.
    """
    import plotly.graph_objects as go

    fig = go.Figure()
    if scene_points is not None and len(scene_points):
        p = _subsample(np.asarray(scene_points), max_scene_points)
        fig.add_trace(
            go.Scatter3d(
                x=p[:, 0],
                y=p[:, 1],
                z=p[:, 2],
                mode="markers",
                name="scene points",
                marker=dict(size=1.2, color=p[:, 2], colorscale="Greys", opacity=0.6),
            )
        )
    for m in meshes or []:
        v, f = np.asarray(m["verts"]), np.asarray(m["faces"])
        fig.add_trace(
            go.Mesh3d(
                x=v[:, 0],
                y=v[:, 1],
                z=v[:, 2],
                i=f[:, 0],
                j=f[:, 1],
                k=f[:, 2],
                name=m.get("name", "mesh"),
                color=m.get("color", "#4e79a7"),
                opacity=m.get("opacity", 0.7),
                showlegend=True,
                flatshading=False,
                lighting=dict(ambient=0.5, diffuse=0.8),
            )
        )
    for q in points or []:
        xyz = np.asarray(q["xyz"]).reshape(-1, 3)
        fig.add_trace(
            go.Scatter3d(
                x=xyz[:, 0],
                y=xyz[:, 1],
                z=xyz[:, 2],
                mode="markers",
                name=q.get("name", "points"),
                marker=dict(size=q.get("size", 3), color=q.get("color", "#d62728"), symbol=q.get("symbol", "circle")),
            )
        )
    fig.update_layout(
        title=title,
        scene=dict(aspectmode="data", xaxis_title="x (m)", yaxis_title="y (m)", zaxis_title="z (m)"),
        margin=dict(l=0, r=0, t=40, b=0),
        legend=dict(itemsizing="constant"),
        height=600,
    )
    return fig


def contact_points(verts: np.ndarray, contact: np.ndarray, part: np.ndarray, name: str = "contact vertices") -> dict:
    """A ``points`` entry for :func:`scene_figure`: contact vertices coloured by part id."""
    idx = np.flatnonzero(contact)
    return {"xyz": verts[idx], "name": name, "color": [PART_COLORS_HEX[int(p)] for p in part[idx]], "size": 2.5}
