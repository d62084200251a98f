"""Classification and regression metrics, and sufficient statistics for exact aggregation.

A batch metric (``accuracy``, ``r2_score``, ...) averages over one batch. To get the exact
whole-dataset value over many batches, some padded, sum each batch's *statistics* and convert
once at the end; this equals scikit-learn's value on the concatenated real examples::

    stats = None
    for batch in batches:                               # batch["mask"]: (B,), 1 = real, 0 = pad
        s = regression_statistics(model_fn(batch["x"]), batch["y"], batch["mask"])
        stats = s if stats is None else jax.tree.map(jnp.add, stats, s)
    regression_metrics_from_statistics(stats)           # {"mse", "rmse", "mae", "r2"}

Statistics are plain sums, so they also add up under ``lax.scan`` or ``lax.psum``. Multi-output
regression metrics average over the outputs, as scikit-learn's ``multioutput="uniform_average"``.
Arguments are ``(predictions, targets)``, the reverse of scikit-learn's ``(y_true, y_pred)``.
"""

from collections.abc import Mapping
from types import ModuleType

import jax
import jax.numpy as jnp
import numpy as np

from adljax.losses import _binary_pair, _float_dtype, _regression_pair
from adljax.typing import Array, ArrayLike, Metrics

# Sums of y² and (Σy)²/n round to within a few ulps of Σy²; an SST below this many ulps of
# Σy² is read as zero (constant targets), where scikit-learn's R² is 1.0 or 0.0.
_SST_ULPS = 64


def _weights(mask: ArrayLike | None, shape: tuple[int, ...], dtype: jnp.dtype) -> Array:
    """Returns ``mask`` as a float array of ``shape`` (all ones when ``None``), else raises."""
    if mask is None:
        return jnp.ones(shape, dtype)
    mask = jnp.asarray(mask)
    if mask.shape != shape:
        raise ValueError(f"`mask` must have shape {shape}, got {mask.shape}")
    return mask.astype(dtype)


def _weighted_sum(values: Array, weights: Array) -> Array:
    """Returns ``sum_b weights[b] * values[b]`` over axis 0, ignoring rows with weight 0.

    Padded rows may hold anything, NaN included, so they are dropped rather than multiplied.
    """
    weights = weights.reshape(weights.shape + (1,) * (values.ndim - weights.ndim))
    return jnp.sum(jnp.where(weights > 0, weights * values, 0), axis=0)


def correct(logits: ArrayLike, labels: ArrayLike) -> Array:
    """Per-example correctness of the arg-max class.

    Args:
        logits: class scores, shape ``(B, C)`` (or ``(..., C)``).
        labels: integer classes, shape ``(B,)`` (or ``logits.shape[:-1]``).

    Returns:
        1.0 where ``argmax(logits) == labels``, else 0.0; float32, shape ``(B,)``.
    """
    logits, labels = jnp.asarray(logits), jnp.asarray(labels)
    if logits.ndim < 2 or logits.shape[:-1] != labels.shape:
        raise ValueError(
            "`logits` and `labels` must have shapes (B, C) and (B,), "
            f"got {logits.shape} and {labels.shape}"
        )
    if not jnp.issubdtype(labels.dtype, jnp.integer):
        raise ValueError(f"`labels` must be integer class indices, got dtype {labels.dtype}")
    return (jnp.argmax(logits, axis=-1) == labels).astype(jnp.float32)


def binary_correct(logits: ArrayLike, labels: ArrayLike) -> Array:
    """Per-example correctness of a binary classifier that predicts 1 where ``logits > 0``.

    Args:
        logits: one score per example, shape ``(B,)`` or ``(B, 1)``.
        labels: 0/1 (int, bool or float; > 0.5 counts as 1), shape ``(B,)`` or ``(B, 1)``.

    Returns:
        1.0 where the prediction equals the label, else 0.0; float32, shape ``(B,)``.
    """
    logits, labels = _binary_pair(logits, labels)
    dtype = _float_dtype(logits, labels)
    predicted = logits.reshape(-1).astype(dtype) > 0
    actual = labels.reshape(-1).astype(dtype) > 0.5
    return (predicted == actual).astype(jnp.float32)


