"""Losses and gradient descent: cross-entropy and MSE by hand, ``jax.grad``, mini-batch SGD.

Synopsis::

    python examples/losses_and_gradient_descent.py     # about 6 s on 2 CPU cores

Expected: the two one-step updates agree exactly; SGD learns w = 2.02, b = 1.01.

1. Losses on a few examples: softmax cross-entropy (classes), sigmoid cross-entropy (0/1
   labels) and squared error (regression), each one value per example, from ``adljax.losses``.
2. Gradient descent written out with ``jax.grad`` on a tiny problem (fit ``y = 2x + 1`` with a
   ``LinearRegression``, ``(B, 1) -> (B, 1)``), next to ``adljax.make_train_step``: one step
   of each gives the same parameters. Then the learning rate: too small crawls, too large
   diverges.
3. Mini-batch SGD with the library's step, a decaying learning rate, and the ``learning_rate``
   and ``grad_norm`` metrics (the norm on request: ``make_train_step(task, grad_norm=True)``).
"""

import jax
import jax.numpy as jnp
import numpy as np
import optax

import adljax


def show_losses() -> dict:
    """Prints and returns the three losses on hand-picked examples."""
    logits = jnp.array([[2.0, 1.0, 0.1], [0.5, 2.5, 0.3], [1.2, 0.2, 3.0]])  # (3 examples, 3)
    labels = jnp.array([0, 1, 0])  # the third example puts its mass on the wrong class
    cross_entropy = adljax.losses.softmax_cross_entropy(logits, labels)
    by_hand = -jnp.log(jax.nn.softmax(logits)[jnp.arange(3), labels])
    print("softmax cross-entropy = -log p(label)")
    for i in range(3):
        p = jax.nn.softmax(logits[i])[labels[i]]
        print(
            f"  logits {np.asarray(logits[i])} label {labels[i]}: p = {p:.3f}, "
            f"loss = {cross_entropy[i]:.4f} (by hand {by_hand[i]:.4f})"
        )

    binary_logits, binary_labels = jnp.array([3.0, -1.0, 0.0]), jnp.array([1, 1, 0])
    binary = adljax.losses.sigmoid_binary_cross_entropy(binary_logits, binary_labels)
    print("sigmoid cross-entropy, logits [3, -1, 0], labels [1, 1, 0]:", np.round(binary, 4))

    predictions, targets = jnp.array([[2.5], [0.0], [2.1]]), jnp.array([[3.0], [-0.5], [2.0]])
    squared = adljax.losses.squared_error(predictions, targets)
    mse = adljax.metrics.mean_squared_error(predictions, targets)
    print(f"squared error per example {np.round(squared, 4)}, mean (MSE) {mse:.4f}")
    return {
        "cross_entropy": np.asarray(cross_entropy),
        "cross_entropy_by_hand": np.asarray(by_hand),
        "binary_cross_entropy": np.asarray(binary),
        "mse": float(mse),
    }


def main(steps: int = 50, sgd_epochs: int = 10) -> dict:
    """Runs the three parts of the lesson; returns their numbers."""
    results = show_losses()

    # Part 2: the tiny problem y = 2x + 1, 8 points, full batch.
    x = np.linspace(-1.0, 1.0, 8, dtype=np.float32)[:, None]  # (8, 1)
    y = 2.0 * x + 1.0  # (8, 1)
    model = adljax.models.LinearRegression(num_outputs=1)

    def loss_fn(params, x, y):
        predictions = model.apply({"params": params}, x)
        return jnp.mean((predictions - y) ** 2)

    grad_fn = jax.jit(jax.grad(loss_fn))
    task = adljax.tasks.get_task("regression")
    train_step = jax.jit(adljax.make_train_step(task, grad_norm=True))
    learning_rate = 0.1
    state = adljax.create_train_state(
        model, adljax.create_optimizer("sgd", learning_rate), x, jax.random.key(0)
    )

    grads = grad_fn(state.params, x, y)
    by_hand = jax.tree.map(lambda p, g: p - learning_rate * g, state.params, grads)
    stepped, metrics = train_step(state, {"x": x, "y": y})
    difference = max(
        float(jnp.max(jnp.abs(a - b)))
        for a, b in zip(jax.tree.leaves(by_hand), jax.tree.leaves(stepped.params), strict=True)
    )
    grad_norm = float(optax.tree.norm(grads))
    print(f"\none step: hand-written update vs make_train_step differ by {difference:.1e}")
    print(
        f"  grad_norm metric {float(metrics['grad_norm']):.6f} = |grad| {grad_norm:.6f}; "
        f"learning_rate metric {float(metrics['learning_rate']):.3g}"
    )
    results |= {
        "one_step_difference": difference,
        "grad_norm": grad_norm,
        "grad_norm_metric": float(metrics["grad_norm"]),
    }

    print(f"\ngradient descent by hand, {steps} steps: loss by learning rate")
    final_loss = {}
    for rate in (0.01, 0.1, 0.5, 1.05):
        params = state.params
        for _ in range(steps):
            params = jax.tree.map(lambda p, g, r=rate: p - r * g, params, grad_fn(params, x, y))
        final_loss[rate] = float(loss_fn(params, x, y))
        w, b = float(params["dense"]["kernel"][0, 0]), float(params["dense"]["bias"][0])
        print(f"  lr {rate:<5}: loss {final_loss[rate]:.3e}, w = {w:.3f}, b = {b:.3f}")
    results["final_loss_by_learning_rate"] = final_loss

    # Part 3: mini-batch SGD on 64 noisy points, batches of 8, learning rate decaying 0.3 -> 0.03.
    rng = np.random.default_rng(0)
    xs = rng.uniform(-1.0, 1.0, (64, 1)).astype(np.float32)
    ys = 2.0 * xs + 1.0 + 0.1 * rng.normal(size=(64, 1)).astype(np.float32)
    data = adljax.data.from_arrays(xs, ys, task="regression")
    schedule = optax.linear_schedule(0.3, 0.03, transition_steps=sgd_epochs * 8)
    state = adljax.create_train_state(
        model, adljax.create_optimizer("sgd", schedule), xs[:1], jax.random.key(0)
    )
    print("\nmini-batch SGD (batch 8): epoch, mean loss, learning rate of the last step, grad norm")
    rates = []
    for epoch in range(sgd_epochs):
        losses, norms = [], []
        for batch in data.batches(8, seed=0, epoch=epoch):
            state, metrics = train_step(state, batch)
            losses.append(float(metrics["loss"]))
            norms.append(float(metrics["grad_norm"]))
            rates.append(float(metrics["learning_rate"]))
        print(f"  {epoch + 1:2d}  {np.mean(losses):.4f}  {rates[-1]:.3f}  {np.mean(norms):.3f}")
    w, b = float(state.params["dense"]["kernel"][0, 0]), float(state.params["dense"]["bias"][0])
    print(f"learned w = {w:.3f}, b = {b:.3f} (true 2, 1)")
    return results | {"sgd_w": w, "sgd_b": b, "sgd_learning_rates": rates}


if __name__ == "__main__":
    main()
