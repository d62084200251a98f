"""Batches placed on the device ahead of the steps that use them (double buffering).

JAX transfers and dispatches asynchronously: ``jax.device_put`` returns before the copy
ends, and a jitted step returns before it has run. `prefetch_to_device` keeps ``size``
batches transferred ahead of the one being consumed, so the copy of batch ``k + size``
overlaps step ``k`` instead of waiting at the start of step ``k + size``.
"""

import collections
from collections.abc import Iterable, Iterator

import jax

from adljax.typing import Batch

PREFETCH_TO_DEVICE = 2
"""Batches on the device ahead of the step (double buffering)."""


def prefetch_to_device(
    batches: Iterable[Batch],
    placement: jax.sharding.Sharding,
    size: int = PREFETCH_TO_DEVICE,
) -> Iterator[Batch]:
    """Yields ``batches`` ``jax.device_put`` onto ``placement``, ``size`` ahead.

    ``placement`` is a sharding: the data-parallel batch sharding, or the single device the
    train state lives on.
    """
    queue: collections.deque[Batch] = collections.deque()
    for batch in batches:
        queue.append(jax.device_put(batch, placement))
        if len(queue) > size:
            yield queue.popleft()
    while queue:
        yield queue.popleft()
