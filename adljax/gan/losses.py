"""The adversarial losses, per example, from discriminator logits (critic scores).

``discriminator_losses(kind, real, fake)`` and ``generator_losses(kind, fake)`` map logits
``(B,)`` to per-example losses ``(B,)``; the gradient penalty of WGAN-GP is separate
(`gradient_penalty`), since it needs the critic itself, not only its outputs.

- ``non_saturating`` (Goodfellow et al., 2014): D minimises ``softplus(-real) +
  softplus(fake)`` (sigmoid cross-entropy), G minimises ``softplus(-fake)`` = ``-log D(G(z))``.
- ``hinge`` (Lim & Ye, 2017; Miyato et al., 2018): D minimises ``relu(1 - real) + relu(1 +
  fake)``, G minimises ``-fake``.
- ``wgan_gp`` (Gulrajani et al., 2017): the critic minimises ``fake - real`` (plus the
  penalty), G minimises ``-fake``.
"""

from collections.abc import Callable

import jax
import jax.numpy as jnp

from adljax._validate import check_choice
from adljax.typing import Array, PRNGKey

LOSSES = ("non_saturating", "hinge", "wgan_gp")
"""The adversarial losses by name; ``non_saturating`` is the default."""


def discriminator_losses(kind: str, real: Array, fake: Array) -> Array:
    """Per-pair discriminator losses ``(B,)`` from logits on real ``(B,)`` and fake ``(B,)``."""
    check_choice(kind, "loss", LOSSES)
    if kind == "non_saturating":
        return jax.nn.softplus(-real) + jax.nn.softplus(fake)
    if kind == "hinge":
        return jax.nn.relu(1.0 - real) + jax.nn.relu(1.0 + fake)
    return fake - real


def generator_losses(kind: str, fake: Array) -> Array:
    """Per-example generator losses ``(B,)`` from the discriminator's logits on fakes ``(B,)``."""
    check_choice(kind, "loss", LOSSES)
    if kind == "non_saturating":
        return jax.nn.softplus(-fake)
    return -fake


def gradient_penalty(
    critic: Callable[[Array], Array], real: Array, fake: Array, key: PRNGKey
) -> Array:
    """WGAN-GP's penalty ``mean((||grad critic(x_hat)|| - 1)^2)`` (a scalar).

    ``x_hat = e * real + (1 - e) * fake`` with one ``e ~ U(0, 1)`` per example; ``critic``
    maps a batch ``(B, ...)`` to scores ``(B,)`` example by example (no batch statistics),
    so the gradient of their sum holds each example's own gradient.
    """
    shape = (real.shape[0],) + (1,) * (real.ndim - 1)
    e = jax.random.uniform(key, shape, real.dtype)
    mixed = e * real + (1.0 - e) * fake
    grads = jax.grad(lambda x: jnp.sum(critic(x)))(mixed)
    norms = jnp.sqrt(jnp.sum(jnp.square(grads.reshape(real.shape[0], -1)), axis=1) + 1e-12)
    return jnp.mean(jnp.square(norms - 1.0))
