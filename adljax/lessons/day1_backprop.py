"""Day 1: backpropagation by hand. The chain rule, written as one matrix product per layer,
gives the gradients ``jax.grad`` gives; gradient descent with them trains a network, and the
learning rate decides whether it converges."""

import jax
import jax.numpy as jnp
import numpy as np

from adljax import backprop, plots
from adljax.data import load
from adljax.tour import LessonContext, Result, lesson

HIDDEN_FEATURES = 64
# The line fit's loss has curvatures 0.55 and 2.69 (the eigenvalues of its Hessian): gradient
# descent is stable below 2 / 2.69 = 0.744 and fastest at 2 / (0.55 + 2.69) = 0.62.
LINE_LEARNING_RATES = {0.05: "too small", 0.6: "good", 0.76: "too large"}
LINE_STEPS = 30


def _max_difference(grads: backprop.TwoLayerParams, reference: backprop.TwoLayerParams) -> float:
    """The largest entry of ``|grads - reference|`` (in NumPy: nothing to compile)."""
    return max(
        float(np.abs(np.subtract(g, r)).max()) for g, r in zip(grads, reference, strict=True)
    )


def _max_magnitude(grads: backprop.TwoLayerParams) -> float:
    return max(float(np.abs(g).max()) for g in grads)


def _noisy_line() -> tuple[np.ndarray, np.ndarray]:
    """20 points of ``y = 2x + 1`` plus noise of std 0.2, ``x`` in [-0.5, 1.5]; each ``(20,)``."""
    x = np.linspace(-0.5, 1.5, 20, dtype=np.float32)
    noise = np.random.default_rng(0).normal(size=20).astype(np.float32)
    return x, 2.0 * x + 1.0 + 0.2 * noise


@lesson("Day 1", "backpropagation by hand: the chain rule equals jax.grad")
def backpropagation(ctx: LessonContext) -> list[Result]:
    train, test = load("spirals", "train"), load("spirals", "test")
    x, labels = train.arrays["x"], train.arrays["y"]  # (320, 2), (320,)
    key = jax.random.key(0)
    # Compiled once per activation (a static argument) and dtype: faster than running eagerly.
    by_hand_fn = jax.jit(backprop.two_layer_gradients, static_argnames="activation")
    by_autodiff_fn = jax.jit(jax.grad(backprop.two_layer_loss), static_argnames="activation")
    initial = backprop.init_two_layer(key, 2, HIDDEN_FEATURES, 2)
    rows = []
    for activation in ("sigmoid", "tanh", "relu"):
        _, by_hand = by_hand_fn(initial, x, labels, activation=activation)
        by_autodiff = by_autodiff_fn(initial, x, labels, activation=activation)
        rows.append(
            Result(
                "backprop",
                f"two-layer ({activation})",
                "spirals",
                "max |hand - jax.grad|",
                _max_difference(by_hand, by_autodiff),
                f"float32; largest gradient {_max_magnitude(by_autodiff):.3f}",
            )
        )

    with jax.enable_x64(True):
        params = backprop.init_two_layer(key, 2, HIDDEN_FEATURES, 2, dtype=jnp.float64)
        x64 = x.astype(np.float64)
        _, by_hand = by_hand_fn(params, x64, labels, activation="tanh")
        numerical = backprop.finite_difference_gradients(
            lambda p: backprop.two_layer_loss(p, x64, labels, "tanh"), params
        )
        relative_error = _max_difference(by_hand, numerical) / _max_magnitude(numerical)
    rows.append(
        Result(
            "backprop",
            "two-layer (tanh)",
            "spirals",
            "max rel. error vs finite diff.",
            relative_error,
            "float64, central differences, eps 1e-6",
        )
    )

    steps = ctx.epochs(5000, 1000)
    params, losses = backprop.train_two_layer(
        initial, x, labels, "relu", learning_rate=1.0, steps=steps
    )
    predictions = backprop.forward(params, test.arrays["x"], "relu").z2.argmax(axis=-1)
    rows.append(
        Result(
            "backprop",
            "two-layer (relu), hand gradients",
            "spirals",
            "eval accuracy",
            float(np.mean(np.asarray(predictions) == test.arrays["y"])),
            f"{steps} steps of gradient descent, lr 1.0; loss {losses[0]:.3f} -> {losses[-1]:.3f}",
        )
    )

    line_x, line_y = _noisy_line()
    loss_fn = backprop.line_fit_loss(line_x, line_y)
    least_squares = np.polyfit(line_x, line_y, 1)  # (slope, intercept)
    curvatures = np.linalg.eigvalsh(jax.hessian(loss_fn)(jnp.zeros(2)))
    paths = {}
    for rate, verdict in LINE_LEARNING_RATES.items():
        path = backprop.descent_path(loss_fn, jnp.zeros(2), rate, LINE_STEPS)
        paths[f"learning rate {rate} ({verdict})"] = path
        rows.append(
            Result(
                "gradient descent",
                f"line fit, lr {rate} ({verdict})",
                "y = 2x + 1 + noise",
                f"loss after {LINE_STEPS} steps",
                float(loss_fn(path[-1])),
                f"least squares {float(loss_fn(least_squares)):.4f}; "
                f"stable below lr 2 / {curvatures.max():.2f} = {2 / curvatures.max():.3f}",
            )
        )
    plots.plot_descent_paths(
        loss_fn,
        paths,
        ctx.output_dir / "descent_paths.png",
        minimum=least_squares,
        parameter_names=("slope a", "intercept b"),
    )
    return rows
