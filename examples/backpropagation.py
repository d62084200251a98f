"""Backpropagation by hand: the chain rule, one matrix product per layer, equals ``jax.grad``.

Synopsis::

    python examples/backpropagation.py              # the figure in a new temp directory
    python examples/backpropagation.py figures/     # the figure in figures/

Expected (about 10 s on 2 CPU cores): hand-written gradients within 1.5e-8 of ``jax.grad``
in float32 and within 2.4e-9 (relative) of central finite differences in float64; gradient
descent with them reaches test accuracy 0.988 on the spirals; on a line fit, learning rate
0.05 crawls, 0.6 reaches least squares, 0.76 diverges.

1. A two-layer network on the spirals, ``(320, 2) -> 64 hidden -> (320, 2)`` logits: the
   forward pass keeps each layer's output; the backward pass turns the loss's gradient with
   respect to the logits into the gradient of every weight, layer by layer, with matrix
   products (``adljax.backprop.forward`` and ``backward``).
2. The same gradients from ``jax.grad`` (reverse-mode automatic differentiation of the loss)
   and from finite differences, which need no calculus but one pair of loss evaluations per
   weight.
3. Full-batch gradient descent with the hand-written gradients trains the network.
4. Gradient descent on the loss of a line fit ``y = a x + b``, which has two parameters, so
   its path can be drawn over the loss's contours: too small, good and too large a learning
   rate (``descent_paths.png``).
"""

import sys
import tempfile
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

import adljax
from adljax import backprop, plots

LINE_LEARNING_RATES = {0.05: "too small", 0.6: "good", 0.76: "too large"}


def max_difference(grads: backprop.TwoLayerParams, reference: backprop.TwoLayerParams) -> float:
    """The largest entry of ``|grads - reference|`` over all four gradients."""
    pairs = zip(grads, reference, strict=True)
    return max(float(np.abs(np.subtract(g, r)).max()) for g, r in pairs)


def show_layers(params: backprop.TwoLayerParams, x: np.ndarray, labels: np.ndarray) -> dict:
    """Prints the forward and backward pass, layer by layer; returns every array's shape."""
    cache = backprop.forward(params, x, "tanh")
    grads, deltas = backprop.backward(params, cache, labels, "tanh")
    lines = [
        ("z1 = x W1 + b1", cache.z1, "dz1 = dh * f'(z1)", deltas.z1),
        ("h = f(z1)", cache.h, "dh = dz2 W2^T", deltas.h),
        ("z2 = h W2 + b2", cache.z2, "dz2 = (softmax(z2) - onehot(y)) / B", deltas.z2),
    ]
    print(f"tanh network; forward pass, x {x.shape}   backward pass (read upwards)")
    for forward_step, value, backward_step, delta in lines:
        print(f"  {forward_step:15s} {value.shape!s:10s} {backward_step:36s} {delta.shape}")
    print("gradients of the weights:")
    print(f"  dW2 = h^T dz2  {grads.w2.shape}   db2 = sum_i dz2  {grads.b2.shape}")
    print(f"  dW1 = x^T dz1  {grads.w1.shape}   db1 = sum_i dz1  {grads.b1.shape}")
    arrays = {"x": cache.x, "z1": cache.z1, "h": cache.h, "z2": cache.z2}
    arrays |= {f"d{name}": delta for name, delta in deltas._asdict().items()}
    arrays |= {f"d{name}": grad for name, grad in grads._asdict().items()}
    return {name: tuple(array.shape) for name, array in arrays.items()}


