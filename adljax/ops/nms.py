"""Greedy non-maximum suppression with fixed-shape output, for ``jax.jit`` and ``jax.vmap``.

The number of boxes that survive suppression depends on the data, which a compiled
function cannot return. `non_max_suppression` therefore returns exactly ``max_output``
slots, best first, and a ``valid`` mask saying which slots hold a kept box; the greedy
loop itself is a ``lax.fori_loop`` over a fixed number of candidates. Batch it with
``jax.vmap`` (one image per row).
"""

from typing import NamedTuple

import jax
import jax.numpy as jnp

from adljax._validate import check_positive_int
from adljax.ops.boxes import pairwise_iou_xyxy
from adljax.typing import Array, ArrayLike


class NMSResult(NamedTuple):
    """The kept boxes, best first, in ``max_output`` fixed slots.

    Attributes:
        boxes: ``(max_output, 4)`` corner boxes (zeros in invalid slots).
        scores: ``(max_output,)`` (0 in invalid slots).
        classes: ``(max_output,)`` int32 (-1 in invalid slots).
        valid: ``(max_output,)`` bool, True for the slots that hold a kept box; the valid
            slots come first.
    """

    boxes: Array
    scores: Array
    classes: Array
    valid: Array


def non_max_suppression(
    boxes: ArrayLike,
    scores: ArrayLike,
    classes: ArrayLike | None = None,
    *,
    max_output: int,
    iou_threshold: float = 0.5,
    score_threshold: float = 0.0,
    per_class: bool = True,
    pre_nms_top_k: int | None = None,
) -> NMSResult:
    """Greedy NMS: visits boxes by decreasing score, keeps one unless a kept box overlaps it.

    A box is a candidate when its score is above ``score_threshold``; a candidate is
    suppressed when its IoU with an already kept box is above ``iou_threshold`` (with
    ``per_class``, only kept boxes of its own class count). Equal scores are visited in
    index order.

    Args:
        boxes: ``(N, 4)`` corner boxes (``xyxy``).
        scores: ``(N,)``.
        classes: ``(N,)`` integer classes; None puts every box in class 0.
        max_output: number of output slots (static).
        iou_threshold: suppression threshold in ``[0, 1]`` (may be traced).
        score_threshold: minimum score (exclusive) of a candidate (may be traced).
        per_class: suppress only within a class (True) or across classes (False).
        pre_nms_top_k: consider only the ``pre_nms_top_k`` best-scoring boxes (static);
            None considers all ``N``. The loop costs ``O(k^2)``.

    Returns:
        `NMSResult` with ``max_output`` slots.
    """
    check_positive_int(max_output, "max_output")
    if pre_nms_top_k is not None:
        check_positive_int(pre_nms_top_k, "pre_nms_top_k")
    if isinstance(iou_threshold, int | float) and not 0.0 <= iou_threshold <= 1.0:
        raise ValueError(f"`iou_threshold` must lie in [0, 1], got {iou_threshold!r}")
    boxes, scores = jnp.asarray(boxes), jnp.asarray(scores)
    if boxes.ndim != 2 or boxes.shape[-1] != 4:
        raise ValueError(f"`boxes` must have shape (N, 4), got {boxes.shape}")
    if scores.shape != boxes.shape[:1]:
        raise ValueError(f"`scores` must have shape {boxes.shape[:1]}, got {scores.shape}")
    classes = jnp.zeros(scores.shape, jnp.int32) if classes is None else jnp.asarray(classes)
    if classes.shape != scores.shape:
        raise ValueError(f"`classes` must have shape {scores.shape}, got {classes.shape}")

    k = scores.shape[0] if pre_nms_top_k is None else min(pre_nms_top_k, scores.shape[0])
    top_scores, order = jax.lax.top_k(scores, k)
    top_boxes, top_classes = boxes[order], classes[order].astype(jnp.int32)
    overlaps = pairwise_iou_xyxy(top_boxes, top_boxes) > iou_threshold
    if per_class:
        overlaps &= top_classes[:, None] == top_classes[None, :]
    candidate = top_scores > score_threshold

    def visit(i, keep):
        suppressed = jnp.any(keep & overlaps[:, i])
        return keep.at[i].set(candidate[i] & ~suppressed)

    keep = jax.lax.fori_loop(0, k, visit, jnp.zeros((k,), bool))
    # Slot of each kept box: its rank among the kept ones. Suppressed boxes and kept ones
    # ranked past max_output get an out-of-range slot, which the scatter drops.
    slot = jnp.where(keep, jnp.cumsum(keep) - 1, max_output)

    def place(values, fill):
        out = jnp.full((max_output, *values.shape[1:]), fill, values.dtype)
        return out.at[slot].set(values, mode="drop")

    return NMSResult(
        boxes=place(top_boxes, 0),
        scores=place(top_scores, 0),
        classes=place(top_classes, -1),
        valid=place(keep, False),
    )
