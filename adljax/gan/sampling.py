"""Drawing samples from a trained GAN: latents, the EMA generator, interpolations."""

import functools

import jax
import jax.numpy as jnp
import numpy as np

from adljax._validate import check_positive_int
from adljax.gan.training import EMA
from adljax.training.compilation import jit
from adljax.typing import Array, PRNGKey, PyTree


def sampling_variables(params: PyTree, model_state: PyTree) -> dict[str, PyTree]:
    """The variables to sample with: the generator's EMA weights when the state has them.

    ``params``/``model_state`` as in a ``TrainState`` or a restored ``InferenceState``.
    """
    variables = {"params": params, **{k: v for k, v in model_state.items() if k != EMA}}
    if EMA in model_state:
        variables["params"] = {**params, "generator": model_state[EMA]["generator"]}
    return variables


@functools.partial(jit, static_argnames="model")
def _generate(model, variables: PyTree, z: Array) -> Array:
    return model.apply(variables, z, train=False, method="generate")


def generate(state, z: Array) -> np.ndarray:
    """Samples ``(N, *input_shape)`` for latents ``z`` ``(N, latent_dim)`` (eval mode, EMA).

    ``state`` is anything with ``.model``, ``.params`` and ``.model_state`` (a
    ``TrainState`` or an ``InferenceState``).
    """
    variables = sampling_variables(state.params, state.model_state)
    return np.asarray(_generate(state.model, variables, jnp.asarray(z, jnp.float32)))


def latents(key: PRNGKey, num: int, latent_dim: int) -> Array:
    """Standard-normal latents ``(num, latent_dim)``."""
    check_positive_int(num, "num")
    return jax.random.normal(key, (num, latent_dim), jnp.float32)


def sample(state, key: PRNGKey, num: int) -> np.ndarray:
    """``num`` samples ``(num, *input_shape)`` from latents drawn with ``key``."""
    return generate(state, latents(key, num, state.model.latent_dim))


def interpolate(start: Array, end: Array, steps: int) -> Array:
    """``steps`` latents ``(steps, latent_dim)`` on the straight line from ``start`` to ``end``.

    ``start`` and ``end`` are single latents ``(latent_dim,)``; the ends are included.
    """
    if steps < 2:
        raise ValueError(f"`steps` must be at least 2, got {steps!r}")
    start, end = jnp.asarray(start), jnp.asarray(end)
    if start.ndim != 1 or start.shape != end.shape:
        raise ValueError(
            f"`start` and `end` must be latents of one shape (latent_dim,), got "
            f"{start.shape} and {end.shape}"
        )
    t = jnp.linspace(0.0, 1.0, steps)[:, None]
    return (1.0 - t) * start[None, :] + t * end[None, :]
