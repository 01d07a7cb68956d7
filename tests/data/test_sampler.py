"""The epoch sampler: seeded per-epoch order, rank shards, padding, mid-epoch skip."""

from __future__ import annotations

import numpy as np
import pytest

from sahmr.data.sampler import EpochSampler


def test_single_rank_is_the_seeded_permutation_of_each_epoch():
    s = EpochSampler(13, shuffle=True, seed=5)
    for e in (0, 3):
        s.set_epoch(e)
        assert list(s) == [(e, int(i)) for i in np.random.default_rng([5, e]).permutation(13)]
    assert list(EpochSampler(4, shuffle=False)) == [(0, 0), (0, 1), (0, 2), (0, 3)]
    with pytest.raises(ValueError, match="set_epoch"):
        s.set_epoch(-1)


def test_shards_pad_and_skip():
    n, w = 11, 2
    shards = [EpochSampler(n, True, 1, num_replicas=w, rank=r) for r in range(w)]
    for s in shards:
        s.set_epoch(2)
    items = [list(s) for s in shards]
    assert [len(x) for x in items] == [6, 6] == [len(s) for s in shards]
    idx = [i for x in items for (_, i) in x]
    assert sorted(set(idx)) == list(range(n)) and len(idx) == 12  # one padding duplicate
    assert all(e == 2 for x in items for (e, _) in x)
    # interleaved: global batches of b*W equal the single-process batches
    single = EpochSampler(n, True, 1)
    single.set_epoch(2)
    one = [i for _, i in single]
    assert set(one[:4]) == {i for _, i in items[0][:2]} | {i for _, i in items[1][:2]}
    # skip applies once; set_epoch to another epoch cancels it
    s = shards[0]
    s.skip(4)
    assert list(s) == items[0][4:] and list(s) == items[0]
    s.skip(3)
    s.set_epoch(3)
    assert len(list(s)) == 6
    unpadded = [len(EpochSampler(n, False, 0, w, r, pad=False)) for r in range(w)]
    assert unpadded == [6, 5]
