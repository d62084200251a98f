"""Tests for adljax.training.compilation: ``adljax.jit`` and its per-platform XLA options."""

import jax
import jax.numpy as jnp
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

import adljax
from adljax.training import compilation


def test_cpu_gets_the_convolution_option_and_other_platforms_none():
    assert compilation.compiler_options("cpu") == compilation.CPU_COMPILER_OPTIONS
    assert compilation.compiler_options("gpu") is None
    assert compilation.compiler_options("tpu") is None


def test_an_unknown_option_falls_back_to_xla_defaults(monkeypatch):
    monkeypatch.setattr(compilation, "CPU_COMPILER_OPTIONS", {"xla_no_such_option": "1"})
    compilation._cpu_options_supported.cache_clear()
    try:
        assert compilation.compiler_options("cpu") is None
        assert float(adljax.jit(jnp.negative)(jnp.float32(2.0))) == -2.0
    finally:
        compilation._cpu_options_supported.cache_clear()


def _conv_loss(kernel, x):
    y = jax.lax.conv_general_dilated(
        x, kernel, (1, 1), ((1, 1), (1, 1)), dimension_numbers=("NHWC", "HWIO", "NHWC")
    )
    return jnp.sum(jnp.tanh(y) ** 2)


@settings(max_examples=5, deadline=None)
@given(
    channels=st.integers(1, 8),
    features=st.integers(1, 8),
    size=st.integers(3, 9),
    seed=st.integers(0, 99),
)
def test_jit_computes_what_jax_jit_computes(channels, features, size, seed):
    """A convolution's value and gradients agree with plain ``jax.jit`` to float rounding."""
    keys = jax.random.split(jax.random.key(seed))
    kernel = jax.random.normal(keys[0], (3, 3, channels, features))
    x = jax.random.normal(keys[1], (2, size, size, channels))
    grad = jax.value_and_grad(_conv_loss, argnums=(0, 1))
    got = adljax.jit(grad)(kernel, x)
    expected = jax.jit(grad)(kernel, x)
    for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(expected), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)


def test_jit_passes_jax_jit_arguments_and_lowers_lazily():
    calls = []

    def double(x, n):
        calls.append(n)
        return x * n

    jitted = adljax.jit(double, static_argnames="n", donate_argnums=0)
    assert jitted.__name__ == "double"
    assert not jitted._built  # no jax.jit object (and no backend) before first use
    np.testing.assert_array_equal(jitted(jnp.ones(2), n=3), [3.0, 3.0])
    np.testing.assert_array_equal(jitted(jnp.ones(2), n=3), [3.0, 3.0])
    assert calls == [3]  # traced once
    compiled = jitted.lower(jnp.ones(2), n=4).compile()
    assert compiled.cost_analysis() is not None


def test_explicit_compiler_options_merge_over_adljax_options(monkeypatch):
    calls = _recording(monkeypatch)
    extra = {"xla_cpu_enable_fast_math": False}
    jitted = adljax.jit(jnp.negative, compiler_options=extra, donate_argnums=0)
    assert float(jitted(jnp.float32(1.0))) == -1.0
    (recorded,) = calls
    assert recorded["donate_argnums"] == 0
    assert recorded["compiler_options"] == (compilation.compiler_options() or {}) | extra


def _recording(monkeypatch):
    """Records, per call that ran, the keyword arguments its ``jax.jit`` object was made with
    (an attempt JAX refuses is not a call that ran)."""
    recorded = []
    real_jit = jax.jit

    def recording_jit(fun, **kwargs):
        jitted = real_jit(fun, **kwargs)

        def call(*args, **call_kwargs):
            result = jitted(*args, **call_kwargs)
            recorded.append(kwargs)
            return result

        return call

    monkeypatch.setattr(compilation.jax, "jit", recording_jit)
    return recorded


def test_inside_another_jit_it_is_a_plain_nested_jit(monkeypatch):
    """JAX refuses compiler options on a jit nested in another jit (and under grad's trace):
    there the options are left to the outermost jit; where JAX accepts them (top level, eager
    vmap) adljax's apply. The results are those of the function either way."""
    recorded = _recording(monkeypatch)
    double = adljax.jit(lambda x: 2.0 * x)
    x = jnp.arange(3.0)
    np.testing.assert_array_equal(jax.jit(lambda x: double(x) + 1.0)(x), 2.0 * x + 1.0)
    assert all(kwargs.get("compiler_options") is None for kwargs in recorded)
    np.testing.assert_array_equal(jax.grad(lambda x: jnp.sum(double(x)))(x), [2.0, 2.0, 2.0])
    np.testing.assert_array_equal(jax.vmap(double)(jnp.stack([x, x])), jnp.stack([x, x]) * 2.0)
    recorded.clear()
    np.testing.assert_array_equal(double(x), 2.0 * x)  # top level: adljax's options
    assert recorded == [{"compiler_options": compilation.compiler_options()}]


def test_wrapping_keeps_the_outer_arguments():
    """The wrapped function's attributes (e.g. an inner adljax.jit's state) are not copied."""
    inner = adljax.jit(lambda x: x + 1.0)
    inner(jnp.zeros(2))
    outer = adljax.jit(inner, donate_argnums=0)
    assert outer._jit_kwargs == {"donate_argnums": 0} and not outer._built
    np.testing.assert_array_equal(outer(jnp.zeros(2)), [1.0, 1.0])
