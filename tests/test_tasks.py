"""Tasks: dataset metrics from summed batch statistics equal scikit-learn's on the whole set."""

import jax
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from sklearn import metrics as sk

from adljax.tasks import BinaryClassification, Classification, Regression, get_task


def _batches(arrays, batch_size):
    """Splits arrays into batches of ``batch_size``, the last padded with NaN and masked."""
    n = len(next(iter(arrays.values())))
    for start in range(0, n, batch_size):
        batch = {k: v[start : start + batch_size] for k, v in arrays.items()}
        real = len(batch["out"])
        pad = batch_size - real
        batch = {
            k: np.concatenate([v, np.full((pad, *v.shape[1:]), np.nan, v.dtype)])
            if v.dtype.kind == "f"
            else np.concatenate([v, np.zeros((pad, *v.shape[1:]), v.dtype)])
            for k, v in batch.items()
        }
        batch["mask"] = (np.arange(batch_size) < real).astype(np.float32)
        yield batch


_COMPILED = {}


def _dataset_metrics(task, arrays, batch_size):
    step = _COMPILED.setdefault(task.name, jax.jit(task.loss_and_statistics))
    total = None
    for batch in _batches(arrays, batch_size):
        _, statistics = step(batch["out"], batch)
        total = statistics if total is None else jax.tree.map(np.add, total, statistics)
    return {name: float(value) for name, value in task.metrics(total).items()}


# A few batch sizes, so that each compiles once across the examples.
sizes = st.tuples(st.integers(2, 40), st.sampled_from([1, 5, 16]), st.integers(0, 10_000))


@given(sizes)
def test_classification_matches_sklearn(case):
    n, batch_size, seed = case
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(n, 4)).astype(np.float32)
    labels = rng.integers(0, 4, n).astype(np.int32)
    values = _dataset_metrics(Classification(), {"out": logits, "y": labels}, batch_size)
    probabilities = np.asarray(jax.nn.softmax(logits.astype(np.float64)))
    assert values["accuracy"] == pytest.approx(sk.accuracy_score(labels, logits.argmax(1)))
    expected = sk.log_loss(labels, probabilities, labels=range(4))
    assert values["loss"] == pytest.approx(expected, rel=1e-5)


@given(sizes)
def test_binary_classification_matches_sklearn(case):
    n, batch_size, seed = case
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(n, 1)).astype(np.float32)
    labels = rng.integers(0, 2, n).astype(np.int32)
    values = _dataset_metrics(BinaryClassification(), {"out": logits, "y": labels}, batch_size)
    probability = 1 / (1 + np.exp(-logits[:, 0].astype(np.float64)))
    assert values["accuracy"] == pytest.approx(sk.accuracy_score(labels, probability > 0.5))
    expected = sk.log_loss(labels, probability, labels=[0, 1])
    assert values["loss"] == pytest.approx(expected, rel=1e-5)


@given(sizes, st.integers(1, 3))
def test_regression_matches_sklearn(case, outputs):
    n, batch_size, seed = case
    rng = np.random.default_rng(seed)
    targets = rng.normal(size=(n, outputs)).astype(np.float32)
    predictions = (targets + rng.normal(size=(n, outputs))).astype(np.float32)
    values = _dataset_metrics(Regression(), {"out": predictions, "y": targets}, batch_size)
    assert values["mse"] == pytest.approx(sk.mean_squared_error(targets, predictions), rel=1e-4)
    assert values["loss"] == values["mse"]
    assert values["mae"] == pytest.approx(sk.mean_absolute_error(targets, predictions), rel=1e-4)
    assert values["r2"] == pytest.approx(sk.r2_score(targets, predictions), rel=1e-3, abs=1e-4)
    expected_rmse = sk.root_mean_squared_error(targets, predictions)
    assert values["rmse"] == pytest.approx(expected_rmse, rel=1e-4)


def test_unknown_task_lists_the_choices():
    with pytest.raises(ValueError, match="unknown task 'ranking'; choose one of"):
        get_task("ranking")
