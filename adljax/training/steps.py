"""Step factories: pure ``(state, batch) -> (state, metrics)`` functions built from a task.

The factories return *un-jitted* functions; the caller compiles each exactly once, e.g.
``adljax.jit(make_train_step(task), donate_argnums=0)``. The same function runs unchanged under
``jax.vmap`` (an ensemble of states) and under a device mesh (the batch sharded over ``data``).
"""

import functools
from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp
import optax

from adljax.tasks import Task
from adljax.training.optimizers import learning_rate_of
from adljax.training.precision import FLOAT32, all_finite, apply_with_policy, loss_scale_of
from adljax.training.state import TrainState, mutable_collections
from adljax.typing import Array, Batch, Metrics, PRNGKey, PyTree

TrainStep = Callable[[TrainState, Batch], tuple[TrainState, Metrics]]
Augment = Callable[[PRNGKey, Batch], Batch]
EvalStep = Callable[[TrainState, Batch], Metrics]


def make_train_step(
    task: Task, augment: Augment | None = None, *, grad_norm: bool = False
) -> TrainStep:
    """Returns ``train_step(state, batch) -> (state, metrics)`` for ``task``.

    ``batch["x"]`` is the model input ``(B, ...)``; the task reads the labels. Step ``s``
    draws its randomness from ``fold_in(state.key, s)``, split into the dropout key and the
    key of ``augment(key, batch) -> batch``, a pure data augmentation applied inside the
    compiled step. Metrics: the task's metrics on this batch, plus ``learning_rate`` (the one
    this update used) and, with ``grad_norm=True``, ``grad_norm`` (the gradients' global L2
    norm). It is off by default because it is one more pass over every gradient, the step's
    largest extra cost next to a hand-written one (an MLP step ~6% on a CPU, more kernel
    launches on a GPU); ``fit(diagnostics_every=N)`` reports per-layer norms on chosen steps
    instead. The model runs under ``state.policy`` (`adljax.training.precision`); with
    float16 the loss is scaled, a step with non-finite gradients is skipped, and the metrics
    add ``loss_scale`` (the scale this step used) and ``skipped`` (1 for a skipped step,
    whose ``grad_norm`` reads 0; it leaves the parameters, optimizer moments and batch
    statistics as they were and still advances ``state.step``, so the next step draws fresh
    dropout and augmentation keys).
    """

    def train_step(state: TrainState, batch: Batch) -> tuple[TrainState, Metrics]:
        loss_fn = make_loss_fn(task, state, batch, augment)
        if state.policy.loss_scaling:
            return _loss_scaled_step(task, state, loss_fn, grad_norm)
        grad_fn = jax.value_and_grad(loss_fn, has_aux=True)
        (_, (statistics, model_state, _)), grads = grad_fn(state.params)
        state = state.apply_gradients(grads, model_state)
        metrics = task.metrics(statistics)
        metrics["learning_rate"] = learning_rate_of(state.opt_state)
        if grad_norm:
            metrics["grad_norm"] = optax.tree.norm(grads)
        return state, metrics

    return train_step


def _loss_scaled_step(
    task: Task, state: TrainState, loss_fn: Callable, grad_norm: bool
) -> tuple[TrainState, Metrics]:
    """The float16 train step: differentiate ``loss * scale``, unscale, update or skip."""
    scale = loss_scale_of(state.opt_state)

    def scaled_loss_fn(params):
        loss, aux = loss_fn(params)
        return loss * scale, aux

    grads, (statistics, model_state, _) = jax.grad(scaled_loss_fn, has_aux=True)(state.params)
    grads = jax.tree.map(lambda g: g / scale, grads)
    finite = all_finite(grads)
    # A skipped step keeps the batch statistics too; `dynamic_loss_scale` skips the update.
    model_state = jax.tree.map(
        lambda new, old: jnp.where(finite, new, old), model_state, state.model_state
    )
    state = state.apply_gradients(grads, model_state)
    metrics = task.metrics(statistics)
    metrics["learning_rate"] = learning_rate_of(state.opt_state)
    if grad_norm:
        metrics["grad_norm"] = jnp.where(finite, optax.tree.norm(grads), 0.0)
    metrics["loss_scale"] = scale
    metrics["skipped"] = 1.0 - finite.astype(jnp.float32)
    return state, metrics


def make_loss_fn(
    task: Task,
    state: TrainState,
    batch: Batch,
    augment: Augment | None = None,
    *,
    collect: Sequence[str] = (),
) -> Callable[[PyTree], tuple[Array, tuple[Metrics, PyTree, dict[str, PyTree]]]]:
    """The loss of training step ``state.step`` on ``batch``, as a function of the parameters.

    Returns ``loss_fn(params) -> (loss, (statistics, model_state, collected))``: the forward
    pass in train mode with the step's dropout key, on ``batch`` augmented with the step's
    augmentation key (as ``make_train_step`` does); ``model_state`` is the updated model state
    (batch statistics), ``collected`` maps each name in ``collect`` to the collection the
    forward pass wrote (e.g. the sown ``"intermediates"``). The model runs under
    ``state.policy``; outputs and updated collections are float32.
    """
    dropout_key, augment_key = jax.random.split(jax.random.fold_in(state.key, state.step))
    if augment is not None:
        batch = augment(augment_key, batch)
    mutable = mutable_collections(state)
    writable = [*mutable, *collect]

    def loss_fn(params):
        variables = {"params": params, **state.model_state}
        apply = functools.partial(apply_with_policy, state.policy, state.model.apply, variables)
        rngs = {"dropout": dropout_key}
        if writable:
            outputs, written = apply(batch["x"], train=True, rngs=rngs, mutable=writable)
        else:
            outputs, written = apply(batch["x"], train=True, rngs=rngs), {}
        model_state = {name: written[name] for name in mutable} if mutable else state.model_state
        collected = {name: written.get(name, {}) for name in collect}
        loss, statistics = task.loss_and_statistics(outputs, batch)
        return loss, (statistics, model_state, collected)

    return loss_fn


def make_eval_step(task: Task) -> EvalStep:
    """Returns ``eval_step(state, batch) -> statistics`` (sums over the batch's real examples).

    Sum the statistics over batches and pass them to ``task.metrics`` for exact dataset
    metrics; padded examples (``batch["mask"] == 0``) count for nothing.
    """

    def eval_step(state: TrainState, batch: Batch) -> Metrics:
        outputs = predict_step(state, batch["x"])
        _, statistics = task.loss_and_statistics(outputs, batch)
        return statistics

    return eval_step


def predict_step(state: TrainState, x: Array) -> Array:
    """Model outputs ``(B, ...)`` for inputs ``x`` ``(B, ...)`` in eval mode.

    ``state`` is anything with ``.model`` and ``.variables`` (a ``TrainState`` or the
    ``InferenceState`` restored from a checkpoint); the model runs under its ``.policy``
    (float32 when it has none), and the outputs are float32 under every policy.
    """
    policy = getattr(state, "policy", FLOAT32)
    return apply_with_policy(policy, state.model.apply, state.variables, x, train=False)
