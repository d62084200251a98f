"""Batches of a random-access source read ahead by grain's reader threads.

A `SourceDataset` epoch is a grain pipeline over the epoch's batches: ``MapDataset.source``
whose record ``b`` is batch ``b`` (its B examples read in the epoch's order, converted and
stacked), then ``to_iter_dataset`` with ``ReadOptions(num_threads, prefetch_buffer_size)``:
each reader thread builds whole batches ahead of the training loop, in order. One grain
record per batch, not per example: grain's per-record bookkeeping (read statistics and
metrics, ~10 µs) then costs once per batch; per example it made reading a cheap source 9x
slower (NOTES.md). The order is adljax's own ``epoch_permutation``, so a streamed epoch
holds exactly the batches of the in-memory path, and a resume only needs the position
``(epoch, batch)`` that checkpoints already save.
"""

from collections.abc import Callable, Iterator, Sequence
from typing import Any

import grain
import numpy as np

from adljax.typing import Batch

READ_THREADS = 0
"""Reader threads per streamed epoch by default: none. Threads pay only where reading
releases the GIL (file reads, large-image decoding); reading tfds-style 32x32 PNG records
ran at 9.9k examples/s in the caller and 4.7k with 2 threads on 2 cores, and pillow's decode
of such images does not run in parallel (`benchmarks/bench_pipeline.py`, NOTES.md)."""
PREFETCH_BATCHES = 8
"""Batches read ahead of the training loop."""


class _Batches:
    """The batches of ``source`` read in ``order``: record ``b`` is ``collate`` of examples
    ``order[b * B : (b + 1) * B]`` (the last one shorter when the order is)."""

    def __init__(
        self,
        source: Any,
        order: np.ndarray,
        batch_size: int,
        collate: Callable[[Sequence[Any]], Batch],
    ):
        self.source, self.order, self.batch_size, self.collate = source, order, batch_size, collate

    def __len__(self) -> int:
        return -(-len(self.order) // self.batch_size)

    def __getitem__(self, b: int) -> Batch:
        rows = self.order[b * self.batch_size : (b + 1) * self.batch_size]
        return self.collate([self.source[int(i)] for i in rows])


def stream_batches(
    source: Any,
    order: np.ndarray,
    batch_size: int,
    batch_ids: range,
    collate: Callable[[Sequence[Any]], Batch],
    *,
    read_threads: int = READ_THREADS,
    prefetch: int = PREFETCH_BATCHES,
) -> Iterator[Batch]:
    """Batches ``batch_ids`` of ``source`` read in ``order``: batch ``b`` is ``collate`` of
    examples ``order[b * B : (b + 1) * B]`` (the last one shorter when the order is).

    ``read_threads=0`` reads each batch when it is asked for, in the caller's thread.
    """
    batches = _Batches(source, order, batch_size, collate)
    dataset = grain.MapDataset.source(batches)[batch_ids.start : batch_ids.stop]
    if read_threads == 0:
        return (dataset[i] for i in range(len(dataset)))
    options = grain.ReadOptions(num_threads=read_threads, prefetch_buffer_size=prefetch)
    return iter(dataset.to_iter_dataset(options))
