"""ResNets (NHWC) in torchvision's layout: basic and bottleneck blocks, ImageNet and CIFAR stems.

Synopsis::

    model = ResNet18(num_outputs=10, stem="cifar")   # or create_model("resnet18", ...)
    x = jnp.zeros((batch, 32, 32, 3))
    variables = model.init(jax.random.key(0), x, train=False)
    logits, updates = model.apply(variables, x, train=True, mutable=["batch_stats"])

Parameter names follow one contract, which weight converters rely on::

    stem_conv, stem_bn
    stage{i}_block{j}/{conv0, bn0, conv1, bn1[, conv2, bn2][, downsample_conv, downsample_bn]}
    head

``ResNet18``, ``ResNet34`` and ``ResNet50`` are ``functools.partial`` objects over ``ResNet``;
with the ImageNet stem and 1000 classes they have torchvision's 11,689,512, 21,797,672 and
25,557,032 parameters.
"""

import functools

import chex
import flax.linen as nn
import jax.numpy as jnp

from adljax._validate import check_choice, check_positive_int, check_positive_ints
from adljax.models import shallow_conv
from adljax.models.cnn import _batch_norm, _conv_input, _image_input_shape, _images
from adljax.models.registry import register_model
from adljax.typing import Array, ArrayLike

BLOCKS = ("basic", "bottleneck")
"""The ``block`` choices of ``ResNet``."""
STEMS = ("imagenet", "cifar")
"""The ``stem`` choices of ``ResNet``: 7x7/2 conv + max pool, or one 3x3/1 conv."""

_PAD_1 = ((1, 1), (1, 1))  # PyTorch padding=1
_PAD_3 = ((3, 3), (3, 3))  # PyTorch padding=3
_BOTTLENECK_EXPANSION = 4
# torchvision's kaiming_normal_(mode="fan_out", nonlinearity="relu") for every conv kernel.
_conv_init = nn.initializers.variance_scaling(2.0, "fan_out", "normal")


def _conv(features: int, kernel: int, strides: int, name: str) -> nn.Conv:
    """A bias-free conv with PyTorch's padding ``kernel // 2`` (``'VALID'`` for 1x1)."""
    pad = kernel // 2
    return shallow_conv.Conv(
        features,
        (kernel, kernel),
        strides=(strides, strides),
        padding=((pad, pad), (pad, pad)),
        use_bias=False,
        kernel_init=_conv_init,
        name=name,
    )


def _shortcut(x: Array, features: int, strides: int, train: bool) -> Array:
    """The identity, or ``downsample_conv`` (1x1, strided) + ``downsample_bn`` when needed."""
    if strides == 1 and x.shape[-1] == features:
        return x
    x = _conv(features, 1, strides, "downsample_conv")(x)
    return _batch_norm(train, "downsample_bn")(x)


class ResNetBlock(nn.Module):
    """A basic residual block: ``relu(bn1(conv1(relu(bn0(conv0(x))))) + shortcut(x))``.

    ``conv0`` is 3x3 with stride ``strides``, ``conv1`` 3x3; both padded by 1. Maps
    ``(batch, H, W, C)`` to ``(batch, ceil(H / strides), ceil(W / strides), features)``.

    Attributes:
        features: output channels.
        strides: stride of ``conv0`` and of the shortcut. Default 1.
    """

    features: int
    strides: int = 1

    @nn.compact
    def __call__(self, x: Array, *, train: bool) -> Array:
        """Maps ``x`` ``(batch, H, W, C)`` to ``(batch, H', W', features)``."""
        x = _conv_input(x, train)
        h = _conv(self.features, 3, self.strides, "conv0")(x)
        h = nn.relu(_batch_norm(train, "bn0")(h))
        h = _conv(self.features, 3, 1, "conv1")(_conv_input(h, train))
        h = _batch_norm(train, "bn1")(h)
        shortcut = _shortcut(x, self.features, self.strides, train)
        chex.assert_equal_shape((h, shortcut))
        return nn.relu(h + shortcut)


