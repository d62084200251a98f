"""Tests for adljax.metrics, against scikit-learn."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import sklearn.metrics
from hypothesis import given, settings
from hypothesis import strategies as st

from adljax import metrics

_REGRESSION = {
    "mse": (metrics.mean_squared_error, sklearn.metrics.mean_squared_error),
    "rmse": (metrics.root_mean_squared_error, sklearn.metrics.root_mean_squared_error),
    "mae": (metrics.mean_absolute_error, sklearn.metrics.mean_absolute_error),
    "r2": (metrics.r2_score, sklearn.metrics.r2_score),
}


def _regression_data(seed: int, n: int, k: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    targets = rng.normal(loc=2.0, size=(n, k)).astype(np.float32)
    predictions = (targets + rng.normal(scale=0.5, size=(n, k))).astype(np.float32)
    return predictions, targets


def _padded_batches(arrays, batch_size, rng):
    """Splits arrays into batches of ``batch_size``, padding the last with NaN and mask 0."""
    n = len(arrays[0])
    for start in range(0, n, batch_size):
        real = min(batch_size, n - start)
        mask = np.zeros(batch_size, np.float32)
        mask[:real] = 1.0
        padded = []
        for array in arrays:
            fill = np.full((batch_size - real, *array.shape[1:]), np.nan, np.float32)
            if np.issubdtype(array.dtype, np.integer):
                fill = rng.integers(0, 3, size=fill.shape).astype(array.dtype)
            padded.append(np.concatenate([array[start : start + real], fill]))
        yield (*padded, mask)


@settings(max_examples=10, deadline=None)
@given(n=st.integers(1, 30), classes=st.integers(2, 4), seed=st.integers(0, 2**16))
def test_accuracy_matches_sklearn(n, classes, seed):
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(n, classes)).astype(np.float32)
    labels = rng.integers(0, classes, size=n)
    expected = sklearn.metrics.accuracy_score(labels, logits.argmax(-1))
    np.testing.assert_allclose(jax.jit(metrics.accuracy)(logits, labels), expected, rtol=1e-6)


@settings(max_examples=10, deadline=None)
@given(n=st.integers(1, 30), seed=st.integers(0, 2**16), column=st.booleans())
def test_binary_accuracy_matches_sklearn(n, seed, column):
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(n, 1) if column else n).astype(np.float32)
    labels = rng.integers(0, 2, size=n)
    expected = sklearn.metrics.accuracy_score(labels, logits.reshape(-1) > 0)
    np.testing.assert_allclose(
        jax.jit(metrics.binary_accuracy)(logits, labels), expected, rtol=1e-6
    )


@pytest.mark.parametrize("name", sorted(_REGRESSION))
@settings(max_examples=6, deadline=None)
@given(n=st.integers(2, 30), k=st.integers(1, 3), seed=st.integers(0, 2**16))
def test_regression_metrics_match_sklearn(name, n, k, seed):
    ours, theirs = _REGRESSION[name]
    predictions, targets = _regression_data(seed, n, k)
    np.testing.assert_allclose(
        jax.jit(ours)(predictions, targets), theirs(targets, predictions), rtol=2e-4, atol=1e-5
    )


_LOGITS = np.linspace(-1, 1, 8, dtype=np.float32).reshape(4, 2)
_TARGETS = np.array([[0.5, -0.5], [1.0, 2.0], [0.0, 0.0], [-1.0, 1.0]], np.float32)


@pytest.mark.parametrize("transform", [jax.jit, lambda f: f], ids=["jit", "no_jit"])
@pytest.mark.parametrize(
    ("metric", "args"),
    [
        (metrics.accuracy, (_LOGITS, np.array([0, 1, 1, 0]))),
        (metrics.binary_accuracy, (_LOGITS[:, 0], np.array([0, 1, 1, 0]))),
        *((ours, (_LOGITS, _TARGETS)) for ours, _ in _REGRESSION.values()),
    ],
    ids=["accuracy", "binary_accuracy", *_REGRESSION],
)
def test_jit_agrees_with_eager(transform, metric, args):
    np.testing.assert_allclose(transform(metric)(*args), metric(*args), rtol=1e-6)


@settings(max_examples=10, deadline=None)
@given(
    n=st.integers(2, 40),
    k=st.integers(1, 3),
    batch_size=st.sampled_from([4, 7, 16]),
    seed=st.integers(0, 2**16),
)
def test_regression_statistics_over_padded_batches_equal_whole_dataset(n, k, batch_size, seed):
    predictions, targets = _regression_data(seed, n, k)
    statistics = jax.jit(metrics.regression_statistics)
    total = None
    for p, t, mask in _padded_batches(
        (predictions, targets), batch_size, np.random.default_rng(seed)
    ):
        stats = statistics(p, t, mask)
        total = stats if total is None else jax.tree.map(jnp.add, total, stats)
    actual = jax.jit(metrics.regression_metrics_from_statistics)(total)

    assert float(total["count"]) == n
    for name, (_, theirs) in _REGRESSION.items():
        np.testing.assert_allclose(
            actual[name], theirs(targets, predictions), rtol=2e-4, atol=1e-5, err_msg=name
        )


@settings(max_examples=10, deadline=None)
@given(n=st.integers(1, 40), batch_size=st.sampled_from([4, 7, 16]), seed=st.integers(0, 2**16))
def test_classification_statistics_over_padded_batches_equal_whole_dataset(n, batch_size, seed):
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(n, 3)).astype(np.float32)
    labels = rng.integers(0, 3, size=n).astype(np.int32)

    @jax.jit
    def statistics(logits, labels, mask):
        return metrics.classification_statistics(metrics.correct(logits, labels), mask)

    total = None
    for batch in _padded_batches((logits, labels), batch_size, rng):
        stats = statistics(*batch)
        total = stats if total is None else jax.tree.map(jnp.add, total, stats)

    expected = sklearn.metrics.accuracy_score(labels, logits.argmax(-1))
    assert float(total["count"]) == n
    assert float(total["num_correct"]) == round(expected * n)
    np.testing.assert_allclose(
        metrics.classification_metrics_from_statistics(total)["accuracy"], expected, rtol=1e-6
    )


def test_float64_host_aggregation_keeps_numpy_precision():
    predictions, targets = _regression_data(0, 50, 2)
    halves = [
        metrics.regression_statistics(predictions[s], targets[s])
        for s in (slice(0, 25), slice(25, 50))
    ]
    total = jax.tree.map(lambda a, b: np.float64(a) + np.float64(b), *halves)
    actual = metrics.regression_metrics_from_statistics(total)
    assert all(isinstance(value, np.floating | np.ndarray) for value in actual.values())
    assert all(np.asarray(value).dtype == np.float64 for value in actual.values())
    np.testing.assert_allclose(actual["r2"], sklearn.metrics.r2_score(targets, predictions), 1e-6)


def test_mask_weights_match_sklearn_sample_weight():
    predictions, targets = _regression_data(1, 12, 2)
    weights = np.random.default_rng(1).uniform(0, 2, size=12).astype(np.float32)
    weights[[2, 5]] = 0.0
    for name, (ours, theirs) in _REGRESSION.items():
        np.testing.assert_allclose(
            ours(predictions, targets, weights),
            theirs(targets, predictions, sample_weight=weights),
            rtol=2e-4,
            err_msg=name,
        )


@pytest.mark.parametrize(
    ("predictions", "expected_r2"),
    [([[3.0], [3.0], [3.0]], 1.0), ([[3.0], [2.0], [3.0]], 0.0)],
)
def test_r2_of_constant_targets_follows_sklearn(predictions, expected_r2):
    targets = np.full((3, 1), 3.0, np.float32)
    predictions = np.asarray(predictions, np.float32)
    assert sklearn.metrics.r2_score(targets, predictions) == expected_r2
    assert float(metrics.r2_score(predictions, targets)) == expected_r2


def test_padded_rows_are_ignored_even_when_nan():
    predictions = jnp.array([1.0, 2.0, jnp.nan])
    targets = jnp.array([1.5, 2.0, jnp.inf])
    mask = jnp.array([1.0, 1.0, 0.0])
    assert float(metrics.mean_squared_error(predictions, targets, mask)) == 0.125
    logits = jnp.array([[1.0, 0.0], [jnp.nan, 0.0]])
    assert float(metrics.accuracy(logits, jnp.array([0, 1]), jnp.array([1.0, 0.0]))) == 1.0


@pytest.mark.parametrize(
    ("metric", "args", "match"),
    [
        (
            metrics.accuracy,
            (jnp.ones((4, 3)), jnp.zeros(3, jnp.int32)),
            r"`logits` and `labels` must have shapes \(B, C\) and \(B,\), got \(4, 3\) and \(3,\)",
        ),
        (
            metrics.accuracy,
            (jnp.ones((4, 3)), jnp.zeros(4)),
            r"`labels` must be integer class indices, got dtype float32",
        ),
        (
            metrics.binary_accuracy,
            (jnp.ones((4, 3)), jnp.zeros(4)),
            r"`logits` must have shape \(B,\) or \(B, 1\), got \(4, 3\)",
        ),
        (
            metrics.binary_accuracy,
            (jnp.ones(4), jnp.zeros(3)),
            r"`logits` and `labels` must have the same batch size, got \(4,\) and \(3,\)",
        ),
        (
            metrics.r2_score,
            (jnp.ones((4, 2)), jnp.ones((4, 3))),
            r"`predictions` and `targets` must have the same shape \(B, K\)",
        ),
        (
            metrics.mean_squared_error,
            (jnp.ones((4, 2)), jnp.ones((4, 2)), jnp.ones((4, 1))),
            r"`mask` must have shape \(4,\), got \(4, 1\)",
        ),
        (
            metrics.accuracy,
            (jnp.ones((4, 3)), jnp.zeros(4, jnp.int32), jnp.ones(5)),
            r"`mask` must have shape \(4,\), got \(5,\)",
        ),
    ],
)
def test_bad_shapes_raise_under_jit(metric, args, match):
    with pytest.raises(ValueError, match=match):
        jax.jit(metric)(*args)
