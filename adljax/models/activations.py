"""Activation functions by name, so that a model's configuration can name its non-linearity.

Synopsis::

    act = get_activation("tanh")
    y = act(x)  # elementwise, same shape and dtype as x
"""

import functools
import types
from collections.abc import Callable, Mapping

import jax

from adljax.typing import Array


def identity(x: Array) -> Array:
    """Returns ``x`` unchanged: the activation of a linear layer."""
    return x


ACTIVATIONS: Mapping[str, Callable[[Array], Array]] = types.MappingProxyType(
    {
        "sigmoid": jax.nn.sigmoid,
        "tanh": jax.nn.tanh,
        "relu": jax.nn.relu,
        "leaky_relu": jax.nn.leaky_relu,  # negative slope 0.01, as in PyTorch
        "elu": jax.nn.elu,
        # The exact (erf) form, as PyTorch's default, so that imported weights agree.
        "gelu": functools.partial(jax.nn.gelu, approximate=False),
        "softplus": jax.nn.softplus,
        "identity": identity,
    }
)
"""Read-only mapping from activation name to an elementwise function ``Array -> Array``."""


def get_activation(name: str) -> Callable[[Array], Array]:
    """Returns the elementwise activation function called ``name``.

    Args:
        name: one of the keys of ``ACTIVATIONS``.

    Raises:
        ValueError: if ``name`` is unknown; the message lists the allowed names.
    """
    try:
        return ACTIVATIONS[name]
    except (KeyError, TypeError):
        allowed = ", ".join(repr(n) for n in ACTIVATIONS)
        raise ValueError(f"`activation` must be one of {allowed}, got {name!r}") from None
