"""The detection task: target assignment on padded ground truth, focal, GIoU and centerness
losses, all inside the compiled step.

Batches carry padded ground truth of fixed shape: ``"boxes"`` ``(B, M, 4)`` corner boxes in
pixels, ``"labels"`` ``(B, M)`` int class ids and ``"box_mask"`` ``(B, M)`` (1 for a real
box, 0 for a padding slot); ``"mask"`` ``(B,)``, when present, marks padded images as
everywhere in adljax. Model outputs are the dict of `adljax.models.Detector`.

Assignment (FCOS with centre sampling): a point is a candidate for a box when it lies
inside the box, within ``1.5`` strides of the box's centre, and the box's largest distance
from the point suits the point's level (a point of stride ``s`` takes distances in
``(s, 2 s]``, the finest level from 0, the coarsest without bound). A point with several
candidates takes the smallest box; a point with none is background.
"""

import dataclasses
from typing import ClassVar, NamedTuple

import chex
import jax
import jax.numpy as jnp
import optax

from adljax.ops.anchors import decode_ltrb
from adljax.ops.boxes import area_xyxy, giou_xyxy
from adljax.tasks import register_task
from adljax.typing import Array, Batch, Metrics

CENTRE_RADIUS = 1.5
"""Centre sampling radius, in strides."""
FOCAL_ALPHA, FOCAL_GAMMA = 0.25, 2.0
"""Focal loss weights (RetinaNet's)."""


class Targets(NamedTuple):
    """Per-point training targets of one image (``P`` points, ``C`` classes).

    Attributes:
        positive: ``(P,)`` bool, the point is assigned an object.
        classes: ``(P, C)`` float one-hot class target (zeros for background).
        boxes: ``(P, 4)`` the assigned object's corner box (zeros for background).
        centerness: ``(P,)`` ``sqrt(min(l, r) / max(l, r) * min(t, b) / max(t, b))`` of the
            point in its box (0 for background).
    """

    positive: Array
    classes: Array
    boxes: Array
    centerness: Array


def assign_targets(
    points: Array,
    strides: Array,
    boxes: Array,
    labels: Array,
    box_mask: Array,
    num_classes: int,
) -> Targets:
    """Assigns each point of one image its object, as described in the module docstring.

    Args:
        points: ``(P, 2)`` image points ``(x, y)``.
        strides: ``(P,)`` each point's stride.
        boxes: ``(M, 4)`` padded ground-truth corner boxes.
        labels: ``(M,)`` int class ids.
        box_mask: ``(M,)`` 1 for a real box, 0 for padding.
        num_classes: C.

    Returns:
        `Targets` of shapes ``(P,)``, ``(P, C)``, ``(P, 4)``, ``(P,)``.
    """
    chex.assert_shape(points, (None, 2))
    chex.assert_shape(boxes, (None, 4))
    chex.assert_equal_shape((labels, box_mask))
    xy = points[:, None, :]
    distances = jnp.concatenate([xy - boxes[None, :, :2], boxes[None, :, 2:] - xy], -1)
    inside = jnp.min(distances, axis=-1) > 0
    centre = (boxes[None, :, :2] + boxes[None, :, 2:]) / 2
    near_centre = jnp.all(jnp.abs(xy - centre) < CENTRE_RADIUS * strides[:, None, None], -1)
    reach = jnp.max(distances, axis=-1)
    lower = jnp.where(strides == jnp.min(strides), 0.0, strides)[:, None]
    upper = jnp.where(strides == jnp.max(strides), jnp.inf, 2 * strides)[:, None]
    candidate = inside & near_centre & (reach > lower) & (reach <= upper) & (box_mask[None] > 0)
    chosen = jnp.argmin(jnp.where(candidate, area_xyxy(boxes)[None], jnp.inf), axis=1)
    positive = jnp.any(candidate, axis=1)
    assigned = jnp.take_along_axis(distances, chosen[:, None, None], axis=1)[:, 0]
    left_right, top_bottom = assigned[:, 0::2], assigned[:, 1::2]
    centerness = jnp.sqrt(
        jnp.clip(jnp.min(left_right, -1) / jnp.maximum(jnp.max(left_right, -1), 1e-6), 0, 1)
        * jnp.clip(jnp.min(top_bottom, -1) / jnp.maximum(jnp.max(top_bottom, -1), 1e-6), 0, 1)
    )
    classes = jax.nn.one_hot(labels[chosen], num_classes) * positive[:, None]
    return Targets(
        positive=positive,
        classes=classes,
        boxes=jnp.where(positive[:, None], boxes[chosen], 0.0),
        centerness=jnp.where(positive, centerness, 0.0),
    )