class BottleneckResNetBlock(nn.Module):
    """A bottleneck block (torchvision v1.5: the stride is on the 3x3 conv).

    ``conv0`` 1x1 to ``features`` -> ``bn0`` -> relu -> ``conv1`` 3x3 with stride ``strides``
    -> ``bn1`` -> relu -> ``conv2`` 1x1 to ``4 * features`` -> ``bn2``; plus the shortcut, then
    relu. Maps ``(batch, H, W, C)`` to ``(batch, ceil(H / strides), ceil(W / strides),
    4 * features)``.

    Attributes:
        features: channels of the 1x1 and 3x3 convs; the block outputs four times as many.
        strides: stride of ``conv1`` and of the shortcut. Default 1.
    """

    features: int
    strides: int = 1

    @nn.compact
    def __call__(self, x: Array, *, train: bool) -> Array:
        """Maps ``x`` ``(batch, H, W, C)`` to ``(batch, H', W', 4 * features)``."""
        out_features = _BOTTLENECK_EXPANSION * self.features
        x = _conv_input(x, train)
        h = _conv(self.features, 1, 1, "conv0")(x)
        h = nn.relu(_batch_norm(train, "bn0")(h))
        h = _conv(self.features, 3, self.strides, "conv1")(_conv_input(h, train))
        h = nn.relu(_batch_norm(train, "bn1")(h))
        h = _conv(out_features, 1, 1, "conv2")(_conv_input(h, train))
        h = _batch_norm(train, "bn2")(h)
        shortcut = _shortcut(x, out_features, self.strides, train)
        chex.assert_equal_shape((h, shortcut))
        return nn.relu(h + shortcut)


_BLOCK_CLASSES = {"basic": ResNetBlock, "bottleneck": BottleneckResNetBlock}


def _min_size(stem: str, num_stages: int) -> tuple[str, int]:
    """The model's description for messages and its smallest image side: its total stride."""
    stem_stride = 4 if stem == "imagenet" else 1
    description = f"ResNet with the {stem!r} stem and {num_stages} stages"
    return description, stem_stride * 2 ** (num_stages - 1)


