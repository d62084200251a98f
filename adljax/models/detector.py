"""A single-stage, anchor-free detector (FCOS-style) on adljax's ResNet blocks.

Why anchor-free: an FCOS-style head predicts, at every feature-map point, class scores,
the distances from the point to the four sides of its object and a "centerness". There are
no anchor shapes to tune and one prediction per point instead of several, so the head is
small and the target assignment (inside the compiled step) is a few masked array ops
over points x ground-truth boxes; both matter on two CPU cores. Boxes of varied aspect
ratios need no anchor ratios, and the centerness down-weights the poor boxes predicted far
from an object's centre, which anchor-based heads handle with extra anchors instead.

Synopsis::

    model = Detector(num_outputs=3, input_shape=(64, 64, 3))   # or create_model("detector")
    variables = model.init(jax.random.key(0), images, train=False)
    out = model.apply(variables, images, train=False)
    out["class_logits"]     # (B, P, num_outputs)
    out["box_distances"]    # (B, P, 4) point to (left, top, right, bottom), in strides
    out["points"], out["strides"]   # (P, 2) and (P,): where each prediction looks

Parameter names: ``stem_conv``, ``stem_bn``, ``stage{i}_block{j}`` (`ResNetBlock`),
``lateral{k}`` (one per output stride), and the shared ``head`` (`DetectionHead`):
``head/tower_conv{j}``, ``head/tower_norm{j}``, ``head/class_logits``,
``head/box_distances``, ``head/centerness``.
"""

import math

import chex
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from adljax._validate import check_positive_int, check_positive_ints
from adljax.models._checks import check_input, check_input_shape
from adljax.models.cnn import _batch_norm
from adljax.models.registry import register_model
from adljax.models.resnet import ResNetBlock, _conv
from adljax.ops.anchors import pyramid_centre_points
from adljax.typing import Array, ArrayLike

_PRIOR = 0.01  # initial foreground probability of every class logit (RetinaNet's prior)
_GROUPS = 8  # group-norm groups of the head tower


def _stage_strides(num_stages: int) -> tuple[int, ...]:
    """Strides of the backbone's stage outputs: the stem halves, every stage halves."""
    return tuple(2 ** (i + 2) for i in range(num_stages))


