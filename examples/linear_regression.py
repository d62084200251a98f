"""Line of best fit: gradient descent on house prices reaches NumPy's least-squares solution.

Synopsis::

    python examples/linear_regression.py      # about 4 s on 2 CPU cores

Expected: gradient descent within 2e-7 of least squares, SGD within 0.01, test R^2 0.988.

The data is ``housing_synthetic``: 400 training houses whose price follows a known linear law
of four features plus noise. Features and price are standardised, so the law the data was
drawn from, in the units the model sees, is ``info.extras["coefficients_standardised"]``.
A ``LinearRegression`` (one dense layer, ``(B, 4) -> (B, 1)``) trained on the mean squared
error is least squares. Full-batch gradient descent converges to the closed-form solution;
mini-batch SGD with a constant learning rate ends up close to it, jittering with the batches.
"""

import jax
import numpy as np

import adljax


def least_squares(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """The closed-form fit ``[w; b]`` of ``y ≈ x w + b``, shape ``(features + 1, outputs)``."""
    design = np.concatenate([x, np.ones((len(x), 1))], axis=1).astype(np.float64)
    return np.linalg.lstsq(design, y.astype(np.float64), rcond=None)[0]


def learned_coefficients(state: adljax.TrainState) -> np.ndarray:
    """The model's ``[w; b]``, in the layout of ``least_squares``."""
    dense = state.params["dense"]
    return np.concatenate([np.asarray(dense["kernel"]), np.asarray(dense["bias"])[None]])


def main(gd_epochs: int = 200, sgd_epochs: int = 30, learning_rate: float = 0.1) -> dict:
    """Fits the line by full-batch gradient descent and by mini-batch SGD; returns the numbers."""
    train = adljax.data.load("housing_synthetic", "train")
    test = adljax.data.load("housing_synthetic", "test")
    x, y = train.arrays["x"], train.arrays["y"]  # (400, 4), (400, 1)
    model = adljax.models.LinearRegression(num_outputs=1, input_shape=train.info.input_shape)

    def train_with(batch_size: int, epochs: int) -> adljax.FitResult:
        tx = adljax.create_optimizer("sgd", learning_rate)
        state = adljax.create_train_state(model, tx, x[:1], jax.random.key(0))
        return adljax.fit(
            state,
            train,
            task="regression",
            epochs=epochs,
            batch_size=batch_size,
            eval_data=test,
            progress=False,
        )

    # One step per epoch over all 400 houses: plain gradient descent.
    gd = train_with(batch_size=len(train), epochs=gd_epochs)
    # 12 steps per epoch on shuffled batches of 32: stochastic gradient descent.
    sgd = train_with(batch_size=32, epochs=sgd_epochs)

    solution = least_squares(x, y)[:, 0]
    gd_coefficients = learned_coefficients(gd.state)[:, 0]
    sgd_coefficients = learned_coefficients(sgd.state)[:, 0]
    extras = train.info.extras
    true = np.array([*extras["coefficients_standardised"], extras["intercept_standardised"]])

    print("coefficients in standardised units (price std per feature std)")
    print(f"{'':12s} {'GD':>9s} {'SGD':>9s} {'lstsq':>9s} {'true':>9s}")
    for name, *row in zip(
        [*train.info.feature_names, "intercept"],
        gd_coefficients,
        sgd_coefficients,
        solution,
        true,
        strict=True,
    ):
        print(f"{name:12s} " + " ".join(f"{v:9.4f}" for v in row))
    gd_gap = float(np.max(np.abs(gd_coefficients - solution)))
    sgd_gap = float(np.max(np.abs(sgd_coefficients - solution)))
    print(f"max |GD - lstsq|  = {gd_gap:.2e}  ({gd_epochs} steps of gradient descent)")
    print(f"max |SGD - lstsq| = {sgd_gap:.2e}  ({sgd_epochs} epochs of batch-32 SGD)")
    r2 = gd.history[-1]["eval"]["r2"]
    print(f"test R^2 = {r2:.4f}; noise std (standardised) = {extras['noise_std_standardised']:.4f}")
    return {
        "gd_coefficients": gd_coefficients,
        "sgd_coefficients": sgd_coefficients,
        "lstsq_coefficients": solution,
        "true_coefficients": true,
        "gd_gap": gd_gap,
        "sgd_gap": sgd_gap,
        "test_r2": r2,
    }


if __name__ == "__main__":
    main()