def classification_statistics(correct: ArrayLike, mask: ArrayLike | None = None) -> Metrics:
    """Summable statistics of per-example correctness.

    Args:
        correct: 1.0/0.0 per example (from ``correct`` or ``binary_correct``), shape ``(B,)``.
        mask: 1.0 for real examples, 0.0 for padding, shape ``(B,)``; ``None`` for all real.

    Returns:
        ``{"count": (), "num_correct": ()}``, float32 sums over the real examples.
    """
    correct = jnp.asarray(correct)
    dtype = _float_dtype(correct)
    weights = _weights(mask, correct.shape, dtype)
    return {
        "count": jnp.sum(weights),
        "num_correct": jnp.sum(_weighted_sum(correct.astype(dtype), weights)),
    }


def _array_module(stats: Mapping[str, ArrayLike]) -> ModuleType:
    """Returns ``jax.numpy`` for JAX statistics (also under ``jit``), else NumPy.

    NumPy statistics (e.g. summed in float64 on the host) are converted in NumPy, keeping
    their precision.
    """
    return jnp if any(isinstance(v, jax.Array) for v in stats.values()) else np


def classification_metrics_from_statistics(stats: Mapping[str, ArrayLike]) -> Metrics:
    """Returns ``{"accuracy": ()}`` from summed ``classification_statistics``."""
    xp = _array_module(stats)
    return {"accuracy": xp.asarray(stats["num_correct"]) / xp.asarray(stats["count"])}


def regression_statistics(
    predictions: ArrayLike, targets: ArrayLike, mask: ArrayLike | None = None
) -> Metrics:
    """Summable statistics of a regression batch, one entry per output ``k``.

    Args:
        predictions: shape ``(B, K)``, or ``(B,)`` read as ``(B, 1)``.
        targets: same shape as ``predictions`` (``(B,)`` and ``(B, 1)`` pair).
        mask: 1.0 for real examples, 0.0 for padding, shape ``(B,)``; ``None`` for all real.
            Other non-negative values act as sample weights.

    Returns:
        ``count`` (shape ``()``) and ``sum_squared_error``, ``sum_absolute_error``,
        ``sum_target``, ``sum_target_squared`` (each shape ``(K,)``), sums over real examples.
    """
    p, t = _regression_pair(predictions, targets, names=("predictions", "targets"))
    weights = _weights(mask, p.shape[:1], p.dtype)
    return {
        "count": jnp.sum(weights),
        "sum_squared_error": _weighted_sum(jnp.square(p - t), weights),
        "sum_absolute_error": _weighted_sum(jnp.abs(p - t), weights),
        "sum_target": _weighted_sum(t, weights),
        "sum_target_squared": _weighted_sum(jnp.square(t), weights),
    }


def regression_metrics_from_statistics(stats: Mapping[str, ArrayLike]) -> Metrics:
    """Converts summed ``regression_statistics`` into metrics, as scikit-learn computes them.

    ``R²_k = 1 - SSE_k / SST_k`` with ``SST_k = Σy_k² - (Σy_k)² / n``; a constant target
    (``SST_k = 0``) scores 1.0 if predicted exactly, else 0.0. Because SST comes from sums,
    float32 loses precision when a target's variance is tiny next to its mean square; centre
    the targets, or sum the statistics in float64 NumPy on the host.

    Returns:
        ``{"mse", "rmse", "mae", "r2"}``, each shape ``()`` and averaged over the outputs
        (``rmse`` is the mean of the per-output root mean squared errors, as scikit-learn).
    """
    xp = _array_module(stats)
    count = xp.asarray(stats["count"])
    sse = xp.asarray(stats["sum_squared_error"])
    sum_target = xp.asarray(stats["sum_target"])
    sum_target_squared = xp.asarray(stats["sum_target_squared"])
    mse = sse / count
    sst = xp.maximum(sum_target_squared - sum_target**2 / count, 0)
    constant = sst <= _SST_ULPS * xp.finfo(sst.dtype).eps * sum_target_squared
    r2 = xp.where(
        constant, xp.where(sse == 0, 1.0, 0.0), 1 - sse / xp.where(constant, 1, sst)
    ).astype(sst.dtype)
    return {
        "mse": xp.mean(mse),
        "rmse": xp.mean(xp.sqrt(mse)),
        "mae": xp.mean(xp.asarray(stats["sum_absolute_error"]) / count),
        "r2": xp.mean(r2),
    }


