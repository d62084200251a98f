"""Detections from a detector's outputs: scores, boxes, then fixed-shape NMS, all compiled.

``decode_detections`` is pure and runs under ``jax.jit``; the batch is a ``jax.vmap`` of the
per-image NMS, so every image yields exactly ``max_detections`` slots with a validity mask.
"""

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp

from adljax._validate import check_positive_int
from adljax.ops.anchors import decode_ltrb
from adljax.ops.boxes import clip_xyxy
from adljax.ops.nms import non_max_suppression
from adljax.typing import Array


class Detections(NamedTuple):
    """A batch of detections in fixed slots, best first per image.

    Attributes:
        boxes: ``(B, D, 4)`` corner boxes in pixels.
        scores: ``(B, D)`` in ``[0, 1]``.
        classes: ``(B, D)`` int32 class ids (-1 in invalid slots).
        valid: ``(B, D)`` bool; the valid slots of a row come first.
    """

    boxes: Array
    scores: Array
    classes: Array
    valid: Array


def point_scores(outputs: dict[str, Array]) -> Array:
    """Per point and class scores ``(B, P, C)``: ``sqrt(sigmoid(class) * sigmoid(centerness))``."""
    centerness = jax.nn.sigmoid(outputs["centerness_logits"])[..., None]
    return jnp.sqrt(jax.nn.sigmoid(outputs["class_logits"]) * centerness)


def decode_detections(
    outputs: dict[str, Array],
    image_size: tuple[int, int],
    *,
    max_detections: int = 100,
    pre_nms_top_k: int = 300,
    score_threshold: float = 0.05,
    iou_threshold: float = 0.6,
) -> Detections:
    """Turns `adljax.models.Detector` outputs into per-image detections.

    Every (point, class) pair with a score above ``score_threshold`` is a candidate box of
    that class; the ``pre_nms_top_k`` best candidates of an image go through per-class NMS.

    Args:
        outputs: the detector's dict (``class_logits`` ``(B, P, C)``, ``box_distances``
            ``(B, P, 4)``, ``centerness_logits`` ``(B, P)``, ``points``, ``strides``).
        image_size: ``(height, width)``; boxes are clipped to the image.
        max_detections: D, detection slots per image (static).
        pre_nms_top_k: candidates per image entering NMS (static).
        score_threshold: minimum score (exclusive) of a detection.
        iou_threshold: NMS overlap threshold.

    Returns:
        `Detections` with ``D = max_detections`` slots per image.
    """
    check_positive_int(max_detections, "max_detections")
    scores = point_scores(outputs)
    batch, num_points, num_classes = scores.shape
    boxes = decode_ltrb(outputs["points"], outputs["box_distances"], outputs["strides"])
    boxes = clip_xyxy(boxes, *image_size)
    # Candidate (point, class) pairs, point-major: candidate i is point i // C, class i % C.
    candidate_boxes = jnp.repeat(boxes, num_classes, axis=1)
    candidate_classes = jnp.tile(jnp.arange(num_classes, dtype=jnp.int32), num_points)
    nms = functools.partial(
        non_max_suppression,
        max_output=max_detections,
        iou_threshold=iou_threshold,
        score_threshold=score_threshold,
        pre_nms_top_k=pre_nms_top_k,
    )
    kept = jax.vmap(nms, in_axes=(0, 0, None))(
        candidate_boxes, scores.reshape(batch, -1), candidate_classes
    )
    return Detections(*kept)
