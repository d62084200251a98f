"""Tests for adljax.losses, against NumPy/SciPy reference formulas."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.special
from hypothesis import given, settings
from hypothesis import strategies as st
from jax.test_util import check_grads

from adljax import losses

# A fixed, valid input for each loss.
_CASES = [
    (losses.softmax_cross_entropy, (np.linspace(-2, 2, 12).reshape(4, 3), np.array([0, 2, 1, 1]))),
    (losses.sigmoid_binary_cross_entropy, (np.linspace(-2, 2, 4), np.array([0, 1, 1, 0]))),
    (losses.squared_error, (np.linspace(-2, 2, 8).reshape(4, 2), np.ones((4, 2)))),
    (losses.absolute_error, (np.linspace(-2, 2, 8).reshape(4, 2), np.ones((4, 2)))),
]
_CASE_IDS = ["softmax", "sigmoid", "squared", "absolute"]
_SIZES = {"batch": st.integers(1, 6), "width": st.integers(1, 5), "seed": st.integers(0, 2**16)}


@settings(max_examples=6, deadline=None)
@given(**_SIZES)
def test_softmax_cross_entropy_matches_numpy(batch, width, seed):
    rng = np.random.default_rng(seed)
    logits = rng.normal(scale=3.0, size=(batch, width)).astype(np.float32)
    labels = rng.integers(0, width, size=batch)
    expected = -scipy.special.log_softmax(logits.astype(np.float64), axis=-1)[
        np.arange(batch), labels
    ]
    actual = jax.jit(losses.softmax_cross_entropy)(logits, labels)
    assert actual.shape == (batch,)
    assert actual.dtype == jnp.float32
    assert bool(jnp.all(actual >= 0))
    np.testing.assert_allclose(actual, expected, rtol=1e-5, atol=1e-5)


def test_softmax_cross_entropy_over_time_steps():
    logits = jnp.zeros((2, 3, 4))
    labels = jnp.zeros((2, 3), jnp.int32)
    np.testing.assert_allclose(
        losses.softmax_cross_entropy(logits, labels), np.full((2, 3), np.log(4))
    )


@settings(max_examples=6, deadline=None)
@given(**_SIZES, column=st.booleans())
def test_sigmoid_binary_cross_entropy_matches_numpy(batch, width, seed, column):
    del width
    rng = np.random.default_rng(seed)
    logits = rng.normal(scale=5.0, size=batch).astype(np.float32)
    labels = rng.integers(0, 2, size=batch)
    z = logits.astype(np.float64)
    expected = np.maximum(z, 0) - z * labels + np.log1p(np.exp(-np.abs(z)))
    actual = jax.jit(losses.sigmoid_binary_cross_entropy)(
        logits[:, None] if column else logits, labels
    )
    assert actual.shape == (batch,)
    assert actual.dtype == jnp.float32
    np.testing.assert_allclose(actual, expected, rtol=1e-5, atol=1e-6)


def test_sigmoid_binary_cross_entropy_is_stable_for_large_logits():
    logits = jnp.array([200.0, -200.0, 200.0, -200.0])
    labels = jnp.array([1, 0, 0, 1])
    np.testing.assert_allclose(
        losses.sigmoid_binary_cross_entropy(logits, labels), [0.0, 0.0, 200.0, 200.0]
    )


@pytest.mark.parametrize(
    ("loss", "reference"),
    [(losses.squared_error, np.square), (losses.absolute_error, np.abs)],
    ids=["squared", "absolute"],
)
@settings(max_examples=6, deadline=None)
@given(**_SIZES)
def test_regression_losses_match_numpy(loss, reference, batch, width, seed):
    rng = np.random.default_rng(seed)
    predictions = rng.normal(size=(batch, width)).astype(np.float32)
    targets = rng.normal(size=(batch, width)).astype(np.float32)
    actual = jax.jit(loss)(predictions, targets)
    assert actual.shape == (batch,)
    np.testing.assert_allclose(actual, reference(predictions - targets).mean(-1), rtol=1e-6)
    np.testing.assert_array_equal(jax.jit(loss)(targets, targets), np.zeros(batch))


@pytest.mark.parametrize("transform", [jax.jit, lambda f: f], ids=["jit", "no_jit"])
@pytest.mark.parametrize(("loss", "args"), _CASES, ids=_CASE_IDS)
def test_jit_agrees_with_eager(transform, loss, args):
    expected = loss(*args)
    np.testing.assert_allclose(transform(loss)(*args), expected, rtol=1e-6)
    assert expected.shape == (4,)
    assert bool(jnp.all(expected >= 0))


@pytest.mark.parametrize("loss", [losses.squared_error, losses.absolute_error])
def test_column_predictions_pair_with_flat_targets(loss):
    predictions = jnp.array([[1.0], [2.0], [3.0]])
    targets = jnp.array([1.0, 0.0, 5.0])
    expected = loss(predictions[:, 0], targets)
    np.testing.assert_array_equal(loss(predictions, targets), expected)
    np.testing.assert_array_equal(loss(targets, predictions), expected)


@pytest.mark.parametrize(
    ("loss", "args"),
    [
        (losses.softmax_cross_entropy, (jnp.ones((4, 3)), jnp.zeros(4, jnp.int32))),
        (losses.sigmoid_binary_cross_entropy, (jnp.ones(4), jnp.ones(4))),
        (losses.squared_error, (jnp.ones((4, 2)), jnp.zeros((4, 2)))),
        (losses.absolute_error, (jnp.ones((4, 2)), jnp.zeros((4, 2)))),
    ],
)
def test_losses_compute_in_float32_from_low_precision(loss, args):
    lowered = tuple(
        a.astype(jnp.bfloat16) if jnp.issubdtype(a.dtype, jnp.floating) else a for a in args
    )
    assert loss(*lowered).dtype == jnp.float32


def test_gradients_match_finite_differences():
    with jax.enable_x64(True):
        rng = np.random.default_rng(0)
        logits = rng.normal(size=(3, 4))
        labels = np.array([0, 3, 1])
        targets = rng.normal(size=(3, 4))

        def all_losses(logits, binary_logits, predictions):
            return (
                losses.softmax_cross_entropy(logits, labels),
                losses.sigmoid_binary_cross_entropy(binary_logits, labels % 2),
                losses.squared_error(predictions, targets),
                losses.absolute_error(predictions, targets),
            )

        check_grads(jax.jit(all_losses), (logits, logits[:, 0], 2 * logits), order=1)


@pytest.mark.parametrize(
    ("loss", "args", "match"),
    [
        (
            losses.softmax_cross_entropy,
            (jnp.ones((4, 3)), jnp.zeros((4, 1), jnp.int32)),
            r"`logits` and `labels` must have shapes \(B, C\) and \(B,\), "
            r"got \(4, 3\) and \(4, 1\)",
        ),
        (
            losses.softmax_cross_entropy,
            (jnp.ones(4), jnp.zeros(4, jnp.int32)),
            r"`logits` and `labels` must have shapes \(B, C\) and \(B,\), got \(4,\) and \(4,\)",
        ),
        (
            losses.softmax_cross_entropy,
            (jnp.ones((4, 3)), jnp.zeros(4)),
            r"`labels` must be integer class indices, got dtype float32",
        ),
        (
            losses.sigmoid_binary_cross_entropy,
            (jnp.ones((4, 2)), jnp.ones(4)),
            r"`logits` must have shape \(B,\) or \(B, 1\), got \(4, 2\)",
        ),
        (
            losses.sigmoid_binary_cross_entropy,
            (jnp.ones(4), jnp.ones(5)),
            r"`logits` and `labels` must have the same batch size, got \(4,\) and \(5,\)",
        ),
        (
            losses.squared_error,
            (jnp.ones((4, 2)), jnp.ones(4)),
            r"`predictions` and `targets` must have the same shape \(B, K\), "
            r"got \(4, 2\) and \(4,\)",
        ),
        (
            losses.absolute_error,
            (jnp.ones((4, 2, 1)), jnp.ones((4, 2, 1))),
            r"`predictions` must have shape \(B,\) or \(B, K\), got \(4, 2, 1\)",
        ),
    ],
)
def test_shape_mismatch_raises_under_jit(loss, args, match):
    with pytest.raises(ValueError, match=match):
        jax.jit(loss)(*args)
