"""Tests for adljax.models.shallow_conv: shallow CPU convolutions as sums of shifted slices."""

import chex
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jax import lax

from adljax.models import SimpleCNN, shallow_conv
from adljax.models.shallow_conv import Conv, conv_general_dilated, tap_conv

_NHWC = ("NHWC", "HWIO", "NHWC")


def _reference(x, kernel, strides, padding):
    return lax.conv_general_dilated(x, kernel, strides, padding, dimension_numbers=_NHWC)


def _adljax(x, kernel, strides, padding):
    numbers = lax.conv_dimension_numbers(x.shape, kernel.shape, _NHWC)
    return conv_general_dilated(x, kernel, strides, padding, dimension_numbers=numbers)


def _convolutions_in(fn, *args) -> int:
    return str(jax.make_jaxpr(fn)(*args)).count("conv_general_dilated")


paddings = st.sampled_from(["SAME", "VALID"]) | st.tuples(
    st.tuples(st.integers(0, 2), st.integers(0, 2)), st.tuples(st.integers(0, 2), st.integers(0, 2))
)


@settings(max_examples=8, deadline=None)
@given(
    batch=st.integers(1, 3),
    size=st.tuples(st.integers(4, 9), st.integers(4, 9)),
    channels=st.integers(1, 3),
    features=st.sampled_from([1, 5, 16, 19]),
    kernel_size=st.tuples(st.integers(1, 3), st.integers(1, 3)),
    strides=st.tuples(st.integers(1, 3), st.integers(1, 3)),
    padding=paddings,
    seed=st.integers(0, 99),
)
def test_values_and_derivatives_equal_lax_conv(
    batch, size, channels, features, kernel_size, strides, padding, seed
):
    """Outputs match ``lax.conv_general_dilated`` to float rounding; the VJP and the JVP, which
    are lax's by construction, match exactly for a linear function of the output."""
    keys = jax.random.split(jax.random.key(seed), 4)
    x = jax.random.normal(keys[0], (batch, *size, channels))
    kernel = jax.random.normal(keys[1], (*kernel_size, channels, features))
    expected = _reference(x, kernel, strides, padding)
    got = jax.jit(_adljax, static_argnums=(2, 3))(x, kernel, strides, padding)
    chex.assert_trees_all_close(got, expected, atol=1e-5, rtol=1e-5)
    cotangent = jax.random.normal(keys[2], expected.shape)
    _, vjp = jax.vjp(lambda x, k: _adljax(x, k, strides, padding), x, kernel)
    _, ref_vjp = jax.vjp(lambda x, k: _reference(x, k, strides, padding), x, kernel)
    chex.assert_trees_all_close(vjp(cotangent), ref_vjp(cotangent), atol=1e-6, rtol=1e-6)
    tangents = (jax.random.normal(keys[3], x.shape), jnp.ones_like(kernel))
    jvp = jax.jvp(lambda x, k: _adljax(x, k, strides, padding), (x, kernel), tangents)[1]
    ref_jvp = jax.jvp(lambda x, k: _reference(x, k, strides, padding), (x, kernel), tangents)[1]
    chex.assert_trees_all_close(jvp, ref_jvp, atol=1e-6, rtol=1e-6)


@pytest.mark.skipif(jax.default_backend() != "cpu", reason="the tap path is CPU-only")
def test_shallow_convolutions_take_the_taps_and_gradients_only_what_is_needed():
    x, kernel = jnp.ones((2, 8, 8, 3)), jnp.ones((3, 3, 3, 16))
    assert _convolutions_in(lambda x, k: _adljax(x, k, (1, 1), "SAME"), x, kernel) == 0

    # the kernel's gradient alone is one XLA convolution; the images' tangent costs none
    def loss(k, x):
        return jnp.sum(_adljax(x, k, (1, 1), "SAME") ** 2)

    assert _convolutions_in(jax.grad(loss), kernel, x) == 1
    assert _convolutions_in(jax.grad(loss, argnums=(0, 1)), kernel, x) == 2


@pytest.mark.parametrize(
    ("x_shape", "kernel_shape", "kwargs"),
    [
        ((2, 8, 8, 1), (3, 3, 1, 15), {}),  # fewer than MIN_TAP_FEATURES outputs
        ((2, 8, 8, 4), (1, 1, 4, 16), {}),  # more than MAX_TAP_CHANNELS inputs
        ((2, 12, 12, 1), (7, 7, 1, 16), {}),  # 49 products per output > MAX_TAPS
        ((2, 8, 8, 1), (3, 3, 1, 16), {"rhs_dilation": (2, 2)}),
        ((2, 8, 8, 1), (3, 3, 1, 16), {"lhs_dilation": (2, 2), "padding": ((1, 1), (1, 1))}),
        ((2, 8, 8, 2), (3, 3, 1, 16), {"feature_group_count": 2}),
        ((2, 8, 8, 1), (3, 3, 1, 16), {"padding": ((-1, 0), (0, 0))}),
        ((2, 2, 2, 1), (3, 3, 1, 16), {"padding": "VALID"}),  # no output pixel
        ((2, 8, 8, 0), (3, 3, 0, 16), {}),  # no input channel
    ],
)
def test_other_convolutions_are_lax_conv(x_shape, kernel_shape, kwargs):
    x, kernel = jnp.ones(x_shape), jnp.ones(kernel_shape)
    numbers = lax.conv_dimension_numbers(x.shape, kernel.shape, _NHWC)
    padding = kwargs.pop("padding", "SAME")

    def convolve(conv):
        return lambda x, k: conv(x, k, (1, 1), padding, dimension_numbers=numbers, **kwargs)

    assert _convolutions_in(convolve(conv_general_dilated), x, kernel) == 1
    np.testing.assert_array_equal(
        convolve(conv_general_dilated)(x, kernel), convolve(lax.conv_general_dilated)(x, kernel)
    )


