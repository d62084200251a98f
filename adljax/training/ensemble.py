"""Ensembles with ``jax.vmap``: K members trained by one compiled step on one device.

An ensemble state is a ``TrainState`` whose every leaf has a leading member axis ``K``.
Members differ in their initialisation and dropout keys and, optionally, learning rates.
Each member follows exactly the trajectory it would follow if trained alone on the same
batches.
"""

from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from adljax._validate import check_positive_int
from adljax.training.optimizers import set_learning_rate
from adljax.training.precision import Policy, get_policy
from adljax.training.state import TrainState, create_train_state
from adljax.typing import PRNGKey


def member_keys(key: PRNGKey, size: int) -> jax.Array:
    """The ``(K,)`` keys that ``create_ensemble`` gives its members."""
    return jax.random.split(key, size)


def create_ensemble(
    model: nn.Module,
    tx: optax.GradientTransformation,
    sample_input: jax.Array,
    key: PRNGKey,
    size: int,
    *,
    learning_rates: Sequence[float] | None = None,
    dtype: str | Policy = "float32",
) -> TrainState:
    """``size`` train states stacked on a leading axis; member ``i`` uses ``member_keys[i]``.

    Args:
      learning_rates: one per member; needs an optimizer that stores its learning rate
        (``create_optimizer`` or ``optax.inject_hyperparams``).
      dtype: the mixed-precision policy of every member (``create_train_state``'s).
    """
    check_positive_int(size, "size")
    policy = get_policy(dtype)
    state = jax.vmap(lambda k: create_train_state(model, tx, sample_input, k, dtype=policy))(
        member_keys(key, size)
    )
    if learning_rates is not None:
        rates = np.asarray(learning_rates, np.float32)
        if rates.shape != (size,) or not np.all((rates > 0) & np.isfinite(rates)):
            raise ValueError(
                f"`learning_rates` must hold {size} positive finite values, "
                f"got {list(learning_rates)}"
            )
        state = state.replace(opt_state=set_learning_rate(state.opt_state, jnp.asarray(rates)))
    return state


def member(state: TrainState, index: int) -> TrainState:
    """Member ``index`` of an ensemble state, as a single-model state."""
    return jax.tree.map(lambda leaf: leaf[index], state)


def summarize_members(values: dict[str, np.ndarray]) -> dict[str, float]:
    """``{name: mean over members, name_std: spread}`` from per-member ``(K,)`` values."""
    summary = {}
    for name, per_member in values.items():
        per_member = np.asarray(per_member, np.float64)
        summary[name] = float(per_member.mean())
        summary[f"{name}_std"] = float(per_member.std())
    return summary
