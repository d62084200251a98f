"""Tests for adljax.models._materialize: a fusion barrier that changes no value or gradient."""

import jax
import jax.numpy as jnp
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from adljax.models._materialize import materialize


@settings(max_examples=10, deadline=None)
@given(shape=st.lists(st.integers(1, 4), min_size=1, max_size=4), seed=st.integers(0, 99))
def test_values_and_gradients_are_exactly_the_input(shape, seed):
    x = jax.random.normal(jax.random.key(seed), shape)
    cotangent = jax.random.normal(jax.random.key(seed + 1), shape)
    y, vjp = jax.vjp(jax.jit(materialize), x)
    np.testing.assert_array_equal(y, x)
    np.testing.assert_array_equal(vjp(cotangent)[0], cotangent)


def test_nan_inf_and_empty_inputs_pass_through():
    x = jnp.array([jnp.nan, 1.0, -jnp.inf])
    np.testing.assert_array_equal(jax.jit(materialize)(x), x)
    assert materialize(jnp.zeros((0, 3))).shape == (0, 3)
    batched = jax.vmap(materialize)(jnp.stack([x, x + 1]))
    np.testing.assert_array_equal(batched, jnp.stack([x, x + 1]))


def test_is_a_conditional_in_the_compiled_program_on_cpu_only():
    text = jax.jit(lambda x: jnp.tanh(materialize(jnp.exp(x)))).lower(jnp.ones(3))
    count = text.compile().as_text().count("conditional(")
    assert count == (1 if jax.default_backend() == "cpu" else 0)
