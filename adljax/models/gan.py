"""Generative adversarial networks: an MLP GAN for points and a DCGAN for small images.

Synopsis::

    model = DCGAN(input_shape=(8, 8, 1))                 # or create_model("dcgan", ...)
    x = jnp.zeros((batch, 8, 8, 1))
    variables = model.init(jax.random.key(0), x, train=False)  # {"params": {"generator",
                                                               #  "discriminator"}, ...}
    z = jax.random.normal(key, (batch, model.latent_dim))
    images = model.apply(variables, z, train=False, method="generate")        # (batch, 8, 8, 1)
    logits = model.apply(variables, images, train=False, method="discriminate")  # (batch,)

Each model holds both players under ``params["generator"]`` and ``params["discriminator"]``,
so one train state, one checkpoint and ``create_model`` rebuild the pair. Calling the model
scores ``x`` with the discriminator (initialisation also builds the generator). The
generators end in a sigmoid for images (pixels in [0, 1], as adljax's image datasets give
them) and are linear for points.
"""

import chex
import flax.linen as nn
import jax
import jax.numpy as jnp

from adljax._validate import check_choice, check_positive_int, check_positive_ints
from adljax.models import matmul_conv, shallow_conv
from adljax.models._checks import check_input, check_input_shape
from adljax.models.cnn import _batch_norm
from adljax.models.registry import register_model
from adljax.typing import Array, ArrayLike

LEAKY_SLOPE = 0.2
"""The negative slope of the discriminators' leaky ReLUs (the DCGAN paper's 0.2)."""
DISCRIMINATOR_NORMS = ("batch", "layer", "none")
"""The ``discriminator_norm`` choices of ``DCGAN`` (``"batch"`` as in the paper)."""
CONVOLUTIONS = ("auto", "matmul", "xla")
"""The ``convolutions`` choices of ``DCGAN``: ``"matmul"`` uses ``adljax.models.matmul_conv``'s
``Conv`` and ``ConvTranspose``, ``"xla"`` Flax's. ``"auto"`` is ``"xla"`` on GPUs and TPUs;
on CPUs it pairs ``shallow_conv.Conv`` (Flax's ``Conv``: the one-channel first layer as
shifted slices, the second on XLA's multi-threaded Eigen path under ``adljax.jit``) with the
matrix-product ``ConvTranspose``, because XLA:CPU's transposed-convolution kernel gradient
runs ~17x slower than the same product (``benchmarks/NOTES.md``)."""


def _layers(convolutions: str) -> tuple[type[nn.Module], type[nn.Module]]:
    """``(Conv, ConvTranspose)`` classes for a ``convolutions`` choice (at trace time)."""
    if convolutions == "matmul":
        return matmul_conv.Conv, matmul_conv.ConvTranspose
    if convolutions == "auto" and jax.default_backend() == "cpu":
        return shallow_conv.Conv, matmul_conv.ConvTranspose
    return nn.Conv, nn.ConvTranspose


_KERNEL = (4, 4)  # the DCGAN paper's 4x4 kernels, stride 2
_STRIDES = (2, 2)


def _leaky_relu(x: Array) -> Array:
    return nn.leaky_relu(x, LEAKY_SLOPE)


def _latents(z: ArrayLike, latent_dim: int) -> Array:
    """Checks that ``z`` is ``(batch, latent_dim)`` floats."""
    z = jnp.asarray(z, jnp.float32)
    check_input(z, name="z", min_rank=2, input_shape=(latent_dim,))
    return z


class MLPGenerator(nn.Module):
    """``z (B, latent) -> Dense -> ReLU -> ... -> Dense -> points (B, output_dim)``."""

    hidden_sizes: tuple[int, ...]
    output_dim: int

    @nn.compact
    def __call__(self, z: Array, *, train: bool) -> Array:
        del train
        h = z
        for i, width in enumerate(self.hidden_sizes):
            h = nn.relu(nn.Dense(width, name=f"dense_{i}")(h))
        return nn.Dense(self.output_dim, name="out")(h)


class MLPDiscriminator(nn.Module):
    """``x (B, D) -> Dense -> leaky ReLU -> ... -> Dense -> logits (B,)``."""

    hidden_sizes: tuple[int, ...]

    @nn.compact
    def __call__(self, x: Array, *, train: bool) -> Array:
        del train
        h = x.reshape(x.shape[0], -1)
        for i, width in enumerate(self.hidden_sizes):
            h = _leaky_relu(nn.Dense(width, name=f"dense_{i}")(h))
        return nn.Dense(1, name="out")(h)[:, 0]


