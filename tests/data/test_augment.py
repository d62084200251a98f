"""Tests for adljax.data.augment: pure, per-example-random batch augmentations."""

import functools

import chex
import jax
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adljax.data import (
    DatasetInfo,
    augmentation_for,
    compose,
    random_crop_with_padding,
    random_flip_horizontal,
    random_shift,
)

pytestmark = pytest.mark.usefixtures("fast_compiles")

_AUGMENTATIONS = {
    "flip": random_flip_horizontal,
    "crop": functools.partial(random_crop_with_padding, padding=2),
    "shift": functools.partial(random_shift, max_shift=1),
    "composed": compose(random_shift, random_flip_horizontal),
}
_NAMES = sorted(_AUGMENTATIONS)


def _batch(seed: int, shape: tuple[int, ...], dtype=np.float32) -> dict:
    """Non-negative images and labels, deterministic in ``seed``."""
    rng = np.random.default_rng(seed)
    return {
        "x": rng.integers(0, 256, size=shape).astype(dtype),
        "y": np.arange(shape[0], dtype=np.int32),
    }


# A few fixed shapes, so that each compiles once; hypothesis varies the pixels and keys.
_shapes = st.sampled_from([(1, 4, 4, 1), (2, 5, 3, 3), (3, 6, 7, 2)])


@settings(max_examples=10, deadline=None)
@given(
    name=st.sampled_from(_NAMES),
    shape=_shapes,
    dtype=st.sampled_from([np.float32, np.uint8]),
    seed=st.integers(0, 2**16),
)
def test_shapes_dtypes_and_other_entries_are_preserved(name, shape, dtype, seed):
    batch = _batch(seed, shape, dtype)
    out = _AUGMENTATIONS[name](jax.random.key(seed), batch)
    assert out["x"].shape == shape
    assert out["x"].dtype == dtype
    np.testing.assert_array_equal(out["y"], batch["y"])


@settings(max_examples=10, deadline=None)
@given(shape=_shapes, seed=st.integers(0, 2**16))
def test_flipping_twice_with_the_same_key_is_the_identity(shape, seed):
    batch, key = _batch(seed, shape), jax.random.key(seed)
    twice = random_flip_horizontal(key, random_flip_horizontal(key, batch))
    np.testing.assert_array_equal(twice["x"], batch["x"])


@settings(max_examples=10, deadline=None)
@given(shape=_shapes, seed=st.integers(0, 2**16))
def test_crop_with_zero_padding_and_zero_shift_are_the_identity(shape, seed):
    batch, key = _batch(seed, shape), jax.random.key(seed)
    np.testing.assert_array_equal(random_crop_with_padding(key, batch, padding=0)["x"], batch["x"])
    np.testing.assert_array_equal(random_shift(key, batch, max_shift=0)["x"], batch["x"])


@settings(max_examples=10, deadline=None)
@given(shape=_shapes, max_shift=st.integers(1, 3), seed=st.integers(0, 2**16))
def test_a_shift_never_adds_pixel_mass(shape, max_shift, seed):
    batch = _batch(seed, shape)
    shifted = random_shift(jax.random.key(seed), batch, max_shift=max_shift)["x"]
    assert np.all(np.sum(shifted, axis=(1, 2, 3)) <= np.sum(batch["x"], axis=(1, 2, 3)))


def test_a_crop_moves_each_image_by_at_most_the_padding():
    # A single bright pixel in the middle of a 9x9 image lands within 2 pixels of the centre.
    x = np.zeros((64, 9, 9, 1), np.float32)
    x[:, 4, 4, 0] = 1.0
    out = np.asarray(random_crop_with_padding(jax.random.key(0), {"x": x}, padding=2)["x"])
    positions = np.argwhere(out[..., 0] > 0)  # (example, row, col) of each moved pixel
    np.testing.assert_array_equal(positions[:, 0], np.arange(64))  # one pixel per image
    offsets = positions[:, 1:] - 4
    assert np.abs(offsets).max() == 2
    assert len({tuple(o) for o in offsets}) > 10  # many of the 25 offsets are drawn


