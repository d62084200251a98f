"""Tasks pair a model's outputs with a batch's labels: the loss and the metrics.

A task turns ``(outputs, batch)`` into a scalar loss and a dict of *sufficient statistics*:
sums over the batch's real examples (``batch["mask"]``, when present, marks padding with 0).
Statistics add up across batches, so ``task.metrics(sum of statistics)`` is exact over a
whole dataset, whatever its batching and padding.
"""

import dataclasses
from typing import ClassVar, Protocol

import jax
import jax.numpy as jnp

from adljax import losses, metrics
from adljax._validate import check_choice
from adljax.typing import Array, Batch, Metrics


class Task(Protocol):
    """What the engine needs from a task."""

    name: str
    monitor: str  # the metric that early stopping and "best" checkpoints watch by default
    monitor_mode: str  # "min" or "max"

    def loss_and_statistics(self, outputs: Array, batch: Batch) -> tuple[Array, Metrics]:
        """Mean loss over the real examples, and the batch's summable statistics."""
        ...

    def metrics(self, statistics: Metrics) -> Metrics:
        """Metrics (snake_case names, ``loss`` first) from summed statistics."""
        ...


def _mask(batch: Batch, batch_size: int) -> Array:
    """``batch["mask"]`` as float32 ``(B,)``, or ones when the batch has no padding."""
    if "mask" in batch:
        return jnp.asarray(batch["mask"], jnp.float32)
    return jnp.ones((batch_size,), jnp.float32)


def _loss_statistics(per_example: Array, mask: Array) -> tuple[Array, Metrics]:
    """Mean loss over real examples and ``{"count", "loss_sum"}``; padding never leaks NaN."""
    loss_sum = jnp.sum(jnp.where(mask > 0, per_example * mask, 0.0))
    count = jnp.sum(mask)
    return loss_sum / jnp.maximum(count, 1.0), {"count": count, "loss_sum": loss_sum}


def _classification_metrics(statistics: Metrics) -> Metrics:
    count = jnp.maximum(statistics["count"], 1.0)
    return {
        "loss": statistics["loss_sum"] / count,
        **metrics.classification_metrics_from_statistics({**statistics, "count": count}),
    }


@dataclasses.dataclass(frozen=True)
class Classification:
    """Softmax cross-entropy on integer labels; metrics ``loss`` and ``accuracy``.

    Outputs are logits ``(B, C)``; ``batch["y"]`` holds int labels ``(B,)``.
    """

    name: ClassVar[str] = "classification"
    monitor: ClassVar[str] = "loss"
    monitor_mode: ClassVar[str] = "min"

    def loss_and_statistics(self, outputs: Array, batch: Batch) -> tuple[Array, Metrics]:
        mask = _mask(batch, outputs.shape[0])
        loss, statistics = _loss_statistics(losses.softmax_cross_entropy(outputs, batch["y"]), mask)
        correct = metrics.correct(outputs, batch["y"])
        return loss, statistics | metrics.classification_statistics(correct, mask)

    def metrics(self, statistics: Metrics) -> Metrics:
        return _classification_metrics(statistics)


@dataclasses.dataclass(frozen=True)
class BinaryClassification:
    """Sigmoid cross-entropy on 0/1 labels; metrics ``loss`` and ``accuracy``.

    Outputs are logits ``(B,)`` or ``(B, 1)``; ``batch["y"]`` holds 0/1 labels ``(B,)``.
    """

    name: ClassVar[str] = "binary"
    monitor: ClassVar[str] = "loss"
    monitor_mode: ClassVar[str] = "min"

    def loss_and_statistics(self, outputs: Array, batch: Batch) -> tuple[Array, Metrics]:
        mask = _mask(batch, outputs.shape[0])
        loss, statistics = _loss_statistics(
            losses.sigmoid_binary_cross_entropy(outputs, batch["y"]), mask
        )
        correct = metrics.binary_correct(outputs, batch["y"])
        return loss, statistics | metrics.classification_statistics(correct, mask)

    def metrics(self, statistics: Metrics) -> Metrics:
        return _classification_metrics(statistics)


@dataclasses.dataclass(frozen=True)
class Regression:
    """Mean squared error; metrics ``loss`` (= ``mse``), ``mse``, ``rmse``, ``mae``, ``r2``.

    Outputs are predictions ``(B, K)``; ``batch["y"]`` holds float targets ``(B, K)``.
    ``rmse`` and ``r2`` average over the K targets, as scikit-learn's metrics do.
    """

    name: ClassVar[str] = "regression"
    monitor: ClassVar[str] = "loss"
    monitor_mode: ClassVar[str] = "min"

    def loss_and_statistics(self, outputs: Array, batch: Batch) -> tuple[Array, Metrics]:
        mask = _mask(batch, outputs.shape[0])
        loss, _ = _loss_statistics(losses.squared_error(outputs, batch["y"]), mask)
        return loss, metrics.regression_statistics(outputs, batch["y"], mask)

    def metrics(self, statistics: Metrics) -> Metrics:
        values = metrics.regression_metrics_from_statistics(statistics)
        return {"loss": values["mse"], **values}