class _Players(nn.Module):
    """Shared plumbing of the GAN wrappers: ``generate``, ``discriminate`` and ``__call__``.

    Subclasses define ``latent_dim``, ``input_shape`` and ``setup`` (``self.generator``,
    ``self.discriminator``).
    """

    def __call__(self, x: ArrayLike, *, train: bool) -> Array:
        """Discriminator logits ``(B,)`` for ``x`` ``(B, *input_shape)``.

        While initialising, the generator is also run (on zero latents), so ``init``
        creates both players' variables.
        """
        logits = self.discriminate(x, train=train)
        if self.is_initializing():
            self.generate(jnp.zeros((1, self.latent_dim)), train=train)
        return logits

    def generate(self, z: ArrayLike, *, train: bool) -> Array:
        """Samples ``(B, *input_shape)`` from latents ``z`` ``(B, latent_dim)``.

        ``train=True`` normalises with the batch's statistics (pass
        ``mutable=["batch_stats"]`` for models with batch norm).
        """
        z = _latents(z, self.latent_dim)
        samples = self.generator(z, train=train)
        chex.assert_shape(samples, (z.shape[0], *self.input_shape))
        return samples

    def discriminate(self, x: ArrayLike, *, train: bool) -> Array:
        """Real-vs-fake logits (critic scores for WGAN) ``(B,)`` for ``x`` ``(B, *input_shape)``."""
        x = jnp.asarray(x, jnp.float32)
        check_input(x, name="x", min_rank=2, input_shape=self.input_shape)
        logits = self.discriminator(x, train=train)
        chex.assert_shape(logits, (x.shape[0],))
        return logits


@register_model("gan")
class GAN(_Players):
    """An MLP GAN for points (e.g. the 2-D Gaussian mixtures ``ring8``, ``grid25``).

    Generator: ``z -> [Dense -> ReLU] * len(generator_sizes) -> Dense(D)``; discriminator:
    ``x -> [Dense -> leaky ReLU(0.2)] * len(discriminator_sizes) -> Dense(1)``.

    Attributes:
        input_shape: per-example shape ``(D,)`` of the points. Required.
        latent_dim: size of the Gaussian latent ``z``. Default 16.
        generator_sizes: hidden widths of the generator. Default ``(128, 128)``.
        discriminator_sizes: hidden widths of the discriminator. Default ``(128, 128)``.
    """

    input_shape: tuple[int, ...] | None = None
    latent_dim: int = 16
    generator_sizes: tuple[int, ...] = (128, 128)
    discriminator_sizes: tuple[int, ...] = (128, 128)

    def __post_init__(self) -> None:
        shape = check_input_shape(self.input_shape)
        if shape is None or len(shape) != 1:
            raise ValueError(f"`input_shape` must be (D,) for gan, got {self.input_shape!r}")
        object.__setattr__(self, "input_shape", shape)
        check_positive_int(self.latent_dim, "latent_dim")
        check_positive_ints(self.generator_sizes, "generator_sizes")
        check_positive_ints(self.discriminator_sizes, "discriminator_sizes")
        super().__post_init__()

    def setup(self) -> None:
        self.generator = MLPGenerator(tuple(self.generator_sizes), self.input_shape[0])
        self.discriminator = MLPDiscriminator(tuple(self.discriminator_sizes))


