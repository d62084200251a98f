"""Training diagnostics: per-layer statistics of one training step, as pure functions.

Synopsis::

    diagnose = make_diagnostics_step("classification")
    report = jax.jit(diagnose)(state, batch)       # the step that ``train_step`` would take
    report["grad_norm"]["dense_0"]                 # () float32
    report["activations"]["hidden_0"]["dead_fraction"]

A *layer* is a module with parameters, named by its path in the parameter tree
(``"dense_0"``, ``"backbone/stage_1/block_0/conv_0"``); the *activations* are the values the
model sows in its ``intermediates`` collection (each family documents them: an MLP's hidden
layers ``hidden_{i}``, a ConvNet's ``stage_{i}`` and ``features``, a sequence model's
``features``, a detector's ``pyramid_{stride}``). ``fit(diagnostics_every=N)`` records a report
every ``N`` steps in the history; ``adljax.plots.plot_diagnostics`` draws them. GANs get the
update ratios alone (`make_update_diagnostics_step`).
"""

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from adljax.tasks import Task, get_task
from adljax.training.state import TrainState
from adljax.training.steps import Augment, TrainStep, make_loss_fn
from adljax.typing import Array, Batch, PyTree

Report = dict[str, Any]
DiagnosticsStep = Callable[[TrainState, Batch], Report]

SATURATION_MARGIN = 0.01
"""A bounded activation is *saturated* within this fraction of its range from a bound:
sigmoid outputs below 0.01 or above 0.99, tanh outputs beyond +-0.98 (slopes under 4% of the
activation's steepest)."""

SATURATING_ACTIVATIONS: Mapping[str, tuple[float, float]] = {
    "sigmoid": (0.0, 1.0),
    "tanh": (-1.0, 1.0),
}
"""The output range of each activation for which a saturated fraction is reported."""

DIAGNOSTICS_COLLECTION = "diagnostics"


def layer_norms(tree: PyTree) -> dict[str, Array]:
    """``{layer: L2 norm}`` over each layer's leaves (a layer: the path above a leaf)."""
    squares: dict[str, Array] = {}
    for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]:
        layer = _layer_name(path)
        total = jnp.sum(jnp.square(jnp.asarray(leaf, jnp.float32)))
        squares[layer] = squares[layer] + total if layer in squares else total
    return {layer: jnp.sqrt(value) for layer, value in squares.items()}


def update_ratios(updates: PyTree, params: PyTree) -> dict[str, Array]:
    """``{layer: ||update|| / ||params||}``, the relative size of one optimizer update (NaN
    for a layer whose parameters are all zero)."""
    update_norms, param_norms = layer_norms(updates), layer_norms(params)
    return {
        layer: jnp.where(param_norms[layer] > 0, norm / param_norms[layer], jnp.nan)
        for layer, norm in update_norms.items()
    }


def activation_statistics(h: Array, activation: str | None = None) -> dict[str, Array]:
    """Statistics of one layer's activations ``h`` ``(B, ..., units)``, as float32 scalars.

    ``mean`` and ``std`` over every entry; ``dead_fraction``: the fraction of units (the last
    axis) that are exactly zero for every example and position (dead ReLUs); with an
    ``activation`` in ``SATURATING_ACTIVATIONS``, ``saturated_fraction``: the fraction of
    entries within ``SATURATION_MARGIN`` of the range's ends.
    """
    h = jnp.asarray(h, jnp.float32)
    units = h.reshape(-1, h.shape[-1])
    statistics = {
        "mean": jnp.mean(h),
        "std": jnp.std(h),
        "dead_fraction": 1.0 - jnp.mean(jnp.any(units != 0, axis=0).astype(jnp.float32)),
    }
    if activation in SATURATING_ACTIVATIONS:
        low, high = SATURATING_ACTIVATIONS[activation]
        margin = SATURATION_MARGIN * (high - low)
        saturated = (h <= low + margin) | (h >= high - margin)
        statistics["saturated_fraction"] = jnp.mean(saturated.astype(jnp.float32))
    return statistics


def batch_norm_drift(
    x: Array,
    running_mean: Array,
    running_var: Array,
    epsilon: float,
    feature_axes: int | Sequence[int] = -1,
) -> dict[str, Array]:
    """How far a batch's statistics are from the running averages that eval mode uses.

    ``x`` is the batch norm's input ``(B, ..., C)``; ``running_mean``/``running_var`` ``(C,)``.
    ``mean_shift``: the mean over features of ``|batch mean - running mean| / sqrt(running var
    + epsilon)``; ``var_ratio``: the mean of ``(batch var + epsilon) / (running var +
    epsilon)`` (batch variance in two passes, as the layer computes it). Both float32 scalars;
    0 and 1 when train and eval mode normalise alike.
    """
    x = jnp.asarray(x, jnp.float32)
    features = {axis % x.ndim for axis in np.atleast_1d(feature_axes)}
    reduce = tuple(axis for axis in range(x.ndim) if axis not in features)
    mean = jnp.mean(x, axis=reduce)
    var = jnp.mean(jnp.square(x - jnp.expand_dims(mean, reduce)), axis=reduce)
    scale = running_var.reshape(mean.shape) + epsilon
    return {
        "mean_shift": jnp.mean(jnp.abs(mean - running_mean.reshape(mean.shape)) / jnp.sqrt(scale)),
        "var_ratio": jnp.mean((var + epsilon) / scale),
    }


