"""Convolutions over few input channels as sums of shifted slices (for XLA:CPU).

A network's first convolution reads 1 (MNIST) or 3 (RGB) channels. XLA:CPU's convolution
kernels are slow on so shallow an input: the MNIST CNN's first 3x3 convolution, 1 -> 32
channels at batch 128, takes ~4 ms forward against ~0.6 ms in PyTorch. Written as
``sum over taps (i, j) and channels c of x[:, i::s, j::s, c] * kernel[i, j, c]`` it is one
elementwise fusion that XLA also fuses with the bias and activation after it.

`conv_general_dilated` is a drop-in for ``lax.conv_general_dilated`` as
``flax.linen.Conv(conv_general_dilated=...)`` calls it. It takes that path when the default
backend is the CPU, for float32 2-D convolutions in Flax's layout (NHWC inputs, HWIO
kernels) with at most `MAX_TAP_CHANNELS` input channels, at most `MAX_TAPS` products per
output, at least `MIN_TAP_FEATURES` output channels, non-negative padding, at least one
output pixel, no dilation, no groups and no ``preferred_element_type``; every other call is
``lax.conv_general_dilated``. Only the forward values come from the taps (equal to lax's up
to float rounding): the derivative rule (``jax.custom_jvp``) is lax's, so every gradient is
XLA's convolution gradient.
"""

import functools
import math
from collections.abc import Callable, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
from jax import lax
from jax.custom_derivatives import SymbolicZero

from adljax.typing import Array

MAX_TAP_CHANNELS = 3
"""The most input channels a CPU convolution runs as `tap_conv` with (first layers)."""

MAX_TAPS = 27
"""The most ``k_h * k_w * C_in`` products per output a CPU convolution runs as `tap_conv`
with (a 3x3 kernel over RGB)."""

MIN_TAP_FEATURES = 16
"""The fewest output channels a CPU convolution runs as `tap_conv` with: they are the
vector lanes of its fusion. Measured by training steps: MNIST CNN (3x3, 1 -> 32) x0.92,
CIFAR CNN (3x3, 3 -> 32) x0.97, detector (3x3 stride 2, 3 -> 16) x0.96, ResNet-18's CIFAR
stem (3 -> 64) 1.00; LeNet-5's first layer (5x5, 1 -> 6) was 1.45x slower as taps."""

_FLAX_2D = lax.ConvDimensionNumbers(
    lhs_spec=(0, 3, 1, 2), rhs_spec=(3, 2, 0, 1), out_spec=(0, 3, 1, 2)
)
"""``flax.linen.Conv``'s 2-D layout: NHWC inputs and outputs, HWIO kernels."""


def _lax_conv(
    x: Array, kernel: Array, strides: tuple[int, ...], padding: tuple[tuple[int, int], ...]
) -> Array:
    return lax.conv_general_dilated(
        x, kernel, strides, padding, dimension_numbers=("NHWC", "HWIO", "NHWC")
    )


def tap_conv(
    x: Array,
    kernel: Array,
    strides: Sequence[int],
    padding: Sequence[tuple[int, int]],
) -> Array:
    """``lax.conv_general_dilated`` on NHWC ``x (B, H, W, C)`` and HWIO ``kernel (k_h, k_w,
    C, F)`` with explicit non-negative ``padding`` ((before, after) per spatial axis), as
    ``k_h * k_w * C`` strided slices times kernel rows: ``(B, H_out, W_out, F)``. Its
    derivatives are ``lax.conv_general_dilated``'s."""
    return _tap_conv(x, kernel, tuple(strides), tuple((lo, hi) for lo, hi in padding))


@functools.partial(jax.custom_jvp, nondiff_argnums=(2, 3))
def _tap_conv(
    x: Array, kernel: Array, strides: tuple[int, int], padding: tuple[tuple[int, int], ...]
) -> Array:
    k_h, k_w, channels, _ = kernel.shape
    x = jnp.pad(x, ((0, 0), *padding, (0, 0)))
    out_h = (x.shape[1] - k_h) // strides[0] + 1
    out_w = (x.shape[2] - k_w) // strides[1] + 1
    out = None
    for i in range(k_h):
        for j in range(k_w):
            window = lax.slice(
                x,
                (0, i, j, 0),
                (
                    x.shape[0],
                    i + (out_h - 1) * strides[0] + 1,
                    j + (out_w - 1) * strides[1] + 1,
                    channels,
                ),
                (1, *strides, 1),
            )
            for c in range(channels):
                term = window[..., c : c + 1] * kernel[i, j, c][None, None, None, :]
                out = term if out is None else out + term
    return out


