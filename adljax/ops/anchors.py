"""Centre points of feature maps (anchor-free detection) and box offsets relative to them.

A feature map of stride ``s`` over an ``H x W`` image has ``ceil(H / s) x ceil(W / s)``
cells; cell ``(i, j)`` looks at the image point ``((j + 0.5) s, (i + 0.5) s)``. A box is
encoded at a point as its distances ``(left, top, right, bottom)`` from the point to the
box's sides, divided by the stride (FCOS, Tian et al., 2019). Points are ``(x, y)`` pixels.
"""

import math
from collections.abc import Sequence

import chex
import jax.numpy as jnp
import numpy as np

from adljax._validate import check_positive_int, check_positive_ints
from adljax.typing import Array, ArrayLike


def feature_map_size(image_size: int, stride: int) -> int:
    """Cells along one side of a stride-``stride`` map over ``image_size`` pixels."""
    return math.ceil(check_positive_int(image_size, "image_size") / stride)


def centre_points(height: int, width: int, stride: int) -> np.ndarray:
    """Image points ``(h * w, 2)`` (``x, y``, row-major over the map) of one feature map.

    Args:
        height: image height in pixels.
        width: image width in pixels.
        stride: the map's stride (a positive int); the map is ``ceil(height / stride) x
            ceil(width / stride)``.
    """
    check_positive_int(stride, "stride")
    rows = (np.arange(feature_map_size(height, stride)) + 0.5) * stride
    cols = (np.arange(feature_map_size(width, stride)) + 0.5) * stride
    y, x = np.meshgrid(rows, cols, indexing="ij")
    return np.stack([x.ravel(), y.ravel()], axis=-1).astype(np.float32)


def pyramid_centre_points(
    height: int, width: int, strides: Sequence[int]
) -> tuple[np.ndarray, np.ndarray]:
    """Points of every map of a feature pyramid, finest first.

    Returns:
        ``points`` ``(P, 2)`` (``x, y``) and each point's stride ``(P,)`` float32, where
        ``P`` sums ``ceil(height / s) * ceil(width / s)`` over ``strides``.
    """
    strides = check_positive_ints(strides, "strides")
    maps = [centre_points(height, width, s) for s in strides]
    point_strides = [np.full(len(p), s, np.float32) for p, s in zip(maps, strides, strict=True)]
    return np.concatenate(maps), np.concatenate(point_strides)


def encode_ltrb(points: ArrayLike, boxes: ArrayLike, strides: ArrayLike) -> Array:
    """Distances ``(..., P, 4)`` from points to box sides, in strides.

    Args:
        points: ``(P, 2)`` image points ``(x, y)``.
        boxes: corner boxes ``(..., P, 4)`` (``xyxy``), one per point (broadcast).
        strides: ``(P,)`` each point's stride.

    Returns:
        ``(left, top, right, bottom) / stride``; all positive exactly when the point lies
        inside its box.
    """
    points, strides = jnp.asarray(points), jnp.asarray(strides)
    boxes = jnp.asarray(boxes)
    chex.assert_shape(points, (None, 2))
    chex.assert_shape(strides, (points.shape[0],))
    points = jnp.broadcast_to(points, (*boxes.shape[:-1], 2))
    distances = jnp.concatenate([points - boxes[..., :2], boxes[..., 2:] - points], axis=-1)
    return distances / jnp.broadcast_to(strides[:, None], distances.shape)


def decode_ltrb(points: ArrayLike, distances: ArrayLike, strides: ArrayLike) -> Array:
    """Corner boxes ``(..., P, 4)`` from distances ``(..., P, 4)`` in strides: the inverse
    of `encode_ltrb` (``points`` ``(P, 2)``, ``strides`` ``(P,)``)."""
    distances = jnp.asarray(distances)
    distances = distances * jnp.broadcast_to(jnp.asarray(strides)[:, None], distances.shape)
    points = jnp.broadcast_to(jnp.asarray(points), (*distances.shape[:-1], 2))
    return jnp.concatenate([points - distances[..., :2], points + distances[..., 2:]], axis=-1)