@register_model("resnet")
class ResNet(nn.Module):
    """A residual network in torchvision's layout, for ImageNet-sized or CIFAR-sized images.

    The ImageNet stem is ``stem_conv`` (7x7, stride 2, padding 3) -> ``stem_bn`` -> relu ->
    max pool 3x3, stride 2, padding 1 (padded with -inf, as PyTorch); the CIFAR stem is a 3x3
    stride-1 ``stem_conv`` (padding 1) -> ``stem_bn`` -> relu. Stage ``i`` has
    ``stage_sizes[i]`` blocks named ``stage{i}_block{j}`` of ``width * 2**i`` channels (times 4
    out of a bottleneck block); the first block of every stage after the first has stride 2.
    The last map is averaged over height and width (``features``, sown) and fed to the dense
    ``head``. Every conv is bias-free; batch norm has momentum 0.9 (PyTorch's 0.1) and epsilon
    1e-5. Images must be at least the total stride on each side (32 for the ImageNet stem with
    four stages, 8 for the CIFAR stem).

    Batch statistics versus PyTorch: in training both normalise with the biased batch variance
    (divided by ``n = batch * height * width``), but PyTorch updates ``running_var`` with the
    unbiased variance (divided by ``n - 1``) while Flax 0.12.8 updates ``batch_stats/var``
    with the biased one: ``var <- 0.9 var + 0.1 biased``, against PyTorch's ``running_var <-
    0.9 running_var + 0.1 biased * n / (n - 1)``. Outputs agree in both modes for the same
    statistics, so imported running statistics can be used as they are; only the running
    variances of the two frameworks drift apart during training, by a factor of up to
    ``n / (n - 1)`` (1.01 for a batch of 2 at 7x7, less for larger ``n``). The batch
    variance takes two passes, ``mean((x - mean(x))**2)``, as in PyTorch: Flax's default
    one pass, ``E[x**2] - E[x]**2``, loses float32 precision when a channel's mean is large
    against its spread.

    Attributes:
        stage_sizes: number of blocks in each stage, e.g. ``(2, 2, 2, 2)`` for ResNet-18.
        block: ``"basic"`` (``ResNetBlock``) or ``"bottleneck"`` (``BottleneckResNetBlock``).
            Default ``"basic"``.
        num_outputs: number of classes. Default 1000.
        stem: ``"imagenet"`` or ``"cifar"``. Default ``"imagenet"``.
        width: channels of the stem and of the first stage. Default 64.
        input_shape: per-example ``(height, width, channels)``. Default ``None``.
    """

    stage_sizes: tuple[int, ...]
    block: str = "basic"
    num_outputs: int = 1000
    stem: str = "imagenet"
    width: int = 64
    input_shape: tuple[int, ...] | None = None

    def __post_init__(self) -> None:
        object.__setattr__(
            self, "stage_sizes", check_positive_ints(self.stage_sizes, "stage_sizes")
        )
        check_choice(self.block, "block", BLOCKS)
        check_positive_int(self.num_outputs, "num_outputs")
        check_choice(self.stem, "stem", STEMS)
        check_positive_int(self.width, "width")
        shape = _image_input_shape(self.input_shape, *_min_size(self.stem, len(self.stage_sizes)))
        object.__setattr__(self, "input_shape", shape)
        super().__post_init__()

    @nn.compact
    def __call__(self, x: ArrayLike, *, train: bool) -> Array:
        """Maps images ``(batch, height, width, channels)`` to logits ``(batch, num_outputs)``.

        Args:
            x: NHWC images; integer images are cast to float32.
            train: normalise with batch statistics and update the running averages (pass
                ``mutable=["batch_stats"]``); otherwise use the running averages.

        Raises:
            ValueError: at trace time, if ``x`` is not NHWC or smaller than the total stride.
        """
        h = _images(x, self.input_shape, *_min_size(self.stem, len(self.stage_sizes)))
        batch = h.shape[0]
        if self.stem == "imagenet":
            h = _conv(self.width, 7, 2, "stem_conv")(h)
        else:
            h = _conv(self.width, 3, 1, "stem_conv")(h)
        h = nn.relu(_batch_norm(train, "stem_bn")(h))
        if self.stem == "imagenet":
            h = nn.max_pool(h, (3, 3), strides=(2, 2), padding=_PAD_1)
        block_class = _BLOCK_CLASSES[self.block]
        for i, num_blocks in enumerate(self.stage_sizes):
            for j in range(num_blocks):
                strides = 2 if i > 0 and j == 0 else 1
                h = block_class(self.width * 2**i, strides, name=f"stage{i}_block{j}")(
                    h, train=train
                )
            self.sow("intermediates", f"stage_{i}", h)
        h = jnp.mean(h, axis=(1, 2))
        self.sow("intermediates", "features", h)
        logits = nn.Dense(self.num_outputs, name="head")(h)
        chex.assert_shape(logits, (batch, self.num_outputs))
        return logits


ResNet18 = functools.partial(ResNet, stage_sizes=(2, 2, 2, 2), block="basic")
"""ResNet-18: ``ResNet`` with basic blocks ``(2, 2, 2, 2)``; 11,689,512 parameters (ImageNet stem,
1000 classes), 11,173,962 with the CIFAR stem and 10 classes."""
ResNet34 = functools.partial(ResNet, stage_sizes=(3, 4, 6, 3), block="basic")
"""ResNet-34: ``ResNet`` with basic blocks ``(3, 4, 6, 3)``; 21,797,672 parameters (ImageNet
stem, 1000 classes)."""
ResNet50 = functools.partial(ResNet, stage_sizes=(3, 4, 6, 3), block="bottleneck")
"""ResNet-50: ``ResNet`` with bottleneck blocks ``(3, 4, 6, 3)``; 25,557,032 parameters
(ImageNet stem, 1000 classes)."""

register_model("resnet18", description="ResNet-18: basic blocks (2, 2, 2, 2).")(ResNet18)
register_model("resnet34", description="ResNet-34: basic blocks (3, 4, 6, 3).")(ResNet34)
register_model("resnet50", description="ResNet-50: bottleneck blocks (3, 4, 6, 3).")(ResNet50)