@pytest.mark.parametrize("name", _NAMES)
def test_examples_get_different_draws(name):
    # 32 copies of one asymmetric image: one shared draw would leave them all equal.
    image = np.arange(5 * 5, dtype=np.float32).reshape(1, 5, 5, 1) + 1.0
    out = _AUGMENTATIONS[name](jax.random.key(1), {"x": np.repeat(image, 32, axis=0)})
    assert len({np.asarray(x).tobytes() for x in out["x"]}) > 1


@pytest.mark.parametrize("name", _NAMES)
def test_deterministic_per_key_and_same_under_jit(name):
    augment = _AUGMENTATIONS[name]
    batch = _batch(0, (8, 6, 6, 2))
    first = augment(jax.random.key(3), batch)
    chex.assert_trees_all_equal(augment(jax.random.key(3), batch), first)
    chex.assert_trees_all_equal(jax.jit(augment)(jax.random.key(3), batch), first)
    assert not np.array_equal(augment(jax.random.key(4), batch)["x"], first["x"])


def test_runs_under_vmap_over_keys_and_batches():
    batches = _batch(0, (3, 4, 6, 6, 1))  # three batches of four images
    batches["y"] = np.zeros((3, 4), np.int32)
    keys = jax.random.split(jax.random.key(0), 3)
    augment = _AUGMENTATIONS["composed"]
    stacked = jax.jit(jax.vmap(augment))(keys, batches)
    for i in range(3):
        one = augment(keys[i], jax.tree.map(lambda v, i=i: v[i], batches))
        np.testing.assert_array_equal(stacked["x"][i], one["x"])


def test_compose_applies_each_augmentation_with_its_own_key():
    batch = _batch(0, (4, 5, 5, 1))
    key = jax.random.key(2)
    first_key, second_key = jax.random.split(key)
    expected = random_flip_horizontal(second_key, random_shift(first_key, batch))
    composed = compose(random_shift, random_flip_horizontal)
    np.testing.assert_array_equal(composed(key, batch)["x"], expected["x"])
    chex.assert_trees_all_equal(compose()(key, batch), batch)


def _info(name: str, input_shape: tuple[int, ...]) -> DatasetInfo:
    return DatasetInfo(
        name=name,
        task="classification",
        input_shape=input_shape,
        num_outputs=10,
        num_classes=10,
    )


@pytest.mark.parametrize(
    ("name", "input_shape", "max_shift"),
    [("digits", (8, 8, 1), 1), ("mnist", (28, 28, 1), 2), ("fashion_mnist", (28, 28, 1), 2)],
)
def test_digit_datasets_get_small_shifts(name, input_shape, max_shift):
    augment = augmentation_for(_info(name, input_shape))
    batch = _batch(0, (4, *input_shape))
    key = jax.random.key(5)
    np.testing.assert_array_equal(
        augment(key, batch)["x"], random_shift(key, batch, max_shift=max_shift)["x"]
    )


def test_cifar10_gets_crop_and_flip():
    augment = augmentation_for(_info("cifar10", (32, 32, 3)))
    batch = _batch(0, (4, 32, 32, 3))
    key = jax.random.key(6)
    expected = compose(random_crop_with_padding, random_flip_horizontal)(key, batch)
    np.testing.assert_array_equal(augment(key, batch)["x"], expected["x"])


def test_other_datasets_get_none():
    assert augmentation_for(_info("spirals", (2,))) is None
    assert augmentation_for(_info("my_images", (8, 8, 3))) is None


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (
            lambda b: random_flip_horizontal(jax.random.key(0), {"x": b["x"][0]}),
            r"`batch\['x'\]` must have rank 4 \(batch, height, width, channels\), got shape",
        ),
        (
            lambda b: random_crop_with_padding(jax.random.key(0), b, padding=-1),
            r"`padding` must be a non-negative integer, got -1",
        ),
        (
            lambda b: random_shift(jax.random.key(0), b, max_shift=1.5),
            r"`max_shift` must be a non-negative integer, got 1.5",
        ),
    ],
)
def test_bad_arguments_raise(call, match):
    with pytest.raises(ValueError, match=match):
        call(_batch(0, (2, 4, 4, 1)))
