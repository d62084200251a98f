"""Batches of a random-access source read ahead by grain's reader threads.

A `SourceDataset` epoch is a grain pipeline: ``MapDataset.source`` over the source in the
epoch's order, ``batch`` (whose ``batch_fn`` converts and stacks), then ``to_iter_dataset`` with
``ReadOptions(num_threads, prefetch_buffer_size)``: each reader thread builds whole batches
(reads, decodes and stacks B examples) ahead of the training loop, in order. The order is
adljax's own ``epoch_permutation``, so a streamed epoch holds exactly the batches of the
in-memory path, and a resume only needs the position ``(epoch, batch)`` that checkpoints
already save.
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


class _InOrder:
    """``source`` seen in ``order``: item ``k`` is ``source[order[k]]``."""

    def __init__(self, source: Any, order: np.ndarray):
        self.source, self.order = source, order

    def __len__(self) -> int:
        return len(self.order)

    def __getitem__(self, k: int) -> Any:
        return self.source[int(self.order[k])]


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
    dataset = grain.MapDataset.source(_InOrder(source, order))
    dataset = dataset.batch(batch_size, batch_fn=collate)[batch_ids.start : batch_ids.stop]
    if read_threads == 0:
        return (dataset[i] for i in range(len(dataset)))
    options = grain.ReadOptions(num_threads=read_threads, prefetch_buffer_size=prefetch)
    return iter(dataset.to_iter_dataset(options))
