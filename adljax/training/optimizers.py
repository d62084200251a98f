"""Optax optimizers by name, with the learning rate kept in the optimizer state.

Every optimizer built here is wrapped in ``optax.inject_hyperparams`` so that the current
learning rate is part of the optimizer state: train steps report it as a metric, and an
ensemble can give each member its own learning rate by changing one stacked array.
"""

from collections.abc import Callable

import jax
import jax.numpy as jnp
import optax

from adljax._validate import check_choice, check_positive_float, check_positive_int

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


SCHEDULE_NAMES: tuple[str, ...] = ("constant", "cosine", "exponential", "linear")
"""The learning-rate schedules of `learning_rate_schedule` (``adljax train --schedule``)."""

EXPONENTIAL_END_FACTOR = 0.01
"""The ``exponential`` schedule's learning rate after its decay steps: 1% of the peak."""


def check_schedule(schedule: str, warmup_steps: int = 0, decay_steps: int | None = None) -> None:
    """Raises ValueError for an unknown ``schedule``, a negative ``warmup_steps``, a
    ``decay_steps`` that is not a positive int, or ``decay_steps`` with ``constant``."""
    check_choice(schedule, "schedule", SCHEDULE_NAMES)
    if isinstance(warmup_steps, bool) or not isinstance(warmup_steps, int) or warmup_steps < 0:
        raise ValueError(f"`warmup_steps` must be an integer >= 0, got {warmup_steps!r}")
    if decay_steps is not None:
        check_positive_int(decay_steps, "decay_steps")
        if schedule == "constant":
            raise ValueError(
                "`decay_steps` needs a decaying schedule (cosine, exponential or linear), "
                "not 'constant'"
            )


def learning_rate_schedule(
    learning_rate: float,
    schedule: str = "constant",
    *,
    warmup_steps: int = 0,
    decay_steps: int | None = None,
) -> float | optax.Schedule:
    """The learning rate of optimizer update ``t`` (counted from 0), as an Optax schedule.

    ``warmup_steps`` updates rise linearly from 0 to ``learning_rate``; then ``constant``
    holds it, and over ``decay_steps`` more updates ``cosine`` falls to 0 along half a cosine,
    ``linear`` falls to 0 on a line and ``exponential`` falls to `EXPONENTIAL_END_FACTOR` of
    it geometrically; each holds its last value after that. ``constant`` without warmup is
    ``learning_rate`` itself (the float), so the compiled step is what it always was.

    Raises:
      ValueError: as `check_schedule`, for a decaying schedule without ``decay_steps``, or
        for a ``learning_rate`` that is not finite and > 0.
    """
    check_schedule(schedule, warmup_steps, decay_steps)
    check_positive_float(learning_rate, "learning_rate")
    if schedule != "constant" and decay_steps is None:
        raise ValueError(f"the {schedule!r} schedule needs `decay_steps`")
    if schedule == "constant":
        after = optax.constant_schedule(learning_rate)
    elif schedule == "cosine":
        after = _ends_at_zero(optax.cosine_decay_schedule(learning_rate, decay_steps), decay_steps)
    elif schedule == "linear":
        after = _ends_at_zero(optax.linear_schedule(learning_rate, 0.0, decay_steps), decay_steps)
    else:
        end = learning_rate * EXPONENTIAL_END_FACTOR
        after = optax.exponential_decay(
            learning_rate, decay_steps, EXPONENTIAL_END_FACTOR, end_value=end
        )
    if warmup_steps == 0:
        return learning_rate if schedule == "constant" else after
    warmup = optax.linear_schedule(0.0, learning_rate, warmup_steps)
    return optax.join_schedules([warmup, after], [warmup_steps])


def _ends_at_zero(decay: optax.Schedule, decay_steps: int) -> optax.Schedule:
    """``decay``, exactly 0 from update ``decay_steps`` on and never below it. Compiled,
    optax's line and half cosine end 1e-11 to 5e-8 off 0 (XLA divides by multiplying by a
    reciprocal): below 0 that is a step of gradient *ascent*."""

    def schedule(count):
        return jnp.where(count >= decay_steps, 0.0, jnp.maximum(decay(count), 0.0))

    return schedule


def run_schedule(
    learning_rate: float,
    schedule: str,
    warmup_steps: int,
    decay_steps: int | None,
    total_steps: int,
) -> tuple[float | optax.Schedule, dict[str, object] | None]:
    """A run's learning rate and the record of it for the checkpoint's ``optimizer``
    metadata. A decaying schedule without ``decay_steps`` decays over the rest of the run's
    ``total_steps`` after the warmup (at least 1); the record is None for a constant learning
    rate without warmup (what every run before schedules had)."""
    check_schedule(schedule, warmup_steps, decay_steps)
    if schedule != "constant" and decay_steps is None:
        decay_steps = max(total_steps - warmup_steps, 1)
    rate = learning_rate_schedule(
        learning_rate, schedule, warmup_steps=warmup_steps, decay_steps=decay_steps
    )
    if schedule == "constant" and warmup_steps == 0:
        return rate, None
    return rate, {"name": schedule, "warmup_steps": warmup_steps, "decay_steps": decay_steps}


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