@dataclasses.dataclass(frozen=True)
class Detection:
    """Dense single-stage detection: sigmoid focal loss on every point and class, GIoU box
    loss on the positive points weighted by their centerness target (normalised by its sum),
    and binary cross-entropy on the centerness logits of the positive points.

    The class and centerness losses are normalised by the number of positive points in the
    batch. Metrics: ``loss`` (their sum), ``class_loss``, ``box_loss``, ``centerness_loss``
    and ``positives`` (assigned points per image); mAP comes from `evaluate_detections`.
    """

    name: ClassVar[str] = "detection"
    monitor: ClassVar[str] = "loss"
    monitor_mode: ClassVar[str] = "min"

    def loss_and_statistics(self, outputs: dict[str, Array], batch: Batch) -> tuple[Array, Metrics]:
        logits = outputs["class_logits"]
        batch_size, _, num_classes = logits.shape
        image_weight = jnp.asarray(batch.get("mask", jnp.ones((batch_size,))), jnp.float32)
        targets = jax.vmap(assign_targets, in_axes=(None, None, 0, 0, 0, None))(
            outputs["points"],
            outputs["strides"],
            jnp.asarray(batch["boxes"], jnp.float32),
            jnp.asarray(batch["labels"], jnp.int32),
            jnp.asarray(batch["box_mask"], jnp.float32),
            num_classes,
        )
        positive = targets.positive * image_weight[:, None]
        focal = optax.sigmoid_focal_loss(
            logits, targets.classes, alpha=FOCAL_ALPHA, gamma=FOCAL_GAMMA
        )
        class_sum = jnp.sum(jnp.sum(focal, axis=(1, 2)) * image_weight)
        predicted = decode_ltrb(outputs["points"], outputs["box_distances"], outputs["strides"])
        giou = giou_xyxy(predicted, targets.boxes)
        box_weight = targets.centerness * positive
        box_sum = jnp.sum(jnp.where(positive > 0, (1.0 - giou) * box_weight, 0.0))
        centerness_bce = optax.sigmoid_binary_cross_entropy(
            outputs["centerness_logits"], targets.centerness
        )
        centerness_sum = jnp.sum(centerness_bce * positive)
        statistics = {
            "images": jnp.sum(image_weight),
            "positives": jnp.sum(positive),
            "class_loss_sum": class_sum,
            "box_loss_sum": box_sum,
            "box_weight": jnp.sum(box_weight),
            "centerness_loss_sum": centerness_sum,
        }
        return self.metrics(statistics)["loss"], statistics

    def metrics(self, statistics: Metrics) -> Metrics:
        positives = jnp.maximum(statistics["positives"], 1.0)
        class_loss = statistics["class_loss_sum"] / positives
        box_loss = statistics["box_loss_sum"] / jnp.maximum(statistics["box_weight"], 1e-6)
        centerness_loss = statistics["centerness_loss_sum"] / positives
        return {
            "loss": class_loss + box_loss + centerness_loss,
            "class_loss": class_loss,
            "box_loss": box_loss,
            "centerness_loss": centerness_loss,
            "positives": statistics["positives"] / jnp.maximum(statistics["images"], 1.0),
        }


DETECTION = register_task(Detection())
"""The registered ``"detection"`` task."""
