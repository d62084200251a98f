"""Whole-epoch compilation: one compiled call runs many train steps with ``lax.scan``.

When the training set fits in device memory it is placed on the device once; an epoch is
then a scan over rows of batch indices, so no Python runs between steps.
"""

from collections.abc import Callable

import jax
import jax.numpy as jnp

from adljax.training.state import TrainState
from adljax.training.steps import TrainStep
from adljax.typing import Array, Batch, Metrics, PyTree

EpochFn = Callable[[TrainState, Batch, Array], tuple[TrainState, Metrics]]
RangeFn = Callable[[TrainState, Batch, Array, Array, Array], tuple[TrainState, Metrics]]


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
            return train_step(state, _gather(data, indices, batch_sharding))

        return jax.lax.scan(body, state, batch_indices)

    return run


def make_epoch_range_fn(
    train_step: TrainStep, batch_sharding: jax.sharding.Sharding | None = None
) -> RangeFn:
    """Returns ``run(state, data, batch_indices, start, stop) -> (state, metrics)``: the steps
    of rows ``[start, stop)`` of ``batch_indices`` ``(num_steps, B)``, in one compiled loop.

    ``start`` and ``stop`` are traced int32 scalars, so one compilation serves every range of
    an epoch (``fit`` stops between ranges to diagnose a step). Metrics come back
    ``(num_steps, ...)``, rows outside the range zero.
    """

    def run(state, data, batch_indices, start, stop):
        first = _gather(data, batch_indices[0], batch_sharding)
        shapes = jax.eval_shape(train_step, state, first)[1]
        metrics = jax.tree.map(
            lambda shape: jnp.zeros((batch_indices.shape[0], *shape.shape), shape.dtype), shapes
        )

        def body(i, carry):
            state, metrics = carry
            state, step_metrics = train_step(state, _gather(data, batch_indices[i], batch_sharding))
            metrics = jax.tree.map(lambda rows, row: rows.at[i].set(row), metrics, step_metrics)
            return state, metrics

        return jax.lax.fori_loop(start, stop, body, (state, metrics))

    return run


def make_row_fn(
    fn: Callable[[TrainState, Batch], PyTree],
    batch_sharding: jax.sharding.Sharding | None = None,
) -> Callable[[TrainState, Batch, Array], PyTree]:
    """``fn`` on the batch of rows ``indices`` ``(B,)`` of device-resident ``data``:
    ``run(state, data, indices) -> fn(state, batch)``."""

    def run(state, data, indices):
        return fn(state, _gather(data, indices, batch_sharding))

    return run


def _gather(data: Batch, indices: Array, batch_sharding: jax.sharding.Sharding | None) -> Batch:
    """The batch of rows ``indices`` ``(B,)`` of every array in ``data``."""
    batch = {name: jnp.take(array, indices, axis=0) for name, array in data.items()}
    if batch_sharding is not None:
        batch = jax.lax.with_sharding_constraint(batch, batch_sharding)
    return batch
