"""Day 1 lessons as properties: least squares by gradient descent, XOR needs a hidden layer."""

import jax
import numpy as np
import optax
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adljax.data import from_arrays, load
from adljax.models import MLP, LinearRegression
from adljax.training import create_optimizer, create_train_state, fit


@settings(max_examples=5)
@given(
    seed=st.integers(0, 10_000),
    features=st.integers(1, 4),
    outputs=st.integers(1, 2),
)
def test_gradient_descent_reaches_the_least_squares_solution(seed, features, outputs):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(96, features)).astype(np.float32)
    weights = rng.normal(size=(features, outputs))
    y = (x @ weights + 0.5 + 0.3 * rng.normal(size=(96, outputs))).astype(np.float32)
    data = from_arrays(x, y, task="regression")
    state = create_train_state(
        LinearRegression(num_outputs=outputs), optax.sgd(0.1), x[:1], jax.random.key(seed)
    )
    # Full-batch gradient descent on the mean squared error.
    result = fit(state, data, task="regression", epochs=400, batch_size=96, progress=False)
    design = np.concatenate([x, np.ones((96, 1), np.float32)], axis=1)
    solution = np.linalg.lstsq(design.astype(np.float64), y.astype(np.float64), rcond=None)[0]
    params = result.state.params["dense"]
    learned = np.concatenate([params["kernel"], params["bias"][None]])
    np.testing.assert_allclose(learned, solution, atol=2e-3)


@pytest.fixture(scope="module")
def xor():
    return load("xor", "train"), load("xor", "test")


def _fit_xor(model, xor, key):
    train, test = xor
    state = create_train_state(model, create_optimizer("adam", 0.05), train.arrays["x"][:1], key)
    result = fit(
        state, train, task="binary", epochs=150, batch_size=16, eval_data=test, progress=False
    )
    return result.history[-1]["eval"]["accuracy"]


def test_a_linear_model_cannot_fit_xor(xor, key):
    # At most 3 of the 4 corners can lie on the right side of one line.
    assert _fit_xor(LinearRegression(num_outputs=1), xor, key) <= 0.75


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_one_hidden_layer_fits_xor_exactly(xor, seed):
    model = MLP(hidden_sizes=(8,), num_outputs=1, activation="tanh")
    assert _fit_xor(model, xor, jax.random.key(seed)) == 1.0
