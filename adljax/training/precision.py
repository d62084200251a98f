"""Mixed precision: a dtype policy, its casts, and dynamic loss scaling for float16.

A `Policy` keeps the parameters (and the batch statistics) in float32, runs the model in its
compute dtype and hands float32 outputs to the loss. The train, eval and predict steps apply
it around ``model.apply`` (`adljax.training.steps`), so every model family gets it without
changes to its code. ``"float32"`` (the default) casts nothing: the steps compile exactly
what they compile without a policy.

float16 also needs dynamic loss scaling (`dynamic_loss_scale`): the loss is multiplied by a
scale before differentiation so that small gradients survive float16, the gradients are
divided by it again, and a step whose gradients are not finite is skipped (parameters and
optimizer state unchanged) while the scale halves; after `LOSS_SCALE_PERIOD` finite steps
in a row it doubles. The scale and its counter live in the optimizer state, so checkpoints
save them and a resumed run continues exactly (the behaviour of ``jmp.DynamicLossScale``).

Synopsis::

    state = create_train_state(model, tx, x[:1], key, dtype="bfloat16")
    state, metrics = jit(make_train_step(task))(state, batch)   # params stay float32
"""

import dataclasses
from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax

from adljax._validate import check_choice
from adljax.typing import Array, PyTree

DTYPE_NAMES: tuple[str, ...] = ("bfloat16", "float16", "float32")
"""The names `get_policy` (and ``adljax train --dtype``) accept."""

_FLOAT32 = jnp.dtype(jnp.float32)

LOSS_SCALE_INITIAL = 2.0**15
"""The first loss scale of a float16 run (``jmp`` and PyTorch's ``GradScaler`` start near it)."""
LOSS_SCALE_PERIOD = 2000
"""Finite steps in a row after which the loss scale doubles."""
LOSS_SCALE_MIN = 1.0
"""The scale never halves below this."""
LOSS_SCALE_MAX = 2.0**24
"""The scale never doubles above this (a float32 loss times it stays far from overflow)."""


@dataclasses.dataclass(frozen=True)
class Policy:
    """Which dtype parameters are stored in, the model computes in, and the loss receives.

    Attributes:
      name: ``"float32"``, ``"bfloat16"`` or ``"float16"`` (the compute dtype's name).
      compute_dtype: the dtype of the parameters and float inputs inside ``model.apply``.
      param_dtype: the dtype parameters and model state are kept (and updated) in: float32.
      output_dtype: the dtype of the model outputs given to the loss: float32.
    """

    name: str
    compute_dtype: jnp.dtype
    param_dtype: jnp.dtype = _FLOAT32
    output_dtype: jnp.dtype = _FLOAT32

    @property
    def casts(self) -> bool:
        """Whether the compute dtype differs from the parameter dtype (False: cast nothing)."""
        return self.compute_dtype != self.param_dtype

    @property
    def loss_scaling(self) -> bool:
        """Whether training needs dynamic loss scaling (float16)."""
        return self.compute_dtype == jnp.float16

    def cast_to_compute(self, tree: PyTree) -> PyTree:
        """``tree`` with its floating-point leaves in the compute dtype (integers untouched)."""
        return cast_floating(tree, self.compute_dtype) if self.casts else tree

    def cast_to_param(self, tree: PyTree) -> PyTree:
        """``tree`` with its floating-point leaves in the parameter dtype."""
        return cast_floating(tree, self.param_dtype) if self.casts else tree

    def cast_to_output(self, tree: PyTree) -> PyTree:
        """``tree`` with its floating-point leaves in the output dtype."""
        return cast_floating(tree, self.output_dtype) if self.casts else tree


FLOAT32 = Policy("float32", _FLOAT32)
"""The default policy: everything in float32, nothing cast."""


def get_policy(dtype: str | Policy) -> Policy:
    """The `Policy` named ``dtype`` (one of `DTYPE_NAMES`); a `Policy` is returned as is.

    Raises:
      ValueError: for another name.
    """
    if isinstance(dtype, Policy):
        return dtype
    check_choice(dtype, "dtype", DTYPE_NAMES)
    return Policy(dtype, jnp.dtype(dtype))


def cast_floating(tree: PyTree, dtype: jnp.dtype) -> PyTree:
    """``tree`` with every floating-point array leaf cast to ``dtype``; other leaves (integer
    tokens and labels, booleans, PRNG keys) unchanged."""

    def cast(leaf):
        if hasattr(leaf, "dtype") and jnp.issubdtype(leaf.dtype, jnp.floating):
            return jnp.asarray(leaf, dtype)
        return leaf

    return jax.tree.map(cast, tree)


