"""Strided and transposed convolutions written as matrix products (for XLA:CPU).

On XLA:CPU, ``lax.conv_transpose`` (an input-dilated convolution), its kernel gradient and
the input gradient of strided convolutions (also input-dilated) run far below the CPU's
matrix-product speed (``/work/shared/PERF.md``: 19 GFLOP/s, two thirds of a DCGAN step).

- `conv_transpose`: every input pixel is multiplied by the whole kernel in one product
  ``(B*H*W, C_in) @ (C_in, k_h*k_w*C_out)`` and the ``k_h*k_w`` contributions are added
  into the output with pads and reshapes.
- `conv`: the ``k_h*k_w`` strided slices of the padded input (im2col) times the kernel,
  ``(B*H_out*W_out, k_h*k_w*C_in) @ (k_h*k_w*C_in, C_out)``.

Automatic differentiation turns pads into slices and slices into pads, so every gradient
is a matrix product too. `Conv` and `ConvTranspose` have the parameters of
``flax.linen.Conv`` / ``ConvTranspose`` (same names, shapes and initialisers) and compute
the same functions for ``"SAME"`` and ``"VALID"`` padding.
"""

import flax.linen as nn
import jax
import jax.numpy as jnp

from adljax._validate import check_choice
from adljax.typing import Array

PADDINGS = ("SAME", "VALID")
"""The paddings `conv` and `conv_transpose` support (those of ``flax.linen``'s names)."""


