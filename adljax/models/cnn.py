"""ConvNets for small images (NHWC): the Flax MNIST CNN, LeNet-5 and a VGG-style network.

Synopsis::

    model = SimpleCNN(num_outputs=10)                     # or create_model("cnn", ...)
    x = jnp.zeros((batch, 28, 28, 1))
    variables = model.init(jax.random.key(0), x, train=False)
    logits, state = model.apply(variables, x, train=False, mutable=["intermediates"])
    (features,) = state["intermediates"]["features"]      # (batch, 256): the head's input
    (stage_1,) = state["intermediates"]["stage_1"]        # (batch, 7, 7, 64)

Every model here sows the output of each stage (convolutions plus the pooling that ends them)
as ``intermediates/stage_{i}`` and the vector fed to the classifier head as
``intermediates/features``. Convolutions use explicit padding (``((1, 1), (1, 1))`` is PyTorch's
``padding=1``), so weights imported from PyTorch give the same outputs.
"""

import functools
from collections.abc import Callable, Sequence

import chex
import flax.linen as nn
import jax.numpy as jnp
import numpy as np

from adljax._validate import check_choice, check_positive_int, check_positive_ints
from adljax.models import shallow_conv
from adljax.models._checks import check_input, check_input_shape
from adljax.models._materialize import materialize
from adljax.models.activations import get_activation
from adljax.models.registry import register_model
from adljax.typing import Array, ArrayLike

POOLINGS = ("max", "avg")
"""The ``pooling`` choices of ``LeNet5``."""

_PAD_1 = ((1, 1), (1, 1))  # PyTorch padding=1
_PAD_2 = ((2, 2), (2, 2))  # PyTorch padding=2


def _check_dropout_rate(rate: object) -> float:
    """Returns ``rate`` if it is a number in ``[0, 1)``, else raises ``ValueError``."""
    if isinstance(rate, bool) or not isinstance(rate, int | float) or not 0.0 <= rate < 1.0:
        raise ValueError(f"`dropout_rate` must be in [0, 1), got {rate!r}")
    return rate


def _check_bool(value: object, name: str) -> bool:
    """Returns ``value`` if it is a bool, else raises ``ValueError`` naming ``name``."""
    if not isinstance(value, bool):
        raise ValueError(f"`{name}` must be a bool, got {value!r}")
    return value


def _check_min_size(model: str, min_size: int, height: int, width: int) -> None:
    """Raises ``ValueError`` unless the image is at least ``min_size`` x ``min_size``."""
    if height < min_size or width < min_size:
        raise ValueError(
            f"{model} needs images of at least {min_size}x{min_size} (height x width), "
            f"got {height}x{width}"
        )


def _image_input_shape(
    input_shape: Sequence[int] | None, model: str, min_size: int
) -> tuple[int, ...] | None:
    """Checks an NHWC model's ``input_shape`` attribute: ``(height, width, channels)`` or None."""
    input_shape = check_input_shape(input_shape)
    if input_shape is None:
        return None
    if len(input_shape) != 3:
        raise ValueError(
            f"`input_shape` must be (height, width, channels) for {model}, got {input_shape!r}"
        )
    _check_min_size(model, min_size, *input_shape[:2])
    return input_shape


def _images(x: ArrayLike, input_shape: tuple[int, ...] | None, model: str, min_size: int) -> Array:
    """Checks that ``x`` is an NHWC batch ``(batch, height, width, channels)``, as floats."""
    x = jnp.asarray(x)
    check_input(x, name="x", min_rank=4, max_rank=4, input_shape=input_shape)
    _check_min_size(model, min_size, *x.shape[1:3])
    if not jnp.issubdtype(x.dtype, jnp.inexact):
        x = x.astype(jnp.float32)
    return x


def _batch_norm(train: bool, name: str) -> nn.BatchNorm:
    """PyTorch-equivalent batch norm over the last axis (momentum 0.9 == torch's 0.1,
    epsilon 1e-5): ``(..., C) -> (..., C)``. Every adljax model's batch norm is built here.

    The batch variance takes two passes, ``mean((x - mean(x))**2)``, as PyTorch's: Flax's
    default ``E[x**2] - E[x]**2`` loses float32 precision as ``(mean / std)**2``, two passes
    as ``mean / std`` (outputs 1e-3 vs 1e-5 off PyTorch's at a channel mean of 25 std;
    ``tests/models/test_batchnorm_parity.py``), for 2-7% of a train step on the CPU.
    """
    return nn.BatchNorm(
        use_running_average=not train,
        momentum=0.9,
        epsilon=1e-5,
        use_fast_variance=False,
        name=name,
    )


