"""Day 1: why the enhancements work, seen in the training diagnostics.

A 10-layer MLP on handwritten digits with sigmoid, tanh, ReLU and ReLU + batch norm: the
per-layer gradient norms at initialisation (vanishing gradients through sigmoid), the
saturated and dead fractions, and the accuracy each reaches; then dropout's effect on the gap
between training-set and test-set accuracy, epoch by epoch.
"""

import jax
import numpy as np

from adljax.data import load
from adljax.inference import evaluate
from adljax.models import MLP
from adljax.plots import plot_layer_statistics, plot_series
from adljax.tour import LessonContext, Result, lesson
from adljax.training import create_optimizer, create_train_state, fit

DEPTH = 10
VARIANTS = (
    ("sigmoid", {"activation": "sigmoid"}),
    ("tanh", {"activation": "tanh"}),
    ("relu", {"activation": "relu"}),
    ("relu + batch norm", {"activation": "relu", "batch_norm": True}),
)


def _train(train, test, model, epochs, callbacks, *, diagnostics_every=None, evaluate_fn=None):
    tx = create_optimizer("adam", 1e-3)
    state = create_train_state(model, tx, train.arrays["x"][:1], jax.random.key(0))
    return fit(
        state,
        train,
        task="classification",
        epochs=epochs,
        batch_size=64,
        eval_data=test,
        diagnostics_every=diagnostics_every,
        evaluate_fn=evaluate_fn,
        progress=False,
        callbacks=callbacks,
    )


@lesson("Day 1", "diagnostics: vanishing gradients, saturated and dead units, dropout's gap")
def diagnostics(ctx: LessonContext) -> list[Result]:
    train, test = load("digits", "train"), load("digits", "test")
    epochs = ctx.epochs(20, 2)
    steps_per_epoch = len(train) // 64
    rows, at_init = [], {}
    for label, settings in VARIANTS:
        model = MLP(hidden_sizes=(32,) * DEPTH, **settings)
        result = _train(
            train, test, model, epochs, ctx.callbacks, diagnostics_every=steps_per_epoch
        )
        reports = [report for record in result.history for report in record["diagnostics"]]
        first, last = reports[0], reports[-1]
        at_init[label] = first
        norms = first["grad_norm"]
        ratio = norms["dense_0"] / norms[f"dense_{DEPTH - 1}"]
        hidden = [last["activations"][f"hidden_{i}"] for i in range(DEPTH)]
        kind = "saturated_fraction" if "saturated_fraction" in hidden[0] else "dead_fraction"
        rows += [
            Result(
                "diagnostics",
                f"mlp x{DEPTH} ({label})",
                "digits",
                "|g| layer 1 / layer 10",
                ratio,
                "at initialisation",
            ),
            Result(
                "diagnostics",
                f"mlp x{DEPTH} ({label})",
                "digits",
                kind.replace("_", " "),
                float(np.mean([h[kind] for h in hidden])),
                f"mean over layers, step {last['step']}",
            ),
            Result(
                "diagnostics",
                f"mlp x{DEPTH} ({label})",
                "digits",
                "eval accuracy",
                result.history[-1]["eval"]["accuracy"],
            ),
        ]
    plot_layer_statistics(
        at_init,
        ctx.output_dir / "gradient_norms_at_init.png",
        [f"dense_{i}" for i in range(DEPTH)],
        title=f"gradient norm per layer at initialisation ({DEPTH}-layer MLP, digits)",
    )
    gaps, small = {}, train.take(400)
    for rate in (0.0, 0.5):
        model = MLP(hidden_sizes=(256, 256), dropout_rate=rate)
        result = _train(
            small,
            test,
            model,
            ctx.epochs(60, 6),
            ctx.callbacks,
            # The training set's accuracy in eval mode (no dropout), after every epoch.
            evaluate_fn=lambda state: {"train_set_accuracy": evaluate(state, small)["accuracy"]},
        )
        gap = [r["eval"]["train_set_accuracy"] - r["eval"]["accuracy"] for r in result.history]
        gaps[f"dropout {rate}"] = gap
        rows.append(
            Result(
                "dropout gap",
                f"mlp 256x2 (dropout {rate})",
                "digits (400 train)",
                "train - test accuracy",
                gap[-1],
                f"test accuracy {result.history[-1]['eval']['accuracy']:.4f}",
            )
        )
    plot_series(
        gaps,
        ctx.output_dir / "dropout_gap.png",
        xlabel="epoch",
        ylabel="train - test accuracy",
        title="dropout narrows the generalisation gap (digits, 400 training images)",
    )
    return rows
