"""`materialize`: stop XLA:CPU from recomputing a convolution's input inside its gradient."""

import jax
import jax.numpy as jnp

from adljax.typing import Array


def _rewrite_first(x: Array) -> Array:
    """``x`` with its first element set to itself: the same values, a different program."""
    flat = x.reshape(-1)
    return flat.at[0].set(flat[0]).reshape(x.shape)


def materialize(x: Array) -> Array:
    """``x`` unchanged (values and gradients), computed once in memory on CPUs.

    In a ConvNet's train step XLA:CPU feeds each kernel-gradient convolution a transposed copy
    of the layer's input and fuses into that copy the whole elementwise chain that produced
    the input (batch norm, ReLU, residual additions), recomputing it with strided reads
    (ResNet-18: 0.87x the step time without it, ``benchmarks/NOTES.md``). A conditional is a
    fusion barrier, and ``lax.optimization_barrier`` is not: ``x`` goes through a
    ``lax.cond`` whose branches give the same values but differ as programs, so the compiler
    can neither merge them nor see through them. Other backends get ``x`` as it is. Under
    ``jax.vmap`` (ensembles) the batched predicate turns the conditional into a select of
    both branches: the same values, but no barrier and two extra passes over ``x``.
    """
    if jax.default_backend() != "cpu" or x.size == 0:
        return x
    return jax.lax.cond(jnp.isnan(x.reshape(-1)[0]), _rewrite_first, lambda v: v, x)
