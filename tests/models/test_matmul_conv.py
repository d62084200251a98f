"""``adljax.models.matmul_conv``: the same outputs and gradients as Flax's XLA convolutions."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adljax.models.matmul_conv import Conv, ConvTranspose, conv, conv_transpose

pytestmark = pytest.mark.usefixtures("fast_compiles")

shapes = st.tuples(
    st.integers(1, 3),  # batch
    st.integers(1, 7),  # height
    st.integers(1, 7),  # width
    st.integers(1, 3),  # input channels
    st.integers(1, 3),  # output channels
    st.integers(1, 5),  # kernel height
    st.integers(1, 5),  # kernel width
    st.integers(1, 3),  # stride (both axes)
    st.sampled_from(["SAME", "VALID"]),
)


def _assert_matches_flax(reference: nn.Module, ours: nn.Module, x: jax.Array) -> None:
    """Same parameters, outputs and gradients (of a non-linear function of the outputs)."""
    variables = reference.init(jax.random.key(0), x)
    assert jax.tree.map(jnp.shape, jax.eval_shape(ours.init, jax.random.key(0), x)) == (
        jax.tree.map(jnp.shape, variables)
    )

    @jax.jit  # one compilation per example instead of one per eager operation
    def outputs_and_gradients(variables, x):
        def results(module):
            def loss(v, x):
                return jnp.sum(jnp.sin(module.apply(v, x)))

            return module.apply(variables, x), jax.grad(loss, argnums=(0, 1))(variables, x)

        return results(reference), results(ours)

    (expected, want), (got, have) = outputs_and_gradients(variables, x)
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)
    for a, b in zip(jax.tree.leaves(have), jax.tree.leaves(want), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4)


@settings(max_examples=6)
@given(shapes)
def test_conv_transpose_matches_flax(shape):
    batch, height, width, cin, cout, kh, kw, stride, padding = shape
    x = jax.random.normal(jax.random.key(1), (batch, height, width, cin))
    kwargs = dict(features=cout, kernel_size=(kh, kw), strides=(stride, stride), padding=padding)
    _assert_matches_flax(nn.ConvTranspose(**kwargs), ConvTranspose(**kwargs), x)


@settings(max_examples=6)
@given(shapes)
def test_conv_matches_flax(shape):
    batch, height, width, cin, cout, kh, kw, stride, padding = shape
    if padding == "VALID" and (kh > height or kw > width):
        kh, kw = min(kh, height), min(kw, width)
    x = jax.random.normal(jax.random.key(1), (batch, height, width, cin))
    kwargs = dict(features=cout, kernel_size=(kh, kw), strides=(stride, stride), padding=padding)
    _assert_matches_flax(nn.Conv(**kwargs), Conv(**kwargs), x)


def test_dcgan_layer_sizes_double_and_halve():
    x = jnp.ones((2, 7, 7, 3))
    assert conv_transpose(x, jnp.ones((4, 4, 3, 5)), (2, 2)).shape == (2, 14, 14, 5)
    assert conv(x, jnp.ones((4, 4, 3, 5)), (2, 2)).shape == (2, 4, 4, 5)


def test_unknown_padding_is_refused():
    with pytest.raises(ValueError, match="padding"):
        conv_transpose(jnp.ones((1, 2, 2, 1)), jnp.ones((2, 2, 1, 1)), (2, 2), "CIRCULAR")