class DCGANGenerator(nn.Module):
    """``z -> Dense -> BN -> ReLU -> [ConvT 4x4/2 -> BN -> ReLU] ... -> ConvT -> sigmoid``.

    The dense layer makes a ``(H / 2**stages, W / 2**stages, features * 2**(stages-1))`` map;
    each transposed convolution doubles the size and halves the width; the last one makes
    the image's channels.
    """

    image_shape: tuple[int, int, int]
    features: int
    stages: int
    convolutions: str = "auto"

    @nn.compact
    def __call__(self, z: Array, *, train: bool) -> Array:
        height, width, channels = self.image_shape
        _, layer = _layers(self.convolutions)
        scale = 2**self.stages
        widths = [self.features * 2 ** (self.stages - 1 - i) for i in range(self.stages)]
        start = (height // scale, width // scale, widths[0])
        h = nn.Dense(start[0] * start[1] * start[2], use_bias=False, name="project")(z)
        h = nn.relu(_batch_norm(train, "bn_project")(h)).reshape(z.shape[0], *start)
        for i, features in enumerate(widths[1:]):
            h = layer(
                features, _KERNEL, _STRIDES, padding="SAME", use_bias=False, name=f"deconv_{i}"
            )(h)
            h = nn.relu(_batch_norm(train, f"bn_{i}")(h))
        h = layer(channels, _KERNEL, _STRIDES, padding="SAME", name="deconv_out")(h)
        return nn.sigmoid(h)


class DCGANDiscriminator(nn.Module):
    """``x -> Conv 4x4/2 -> leaky ReLU -> [Conv 4x4/2 -> norm -> leaky ReLU] ... -> Dense(1)``.

    Widths ``features * 2**i``; the first convolution has no normalisation (as in the
    DCGAN paper); ``norm`` is ``"batch"``, ``"layer"`` (for WGAN-GP, whose gradient penalty
    needs per-example outputs: each example's whole ``(H, W, C)`` map normalised, a scale
    and bias per channel, as in the WGAN-GP paper) or ``"none"``.
    """

    features: int
    stages: int
    norm: str
    convolutions: str = "auto"

    @nn.compact
    def __call__(self, x: Array, *, train: bool) -> Array:
        layer, _ = _layers(self.convolutions)
        h = x
        for i in range(self.stages):
            normalise = i > 0 and self.norm != "none"
            h = layer(
                self.features * 2**i,
                _KERNEL,
                _STRIDES,
                padding="SAME",
                use_bias=not normalise,
                name=f"conv_{i}",
            )(h)
            if normalise and self.norm == "batch":
                h = _batch_norm(train, f"bn_{i}")(h)
            elif normalise:
                h = nn.LayerNorm(
                    reduction_axes=(1, 2, 3),
                    feature_axes=-1,
                    use_fast_variance=False,
                    name=f"ln_{i}",
                )(h)
            h = _leaky_relu(h)
        return nn.Dense(1, name="out")(h.reshape(h.shape[0], -1))[:, 0]


@register_model("dcgan")
class DCGAN(_Players):
    """A DCGAN for small NHWC images: transposed-conv generator, strided-conv discriminator.

    Batch norm and ReLU in the generator, leaky ReLU (0.2) in the discriminator, 4x4 kernels
    at stride 2, no pooling, as in Radford et al. (2016). ``stages`` up/down-sampling steps:
    8x8 digits start from a 2x2 map, 28x28 MNIST from 7x7.

    Attributes:
        input_shape: per-example ``(height, width, channels)``, height and width divisible by
            ``2**stages``. Required.
        latent_dim: size of the Gaussian latent ``z``. Default 32.
        features: width of the discriminator's first and the generator's last hidden layer;
            the others double per stage. Default 64.
        stages: number of stride-2 layers in each network. Default 2.
        discriminator_norm: one of ``DISCRIMINATOR_NORMS``. Default ``"batch"``.
        convolutions: how the (transposed) convolutions are computed, one of
            ``CONVOLUTIONS``. Default ``"auto"`` (matrix-product transposed convolutions on
            CPUs). Every choice has the same parameters and outputs.
    """

    input_shape: tuple[int, ...] | None = None
    latent_dim: int = 32
    features: int = 64
    stages: int = 2
    discriminator_norm: str = "batch"
    convolutions: str = "auto"

    def __post_init__(self) -> None:
        shape = check_input_shape(self.input_shape)
        if shape is None or len(shape) != 3:
            raise ValueError(
                f"`input_shape` must be (height, width, channels) for dcgan, got "
                f"{self.input_shape!r}"
            )
        object.__setattr__(self, "input_shape", shape)
        check_positive_int(self.latent_dim, "latent_dim")
        check_positive_int(self.features, "features")
        check_positive_int(self.stages, "stages")
        check_choice(self.discriminator_norm, "discriminator_norm", DISCRIMINATOR_NORMS)
        check_choice(self.convolutions, "convolutions", CONVOLUTIONS)
        scale = 2**self.stages
        if shape[0] % scale or shape[1] % scale:
            raise ValueError(
                f"dcgan with `stages`={self.stages} needs height and width divisible by "
                f"{scale}, got `input_shape`={shape}"
            )
        super().__post_init__()

    def setup(self) -> None:
        self.generator = DCGANGenerator(
            self.input_shape, self.features, self.stages, self.convolutions
        )
        self.discriminator = DCGANDiscriminator(
            self.features, self.stages, self.discriminator_norm, self.convolutions
        )
