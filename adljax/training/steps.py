"""Step factories: pure ``(state, batch) -> (state, metrics)`` functions built from a task.

The factories return *un-jitted* functions; the caller compiles each exactly once, e.g.
``adljax.jit(make_train_step(task), donate_argnums=0)``. The same function runs unchanged under
``jax.vmap`` (an ensemble of states) and under a device mesh (the batch sharded over ``data``).
"""

from collections.abc import Callable

import jax
import optax

from adljax.tasks import Task
from adljax.training.optimizers import learning_rate_of
from adljax.training.state import TrainState, mutable_collections
from adljax.typing import Array, Batch, Metrics, PRNGKey

TrainStep = Callable[[TrainState, Batch], tuple[TrainState, Metrics]]
Augment = Callable[[PRNGKey, Batch], Batch]
EvalStep = Callable[[TrainState, Batch], Metrics]


def make_train_step(task: Task, augment: Augment | None = None) -> TrainStep:
    """Returns ``train_step(state, batch) -> (state, metrics)`` for ``task``.

    ``batch["x"]`` is the model input ``(B, ...)``; the task reads the labels. Step ``s``
    draws its randomness from ``fold_in(state.key, s)``, split into the dropout key and the
    key of ``augment(key, batch) -> batch``, a pure data augmentation applied inside the
    compiled step. Metrics: the task's metrics on this batch, plus ``learning_rate`` (the one
    this update used) and ``grad_norm`` (global L2 norm).
    """

    def train_step(state: TrainState, batch: Batch) -> tuple[TrainState, Metrics]:
        dropout_key, augment_key = jax.random.split(jax.random.fold_in(state.key, state.step))
        if augment is not None:
            batch = augment(augment_key, batch)
        mutable = mutable_collections(state)

        def loss_fn(params):
            variables = {"params": params, **state.model_state}
            if mutable:
                outputs, model_state = state.model.apply(
                    variables,
                    batch["x"],
                    train=True,
                    rngs={"dropout": dropout_key},
                    mutable=mutable,
                )
            else:
                outputs = state.model.apply(
                    variables, batch["x"], train=True, rngs={"dropout": dropout_key}
                )
                model_state = state.model_state
            loss, statistics = task.loss_and_statistics(outputs, batch)
            return loss, (statistics, model_state)

        grad_fn = jax.value_and_grad(loss_fn, has_aux=True)
        (_, (statistics, model_state)), grads = grad_fn(state.params)
        state = state.apply_gradients(grads, model_state)
        metrics = task.metrics(statistics)
        metrics["learning_rate"] = learning_rate_of(state.opt_state)
        metrics["grad_norm"] = optax.tree.norm(grads)
        return state, metrics

    return train_step


def make_eval_step(task: Task) -> EvalStep:
    """Returns ``eval_step(state, batch) -> statistics`` (sums over the batch's real examples).

    Sum the statistics over batches and pass them to ``task.metrics`` for exact dataset
    metrics; padded examples (``batch["mask"] == 0``) count for nothing.
    """

    def eval_step(state: TrainState, batch: Batch) -> Metrics:
        outputs = state.model.apply(state.variables, batch["x"], train=False)
        _, statistics = task.loss_and_statistics(outputs, batch)
        return statistics

    return eval_step


def predict_step(state: TrainState, x: Array) -> Array:
    """Model outputs ``(B, ...)`` for inputs ``x`` ``(B, ...)`` in eval mode.

    ``state`` is anything with ``.model`` and ``.variables`` (a ``TrainState`` or the
    ``InferenceState`` restored from a checkpoint).
    """
    return state.model.apply(state.variables, x, train=False)