def test_bfloat16_is_lax_conv():
    """A sum of 27 bfloat16 products would round at every addition; lax accumulates wider."""
    x, kernel = jnp.ones((2, 8, 8, 1), jnp.bfloat16), jnp.ones((3, 3, 1, 16), jnp.bfloat16)
    assert _convolutions_in(lambda x, k: _adljax(x, k, (1, 1), "SAME"), x, kernel) == 1


def test_nchw_layout_is_lax_conv():
    x, kernel = jnp.ones((2, 1, 8, 8)), jnp.ones((4, 1, 3, 3))
    numbers = lax.conv_dimension_numbers(x.shape, kernel.shape, ("NCHW", "OIHW", "NCHW"))

    def conv(x, k):
        return conv_general_dilated(x, k, (1, 1), "SAME", dimension_numbers=numbers)

    assert _convolutions_in(conv, x, kernel) == 1


def test_other_backends_get_lax_conv(monkeypatch):
    x, kernel = jnp.ones((1, 5, 5, 1)), jnp.ones((3, 3, 1, 16))
    monkeypatch.setattr(jax, "default_backend", lambda: "gpu")
    assert _convolutions_in(lambda x, k: _adljax(x, k, (1, 1), "SAME"), x, kernel) == 1


def test_taps_threshold_is_read_at_trace_time(monkeypatch):
    x, kernel = jnp.ones((1, 5, 5, 1)), jnp.ones((3, 3, 1, 16))
    monkeypatch.setattr(shallow_conv, "MAX_TAPS", 0)
    assert _convolutions_in(lambda x, k: _adljax(x, k, (1, 1), "SAME"), x, kernel) == 1


@pytest.mark.skipif(jax.default_backend() != "cpu", reason="the tap path is CPU-only")
def test_adljax_models_first_layers_take_the_taps():
    """``Conv`` really routes through `conv_general_dilated` (Flax marks the field it sets as
    deprecated: this fails if Flax stops calling it), and so do the models' first layers."""
    x = jnp.ones((2, 8, 8, 1))
    conv = Conv(16, (3, 3))
    variables = conv.init(jax.random.key(0), x)
    assert _convolutions_in(lambda v: conv.apply(v, x), variables) == 0
    cnn, images = SimpleCNN(num_outputs=3), jnp.ones((2, 28, 28, 1))
    variables = cnn.init(jax.random.key(0), images, train=False)
    # the second layer (32 -> 64 channels) is an XLA convolution, the first is not
    assert _convolutions_in(lambda v: cnn.apply(v, images, train=False), variables) == 1


def test_conv_module_is_flax_conv_with_the_same_parameters_and_function():
    x = jax.random.normal(jax.random.key(0), (2, 7, 7, 3))
    ours, flax_conv = Conv(16, (3, 3), strides=2), nn.Conv(16, (3, 3), strides=2)
    variables = ours.init(jax.random.key(1), x)
    chex.assert_trees_all_equal_shapes(variables, flax_conv.init(jax.random.key(1), x))
    chex.assert_trees_all_close(
        ours.apply(variables, x), flax_conv.apply(variables, x), atol=1e-5, rtol=1e-5
    )


def test_vmap_and_second_derivatives():
    keys = jax.random.split(jax.random.key(3), 2)
    x = jax.random.normal(keys[0], (4, 2, 6, 6, 1))
    kernel = jax.random.normal(keys[1], (3, 3, 1, 16))
    batched = jax.vmap(lambda x: tap_conv(x, kernel, (1, 1), ((1, 1), (1, 1))))(x)
    chex.assert_trees_all_close(
        batched, jax.vmap(lambda x: _reference(x, kernel, (1, 1), "SAME"))(x), atol=1e-5
    )

    def loss(k, conv):
        return jnp.sum(jnp.tanh(conv(x[0], k, (1, 1), "SAME")))

    hessian_row = jax.grad(lambda k, conv: jax.grad(loss)(k, conv)[0, 0, 0, 0], argnums=0)
    chex.assert_trees_all_close(
        hessian_row(kernel, _adljax), hessian_row(kernel, _reference), atol=1e-4, rtol=1e-4
    )
