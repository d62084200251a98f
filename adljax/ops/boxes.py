"""Box operations: format conversions, clipping, area, IoU and generalised IoU.

Boxes are the last axis of size 4 of a float array ``(..., 4)``. Each function names its
format: ``xyxy`` is corners ``(x_min, y_min, x_max, y_max)``, ``xywh`` is the top-left
corner and the size ``(x_min, y_min, width, height)``, ``cxcywh`` is the centre and the size
``(centre_x, centre_y, width, height)``. ``x`` runs along an image's width, ``y`` along its
height, in pixels. Every function is pure and works under ``jax.jit`` and ``jax.vmap``.
"""

import chex
import jax.numpy as jnp

from adljax.typing import Array, ArrayLike

_EPS = 1e-9  # keeps IoU of empty boxes at 0 instead of NaN


def _boxes(boxes: ArrayLike, name: str) -> Array:
    """``boxes`` as a float array whose last axis has size 4, else ``ValueError``."""
    boxes = jnp.asarray(boxes)
    if boxes.ndim == 0 or boxes.shape[-1] != 4:
        raise ValueError(f"`{name}` must have shape (..., 4), got {boxes.shape}")
    if not jnp.issubdtype(boxes.dtype, jnp.floating):
        boxes = boxes.astype(jnp.float32)
    return boxes


def xyxy_to_xywh(boxes: ArrayLike) -> Array:
    """Corners ``(..., 4)`` to top-left corner and size ``(..., 4)``."""
    b = _boxes(boxes, "boxes")
    return jnp.concatenate([b[..., :2], b[..., 2:] - b[..., :2]], axis=-1)


def xywh_to_xyxy(boxes: ArrayLike) -> Array:
    """Top-left corner and size ``(..., 4)`` to corners ``(..., 4)``."""
    b = _boxes(boxes, "boxes")
    return jnp.concatenate([b[..., :2], b[..., :2] + b[..., 2:]], axis=-1)


def xyxy_to_cxcywh(boxes: ArrayLike) -> Array:
    """Corners ``(..., 4)`` to centre and size ``(..., 4)``."""
    b = _boxes(boxes, "boxes")
    return jnp.concatenate([(b[..., :2] + b[..., 2:]) / 2, b[..., 2:] - b[..., :2]], axis=-1)


def cxcywh_to_xyxy(boxes: ArrayLike) -> Array:
    """Centre and size ``(..., 4)`` to corners ``(..., 4)``."""
    b = _boxes(boxes, "boxes")
    half = b[..., 2:] / 2
    return jnp.concatenate([b[..., :2] - half, b[..., :2] + half], axis=-1)


def xywh_to_cxcywh(boxes: ArrayLike) -> Array:
    """Top-left corner and size ``(..., 4)`` to centre and size ``(..., 4)``."""
    return xyxy_to_cxcywh(xywh_to_xyxy(boxes))


def cxcywh_to_xywh(boxes: ArrayLike) -> Array:
    """Centre and size ``(..., 4)`` to top-left corner and size ``(..., 4)``."""
    return xyxy_to_xywh(cxcywh_to_xyxy(boxes))


def clip_xyxy(boxes: ArrayLike, height: float, width: float) -> Array:
    """Corners ``(..., 4)`` clipped to the image ``[0, width] x [0, height]``."""
    b = _boxes(boxes, "boxes")
    upper = jnp.broadcast_to(jnp.asarray([width, height, width, height], b.dtype), b.shape)
    return jnp.clip(b, 0.0, upper)


def area_xyxy(boxes: ArrayLike) -> Array:
    """Areas ``(...)`` of corner boxes ``(..., 4)``; a box with ``max < min`` has area 0."""
    b = _boxes(boxes, "boxes")
    size = jnp.maximum(b[..., 2:] - b[..., :2], 0.0)
    return size[..., 0] * size[..., 1]


def _intersection_union(a: Array, b: Array) -> tuple[Array, Array]:
    """Intersection and union areas of broadcast corner boxes ``a``, ``b`` ``(..., 4)``."""
    top_left = jnp.maximum(a[..., :2], b[..., :2])
    bottom_right = jnp.minimum(a[..., 2:], b[..., 2:])
    size = jnp.maximum(bottom_right - top_left, 0.0)
    intersection = size[..., 0] * size[..., 1]
    return intersection, area_xyxy(a) + area_xyxy(b) - intersection


def iou_xyxy(a: ArrayLike, b: ArrayLike) -> Array:
    """Elementwise intersection over union of corner boxes ``a`` and ``b`` (broadcast
    ``(..., 4)``): ``(...)``; 0 where both boxes are empty."""
    a, b = _boxes(a, "a"), _boxes(b, "b")
    intersection, union = _intersection_union(a, b)
    return intersection / jnp.maximum(union, _EPS)


def giou_xyxy(a: ArrayLike, b: ArrayLike) -> Array:
    """Elementwise generalised IoU (Rezatofighi et al., 2019) of broadcast corner boxes
    ``(..., 4)``: ``IoU - (enclosing area - union) / enclosing area``, in ``[-1, 1]``."""
    a, b = _boxes(a, "a"), _boxes(b, "b")
    intersection, union = _intersection_union(a, b)
    iou = intersection / jnp.maximum(union, _EPS)
    enclosing_size = jnp.maximum(a[..., 2:], b[..., 2:]) - jnp.minimum(a[..., :2], b[..., :2])
    enclosing = jnp.maximum(enclosing_size[..., 0] * enclosing_size[..., 1], _EPS)
    return iou - (enclosing - union) / enclosing


def pairwise_iou_xyxy(a: ArrayLike, b: ArrayLike) -> Array:
    """IoU matrix ``(N, M)`` between corner boxes ``a`` ``(N, 4)`` and ``b`` ``(M, 4)``."""
    a, b = _pairwise(a, b)
    out = iou_xyxy(a[:, None, :], b[None, :, :])
    chex.assert_shape(out, (a.shape[0], b.shape[0]))
    return out


def pairwise_giou_xyxy(a: ArrayLike, b: ArrayLike) -> Array:
    """Generalised IoU matrix ``(N, M)`` between corner boxes ``a`` ``(N, 4)``, ``b`` ``(M, 4)``."""
    a, b = _pairwise(a, b)
    out = giou_xyxy(a[:, None, :], b[None, :, :])
    chex.assert_shape(out, (a.shape[0], b.shape[0]))
    return out


def _pairwise(a: ArrayLike, b: ArrayLike) -> tuple[Array, Array]:
    a, b = _boxes(a, "a"), _boxes(b, "b")
    for name, boxes in (("a", a), ("b", b)):
        if boxes.ndim != 2:
            raise ValueError(f"`{name}` must have shape (N, 4), got {boxes.shape}")
    return a, b