def _pool(h: Array, kind: str) -> Array:
    """A 2x2, stride-2, unpadded max or average pool: ``(B, H, W, C) -> (B, H//2, W//2, C)``.

    The windows do not overlap, so the pool is a reshape and elementwise operations (an odd
    last row or column is dropped, as by an unpadded pool). Same values and gradients as
    ``nn.max_pool`` / ``nn.avg_pool`` (the max routes its gradient to the first maximum of
    each window, as they do) but no ``reduce_window``: on XLA:CPU the max pool's gradient
    (select-and-scatter) is 7x slower and the average pool's zero-padded windows cost a
    full-size buffer per step (``benchmarks/NOTES.md``).

    The average adds the window's two rows elementwise (scaled by 1/4) and sums the column
    pairs. A single ``mean`` over both window axes is a reduction into which XLA:CPU fuses
    the preceding ReLU, and its YNNPACK reduction then reads the ReLU's zero as a
    materialized full-size buffer written every step; the row sum keeps the ReLU and the
    scale in an ordinary elementwise fusion (the MNIST CNN's step 0.91x the time).
    """
    batch, height, width, channels = h.shape
    h = h[:, : height // 2 * 2, : width // 2 * 2]
    windows = h.reshape(batch, height // 2, 2, width // 2, 2, channels)
    if kind == "avg":
        rows = (windows[:, :, 0] + windows[:, :, 1]) * 0.25  # (B, H//2, W//2, 2, C)
        return rows.sum(axis=3)
    taps = [windows[:, :, dy, :, dx] for dy in range(2) for dx in range(2)]
    peak = functools.reduce(jnp.maximum, taps)
    pooled = peak  # reached only where no tap equals the peak: NaN propagates
    for tap in reversed(taps):  # the first tap equal to the peak wins, and gets the gradient
        pooled = jnp.where(tap == peak, tap, pooled)
    return pooled


def _conv_input(x: Array, train: bool) -> Array:
    """A conv's input, `materialize` d in training: XLA:CPU would otherwise recompute the
    batch norm / ReLU / residual chain that produced it inside the kernel gradient."""
    return materialize(x) if train else x


def _conv_bn_act(
    h: Array,
    *,
    features: int,
    kernel: int,
    padding: tuple[tuple[int, int], tuple[int, int]] | str,
    batch_norm: bool,
    train: bool,
    activation: Callable[[Array], Array],
    names: tuple[str, str],
) -> Array:
    """``Conv -> [BatchNorm] -> activation`` inside the calling compact module. With batch
    norm the conv's input (after the first layer: the previous layer's normalised output)
    goes through `_conv_input`.

    ``names`` are the conv's and the batch norm's; the conv has a bias only without batch norm.
    """
    conv_name, bn_name = names
    h = shallow_conv.Conv(
        features, (kernel, kernel), padding=padding, use_bias=not batch_norm, name=conv_name
    )(_conv_input(h, train) if batch_norm else h)
    if batch_norm:
        h = _batch_norm(train, bn_name)(h)
    return activation(h)


def torch_flatten_permutation(channels: int, height: int, width: int) -> np.ndarray:
    """Row order that turns a PyTorch ``Linear`` after ``x.flatten(1)`` into a Flax ``Dense``.

    PyTorch flattens a feature map in ``(C, H, W)`` order, Flax (NHWC) in ``(H, W, C)`` order.
    ``perm[i]`` is the ``(C, H, W)``-flat index of the ``i``-th ``(H, W, C)``-flat element, so
    ``kernel = linear.weight.T[perm]``, shape ``(height * width * channels, out)``, makes
    ``nn.Dense`` on ``x_nhwc.reshape(B, -1)`` equal ``linear`` on ``x_nchw.flatten(1)``.

    Returns:
        Integer array of shape ``(channels * height * width,)``.

    Raises:
        ValueError: if a size is not a positive integer.
    """
    sizes = {"channels": channels, "height": height, "width": width}
    for name, size in sizes.items():
        check_positive_int(size, name)
    flat_chw = np.arange(channels * height * width).reshape(channels, height, width)
    return flat_chw.transpose(1, 2, 0).reshape(-1)


@register_model("cnn")
class SimpleCNN(nn.Module):
    """The Flax MNIST example CNN: two conv-ReLU-avg-pool stages and a 256-unit dense layer.

    ``Conv(32, 3x3) -> ReLU -> AvgPool 2x2 -> Conv(64, 3x3) -> ReLU -> AvgPool 2x2 -> flatten
    -> Dense(256) -> ReLU -> [Dropout] -> Dense(num_outputs)``. The 3x3 convolutions are padded
    by 1 (the same as the example's ``'SAME'`` at stride 1), so 28x28 maps become 14x14 then
    7x7 and 8x8 digits become 4x4 then 2x2. On 28x28x1 with 10 classes it has 824,458
    parameters. With ``batch_norm`` each conv (then without bias) is followed by batch norm.
    Images must be at least 4x4.

    Attributes:
        num_outputs: number of classes. Default 10.
        dropout_rate: dropout on the 256 features before the head, in ``[0, 1)``. Default 0.0.
        batch_norm: batch norm after each conv (momentum 0.9, epsilon 1e-5). Default False.
        input_shape: per-example ``(height, width, channels)``; when set, ``x`` is checked
            against it. Default ``None`` (any image of at least 4x4).
    """

    num_outputs: int = 10
    dropout_rate: float = 0.0
    batch_norm: bool = False
    input_shape: tuple[int, ...] | None = None

    def __post_init__(self) -> None:
        check_positive_int(self.num_outputs, "num_outputs")
        _check_dropout_rate(self.dropout_rate)
        _check_bool(self.batch_norm, "batch_norm")
        shape = _image_input_shape(self.input_shape, "SimpleCNN", 4)
        object.__setattr__(self, "input_shape", shape)
        super().__post_init__()

    @nn.compact
    def __call__(self, x: ArrayLike, *, train: bool) -> Array:
        """Maps images ``(batch, height, width, channels)`` to logits ``(batch, num_outputs)``.

        Args:
            x: NHWC images; integer images are cast to float32.
            train: use batch statistics and dropout (pass ``rngs={"dropout": key}`` when
                ``dropout_rate > 0`` and ``mutable=["batch_stats"]`` when ``batch_norm``);
                otherwise use the running averages and no dropout.
        """
        h = _images(x, self.input_shape, "SimpleCNN", 4)
        batch = h.shape[0]
        for i, features in enumerate((32, 64)):
            h = _conv_bn_act(
                h,
                features=features,
                kernel=3,
                padding=_PAD_1,
                batch_norm=self.batch_norm,
                train=train,
                activation=nn.relu,
                names=(f"conv_{i}", f"bn_{i}"),
            )
            h = _pool(h, "avg")
            self.sow("intermediates", f"stage_{i}", h)
        h = nn.relu(nn.Dense(256, name="dense_0")(h.reshape(batch, -1)))
        self.sow("intermediates", "features", h)
        if self.dropout_rate > 0:
            h = nn.Dropout(self.dropout_rate, deterministic=not train, name="dropout")(h)
        logits = nn.Dense(self.num_outputs, name="head")(h)
        chex.assert_shape(logits, (batch, self.num_outputs))
        return logits


@register_model("lenet")
class LeNet5(nn.Module):
    """LeNet-5: two conv-pool stages and three dense layers, for images of at least 28x28.

    ``Conv(6, 5x5, padding 2) -> act -> pool 2x2 -> Conv(16, 5x5, unpadded) -> act -> pool 2x2
    -> flatten -> Dense(120) -> act -> Dense(84) -> act -> [Dropout] -> Dense(num_outputs)``.
    On 28x28 the second stage is 5x5x16 = 400 features; on 28x28x1 with 10 classes the model
    has 61,706 parameters. ``activation="tanh", pooling="avg"`` is the classic network;
    the defaults (ReLU, max pooling) train faster.

    Attributes:
        num_outputs: number of classes. Default 10.
        activation: a name from ``ACTIVATIONS``. Default ``"relu"``.
        pooling: ``"max"`` or ``"avg"``. Default ``"max"``.
        dropout_rate: dropout on the 84 features before the head, in ``[0, 1)``. Default 0.0.
        batch_norm: batch norm after each conv (then without bias). Default False.
        input_shape: per-example ``(height, width, channels)``, at least 28x28. Default ``None``.
    """

    num_outputs: int = 10
    activation: str = "relu"
    pooling: str = "max"
    dropout_rate: float = 0.0
    batch_norm: bool = False
    input_shape: tuple[int, ...] | None = None

    def __post_init__(self) -> None:
        check_positive_int(self.num_outputs, "num_outputs")
        get_activation(self.activation)
        check_choice(self.pooling, "pooling", POOLINGS)
        _check_dropout_rate(self.dropout_rate)
        _check_bool(self.batch_norm, "batch_norm")
        shape = _image_input_shape(self.input_shape, "LeNet5", 28)
        object.__setattr__(self, "input_shape", shape)
        super().__post_init__()

    @nn.compact
    def __call__(self, x: ArrayLike, *, train: bool) -> Array:
        """Maps images ``(batch, height, width, channels)`` to logits ``(batch, num_outputs)``.

        Args:
            x: NHWC images of at least 28x28; integer images are cast to float32.
            train: use batch statistics and dropout (see ``SimpleCNN``).

        Raises:
            ValueError: at trace time, if ``x`` is not NHWC or smaller than 28x28.
        """
        h = _images(x, self.input_shape, "LeNet5", 28)
        batch = h.shape[0]
        activation = get_activation(self.activation)
        for i, (features, padding) in enumerate(((6, _PAD_2), (16, "VALID"))):
            h = _conv_bn_act(
                h,
                features=features,
                kernel=5,
                padding=padding,
                batch_norm=self.batch_norm,
                train=train,
                activation=activation,
                names=(f"conv_{i}", f"bn_{i}"),
            )
            h = _pool(h, self.pooling)
            self.sow("intermediates", f"stage_{i}", h)
        h = h.reshape(batch, -1)
        for i, features in enumerate((120, 84)):
            h = activation(nn.Dense(features, name=f"dense_{i}")(h))
        self.sow("intermediates", "features", h)
        if self.dropout_rate > 0:
            h = nn.Dropout(self.dropout_rate, deterministic=not train, name="dropout")(h)
        logits = nn.Dense(self.num_outputs, name="head")(h)
        chex.assert_shape(logits, (batch, self.num_outputs))
        return logits


def _vgg_min_size(stage_features: tuple[int, ...]) -> tuple[str, int]:
    """The model's description for messages and its smallest image side (one per pool)."""
    return f"VGG with {len(stage_features)} stages", 2 ** len(stage_features)


@register_model("vgg")
class VGG(nn.Module):
    """A VGG-style ConvNet: stages of 3x3 convs and a 2x2 max pool, then global average pool.

    Stage ``i`` is ``convs_per_stage`` times ``Conv(stage_features[i], 3x3, padding 1) ->
    [BatchNorm] -> ReLU``, then a 2x2 max pool that halves height and width. The last stage's
    map is averaged over height and width (global average pooling, not flattening: the head
    does not depend on the image size and has few parameters), then ``[Dropout] ->
    Dense(num_outputs)``. Images must be at least ``2 ** len(stage_features)`` on each side:
    the default three stages map 8x8 digits to 4x4, 2x2, 1x1.

    Attributes:
        stage_features: channels of each stage. Default ``(32, 64, 128)``.
        convs_per_stage: 3x3 convolutions per stage. Default 2.
        num_outputs: number of classes. Default 10.
        dropout_rate: dropout on the pooled features before the head, in ``[0, 1)``.
            Default 0.0.
        batch_norm: batch norm after each conv (then without bias). Default True.
        input_shape: per-example ``(height, width, channels)``. Default ``None``.
    """

    stage_features: tuple[int, ...] = (32, 64, 128)
    convs_per_stage: int = 2
    num_outputs: int = 10
    dropout_rate: float = 0.0
    batch_norm: bool = True
    input_shape: tuple[int, ...] | None = None

    def __post_init__(self) -> None:
        stage_features = check_positive_ints(self.stage_features, "stage_features")
        object.__setattr__(self, "stage_features", stage_features)
        check_positive_int(self.convs_per_stage, "convs_per_stage")
        check_positive_int(self.num_outputs, "num_outputs")
        _check_dropout_rate(self.dropout_rate)
        _check_bool(self.batch_norm, "batch_norm")
        shape = _image_input_shape(self.input_shape, *_vgg_min_size(stage_features))
        object.__setattr__(self, "input_shape", shape)
        super().__post_init__()

    @nn.compact
    def __call__(self, x: ArrayLike, *, train: bool) -> Array:
        """Maps images ``(batch, height, width, channels)`` to logits ``(batch, num_outputs)``.

        Args:
            x: NHWC images; integer images are cast to float32.
            train: use batch statistics and dropout (see ``SimpleCNN``).

        Raises:
            ValueError: at trace time, if ``x`` is not NHWC or too small for the stages.
        """
        h = _images(x, self.input_shape, *_vgg_min_size(self.stage_features))
        batch = h.shape[0]
        for i, features in enumerate(self.stage_features):
            for j in range(self.convs_per_stage):
                h = _conv_bn_act(
                    h,
                    features=features,
                    kernel=3,
                    padding=_PAD_1,
                    batch_norm=self.batch_norm,
                    train=train,
                    activation=nn.relu,
                    names=(f"stage{i}_conv{j}", f"stage{i}_bn{j}"),
                )
            h = _pool(h, "max")
            self.sow("intermediates", f"stage_{i}", h)
        h = jnp.mean(h, axis=(1, 2))
        chex.assert_shape(h, (batch, self.stage_features[-1]))
        self.sow("intermediates", "features", h)
        if self.dropout_rate > 0:
            h = nn.Dropout(self.dropout_rate, deterministic=not train, name="dropout")(h)
        logits = nn.Dense(self.num_outputs, name="head")(h)
        chex.assert_shape(logits, (batch, self.num_outputs))
        return logits
