"""Pure per-example losses: each returns one value per example, reduce it yourself.

Synopsis::

    per_example = softmax_cross_entropy(logits, labels)      # (B,)
    loss = jnp.sum(per_example * mask) / jnp.sum(mask)       # mean over real examples

Losses are computed in float32 (float64 when an input is float64). Shapes are checked at trace
time: a mismatch raises ``ValueError`` instead of broadcasting silently.
"""

import jax.numpy as jnp
import optax

from adljax.typing import Array, ArrayLike


def _float_dtype(*arrays: Array) -> jnp.dtype:
    """Returns float64 if any array is float64, else float32: the dtype losses compute in."""
    return jnp.dtype(jnp.float64 if any(a.dtype == jnp.float64 for a in arrays) else jnp.float32)


def _regression_pair(
    predictions: ArrayLike, targets: ArrayLike, *, names: tuple[str, str]
) -> tuple[Array, Array]:
    """Returns ``(predictions, targets)`` as float arrays of one shape ``(B, K)``.

    A ``(B,)`` array is read as ``(B, 1)``, so ``(B, 1)`` predictions pair with ``(B,)`` targets.

    Raises:
        ValueError: if either is not rank 1 or 2, or the shapes differ.
    """
    predictions, targets = jnp.asarray(predictions), jnp.asarray(targets)
    for array, name in zip((predictions, targets), names, strict=True):
        if array.ndim not in (1, 2):
            raise ValueError(f"`{name}` must have shape (B,) or (B, K), got {array.shape}")
    p = predictions[:, None] if predictions.ndim == 1 else predictions
    t = targets[:, None] if targets.ndim == 1 else targets
    if p.shape != t.shape:
        raise ValueError(
            f"`{names[0]}` and `{names[1]}` must have the same shape (B, K), "
            f"got {predictions.shape} and {targets.shape}"
        )
    dtype = _float_dtype(p, t)
    return p.astype(dtype), t.astype(dtype)


def _binary_pair(logits: ArrayLike, labels: ArrayLike) -> tuple[Array, Array]:
    """Checks that ``logits`` and ``labels`` are both ``(B,)`` or ``(B, 1)`` with one ``B``."""
    logits, labels = jnp.asarray(logits), jnp.asarray(labels)
    for array, name in ((logits, "logits"), (labels, "labels")):
        if not (array.ndim == 1 or (array.ndim == 2 and array.shape[1] == 1)):
            raise ValueError(f"`{name}` must have shape (B,) or (B, 1), got {array.shape}")
    if logits.shape[0] != labels.shape[0]:
        raise ValueError(
            "`logits` and `labels` must have the same batch size, "
            f"got {logits.shape} and {labels.shape}"
        )
    return logits, labels


def softmax_cross_entropy(logits: ArrayLike, labels: ArrayLike) -> Array:
    """Cross-entropy of integer class labels under softmax(logits), per example.

    Args:
        logits: unnormalised scores, shape ``(B, C)`` (or ``(..., C)``, e.g. ``(B, T, C)``).
        labels: integer classes in ``[0, C)``, shape ``(B,)`` (or ``logits.shape[:-1]``). Values
            cannot be checked under ``jit``; out-of-range labels give meaningless losses.

    Returns:
        ``-log softmax(logits)[label]``, shape ``(B,)`` (``logits.shape[:-1]``).

    Raises:
        ValueError: if ``labels`` is not integer or the shapes do not match.
    """
    logits, labels = jnp.asarray(logits), jnp.asarray(labels)
    if logits.ndim < 2 or logits.shape[:-1] != labels.shape:
        raise ValueError(
            "`logits` and `labels` must have shapes (B, C) and (B,), "
            f"got {logits.shape} and {labels.shape}"
        )
    if not jnp.issubdtype(labels.dtype, jnp.integer):
        raise ValueError(f"`labels` must be integer class indices, got dtype {labels.dtype}")
    logits = logits.astype(_float_dtype(logits))
    return optax.softmax_cross_entropy_with_integer_labels(logits, labels)


def sigmoid_binary_cross_entropy(logits: ArrayLike, labels: ArrayLike) -> Array:
    """Binary cross-entropy of labels in {0, 1} under sigmoid(logits), per example.

    Numerically stable for large ``|logits|`` (via ``optax.sigmoid_binary_cross_entropy``).

    Args:
        logits: one score per example, shape ``(B,)`` or ``(B, 1)``.
        labels: 0/1 (int, bool or float; floats in [0, 1] act as soft labels), shape ``(B,)``
            or ``(B, 1)``.

    Returns:
        ``-[y log sigmoid(z) + (1 - y) log(1 - sigmoid(z))]``, shape ``(B,)``.

    Raises:
        ValueError: if either is not ``(B,)`` or ``(B, 1)`` or the batch sizes differ.
    """
    logits, labels = _binary_pair(logits, labels)
    dtype = _float_dtype(logits, labels)
    return optax.sigmoid_binary_cross_entropy(
        logits.reshape(-1).astype(dtype), labels.reshape(-1).astype(dtype)
    )


def squared_error(predictions: ArrayLike, targets: ArrayLike) -> Array:
    """Squared error averaged over the outputs, per example.

    Args:
        predictions: shape ``(B, K)``, or ``(B,)`` read as ``(B, 1)``.
        targets: same shape as ``predictions`` (``(B,)`` and ``(B, 1)`` pair).

    Returns:
        ``mean_k (predictions - targets)**2``, shape ``(B,)``.

    Raises:
        ValueError: if the shapes do not match.
    """
    p, t = _regression_pair(predictions, targets, names=("predictions", "targets"))
    return jnp.mean(jnp.square(p - t), axis=-1)


def absolute_error(predictions: ArrayLike, targets: ArrayLike) -> Array:
    """Absolute error averaged over the outputs, per example.

    Args:
        predictions: shape ``(B, K)``, or ``(B,)`` read as ``(B, 1)``.
        targets: same shape as ``predictions`` (``(B,)`` and ``(B, 1)`` pair).

    Returns:
        ``mean_k |predictions - targets|``, shape ``(B,)``.

    Raises:
        ValueError: if the shapes do not match.
    """
    p, t = _regression_pair(predictions, targets, names=("predictions", "targets"))
    return jnp.mean(jnp.abs(p - t), axis=-1)
