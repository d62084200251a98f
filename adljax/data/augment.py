"""Pure image augmentations of a whole batch, applied inside the compiled train step.

Synopsis::

    augment = augmentation_for(train.info)       # None for datasets without one
    step = adljax.jit(make_train_step(task, augment), donate_argnums=0)

Every augmentation is a pure function ``augment(key, batch) -> batch`` of a typed PRNG key and
a batch ``{"x": (B, H, W, C), ...}``. It returns a new batch whose ``"x"`` has the same shape
and dtype, every other entry unchanged; each example gets its own random draw, and the same
key always gives the same result. All of them run under ``jax.jit`` and ``jax.vmap``.
"""

import functools
from collections.abc import Callable

import jax
import jax.numpy as jnp

from adljax.data.info import DatasetInfo
from adljax.typing import Array, Batch, PRNGKey

Augment = Callable[[PRNGKey, Batch], Batch]
"""``augment(key, batch) -> batch``: a pure, per-example-random batch transformation."""

# Largest shift (pixels) for the digit datasets: 1 of 8 pixels, 2 of 28.
_DIGIT_SHIFTS = {"digits": 1, "mnist": 2, "fashion_mnist": 2}


def _images(batch: Batch) -> Array:
    """``batch["x"]`` as an array, checked to be NHWC images ``(B, H, W, C)``."""
    x = jnp.asarray(batch["x"])
    if x.ndim != 4:
        raise ValueError(
            f"`batch['x']` must have rank 4 (batch, height, width, channels), got shape {x.shape}"
        )
    return x


def _check_non_negative_int(value: object, name: str) -> int:
    """Returns ``value`` if it is an int >= 0, else raises ``ValueError`` naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"`{name}` must be a non-negative integer, got {value!r}")
    return value


def random_flip_horizontal(key: PRNGKey, batch: Batch) -> Batch:
    """Mirrors each image left-right with probability 1/2.

    Args:
        key: typed PRNG key; the same key flips the same examples, so applying this twice
            with one key is the identity.
        batch: ``{"x": (B, H, W, C), ...}``.

    Returns:
        The batch with ``"x"`` of the same shape and dtype.
    """
    x = _images(batch)
    flip = jax.random.bernoulli(key, 0.5, (x.shape[0],))
    return {**batch, "x": jnp.where(flip[:, None, None, None], x[:, :, ::-1, :], x)}


def random_crop_with_padding(key: PRNGKey, batch: Batch, padding: int = 4) -> Batch:
    """Zero-pads each image by ``padding`` pixels per side and crops ``H x W`` back out.

    The crop's corner is drawn uniformly per example, so each image moves by up to
    ``padding`` pixels along each axis, with zeros filling the uncovered border (the CIFAR
    augmentation of ResNet papers). ``padding=0`` is the identity.

    Args:
        key: typed PRNG key.
        batch: ``{"x": (B, H, W, C), ...}``.
        padding: a Python int ``>= 0`` (static under ``jit``). Default 4.

    Returns:
        The batch with ``"x"`` of the same shape and dtype.
    """
    _check_non_negative_int(padding, "padding")
    x = _images(batch)
    _, height, width, channels = x.shape
    padded = jnp.pad(x, ((0, 0), (padding, padding), (padding, padding), (0, 0)))
    corners = jax.random.randint(key, (x.shape[0], 2), 0, 2 * padding + 1)

    def crop(image: Array, corner: Array) -> Array:
        start = (corner[0], corner[1], jnp.zeros((), corner.dtype))
        return jax.lax.dynamic_slice(image, start, (height, width, channels))

    return {**batch, "x": jax.vmap(crop)(padded, corners)}


def random_shift(key: PRNGKey, batch: Batch, max_shift: int = 1) -> Batch:
    """Shifts each image by up to ``max_shift`` pixels along each axis, filling with zeros.

    The shifts are drawn uniformly from ``[-max_shift, max_shift]`` per example and axis.
    This is ``random_crop_with_padding`` with ``padding=max_shift``; pixels shifted out are
    lost, so the pixel sum of a non-negative image never grows.

    Args:
        key: typed PRNG key.
        batch: ``{"x": (B, H, W, C), ...}``.
        max_shift: a Python int ``>= 0`` (static under ``jit``). Default 1.

    Returns:
        The batch with ``"x"`` of the same shape and dtype.
    """
    _check_non_negative_int(max_shift, "max_shift")
    return random_crop_with_padding(key, batch, padding=max_shift)


def compose(*augmentations: Augment) -> Augment:
    """Chains augmentations, left to right, each with its own key split from the one given.

    Returns:
        ``augment(key, batch) -> batch``; with no augmentations, the identity.
    """

    def composed(key: PRNGKey, batch: Batch) -> Batch:
        for augment, subkey in zip(
            augmentations, jax.random.split(key, len(augmentations)), strict=True
        ):
            batch = augment(subkey, batch)
        return batch

    return composed


def augmentation_for(info: DatasetInfo) -> Augment | None:
    """The standard augmentation of a dataset, or None.

    ``digits`` (8x8): shifts of up to 1 pixel; ``mnist`` and ``fashion_mnist`` (28x28): up to
    2 pixels (no flips: a mirrored digit is another symbol); ``cifar10``: random crop with
    4 pixels of zero padding, then a horizontal flip; anything else: None.

    Args:
        info: the dataset's ``DatasetInfo``; only ``info.name`` is read.
    """
    if info.name in _DIGIT_SHIFTS:
        return functools.partial(random_shift, max_shift=_DIGIT_SHIFTS[info.name])
    if info.name == "cifar10":
        return compose(
            functools.partial(random_crop_with_padding, padding=4), random_flip_horizontal
        )
    return None
