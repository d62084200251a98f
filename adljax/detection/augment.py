"""Box-aware augmentation of detection batches, applied inside the compiled train step.

Each function is a pure ``augment(key, batch) -> batch`` like those of
`adljax.data.augment`: it transforms ``"x"`` ``(B, H, W, C)`` and moves ``"boxes"``
``(B, M, 4)`` (corners, pixels) with it, so the boxes stay on their objects; a box that
leaves the image is dropped from ``"box_mask"``. Every example gets its own random draw;
everything runs under ``jax.jit`` and ``jax.vmap``.
"""

import jax
import jax.numpy as jnp

from adljax.ops.boxes import area_xyxy, clip_xyxy
from adljax.typing import Array, Batch, PRNGKey

MIN_VISIBLE = 0.5
"""A box that keeps less than this fraction of its area inside the image is dropped."""


def _images(batch: Batch) -> Array:
    x = jnp.asarray(batch["x"])
    if x.ndim != 4:
        raise ValueError(f"`batch['x']` must have shape (B, H, W, C), got {x.shape}")
    return x


def random_flip_boxes(key: PRNGKey, batch: Batch) -> Batch:
    """Mirrors each image left-right with probability 1/2, and its boxes with it.

    Args:
        key: typed PRNG key; the same key flips the same images.
        batch: ``{"x": (B, H, W, C), "boxes": (B, M, 4), ...}``.
    """
    x = _images(batch)
    width = x.shape[2]
    flip = jax.random.bernoulli(key, 0.5, (x.shape[0],))
    boxes = jnp.asarray(batch["boxes"])
    mirrored = jnp.stack(
        [width - boxes[..., 2], boxes[..., 1], width - boxes[..., 0], boxes[..., 3]], -1
    )
    return {
        **batch,
        "x": jnp.where(flip[:, None, None, None], x[:, :, ::-1, :], x),
        "boxes": jnp.where(flip[:, None, None], mirrored, boxes),
    }


def random_scale_crop(
    key: PRNGKey, batch: Batch, min_scale: float = 0.8, max_scale: float = 1.25
) -> Batch:
    """Rescales each image by a random factor and crops (or zero-pads) it back to ``H x W``.

    The scale is drawn log-uniformly from ``[min_scale, max_scale]`` and the window's
    offset uniformly, so zoomed-in images show a random part and zoomed-out ones sit
    at a random place on a zero background. Boxes are scaled, shifted and clipped to the
    image; those keeping less than `MIN_VISIBLE` of their area are dropped.

    Args:
        key: typed PRNG key.
        batch: ``{"x": (B, H, W, C), "boxes": (B, M, 4), "box_mask": (B, M), ...}``.
        min_scale: smallest factor, > 0 (static).
        max_scale: largest factor, >= ``min_scale`` (static).
    """
    if not 0 < min_scale <= max_scale:
        raise ValueError(
            f"need 0 < `min_scale` <= `max_scale`, got min_scale={min_scale}, max_scale={max_scale}"
        )
    x = _images(batch)
    b, height, width, _ = x.shape
    scale_key, offset_key = jax.random.split(key)
    log_scale = jax.random.uniform(
        scale_key, (b,), minval=jnp.log(min_scale), maxval=jnp.log(max_scale)
    )
    scale = jnp.exp(log_scale)
    size = jnp.asarray([width, height], jnp.float32)
    # New pixel coordinate = old * scale + translation; the translation places the window.
    spare = size[None] * (1 - scale[:, None])  # negative when zooming in
    translation = jax.random.uniform(offset_key, (b, 2)) * spare

    def resample(image, s, t):
        return jax.image.scale_and_translate(
            image,
            image.shape,
            spatial_dims=(0, 1),
            scale=jnp.stack([s, s]),
            translation=t[::-1],  # (rows, cols) = (y, x)
            method="linear",
            antialias=False,
        )

    images = jax.vmap(resample)(x, scale, translation)
    boxes = jnp.asarray(batch["boxes"]) * scale[:, None, None] + jnp.tile(translation, 2)[:, None]
    clipped = clip_xyxy(boxes, height, width)
    visible = area_xyxy(clipped) >= MIN_VISIBLE * area_xyxy(boxes)
    keep = jnp.asarray(batch["box_mask"]) * (visible & (area_xyxy(clipped) > 0))
    return {**batch, "x": images.astype(x.dtype), "boxes": clipped, "box_mask": keep}


def detection_augmentation(key: PRNGKey, batch: Batch) -> Batch:
    """The standard detection augmentation: `random_scale_crop` (0.8 to 1.25), then
    `random_flip_boxes`, each with its own key split from ``key``."""
    scale_key, flip_key = jax.random.split(key)
    return random_flip_boxes(flip_key, random_scale_crop(scale_key, batch))