@register_model("detector")
class Detector(nn.Module):
    """FCOS-style single-stage detector: ResNet backbone, top-down pyramid, shared head.

    The backbone is a stride-2 3x3 ``stem_conv`` + ``stem_bn`` + relu, then stages of
    `ResNetBlock` s (``width * 2**i`` channels, each stage halving the resolution: stage
    ``i`` has stride ``2**(i + 2)``). The maps at ``strides`` get a 1x1 ``lateral`` conv to
    ``head_width`` channels and are summed top-down (nearest upsampling), as in a feature
    pyramid. One head, shared by all levels, runs ``tower_depth`` 3x3 conv + group norm +
    relu layers, then three 3x3 convs: class logits (bias initialised to the prior 0.01),
    box distances (``softplus``, in strides: `adljax.ops.decode_ltrb` turns them into boxes)
    and a centerness logit.

    Outputs are a dict: ``class_logits`` ``(B, P, num_outputs)``, ``box_distances``
    ``(B, P, 4)``, ``centerness_logits`` ``(B, P)``, and the constant ``points`` ``(P, 2)``
    (image ``x, y`` in pixels) and ``strides`` ``(P,)`` of the ``P`` predictions, finest
    level first, row-major (`detector_points`).

    Attributes:
        num_outputs: number of object classes. Default 3.
        input_shape: ``(height, width, channels)``; height and width multiples of the
            largest stride. Default ``(64, 64, 3)``.
        width: channels of the stem and the first stage. Default 16.
        stage_sizes: `ResNetBlock` s per stage. Default ``(1, 1, 1)`` (strides 4, 8, 16).
        strides: the pyramid levels predicted from, a subset of the stage strides.
            Default ``(8, 16)``.
        head_width: channels of the pyramid and the head. Default 64.
        tower_depth: conv layers of the head before its outputs. Default 2.
    """

    num_outputs: int = 3
    input_shape: tuple[int, ...] = (64, 64, 3)
    width: int = 16
    stage_sizes: tuple[int, ...] = (1, 1, 1)
    strides: tuple[int, ...] = (8, 16)
    head_width: int = 64
    tower_depth: int = 2

    def __post_init__(self) -> None:
        check_positive_int(self.num_outputs, "num_outputs")
        check_positive_int(self.width, "width")
        check_positive_int(self.head_width, "head_width")
        check_positive_int(self.tower_depth, "tower_depth")
        if self.head_width % _GROUPS:
            raise ValueError(
                f"`head_width` must be a multiple of {_GROUPS} (group norm), got {self.head_width}"
            )
        stage_sizes = check_positive_ints(self.stage_sizes, "stage_sizes")
        object.__setattr__(self, "stage_sizes", stage_sizes)
        strides = check_positive_ints(self.strides, "strides")
        available = _stage_strides(len(stage_sizes))
        if list(strides) != sorted(set(strides)) or not set(strides) <= set(available):
            raise ValueError(
                f"`strides` must be increasing stage strides, a subset of {available}, "
                f"got {strides}"
            )
        object.__setattr__(self, "strides", strides)
        shape = check_input_shape(self.input_shape)
        if shape is None or len(shape) != 3 or shape[0] % strides[-1] or shape[1] % strides[-1]:
            raise ValueError(
                f"`input_shape` must be (height, width, channels) with height and width "
                f"multiples of {strides[-1]}, got {shape!r}"
            )
        object.__setattr__(self, "input_shape", shape)
        super().__post_init__()

    @nn.compact
    def __call__(self, x: ArrayLike, *, train: bool) -> dict[str, Array]:
        """Maps images ``(B, height, width, channels)`` to the dict of predictions above.

        Raises:
            ValueError: at trace time, if ``x`` does not have shape ``(B, *input_shape)``.
        """
        x = jnp.asarray(x)
        check_input(x, name="x", min_rank=4, input_shape=self.input_shape)
        h = x.astype(jnp.float32) if not jnp.issubdtype(x.dtype, jnp.inexact) else x
        batch = h.shape[0]
        h = nn.relu(_batch_norm(train, "stem_bn")(_conv(self.width, 3, 2, "stem_conv")(h)))
        features = {}
        for i, num_blocks in enumerate(self.stage_sizes):
            for j in range(num_blocks):
                block = ResNetBlock(
                    self.width * 2**i, 2 if j == 0 else 1, name=f"stage{i}_block{j}"
                )
                h = block(h, train=train)
            features[2 ** (i + 2)] = h
        pyramid = self._top_down([features[s] for s in self.strides])
        head = DetectionHead(self.num_outputs, self.head_width, self.tower_depth, name="head")
        levels = [head(level) for level in pyramid]
        out = {
            name: jnp.concatenate([level[name] for level in levels], axis=1)
            for name in ("class_logits", "box_distances", "centerness_logits")
        }
        points, strides = detector_points(self)
        chex.assert_shape(out["class_logits"], (batch, len(strides), self.num_outputs))
        chex.assert_shape(out["box_distances"], (batch, len(strides), 4))
        return out | {"points": jnp.asarray(points), "strides": jnp.asarray(strides)}

    def _top_down(self, maps: list[Array]) -> list[Array]:
        """Lateral 1x1 convs, then each level plus the nearest-upsampled coarser one."""
        laterals = [
            nn.Conv(self.head_width, (1, 1), name=f"lateral{k}")(m) for k, m in enumerate(maps)
        ]
        levels = [laterals[-1]]
        for k in reversed(range(len(laterals) - 1)):
            factor = self.strides[k + 1] // self.strides[k]
            coarser = jnp.repeat(jnp.repeat(levels[0], factor, axis=1), factor, axis=2)
            levels.insert(0, laterals[k] + coarser)
        for level, stride in zip(levels, self.strides, strict=True):
            self.sow("intermediates", f"pyramid_{stride}", level)
        return levels


class DetectionHead(nn.Module):
    """The head shared by every pyramid level: a conv tower, then three 3x3 output convs.

    Maps one level ``(B, h, w, C)`` to flattened (row-major)
    ``class_logits`` ``(B, h * w, num_classes)``, ``box_distances`` ``(B, h * w, 4)``
    (``softplus``: positive, in strides) and ``centerness_logits`` ``(B, h * w)``.

    Attributes:
        num_classes: class logits per point.
        width: channels of the tower.
        depth: tower layers (3x3 conv, group norm, relu).
    """

    num_classes: int
    width: int
    depth: int

    @nn.compact
    def __call__(self, level: Array) -> dict[str, Array]:
        h = level
        for j in range(self.depth):
            h = _head_conv(self.width, f"tower_conv{j}")(h)
            h = nn.relu(
                nn.GroupNorm(num_groups=_GROUPS, use_fast_variance=False, name=f"tower_norm{j}")(h)
            )
        prior = -math.log((1 - _PRIOR) / _PRIOR)
        logits = _head_conv(self.num_classes, "class_logits", bias=prior)(h)
        distances = jax.nn.softplus(_head_conv(4, "box_distances")(h))
        centerness = _head_conv(1, "centerness")(h)
        b = level.shape[0]
        return {
            "class_logits": logits.reshape(b, -1, self.num_classes),
            "box_distances": distances.reshape(b, -1, 4),
            "centerness_logits": centerness.reshape(b, -1),
        }


def _head_conv(features: int, name: str, bias: float = 0.0) -> nn.Conv:
    """A 3x3 head conv with small normal weights (std 0.01) and a constant bias."""
    return nn.Conv(
        features,
        (3, 3),
        padding=((1, 1), (1, 1)),
        kernel_init=nn.initializers.normal(0.01),
        bias_init=nn.initializers.constant(bias),
        name=name,
    )


def detector_points(model: Detector) -> tuple[np.ndarray, np.ndarray]:
    """The points ``(P, 2)`` (``x, y`` pixels) and strides ``(P,)`` of ``model``'s outputs."""
    height, width = model.input_shape[:2]
    return pyramid_centre_points(height, width, model.strides)
