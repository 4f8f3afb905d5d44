"""Data order that any step of any run can recompute: the basis of exact resume and world-size invariance.

Epoch ``e`` is a permutation of the data set seeded by ``(seed, e)`` (several concatenated permutations
when the data set is smaller than one global batch, so a single clip can still feed 2 processes). The
global micro-batch ``m`` of an epoch is positions ``[m*B*W, (m+1)*B*W)``; rank ``r`` takes its slice of
``B``. Each sample also gets a key ``(seed, epoch, position)`` that seeds all of its randomness (frame
choice, crops, noise, timestep). Resuming at micro-step ``k`` means starting this generator at ``k``;
nothing else about the data needs saving. The tail of an epoch that does not fill a global batch is
dropped (as ``drop_last=True`` would).
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np


class ResumableSampler:
    """Yield per-rank micro-batches ``[(index, key), ...]`` from any global micro-step on."""

    def __init__(self, num_items: int, batch_size: int, *, world_size: int = 1, rank: int = 0, seed: int = 0, shuffle: bool = True) -> None:
        if num_items < 1:
            raise ValueError("empty data set")
        self.n, self.batch, self.world, self.rank, self.seed, self.shuffle = num_items, batch_size, world_size, rank, int(seed), shuffle
        self.global_batch = batch_size * world_size
        self.reps = -(-self.global_batch // num_items)  # permutations per epoch (1 unless the data set is tiny)
        self.micro_per_epoch = (num_items * self.reps) // self.global_batch

    def epoch_order(self, epoch: int) -> np.ndarray:
        if not self.shuffle:
            return np.tile(np.arange(self.n), self.reps)
        parts = [np.random.default_rng([self.seed, epoch, rep]).permutation(self.n) for rep in range(self.reps)]
        return np.concatenate(parts)

    def micro_batch(self, micro_step: int) -> list[tuple[int, tuple[int, int, int]]]:
        """This rank's samples of global micro-step ``micro_step`` (counted from the start of training)."""
        epoch, m = divmod(micro_step, self.micro_per_epoch)
        order = self.epoch_order(epoch)
        start = m * self.global_batch + self.rank * self.batch
        return [(int(order[p]), (self.seed, epoch, p)) for p in range(start, start + self.batch)]

    def iterate(self, start_micro_step: int, end_micro_step: int) -> Iterator[list[tuple[int, tuple[int, int, int]]]]:
        cache_epoch, order = -1, None
        for step in range(start_micro_step, end_micro_step):
            epoch, m = divmod(step, self.micro_per_epoch)
            if epoch != cache_epoch:
                cache_epoch, order = epoch, self.epoch_order(epoch)
            start = m * self.global_batch + self.rank * self.batch
            yield [(int(order[p]), (self.seed, epoch, p)) for p in range(start, start + self.batch)]
