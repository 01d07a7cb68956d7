"""The mesh-hierarchy builder on a template that is not a body (an icosphere)."""

import numpy as np
import torch
import trimesh

from sahmr.body.hierarchy import MeshSampler, build_hierarchy, decimate_symmetric, mirror_map


def test_icosphere_hierarchy():
    sphere = trimesh.creation.icosphere(subdivisions=4)  # 2562 vertices, radius 1
    v, f = sphere.vertices, sphere.faces
    levels = build_hierarchy(v, f, (640, 160))
    s = MeshSampler(levels)
    assert s.level_sizes[0] == len(v)
    assert abs(s.level_sizes[1] - 640) <= 8 and abs(s.level_sizes[2] - 160) <= 4
    for lvl in levels:
        assert np.all(np.diff(lvl.down_idx) > 0)
        np.testing.assert_allclose(lvl.up_w.sum(1), 1.0, atol=1e-9)
        assert lvl.up_w.min() >= 0
    t = torch.as_tensor(v, dtype=torch.float32)[None]
    rec = s.upsample(s.downsample(t, 0, 2), 2, 0)
    # Chord error of a 160-vertex sphere: the reconstruction stays within a few % of the radius.
    r = rec[0].norm(dim=-1)
    assert (r <= 1.0 + 1e-5).all() and r.mean() > 0.97
    M = s.dense_upsampling_matrix(2, 0)
    torch.testing.assert_close(M @ s.downsample(t, 0, 2)[0], rec[0])


def test_symmetric_decimation_stays_symmetric():
    box = trimesh.creation.box(extents=(2, 1, 1))
    mesh = box.subdivide().subdivide().subdivide()
    # Make the mesh exactly mirror-symmetric and free of triangles crossing x = 0.
    v = mesh.vertices
    assert mirror_map(v) is not None
    dv, df = decimate_symmetric(v, mesh.faces, 200)
    assert mirror_map(dv, tol=1e-9) is not None
    assert abs(len(dv) - 200) <= 10
    assert df.max() < len(dv)