def apply_with_policy(policy: Policy, apply, variables: PyTree, x, **kwargs):
    """``apply(variables, x, **kwargs)`` under ``policy``.

    Floating parameters (``variables["params"]``) and inputs ``x`` go in the compute dtype;
    the other collections (batch statistics) stay in float32, so normalisation layers keep
    their statistics and internal arithmetic in float32. The outputs, and with ``mutable``
    the updated collections, come back in float32. Returns what ``apply`` returns.
    """
    if not policy.casts:
        return apply(variables, x, **kwargs)
    variables = {**variables, "params": policy.cast_to_compute(variables["params"])}
    return policy.cast_to_output(apply(variables, policy.cast_to_compute(x), **kwargs))


# ----- dynamic loss scaling ------------------------------------------------------------------


class LossScaleState(NamedTuple):
    """The optimizer state of `dynamic_loss_scale`.

    Attributes:
      loss_scale: the scale the next step multiplies its loss by (float32 scalar).
      good_steps: finite steps in a row since the scale last changed (int32 scalar).
      inner_state: the wrapped optimizer's state.
    """

    loss_scale: Array
    good_steps: Array
    inner_state: optax.OptState


def all_finite(tree: PyTree) -> Array:
    """A boolean scalar: every element of every leaf of ``tree`` is finite."""
    leaves = [jnp.all(jnp.isfinite(leaf)) for leaf in jax.tree.leaves(tree)]
    return jnp.all(jnp.stack(leaves)) if leaves else jnp.asarray(True)


def dynamic_loss_scale(
    inner: optax.GradientTransformation,
    *,
    initial: float = LOSS_SCALE_INITIAL,
    period: int = LOSS_SCALE_PERIOD,
) -> optax.GradientTransformation:
    """``inner``, skipping steps whose gradients are not finite, with a loss scale in its state.

    ``update(grads, state, params)`` takes the *unscaled* gradients (the train step divides
    by ``state.loss_scale``). Finite gradients: ``inner``'s update, and the scale doubles
    (up to `LOSS_SCALE_MAX`) once ``period`` finite steps in a row have passed. Any NaN or
    infinity: zero updates, ``inner``'s state unchanged, the scale halves (down to
    `LOSS_SCALE_MIN`) and the count restarts.
    """

    def init(params: PyTree) -> LossScaleState:
        return LossScaleState(
            loss_scale=jnp.asarray(initial, jnp.float32),
            good_steps=jnp.zeros((), jnp.int32),
            inner_state=inner.init(params),
        )

    def update(grads, state: LossScaleState, params=None):
        finite = all_finite(grads)
        safe = jax.tree.map(lambda g: jnp.where(finite, g, jnp.zeros_like(g)), grads)
        updates, inner_state = inner.update(safe, state.inner_state, params)
        updates = jax.tree.map(lambda u: jnp.where(finite, u, jnp.zeros_like(u)), updates)
        inner_state = jax.tree.map(
            lambda new, old: jnp.where(finite, new, old), inner_state, state.inner_state
        )
        good_steps = jnp.where(finite, state.good_steps + 1, 0)
        grow = good_steps >= period
        scale = jnp.where(
            finite,
            jnp.where(grow, jnp.minimum(state.loss_scale * 2.0, LOSS_SCALE_MAX), state.loss_scale),
            jnp.maximum(state.loss_scale / 2.0, LOSS_SCALE_MIN),
        )
        good_steps = jnp.where(grow, 0, good_steps).astype(jnp.int32)
        return updates, LossScaleState(scale.astype(jnp.float32), good_steps, inner_state)

    return optax.GradientTransformation(init, update)


def loss_scale_of(opt_state: optax.OptState) -> Array:
    """The loss scale stored in ``opt_state`` by `dynamic_loss_scale` (float32 scalar).

    Raises:
      ValueError: when ``opt_state`` holds none (an optimizer not built for float16).
    """
    found = optax.tree_utils.tree_get_all_with_path(opt_state, "loss_scale")
    if not found:
        raise ValueError(
            "a float16 state needs dynamic loss scaling in its optimizer: build it with "
            "create_train_state(..., dtype='float16'), or wrap the optimizer with "
            "adljax.training.precision.dynamic_loss_scale"
        )
    return found[0][1]
