"""`DatasetInfo`: what a model, a task and a checkpoint need to know about a dataset."""

import dataclasses
from collections.abc import Mapping
from typing import Any

import numpy as np

from adljax._validate import check_choice, check_positive_int

TASKS = (
    "classification",
    "binary",
    "regression",
    "tagging",  # one class label per time step, ``y`` (T,) int
    "language_modeling",  # next-token prediction, ``y`` (T,) int token ids
    "detection",  # boxes and class labels per image, padded, with a box mask
    "generation",  # unconditional generative models; labels, if any, only for evaluation
)
# Tasks whose ``num_outputs`` is the number of classes (or tokens).
_CLASS_TASKS = ("classification", "tagging", "language_modeling", "detection")

_TUPLE_FIELDS = {
    "input_shape": int,
    "class_names": str,
    "feature_names": str,
    "target_mean": float,
    "target_std": float,
}


@dataclasses.dataclass(frozen=True)
class DatasetInfo:
    """Static description of a dataset, stored with every checkpoint (see `to_dict`).

    Attributes:
        name: registry name, e.g. ``"digits"``.
        task: ``"classification"`` (integer labels, softmax over ``num_classes`` outputs),
            ``"binary"`` (labels 0/1, one logit), ``"regression"`` (float targets), or one
            of the sequence, detection and generation tasks in `TASKS`.
        input_shape: per-example shape of ``batch["x"]``, e.g. ``(8, 8, 1)`` (NHWC images
            without the batch axis) or ``(10,)`` (tabular features).
        num_outputs: model output width: ``num_classes`` for classification, 1 for binary,
            the number of targets for regression.
        num_classes: number of classes (2 for binary); None for regression.
        class_names: one name per class, or None.
        feature_names: one name per entry of the last input axis (tabular data), or None.
        target_mean: regression targets were standardised with these train-split means,
            shape ``(num_outputs,)``; None when the targets are in their original units.
        target_std: train-split standard deviations matching ``target_mean``.
        description: one line saying what the data is.
        extras: JSON-serialisable dataset-specific facts (e.g. true coefficients).
    """

    name: str
    task: str
    input_shape: tuple[int, ...]
    num_outputs: int
    num_classes: int | None = None
    class_names: tuple[str, ...] | None = None
    feature_names: tuple[str, ...] | None = None
    target_mean: tuple[float, ...] | None = None
    target_std: tuple[float, ...] | None = None
    description: str = ""
    extras: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        # Accept lists (as read back from JSON) and store tuples, so equality survives a
        # to_dict/from_dict round trip.
        for field, kind in _TUPLE_FIELDS.items():
            value = getattr(self, field)
            if value is not None:
                object.__setattr__(self, field, tuple(kind(v) for v in value))
        object.__setattr__(self, "extras", dict(self.extras))
        self._validate()

    def _validate(self) -> None:
        check_choice(self.task, "task", TASKS)
        if not self.input_shape or min(self.input_shape) <= 0:
            raise ValueError(
                f"`input_shape` must be a non-empty tuple of positive sizes, got {self.input_shape}"
            )
        check_positive_int(self.num_outputs, "num_outputs")
        expected_outputs = {task: self.num_classes for task in _CLASS_TASKS}.get(self.task)
        if self.task == "binary":
            expected_outputs = 1
        if self.task == "regression":
            if self.num_classes is not None or self.class_names is not None:
                raise ValueError(
                    "a regression dataset has no classes; got "
                    f"`num_classes`={self.num_classes!r}, `class_names`={self.class_names!r}"
                )
        elif self.task == "binary" and self.num_classes != 2:
            raise ValueError(f"a binary dataset has `num_classes`=2, got {self.num_classes!r}")
        elif self.task in _CLASS_TASKS:
            least = 2 if self.task == "classification" else 1
            if not isinstance(self.num_classes, int) or self.num_classes < least:
                raise ValueError(
                    f"{self.task} needs `num_classes` >= {least}, got {self.num_classes!r}"
                )
        if expected_outputs is not None and self.num_outputs != expected_outputs:
            raise ValueError(
                f"a {self.task} dataset has `num_outputs`={expected_outputs}, "
                f"got {self.num_outputs}"
            )
        if self.class_names is not None and len(self.class_names) != self.num_classes:
            raise ValueError(
                f"`class_names` must have num_classes={self.num_classes} entries, "
                f"got {len(self.class_names)}"
            )
        if self.feature_names is not None and len(self.feature_names) != self.input_shape[-1]:
            raise ValueError(
                f"`feature_names` must have {self.input_shape[-1]} entries (the last input "
                f"axis), got {len(self.feature_names)}"
            )
        self._validate_target_stats()

    def _validate_target_stats(self) -> None:
        if (self.target_mean is None) != (self.target_std is None):
            raise ValueError("`target_mean` and `target_std` must be given together")
        if self.target_mean is None:
            return
        if self.task != "regression":
            raise ValueError(f"target statistics only apply to regression, not {self.task!r}")
        for field in ("target_mean", "target_std"):
            if len(getattr(self, field)) != self.num_outputs:
                raise ValueError(
                    f"`{field}` must have num_outputs={self.num_outputs} entries, "
                    f"got {getattr(self, field)}"
                )
        if min(self.target_std) <= 0:
            raise ValueError(f"`target_std` must be positive, got {self.target_std}")

    def unstandardise_targets(self, y: np.ndarray) -> np.ndarray:
        """Maps regression outputs back to the original target units.

        Args:
            y: standardised targets or predictions, shape ``(..., num_outputs)``.

        Returns:
            ``y * target_std + target_mean`` (float32, same shape), or ``y`` unchanged when
            the targets were not standardised.
        """
        if self.target_mean is None:
            return np.asarray(y)
        std = np.asarray(self.target_std, np.float32)
        return np.asarray(y, np.float32) * std + np.asarray(self.target_mean, np.float32)

    def to_dict(self) -> dict[str, Any]:
        """Returns the fields as JSON-serialisable builtins (tuples become lists)."""
        out = dataclasses.asdict(self)
        for field in _TUPLE_FIELDS:
            if out[field] is not None:
                out[field] = list(out[field])
        return out

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "DatasetInfo":
        """Rebuilds a `DatasetInfo` from `to_dict` output (e.g. read back from a checkpoint)."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"unknown DatasetInfo fields {unknown}; known: {sorted(known)}")
        return cls(**d)
