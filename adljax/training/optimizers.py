"""Optax optimizers by name, with the learning rate kept in the optimizer state.

Every optimizer built here is wrapped in ``optax.inject_hyperparams`` so that the current
learning rate is part of the optimizer state: train steps report it as a metric, and an
ensemble can give each member its own learning rate by changing one stacked array.
"""

from collections.abc import Callable

import jax
import jax.numpy as jnp
import optax

from adljax._validate import check_choice, check_positive_float

_OPTIMIZERS: dict[str, Callable[..., optax.GradientTransformation]] = {
    "sgd": optax.sgd,
    "momentum": lambda learning_rate: optax.sgd(learning_rate, momentum=0.9),
    "nesterov": lambda learning_rate: optax.sgd(learning_rate, momentum=0.9, nesterov=True),
    "adam": optax.adam,
    "adamw": optax.adamw,
    "rmsprop": optax.rmsprop,
    "adagrad": optax.adagrad,
    "lamb": optax.lamb,
}

OPTIMIZER_NAMES: tuple[str, ...] = tuple(sorted(_OPTIMIZERS))
"""The names ``create_optimizer`` (and ``adljax train --optimizer``) accept."""


def create_optimizer(
    name: str = "adam",
    learning_rate: float | optax.Schedule = 1e-3,
    *,
    clip_norm: float | None = None,
) -> optax.GradientTransformation:
    """Builds a named Optax optimizer whose learning rate lives in its state.

    Args:
      name: one of ``OPTIMIZER_NAMES``.
      learning_rate: a finite float >= 0 (0 holds the parameters still), or an Optax
        schedule (a function of the step count).
      clip_norm: if given, gradients are clipped to this global norm (finite, > 0) first.

    Returns:
      ``optax.inject_hyperparams``-wrapped transformation; see ``learning_rate_of``.

    Raises:
      ValueError: for an unknown ``name``, or a NaN, infinite or negative ``learning_rate``
        or ``clip_norm`` (``clip_norm`` 0 too).
    """
    check_choice(name, "optimizer", OPTIMIZER_NAMES)
    if not callable(learning_rate):
        check_positive_float(learning_rate, "learning_rate", allow_zero=True)
    if clip_norm is not None:
        check_positive_float(clip_norm, "clip_norm")

    def build(learning_rate):
        optimizer = _OPTIMIZERS[name](learning_rate)
        if clip_norm is None:
            return optimizer
        return optax.chain(optax.clip_by_global_norm(clip_norm), optimizer)

    return optax.inject_hyperparams(build)(learning_rate=learning_rate)


def learning_rate_of(opt_state: optax.OptState) -> jax.Array:
    """The learning rate stored in ``opt_state`` (NaN when the optimizer does not store one).

    Works for any optimizer that keeps a ``learning_rate`` hyperparameter in its state, such as
    those from ``create_optimizer`` or any ``optax.inject_hyperparams`` transformation. When
    several are stored (per-group optimizers), the first in tree order is reported.
    """
    found = optax.tree_utils.tree_get_all_with_path(opt_state, "learning_rate", _is_array)
    if not found:
        return jnp.asarray(jnp.nan, jnp.float32)
    return jnp.asarray(found[0][1], jnp.float32)


def set_learning_rate(opt_state: optax.OptState, learning_rate: jax.Array) -> optax.OptState:
    """Returns ``opt_state`` with its stored ``learning_rate`` replaced (shape must match)."""
    if optax.tree_utils.tree_get(opt_state, "learning_rate", None, _is_array) is None:
        raise ValueError(
            "the optimizer state holds no `learning_rate`; build the optimizer with "
            "`create_optimizer` or wrap it in `optax.inject_hyperparams`"
        )
    return optax.tree_utils.tree_set(opt_state, _is_array, learning_rate=learning_rate)


def _is_array(_path, value) -> bool:
    # A schedule's own state is also stored under the name `learning_rate`; skip it.
    return isinstance(value, jax.Array)
