"""Representation learning on XOR: a linear model fails, one hidden layer succeeds.

Synopsis::

    python examples/xor_representation.py     # about 6 s on 2 CPU cores

Expected: linear 0.25 (at most 0.75 possible), MLP 1.00; probe on hidden layer 1.00.

XOR labels the corners ``(0, 0), (1, 1)`` with 0 and ``(0, 1), (1, 0)`` with 1. No line
separates them, so a linear model (``(B, 2) -> (B, 1)`` logit) gets at most 3 of 4 right.
An ``MLP`` with one hidden layer, ``(B, 2) -> (B, 8) tanh -> (B, 1)``, learns an affine map
plus non-linearity under which they *are* linearly separable: its head is a linear classifier
on the hidden representation. The MLP sows each hidden activation as
``intermediates/hidden_{i}``, so ``apply(..., mutable=["intermediates"])`` returns it. A fresh
linear model trained on that representation of the 4 corners classifies them all correctly;
the same linear model on the raw corners cannot.
"""

import jax
import numpy as np

import adljax


def train_binary(model, data, *, epochs: int, batch_size: int) -> adljax.FitResult:
    """Trains ``model`` on 0/1 labels with sigmoid cross-entropy and Adam (lr 0.05)."""
    tx = adljax.create_optimizer("adam", 0.05)
    state = adljax.create_train_state(model, tx, data.arrays["x"][:1], jax.random.key(0))
    return adljax.fit(
        state, data, task="binary", epochs=epochs, batch_size=batch_size, progress=False
    )


def main(epochs: int = 150, hidden_size: int = 8) -> dict:
    """Trains both models on XOR and probes the hidden layer; returns the accuracies."""
    train, test = adljax.data.load("xor", "train"), adljax.data.load("xor", "test")
    corners, labels = test.arrays["x"], test.arrays["y"]  # (4, 2), (4,)

    linear = train_binary(
        adljax.models.LinearRegression(num_outputs=1), train, epochs=epochs, batch_size=16
    )
    mlp_model = adljax.models.MLP(hidden_sizes=(hidden_size,), num_outputs=1, activation="tanh")
    mlp = train_binary(mlp_model, train, epochs=epochs, batch_size=16)
    linear_accuracy = adljax.evaluate(linear.state, test)["accuracy"]
    mlp_accuracy = adljax.evaluate(mlp.state, test)["accuracy"]
    print(f"accuracy on the 4 corners: linear {linear_accuracy:.2f}, MLP {mlp_accuracy:.2f}")

    logits, collections = mlp_model.apply(
        mlp.state.variables, corners, train=False, mutable=["intermediates"]
    )
    hidden = np.asarray(collections["intermediates"]["hidden_0"][0])  # sow keeps a tuple
    print(f"\nhidden representation tanh(x W1 + b1), shape {hidden.shape}, and the MLP's logit")
    for corner, label, row, logit in zip(corners, labels, hidden, logits[:, 0], strict=True):
        print(
            f"  {corner.astype(int)} -> {label}: "
            + " ".join(f"{v:5.2f}" for v in row)
            + f"  | {logit:6.2f}"
        )

    # The same linear learner, once on raw corners and once on their learned representation.
    def linear_probe(features: np.ndarray) -> float:
        data = adljax.data.from_arrays(features, labels, task="binary")
        probe = train_binary(
            adljax.models.LinearRegression(num_outputs=1), data, epochs=200, batch_size=4
        )
        return adljax.evaluate(probe.state, data)["accuracy"]

    raw_probe, hidden_probe = linear_probe(corners), linear_probe(hidden)
    print(f"\na linear model on the raw corners:           accuracy {raw_probe:.2f}")
    print(f"a linear model on the hidden representation: accuracy {hidden_probe:.2f}")
    return {
        "linear_accuracy": linear_accuracy,
        "mlp_accuracy": mlp_accuracy,
        "hidden": hidden,
        "raw_probe_accuracy": raw_probe,
        "hidden_probe_accuracy": hidden_probe,
    }


if __name__ == "__main__":
    main()