def _step_mask(batch: Batch, labels: Array) -> Array:
    """Per-step weights ``(B, T)``: ``batch["step_mask"]`` (0 marks a padded or unscored step)
    times the per-example ``batch["mask"]``; ones when neither is present."""
    mask = _mask(batch, labels.shape[0])[:, None]
    if "step_mask" in batch:
        return mask * jnp.asarray(batch["step_mask"], jnp.float32)
    return jnp.broadcast_to(mask, labels.shape)


def _step_statistics(outputs: Array, batch: Batch) -> tuple[Array, Metrics]:
    """Per-step softmax cross-entropy: the mean over scored steps and the summable
    ``{"count", "loss_sum", "num_correct"}`` (``count`` counts scored steps)."""
    mask = _step_mask(batch, batch["y"])
    loss, statistics = _loss_statistics(losses.softmax_cross_entropy(outputs, batch["y"]), mask)
    correct = metrics.correct(outputs, batch["y"])
    num_correct = jnp.sum(jnp.where(mask > 0, correct * mask, 0.0))
    return loss, statistics | {"num_correct": num_correct}


@dataclasses.dataclass(frozen=True)
class Tagging:
    """Softmax cross-entropy at every time step; metrics ``loss`` and ``accuracy`` per step.

    Outputs are logits ``(B, T, C)``; ``batch["y"]`` holds int labels ``(B, T)``. An optional
    ``batch["step_mask"]`` float ``(B, T)`` scores only the steps where it is 1 (padding, or
    the answer part of a copy task); ``batch["mask"]`` drops whole padded examples.
    """

    name: ClassVar[str] = "tagging"
    monitor: ClassVar[str] = "loss"
    monitor_mode: ClassVar[str] = "min"

    def loss_and_statistics(self, outputs: Array, batch: Batch) -> tuple[Array, Metrics]:
        return _step_statistics(outputs, batch)

    def metrics(self, statistics: Metrics) -> Metrics:
        return _classification_metrics(statistics)


@dataclasses.dataclass(frozen=True)
class LanguageModeling:
    """Next-token cross-entropy; metrics ``loss`` (nats per token), ``perplexity``
    (``exp(loss)``), ``bits_per_char`` (``loss / ln 2``) and ``accuracy`` (top-1).

    Outputs are logits ``(B, T, V)``; ``batch["y"]`` holds the next token ids ``(B, T)``;
    ``batch["step_mask"]`` and ``batch["mask"]`` as in `Tagging`.
    """

    name: ClassVar[str] = "language_modeling"
    monitor: ClassVar[str] = "loss"
    monitor_mode: ClassVar[str] = "min"

    def loss_and_statistics(self, outputs: Array, batch: Batch) -> tuple[Array, Metrics]:
        return _step_statistics(outputs, batch)

    def metrics(self, statistics: Metrics) -> Metrics:
        values = _classification_metrics(statistics)
        return {
            "loss": values["loss"],
            "perplexity": jnp.exp(values["loss"]),
            "bits_per_char": values["loss"] / jnp.log(2.0),
            "accuracy": values["accuracy"],
        }


TASKS: dict[str, Task] = {
    task.name: task
    for task in (
        Classification(),
        BinaryClassification(),
        Regression(),
        Tagging(),
        LanguageModeling(),
    )
}
"""Every built-in task by name: ``classification``, ``binary``, ``regression``, ``tagging``,
``language_modeling``."""


def register_task(task: Task) -> Task:
    """Adds ``task`` to `TASKS` under ``task.name`` (model families with their own task,
    e.g. detection, register it where they define it). Returns ``task``.

    Raises:
        ValueError: if another task already has that name.
    """
    if task.name in TASKS and TASKS[task.name] != task:
        raise ValueError(f"a task named {task.name!r} is already registered")
    TASKS[task.name] = task
    return task


def get_task(name: str) -> Task:
    """The registered task called ``name`` (``"classification"``, ``"binary"``, ...)."""
    check_choice(name, "task", tuple(TASKS))
    return TASKS[name]


def sum_statistics(statistics: Metrics) -> Metrics:
    """Sums stacked statistics over their leading (batch-of-batches) axis."""
    return jax.tree.map(lambda s: jnp.sum(s, axis=0), statistics)
