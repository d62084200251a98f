"""Whole-epoch compilation: one compiled call runs many train steps with ``lax.scan``.

When the training set fits in device memory it is placed on the device once; an epoch is
then a scan over rows of batch indices, so no Python runs between steps.
"""

from collections.abc import Callable

import jax
import jax.numpy as jnp

from adljax.training.state import TrainState
from adljax.training.steps import TrainStep
from adljax.typing import Array, Batch, Metrics

EpochFn = Callable[[TrainState, Batch, Array], tuple[TrainState, Metrics]]


def make_epoch_fn(
    train_step: TrainStep, batch_sharding: jax.sharding.Sharding | None = None
) -> EpochFn:
    """Returns ``run(state, data, batch_indices) -> (state, metrics)``.

    Args:
      train_step: a pure step from ``make_train_step`` (or its ``vmap``).
      batch_sharding: if given, each gathered batch is constrained to it (data parallel).

    ``data`` maps names to device arrays ``(N, ...)``; ``batch_indices`` is int32
    ``(num_steps, B)``, one row per step. Metrics come back stacked ``(num_steps, ...)``.
    """

    def run(state: TrainState, data: Batch, batch_indices: Array):
        def body(state, indices):
            batch = {name: jnp.take(array, indices, axis=0) for name, array in data.items()}
            if batch_sharding is not None:
                batch = jax.lax.with_sharding_constraint(batch, batch_sharding)
            return train_step(state, batch)

        return jax.lax.scan(body, state, batch_indices)

    return run
