"""`from_arrays`: wrap a user's own NumPy data as a validated `ArrayDataset`."""

from collections.abc import Sequence

import numpy as np

from adljax._validate import check_choice, check_real_dtype
from adljax.data.dataset import ArrayDataset
from adljax.data.info import TASKS, DatasetInfo


def from_arrays(
    x: np.ndarray,
    y: np.ndarray,
    *,
    task: str,
    num_classes: int | None = None,
    name: str = "arrays",
    split: str = "train",
    class_names: Sequence[str] | None = None,
    feature_names: Sequence[str] | None = None,
    description: str = "",
) -> ArrayDataset:
    """Builds an `ArrayDataset` from NumPy arrays, checking them first.

    Values are used as given (no standardisation); regression targets keep their units.

    Args:
        x: inputs, shape ``(N, *input_shape)`` with at least 2 dimensions, finite numbers.
        y: labels ``(N,)`` (integers in ``[0, num_classes)`` for ``"classification"``, 0/1 for
            ``"binary"``) or regression targets ``(N,)`` or ``(N, num_outputs)``.
        task: ``"classification"``, ``"binary"`` or ``"regression"``.
        num_classes: required for classification; None or 2 for binary; None for regression.
        name: name recorded in the `DatasetInfo`.
        split: split name recorded on the dataset.
        class_names: optional names, one per class.
        feature_names: optional names, one per entry of the last input axis.
        description: optional one-line description.

    Returns:
        An `ArrayDataset` with float32 ``x`` ``(N, *input_shape)`` and int32 ``y`` ``(N,)`` or
        float32 ``y`` ``(N, num_outputs)``.

    Raises:
        ValueError: naming the argument, the expected and the actual value, for an unknown
            task, empty ``x``, ``x`` or ``y`` that do not hold real numbers (complex numbers,
            strings and objects are refused, not cast), ``x`` with fewer than 2 dimensions,
            mismatched lengths, NaN/inf values, or labels that do not fit the task.
    """
    check_choice(task, "task", TASKS)
    x = np.asarray(x)
    y = np.asarray(y)
    if x.size == 0:
        raise ValueError(f"`x` must hold at least one example, got an empty array {x.shape}")
    if x.ndim < 2:
        raise ValueError(
            f"`x` must be at least 2-D, (num_examples, *input_shape), got shape {x.shape}"
        )
    check_real_dtype(x.dtype, "x")
    if y.shape[:1] != x.shape[:1]:
        raise ValueError(
            f"`x` and `y` must have the same number of examples: x has {len(x)} "
            f"(shape {x.shape}), y has shape {y.shape}"
        )
    _check_finite(x, "x")
    if task == "regression":
        if num_classes is not None:
            raise ValueError(f"`num_classes` must be None for regression, got {num_classes!r}")
        y = _regression_targets(y)
        num_outputs = y.shape[1]
    else:
        if task == "binary":
            num_classes = _binary_num_classes(num_classes)
        y = _class_labels(y, num_classes, task)
        num_outputs = 1 if task == "binary" else num_classes
    info = DatasetInfo(
        name=name,
        task=task,
        input_shape=x.shape[1:],
        num_outputs=num_outputs,
        num_classes=num_classes,
        class_names=class_names,
        feature_names=feature_names,
        description=description,
    )
    return ArrayDataset(info, {"x": x.astype(np.float32), "y": y}, split)


def _check_finite(a: np.ndarray, name: str) -> None:
    bad = np.count_nonzero(~np.isfinite(a))
    if bad:
        raise ValueError(f"`{name}` must be finite, got {bad} NaN or inf values")


def _binary_num_classes(num_classes: int | None) -> int:
    if num_classes not in (None, 2):
        raise ValueError(f"`num_classes` must be None or 2 for binary, got {num_classes!r}")
    return 2


def _class_labels(y: np.ndarray, num_classes: int | None, task: str) -> np.ndarray:
    """Checks labels for ``task`` and returns them as int32 ``(N,)``."""
    if task == "classification" and (
        isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 2
    ):
        raise ValueError(
            f"`num_classes` must be an int >= 2 for classification, got {num_classes!r}"
        )
    if y.ndim != 1:
        raise ValueError(f"`y` must be 1-D class labels (num_examples,), got shape {y.shape}")
    check_real_dtype(y.dtype, "y")
    whole = np.issubdtype(y.dtype, np.integer) or y.dtype == np.bool_
    if not whole and not (np.all(np.isfinite(y)) and np.all(y == np.round(y))):
        raise ValueError(f"`y` must hold integer class labels, got non-integer {y.dtype} values")
    if task == "binary" and not np.isin(y, (0, 1)).all():
        raise ValueError(f"binary `y` must hold only 0 and 1, got values {np.unique(y)[:10]}")
    if y.min() < 0 or y.max() >= num_classes:
        raise ValueError(
            f"`y` labels must lie in [0, num_classes={num_classes}), "
            f"got values in [{y.min()}, {y.max()}]"
        )
    return y.astype(np.int32)


def _regression_targets(y: np.ndarray) -> np.ndarray:
    """Checks regression targets and returns them as float32 ``(N, num_outputs)``."""
    if y.ndim not in (1, 2) or y.shape[-1] == 0:
        raise ValueError(
            f"`y` must have shape (num_examples,) or (num_examples, num_outputs), got {y.shape}"
        )
    check_real_dtype(y.dtype, "y")
    _check_finite(y, "y")
    return y.reshape(len(y), -1).astype(np.float32)