def main(
    output_dir: str | None = None,
    hidden_features: int = 64,
    steps: int = 5000,
    descent_steps: int = 30,
) -> dict:
    """Runs the four parts of the lesson; returns their numbers and the figure's path.

    Args:
        output_dir: where to write ``descent_paths.png`` (created if needed, an existing file is
            replaced); default a new temporary directory, which is kept.
        hidden_features: hidden units of the two-layer network.
        steps: gradient-descent steps on the spirals.
        descent_steps: gradient-descent steps on the line fit.
    """
    train, test = adljax.data.load("spirals", "train"), adljax.data.load("spirals", "test")
    x, labels = train.arrays["x"], train.arrays["y"]  # (320, 2), (320,)
    key = jax.random.key(0)
    params = backprop.init_two_layer(key, 2, hidden_features, 2)
    shapes = show_layers(params, x, labels)

    # Part 2: the same gradients by automatic differentiation and by finite differences.
    by_hand_fn = jax.jit(backprop.two_layer_gradients, static_argnames="activation")
    by_autodiff_fn = jax.jit(jax.grad(backprop.two_layer_loss), static_argnames="activation")
    print("\nmax |hand - jax.grad| in float32 (largest gradient entry in brackets)")
    autodiff_difference = {}
    for activation in ("sigmoid", "tanh", "relu"):
        _, by_hand = by_hand_fn(params, x, labels, activation=activation)
        by_autodiff = by_autodiff_fn(params, x, labels, activation=activation)
        autodiff_difference[activation] = max_difference(by_hand, by_autodiff)
        largest = max(float(np.abs(g).max()) for g in by_autodiff)
        print(f"  {activation:8s} {autodiff_difference[activation]:.1e}  ({largest:.3f})")
    with jax.enable_x64(True):  # finite differences need float64: see finite_difference_gradients
        params64 = jax.tree.map(lambda p: p.astype(jnp.float64), params)
        x64 = x.astype(np.float64)
        _, by_hand = by_hand_fn(params64, x64, labels, activation="tanh")
        numerical = backprop.finite_difference_gradients(
            lambda p: backprop.two_layer_loss(p, x64, labels, "tanh"), params64
        )
        finite_difference_error = max_difference(by_hand, numerical) / max(
            float(np.abs(g).max()) for g in numerical
        )
    count = sum(p.size for p in params)
    print(
        f"max |hand - finite differences| / max |finite differences| in float64 (tanh): "
        f"{finite_difference_error:.1e} ({2 * count} loss evaluations for {count} weights)"
    )

    # Part 3: gradient descent with the hand-written gradients.
    trained, losses = backprop.train_two_layer(
        params, x, labels, "relu", learning_rate=1.0, steps=steps
    )
    predictions = backprop.forward(trained, test.arrays["x"], "relu").z2.argmax(axis=-1)
    test_accuracy = float(np.mean(np.asarray(predictions) == test.arrays["y"]))
    print(
        f"\nReLU network, {steps} steps of gradient descent (lr 1.0) with the hand-written "
        f"gradients: loss {losses[0]:.3f} -> {losses[-1]:.3f}, test accuracy {test_accuracy:.3f}"
    )

    # Part 4: the learning rate, on a loss of two parameters.
    line_x = np.linspace(-0.5, 1.5, 20, dtype=np.float32)  # (20,)
    noise = np.random.default_rng(0).normal(size=20).astype(np.float32)
    line_y = 2.0 * line_x + 1.0 + 0.2 * noise
    loss_fn = backprop.line_fit_loss(line_x, line_y)  # theta = (a, b) -> mean (a x + b - y)^2
    least_squares = np.polyfit(line_x, line_y, 1)  # (a, b)
    curvatures = np.linalg.eigvalsh(jax.hessian(loss_fn)(jnp.zeros(2)))
    print(
        f"\nline fit y = a x + b: least squares a = {least_squares[0]:.4f}, "
        f"b = {least_squares[1]:.4f}, loss {float(loss_fn(least_squares)):.4f}; curvatures "
        f"{curvatures[0]:.3f}, {curvatures[1]:.3f}: stable below lr {2 / curvatures[1]:.3f}"
    )
    paths, final_loss = {}, {}
    for rate, verdict in LINE_LEARNING_RATES.items():
        paths[rate] = backprop.descent_path(loss_fn, jnp.zeros(2), rate, descent_steps)
        final_loss[rate] = float(loss_fn(paths[rate][-1]))
        a, b = np.asarray(paths[rate][-1])
        print(
            f"  lr {rate:<4} {'(' + verdict + ')':11s}: after {descent_steps} steps a = {a:7.3f}, "
            f"b = {b:7.3f}, loss {final_loss[rate]:.4g}"
        )
    directory = Path(output_dir or tempfile.mkdtemp(prefix="adljax_backpropagation_"))
    figure = plots.plot_descent_paths(
        loss_fn,
        {f"learning rate {r} ({v})": paths[r] for r, v in LINE_LEARNING_RATES.items()},
        directory / "descent_paths.png",
        minimum=least_squares,
        parameter_names=("slope a", "intercept b"),
        overwrite=True,
    )
    print(f"wrote {figure}")
    return {
        "shapes": shapes,
        "autodiff_difference": autodiff_difference,
        "finite_difference_error": finite_difference_error,
        "losses": np.asarray(losses),
        "test_accuracy": test_accuracy,
        "least_squares": least_squares,
        "least_squares_loss": float(loss_fn(least_squares)),
        "stability_limit": float(2 / curvatures[1]),
        "descent_paths": {rate: np.asarray(path) for rate, path in paths.items()},
        "final_loss": final_loss,
        "figure": figure,
    }


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else None)