def accuracy(logits: ArrayLike, labels: ArrayLike, mask: ArrayLike | None = None) -> Array:
    """Fraction of (real) examples whose arg-max class equals the label; shape ``()``.

    Args:
        logits: shape ``(B, C)``.
        labels: integer classes, shape ``(B,)``.
        mask: 1.0 for real examples, 0.0 for padding, shape ``(B,)``; ``None`` for all real.
    """
    stats = classification_statistics(correct(logits, labels), mask)
    return classification_metrics_from_statistics(stats)["accuracy"]


def binary_accuracy(logits: ArrayLike, labels: ArrayLike, mask: ArrayLike | None = None) -> Array:
    """Fraction of (real) examples where ``logits > 0`` equals the 0/1 label; shape ``()``.

    Args:
        logits: shape ``(B,)`` or ``(B, 1)``.
        labels: 0/1, shape ``(B,)`` or ``(B, 1)``.
        mask: 1.0 for real examples, 0.0 for padding, shape ``(B,)``; ``None`` for all real.
    """
    stats = classification_statistics(binary_correct(logits, labels), mask)
    return classification_metrics_from_statistics(stats)["accuracy"]


def _regression_metric(
    name: str, predictions: ArrayLike, targets: ArrayLike, mask: ArrayLike | None
) -> Array:
    """Returns one entry of ``regression_metrics_from_statistics`` for one batch."""
    stats = regression_statistics(predictions, targets, mask)
    return regression_metrics_from_statistics(stats)[name]


def mean_squared_error(
    predictions: ArrayLike, targets: ArrayLike, mask: ArrayLike | None = None
) -> Array:
    """Mean squared error over examples and outputs; shape ``()``.

    Args:
        predictions: shape ``(B, K)`` or ``(B,)``.
        targets: same shape as ``predictions``.
        mask: 1.0 for real examples, 0.0 for padding, shape ``(B,)``; ``None`` for all real.
    """
    return _regression_metric("mse", predictions, targets, mask)


def root_mean_squared_error(
    predictions: ArrayLike, targets: ArrayLike, mask: ArrayLike | None = None
) -> Array:
    """Root mean squared error per output, averaged over outputs; shape ``()``.

    Args:
        predictions: shape ``(B, K)`` or ``(B,)``.
        targets: same shape as ``predictions``.
        mask: 1.0 for real examples, 0.0 for padding, shape ``(B,)``; ``None`` for all real.
    """
    return _regression_metric("rmse", predictions, targets, mask)


def mean_absolute_error(
    predictions: ArrayLike, targets: ArrayLike, mask: ArrayLike | None = None
) -> Array:
    """Mean absolute error over examples and outputs; shape ``()``.

    Args:
        predictions: shape ``(B, K)`` or ``(B,)``.
        targets: same shape as ``predictions``.
        mask: 1.0 for real examples, 0.0 for padding, shape ``(B,)``; ``None`` for all real.
    """
    return _regression_metric("mae", predictions, targets, mask)


def r2_score(predictions: ArrayLike, targets: ArrayLike, mask: ArrayLike | None = None) -> Array:
    """Coefficient of determination ``1 - SSE/SST`` per output, averaged over outputs; ``()``.

    Args:
        predictions: shape ``(B, K)`` or ``(B,)``.
        targets: same shape as ``predictions``.
        mask: 1.0 for real examples, 0.0 for padding, shape ``(B,)``; ``None`` for all real.
    """
    return _regression_metric("r2", predictions, targets, mask)