def _padding(kernel: int, stride: int, padding: str) -> tuple[int, int]:
    """The (before, after) padding ``lax.conv_transpose`` gives the input-dilated input."""
    if padding == "VALID":
        total = kernel + stride - 2 + max(kernel - stride, 0)
        return kernel - 1, total - (kernel - 1)
    total = kernel + stride - 2  # "SAME": the output is exactly stride times the input
    before = kernel - 1 if stride > kernel - 1 else -(-total // 2)
    return before, total - before


def _crop(full: Array, axis: int, start: int, length: int) -> Array:
    """``full[start : start + length]`` along ``axis``, zero-padded past the end."""
    missing = start + length - full.shape[axis]
    if missing > 0:
        widths = [(0, 0)] * full.ndim
        widths[axis] = (0, missing)
        full = jnp.pad(full, widths)
    return jax.lax.slice_in_dim(full, start, start + length, axis=axis)


def conv_transpose(
    x: Array, kernel: Array, strides: tuple[int, int], padding: str = "SAME"
) -> Array:
    """``lax.conv_transpose(x, kernel, strides, padding)`` for NHWC ``x`` and HWIO ``kernel``.

    Args:
        x: ``(B, H, W, C_in)``.
        kernel: ``(k_h, k_w, C_in, C_out)``, as ``flax.linen.ConvTranspose`` stores it.
        strides: ``(s_h, s_w)``.
        padding: ``"SAME"`` (output ``(B, s_h*H, s_w*W, C_out)``) or ``"VALID"``.

    Returns:
        ``(B, H_out, W_out, C_out)``, equal to ``lax.conv_transpose`` up to float rounding.
    """
    check_choice(padding, "padding", PADDINGS)
    batch, height, width, channels = x.shape
    kh, kw, _, features = kernel.shape
    sh, sw = strides
    taps_h, taps_w = -(-kh // sh), -(-kw // sw)  # kernel taps per output phase
    # Input pixel i, kernel row t lands on output row s*i + t - c, with the kernel flipped
    # (lax.conv_transpose correlates without flipping); pad the kernel to whole phases.
    flipped = jnp.pad(
        kernel[::-1, ::-1], ((0, taps_h * sh - kh), (0, taps_w * sw - kw), (0, 0), (0, 0))
    )
    matrix = flipped.reshape(taps_h, sh, taps_w, sw, channels, features)
    matrix = matrix.transpose(4, 0, 2, 1, 3, 5).reshape(channels, -1)
    products = (x.reshape(-1, channels) @ matrix).reshape(
        batch, height, width, taps_h, taps_w, sh, sw, features
    )
    products = products.transpose(0, 3, 4, 1, 5, 2, 6, 7)  # (B, a, b, H, s_h, W, s_w, C)
    full = sum(
        jnp.pad(
            products[:, a, b],
            ((0, 0), (a, taps_h - 1 - a), (0, 0), (b, taps_w - 1 - b), (0, 0), (0, 0)),
        )
        for a in range(taps_h)
        for b in range(taps_w)
    )
    full = full.reshape(batch, (height + taps_h - 1) * sh, (width + taps_w - 1) * sw, features)
    for axis, size, k, s in ((1, height, kh, sh), (2, width, kw, sw)):
        pad_a, pad_b = _padding(k, s, padding)
        length = s * (size - 1) + 1 + pad_a + pad_b - k + 1
        full = _crop(full, axis, k - 1 - pad_a, length)
    return full


def conv(x: Array, kernel: Array, strides: tuple[int, int], padding: str = "SAME") -> Array:
    """``lax.conv_general_dilated`` (NHWC, HWIO, no dilation) as im2col and one product.

    Args:
        x: ``(B, H, W, C_in)``.
        kernel: ``(k_h, k_w, C_in, C_out)``, as ``flax.linen.Conv`` stores it.
        strides: ``(s_h, s_w)``.
        padding: ``"SAME"`` (output ``ceil(H / s_h)`` x ``ceil(W / s_w)``) or ``"VALID"``.

    Returns:
        ``(B, H_out, W_out, C_out)``, equal to the XLA convolution up to float rounding.
    """
    check_choice(padding, "padding", PADDINGS)
    batch, height, width, channels = x.shape
    kh, kw, _, features = kernel.shape
    sh, sw = strides
    widths, outputs = [(0, 0)], []
    for size, k, s in ((height, kh, sh), (width, kw, sw)):
        out = -(-size // s) if padding == "SAME" else (size - k) // s + 1
        total = max((out - 1) * s + k - size, 0) if padding == "SAME" else 0
        widths.append((total // 2, total - total // 2))
        outputs.append(out)
    padded = jnp.pad(x, [*widths, (0, 0)])
    out_h, out_w = outputs
    patches = jnp.stack(
        [
            jax.lax.slice(
                padded,
                (0, dy, dx, 0),
                (batch, dy + sh * (out_h - 1) + 1, dx + sw * (out_w - 1) + 1, channels),
                (1, sh, sw, 1),
            )
            for dy in range(kh)
            for dx in range(kw)
        ],
        axis=3,
    )  # (B, H_out, W_out, k_h*k_w, C_in)
    products = patches.reshape(-1, kh * kw * channels) @ kernel.reshape(-1, features)
    return products.reshape(batch, out_h, out_w, features)


class _MatmulConvLayer(nn.Module):
    """The parameters of ``flax.linen.Conv`` / ``ConvTranspose`` (2-D, NHWC) around one of
    the matrix-product functions above (``_operation``, set by each subclass).

    Attributes:
        features: output channels.
        kernel_size: ``(k_h, k_w)``.
        strides: ``(s_h, s_w)``. Default ``(1, 1)``.
        padding: ``"SAME"`` or ``"VALID"``. Default ``"SAME"``.
        use_bias: add a bias. Default True.
    """

    features: int
    kernel_size: tuple[int, int]
    strides: tuple[int, int] = (1, 1)
    padding: str = "SAME"
    use_bias: bool = True

    @nn.compact
    def __call__(self, x: Array) -> Array:
        """``(B, H, W, C_in) -> (B, H_out, W_out, features)``."""
        shape = (*self.kernel_size, x.shape[-1], self.features)
        kernel = self.param("kernel", nn.initializers.lecun_normal(), shape, jnp.float32)
        y = self._operation(x, kernel.astype(x.dtype), tuple(self.strides), self.padding)
        if self.use_bias:
            bias = self.param("bias", nn.initializers.zeros_init(), (self.features,), jnp.float32)
            y = y + bias.reshape(1, 1, 1, -1)
        return y


class Conv(_MatmulConvLayer):
    """Drop-in for ``flax.linen.Conv`` (2-D, NHWC, no dilation) computed by `conv`."""

    _operation = staticmethod(conv)


class ConvTranspose(_MatmulConvLayer):
    """Drop-in for ``flax.linen.ConvTranspose`` (2-D, NHWC) computed by `conv_transpose`."""

    _operation = staticmethod(conv_transpose)
