"""Where an adljax step's extra time goes: the hand-written step plus one adljax feature at a time.

The adljax step differs from the minimal hand-written one in what it computes besides the
update: the learning rate lives in the optimizer state (``optax.inject_hyperparams``) and is
reported, and the task computes summable statistics (masked loss sum, count, accuracy); with
``make_train_step(..., grad_norm=True)`` it also reports the global gradient norm. Each
variant below adds one of these to the hand-written step; ``lr_and_task`` adds the two the
default adljax step computes, and ``adljax`` is the library's own step (its ``TrainState``,
``MLP`` module and task), so the remaining gap between the two is the library's plumbing;
``adljax_grad_norm`` is the adljax step with the gradient norm.
"""

from collections.abc import Callable
from typing import Any

import jax
import optax

import adljax
from adljax.training import learning_rate_of
from benchmarks.implementations import (
    LEARNING_RATE,
    JaxRunner,
    MLPConfig,
    adljax_runner,
    flax_carry,
    flax_model,
    make_batches,
)
from benchmarks.timing import TimingConfig, time_interleaved

VARIANTS: dict[str, dict[str, bool]] = {
    "flax": {},
    "inject_lr": {"inject_lr": True},
    "grad_norm": {"grad_norm": True},
    "task_metrics": {"task_metrics": True},
    "lr_and_task": {"inject_lr": True, "task_metrics": True},
}


def variant_step(
    config: MLPConfig,
    *,
    inject_lr: bool = False,
    grad_norm: bool = False,
    task_metrics: bool = False,
) -> tuple[Callable, optax.GradientTransformation]:
    """The hand-written plain step ``(params, opt_state, x, y) -> (params, opt_state, metrics)``.

    Args:
      inject_lr: build Adam with ``optax.inject_hyperparams`` and report its learning rate.
      grad_norm: report ``optax.tree.norm(grads)``.
      task_metrics: compute the loss and metrics with ``adljax.tasks.Classification``.
    """
    model, task = flax_model(config), adljax.tasks.Classification()
    if inject_lr:
        tx = optax.inject_hyperparams(optax.adam)(learning_rate=LEARNING_RATE)
    else:
        tx = optax.adam(LEARNING_RATE)

    def step(params, opt_state, x, y):
        def loss_fn(params):
            logits = model.apply({"params": params}, x, train=True)
            if task_metrics:
                return task.loss_and_statistics(logits, {"x": x, "y": y})
            loss = optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()
            return loss, {}

        (loss, statistics), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
        updates, opt_state = tx.update(grads, opt_state, params)
        metrics = task.metrics(statistics) if task_metrics else {"loss": loss}
        if inject_lr:
            metrics["learning_rate"] = learning_rate_of(opt_state)
        if grad_norm:
            metrics["grad_norm"] = optax.tree.norm(grads)
        return optax.apply_updates(params, updates), opt_state, metrics

    return step, tx


def variant_runner(config: MLPConfig, x, y, **features: bool) -> JaxRunner:
    """One variant as a ``JaxRunner`` (params and optimizer state donated)."""
    xs, ys = jax.device_put(x), jax.device_put(y)
    step, tx = variant_step(config, **features)
    params = flax_carry(config, xs[0])[0]
    batches = [(xs[i], ys[i]) for i in range(len(xs))]
    return JaxRunner(jax.jit(step, donate_argnums=(0, 1)), (params, tx.init(params)), batches)


def run_ablation(config: MLPConfig, timing: TimingConfig) -> dict[str, Any]:
    """Times every variant and the adljax step together; ratios are paired against ``flax``."""
    if config.batch_norm or config.dropout_rate > 0:
        raise ValueError("the ablation uses the plain MLP (no batch norm, no dropout)")
    x, y = make_batches(config)
    runners = {name: variant_runner(config, x, y, **f) for name, f in VARIANTS.items()}
    runners["adljax"] = adljax_runner(config, x, y)
    runners["adljax_grad_norm"] = adljax_runner(config, x, y, grad_norm=True)
    result = time_interleaved(runners, timing)
    return {
        "model": config.label,
        "variants": {
            name: {
                "median_ms": result.median_ms(name),
                "ratio_to_flax": result.paired_ratio(name, "flax"),
                "flops": runner.flops(),
            }
            for name, runner in runners.items()
        },
        "ratio_adljax/lr_and_task": result.paired_ratio("adljax", "lr_and_task"),
        "timing": result.to_json(),
    }