def make_diagnostics_step(task: Task | str, augment: Augment | None = None) -> DiagnosticsStep:
    """Returns ``diagnose(state, batch) -> report`` for the step ``make_train_step(task,
    augment)`` takes from ``state`` on ``batch`` (same dropout and augmentation keys).

    The report is a pytree of float32 scalars (``(K,)`` under ``jax.vmap`` for ensembles)::

        {"grad_norm":    {layer: ||gradient||},
         "update_ratio": {layer: ||optimizer update|| / ||parameters||},
         "activations":  {name: activation_statistics(h, model.activation)},
         "batch_norm":   {layer: batch_norm_drift(input, running mean, running var)}}

    ``batch_norm`` lists the batch norms that normalise with batch statistics in training. The
    model's ``activation`` attribute (when it names one) decides whether saturation is reported.
    Pure and jit-able; it changes nothing, so it can run beside the train step.
    """
    task = get_task(task) if isinstance(task, str) else task

    def diagnose(state: TrainState, batch: Batch) -> Report:
        loss_fn = make_loss_fn(
            task, state, batch, augment, collect=("intermediates", DIAGNOSTICS_COLLECTION)
        )
        with nn.intercept_methods(_sow_batch_norm_drift):
            grads, (_, _, collected) = jax.grad(loss_fn, has_aux=True)(state.params)
        updates, _ = state.tx.update(grads, state.opt_state, state.params)
        activation = getattr(state.model, "activation", None)
        return {
            "grad_norm": layer_norms(grads),
            "update_ratio": update_ratios(updates, state.params),
            "activations": {
                name: activation_statistics(h, activation)
                for name, h in _sown(collected["intermediates"]).items()
            },
            "batch_norm": {
                name.removesuffix("/batch_norm"): drift
                for name, drift in _sown(collected[DIAGNOSTICS_COLLECTION]).items()
            },
        }

    return diagnose


def make_update_diagnostics_step(train_step: TrainStep) -> DiagnosticsStep:
    """Returns ``diagnose(state, batch) -> {"update_ratio": {layer: ratio}}`` for any pure
    train step: runs ``train_step(state, batch)`` (without keeping its result) and compares
    the parameters, ``||new - old|| / ||old||`` per layer.

    For steps with no single loss to differentiate (a GAN's two players, each with its own
    optimizer and several updates per step), this is the part of `make_diagnostics_step`'s
    report that stays exact.
    """

    def diagnose(state: TrainState, batch: Batch) -> Report:
        after, _ = train_step(state, batch)
        applied = jax.tree.map(jnp.subtract, after.params, state.params)
        return {"update_ratio": update_ratios(applied, state.params)}

    return diagnose


class PackedReports:
    """``fn(*args) -> report`` as a function returning one float32 vector, so that a compiled
    report reaches the host in one transfer instead of one per statistic; ``unpack`` rebuilds
    the report from a fetched vector (its layout is recorded when ``fn`` is traced)."""

    def __init__(self, fn: Callable[..., Report]):
        self.fn = fn
        self.layout: tuple[Any, list[tuple[int, ...]]] | None = None

    def __call__(self, *args: Any) -> Array:
        leaves, treedef = jax.tree.flatten(self.fn(*args))
        self.layout = (treedef, [leaf.shape for leaf in leaves])
        return jnp.concatenate([jnp.ravel(leaf).astype(jnp.float32) for leaf in leaves])

    def unpack(self, vector: np.ndarray) -> Report:
        treedef, shapes = self.layout
        ends = np.cumsum([math.prod(shape) for shape in shapes])
        parts = np.split(np.asarray(vector), ends[:-1])
        return jax.tree.unflatten(
            treedef, [part.reshape(shape) for part, shape in zip(parts, shapes, strict=True)]
        )


def report_record(step: int, report: Report) -> dict[str, Any]:
    """A report fetched to the host as a JSON-ready history entry ``{"step": step, ...}``
    (floats; lists over members for ensembles)."""
    return {"step": int(step), **jax.tree.map(lambda value: np.asarray(value).tolist(), report)}


def _layer_name(path: tuple) -> str:
    """The path of a leaf's parent: ``("dense_0", "kernel")`` -> ``"dense_0"``."""
    return jax.tree_util.keystr(path[:-1], simple=True, separator="/") or "(root)"


def _sown(collection: PyTree) -> dict[str, Array]:
    """``{path: value}`` of a sown collection; each sow appends to a tuple, so a name sown
    more than once gets ``#i`` suffixes."""
    flat: dict[str, Array] = {}

    def visit(node, prefix):
        if isinstance(node, Mapping):
            for key, child in node.items():
                visit(child, f"{prefix}/{key}" if prefix else str(key))
        elif isinstance(node, tuple) and len(node) == 1:
            flat[prefix] = node[0]
        elif isinstance(node, tuple):
            for i, value in enumerate(node):
                flat[f"{prefix}#{i}"] = value
        else:
            flat[prefix] = node

    visit(collection, "")
    return flat


def _sow_batch_norm_drift(next_fun, args, kwargs, context):
    """Method interceptor: a batch norm that normalises with batch statistics sows
    ``batch_norm_drift`` of its input against its running averages (before their update)."""
    module = context.module
    if (
        isinstance(module, nn.BatchNorm)
        and context.method_name == "__call__"
        and module.is_mutable_collection(DIAGNOSTICS_COLLECTION)
        and module.has_variable("batch_stats", "mean")
    ):
        explicit = kwargs.get("use_running_average", args[1] if len(args) > 1 else None)
        if not nn.merge_param("use_running_average", module.use_running_average, explicit):
            drift = batch_norm_drift(
                args[0],
                module.get_variable("batch_stats", "mean"),
                module.get_variable("batch_stats", "var"),
                module.epsilon,
                module.axis,
            )
            module.sow(DIAGNOSTICS_COLLECTION, "batch_norm", drift)
    return next_fun(*args, **kwargs)