@functools.partial(_tap_conv.defjvp, symbolic_zeros=True)
def _tap_conv_jvp(strides, padding, primals, tangents):
    """XLA's convolution derivative; a zero tangent (an input that is not differentiated,
    such as the images) costs no convolution."""
    x, kernel = primals
    x_dot, kernel_dot = tangents
    terms = []
    if not isinstance(x_dot, SymbolicZero):
        terms.append(_lax_conv(x_dot, kernel, strides, padding))
    if not isinstance(kernel_dot, SymbolicZero):
        terms.append(_lax_conv(x, kernel_dot, strides, padding))
    # JAX calls the rule only when at least one tangent is not a symbolic zero
    return _tap_conv(x, kernel, strides, padding), sum(terms[1:], terms[0])


def _tap_padding(
    x: Array, kernel: Array, strides: Sequence[int], padding: str | Sequence[tuple[int, int]]
) -> tuple[tuple[int, int], ...] | None:
    """``padding`` as (before, after) pairs per spatial axis if they are non-negative and
    leave at least one output pixel, else None (then lax handles the call)."""
    if isinstance(padding, str):
        padding = lax.padtype_to_pads(x.shape[1:3], kernel.shape[:2], tuple(strides), padding)
    pairs = tuple((int(lo), int(hi)) for lo, hi in padding)
    if any(lo < 0 or hi < 0 for lo, hi in pairs):
        return None
    spatial = zip(x.shape[1:3], pairs, kernel.shape[:2], strict=True)
    fits = all(size + lo + hi >= k for size, (lo, hi), k in spatial)
    return pairs if fits else None


def conv_general_dilated(
    lhs: Array,
    rhs: Array,
    window_strides: Sequence[int],
    padding: str | Sequence[tuple[int, int]],
    lhs_dilation: Sequence[int] | None = None,
    rhs_dilation: Sequence[int] | None = None,
    dimension_numbers: lax.ConvDimensionNumbers | None = None,
    feature_group_count: int = 1,
    batch_group_count: int = 1,
    precision: lax.PrecisionLike = None,
    preferred_element_type=None,
) -> Array:
    """``lax.conv_general_dilated`` (same arguments and result), through `tap_conv` for
    shallow 2-D convolutions on the CPU (see the module docstring)."""
    dilated = any(d != 1 for d in (*(lhs_dilation or ()), *(rhs_dilation or ())))
    pairs = None
    if (
        jax.default_backend() == "cpu"
        and lhs.ndim == 4
        and lhs.dtype == rhs.dtype == jnp.float32  # lower precisions accumulate in float32 in lax
        and 1 <= rhs.shape[2] <= MAX_TAP_CHANNELS
        and math.prod(rhs.shape[:3]) <= MAX_TAPS
        and rhs.shape[3] >= MIN_TAP_FEATURES
        and lax.conv_dimension_numbers(lhs.shape, rhs.shape, dimension_numbers) == _FLAX_2D
        and not dilated
        and feature_group_count == batch_group_count == 1
        and preferred_element_type is None
    ):
        pairs = _tap_padding(lhs, rhs, window_strides, padding)
    if pairs is None:
        return lax.conv_general_dilated(
            lhs,
            rhs,
            window_strides,
            padding,
            lhs_dilation,
            rhs_dilation,
            dimension_numbers,
            feature_group_count,
            batch_group_count,
            precision,
            preferred_element_type,
        )
    return _tap_conv(lhs, rhs, tuple(window_strides), pairs)


class Conv(nn.Conv):
    """``flax.linen.Conv`` (same attributes, parameters and function) whose shallow 2-D
    convolutions run as `tap_conv` on the CPU (see the module docstring)."""

    conv_general_dilated: Callable[..., Array] = conv_general_dilated
