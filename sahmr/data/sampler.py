"""The epoch sampler of :class:`sahmr.data.dataset.HumanSceneDataset`: rank-aware and resumable.

:class:`EpochSampler` yields ``(epoch, index)`` keys (the dataset draws its augmentation from them, so items
are a pure function of seed, epoch and index, whatever the number of workers): a seeded permutation per
epoch, ``np.random.default_rng([seed, epoch]).permutation(n)`` (or 0..n-1 without shuffling), sharded over
``num_replicas`` processes, that can skip the first items of an epoch once (mid-epoch resume). Indices are
drawn in the main process.

Sharding is interleaved: rank ``r`` takes ``order[r::num_replicas]`` of the (padded) epoch order. With a
per-rank batch size ``b``, the union of the ranks' ``t``-th batches is ``order[t*b*W:(t+1)*b*W]`` — exactly
the ``t``-th batch of one process with batch size ``b*W``, so DDP on W processes sees the same global
batches as a single process with a W-times larger batch.

Padding (``pad=True``, needed for training under DDP where every rank must run the same number of steps):
the order is extended cyclically to ``ceil(n / W) * W`` items, so ``(-n) % W`` items are seen twice per
epoch (as ``torch.utils.data.DistributedSampler``). With ``num_replicas=1`` (the default) nothing is padded.
"""

from __future__ import annotations

import math

import numpy as np
import torch

__all__ = ["EpochSampler"]


class EpochSampler(torch.utils.data.Sampler):
    """``(epoch, index)`` keys of one rank's shard of a seeded per-epoch order.

    n: dataset length; shuffle: seeded permutation per epoch (else 0..n-1); seed: >= 0;
    num_replicas / rank: world size and this process's rank; pad: make every rank's shard
    ``ceil(n / num_replicas)`` long by cycling the order (else rank r gets ``len(range(r, n, W))`` items).

    ``set_epoch(e)`` selects the epoch (Lightning calls it before each training epoch); changing the
    epoch cancels a pending skip. ``skip(k)``: the next iteration starts at the k-th item of this rank's
    shard (once), used to resume mid-epoch. ``len()`` is always the full shard length.
    """

    def __init__(self, n: int, shuffle: bool = True, seed: int = 0, num_replicas: int = 1, rank: int = 0, pad: bool = True):
        if n < 0 or seed < 0:
            raise ValueError(f"EpochSampler: n and seed must be >= 0, got {n}, {seed}")
        if num_replicas < 1 or not 0 <= rank < num_replicas:
            raise ValueError(f"EpochSampler: need num_replicas >= 1 and 0 <= rank < num_replicas, got {num_replicas}, {rank}")
        self.n, self.shuffle, self.seed = int(n), bool(shuffle), int(seed)
        self.num_replicas, self.rank, self.pad = int(num_replicas), int(rank), bool(pad)
        self.epoch = 0
        self._skip = 0

    def set_epoch(self, epoch: int) -> None:
        if int(epoch) < 0:
            raise ValueError(f"EpochSampler.set_epoch: epoch must be >= 0, got {epoch}")
        if int(epoch) != self.epoch:
            self._skip = 0
        self.epoch = int(epoch)

    def skip(self, k: int) -> None:
        """Start the next iteration at item k of this rank's shard (0 <= k; clipped to the shard length)."""
        if int(k) < 0:
            raise ValueError(f"EpochSampler.skip: k must be >= 0, got {k}")
        self._skip = int(k)

    @property
    def pending_skip(self) -> int:
        return self._skip

    def __len__(self) -> int:
        if self.pad:
            return math.ceil(self.n / self.num_replicas) if self.n else 0
        return len(range(self.rank, self.n, self.num_replicas))

    def shard(self, epoch: int | None = None) -> np.ndarray:
        """(len(self),) int64 dataset indices of this rank in epoch `epoch` (default: the current one)."""
        epoch = self.epoch if epoch is None else int(epoch)
        order = np.random.default_rng([self.seed, epoch]).permutation(self.n) if self.shuffle else np.arange(self.n)
        if self.pad and self.n:
            total = math.ceil(self.n / self.num_replicas) * self.num_replicas
            order = np.resize(order, total)  # cyclic repetition
        return order[self.rank :: self.num_replicas].astype(np.int64)

    def __iter__(self):
        epoch, skip = self.epoch, self._skip
        self._skip = 0
        return iter([(epoch, int(i)) for i in self.shard(epoch)[skip:]])
