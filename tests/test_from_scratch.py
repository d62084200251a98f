"""``adljax.from_scratch``: the hand-built layers equal Flax's, the hand-written gradient
descent reaches least squares and the library's training, and an Orbax checkpoint resumes
hand-written training bitwise."""

from collections.abc import Callable

import chex
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import adljax
from adljax import from_scratch

pytestmark = pytest.mark.usefixtures("fast_compiles")

ACTIVATIONS = {"relu": jax.nn.relu, "tanh": jnp.tanh, "sigmoid": jax.nn.sigmoid}


class FlaxStack(nn.Module):
    """The reference: ``nn.Dense`` layers of ``sizes[1:]`` with ``activation`` between them."""

    sizes: tuple[int, ...]
    activation: Callable[[jax.Array], jax.Array]

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        for i, size in enumerate(self.sizes[1:]):
            if i > 0:
                x = self.activation(x)
            x = nn.Dense(size)(x)
        return x


@pytest.fixture(scope="module")
def windsor():
    train, test = (
        adljax.data.load("windsor_housing", "train"),
        adljax.data.load("windsor_housing", "test"),
    )
    return train, test


def mlp_loss(params, x, y):
    return from_scratch.mean_squared_error(from_scratch.mlp_apply(params, x), y)


def max_gap(a, b) -> float:
    gaps = jax.tree.map(lambda u, v: np.max(np.abs(np.asarray(u) - np.asarray(v))), a, b)
    return float(max(jax.tree.leaves(gaps)))


# Each new shape compiles, so the shapes come from small sets; the values vary freely.
SIZES = st.sampled_from((1, 2, 5))


@settings(max_examples=6)
@given(in_features=SIZES, out_features=SIZES, seed=st.integers(0, 99))
def test_dense_init_draws_what_flax_dense_draws_by_default(in_features, out_features, seed):
    key = jax.random.key(seed)
    params = from_scratch.dense_init(key, in_features, out_features)
    flax_dense = nn.Dense(out_features)
    shape = (in_features, out_features)
    np.testing.assert_array_equal(params["kernel"], flax_dense.kernel_init(key, shape, jnp.float32))
    np.testing.assert_array_equal(params["bias"], np.zeros(out_features, np.float32))
    assert params["kernel"].dtype == params["bias"].dtype == jnp.float32


def compiled(fn):
    """``fn`` compiled afresh under the current XLA flags. Equal programs give bitwise equal
    results only when compiled alike: eager ops reuse executables cached under whatever flags
    were set when they were first run (another module's ``fast_compiles`` turns off the
    fusion of multiply and add, a 1-ulp difference)."""
    return jax.jit(lambda *args: fn(*args))


@settings(max_examples=6)
@given(batch=SIZES, in_features=SIZES, out_features=SIZES, seed=st.integers(0, 99))
def test_dense_apply_equals_flax_dense_exactly(batch, in_features, out_features, seed):
    kernel_key, bias_key, x_key = jax.random.split(jax.random.key(seed), 3)
    params = {
        "kernel": jax.random.normal(kernel_key, (in_features, out_features)),
        "bias": jax.random.normal(bias_key, (out_features,)),  # nonzero, so the add counts
    }
    x = jax.random.normal(x_key, (batch, in_features))
    expected = compiled(lambda p, x: nn.Dense(out_features).apply({"params": p}, x))(params, x)
    np.testing.assert_array_equal(compiled(from_scratch.dense_apply)(params, x), expected)


@settings(max_examples=6)
@given(
    sizes=st.lists(SIZES, min_size=2, max_size=4).map(tuple),
    activation=st.sampled_from(sorted(ACTIVATIONS)),
    seed=st.integers(0, 99),
)
def test_mlp_apply_equals_a_flax_dense_stack_under_jit(sizes, activation, seed):
    init_key, x_key = jax.random.split(jax.random.key(seed))
    x = jax.random.normal(x_key, (3, sizes[0]))
    stack = FlaxStack(sizes, ACTIVATIONS[activation])
    flax_params = stack.init(init_key, x)["params"]
    params = [flax_params[f"Dense_{i}"] for i in range(len(sizes) - 1)]
    hand = jax.jit(from_scratch.mlp_apply, static_argnums=2)(params, x, ACTIVATIONS[activation])
    np.testing.assert_array_equal(hand, jax.jit(stack.apply)({"params": flax_params}, x))
    assert hand.shape == (3, sizes[-1])


def test_mlp_apply_equals_the_library_mlp(key):
    params = from_scratch.mlp_init(key, (5, 8, 8, 2))
    model = adljax.models.MLP(hidden_sizes=(8, 8), num_outputs=2)
    x = jax.random.normal(jax.random.key(1), (4, 5))
    named = {"dense_0": params[0], "dense_1": params[1], "head": params[2]}
    expected = compiled(lambda p, x: model.apply({"params": p}, x, train=False))(named, x)
    np.testing.assert_array_equal(compiled(from_scratch.mlp_apply)(params, x), expected)


def test_mlp_init_gives_each_layer_its_own_key(key):
    params = from_scratch.mlp_init(key, (4, 4, 4))
    assert [layer["kernel"].shape for layer in params] == [(4, 4), (4, 4)]
    assert not np.array_equal(params[0]["kernel"], params[1]["kernel"])
    again = from_scratch.mlp_init(key, (4, 4, 4))
    assert max_gap(params, again) == 0.0


def fit_one_epoch(x_rows: int, y_rows: int, batch_size: int):
    params = [from_scratch.dense_init(jax.random.key(0), 3, 2)]
    x, y = np.ones((x_rows, 3)), np.ones((y_rows, 2))
    return from_scratch.sgd_fit(
        mlp_loss, params, x, y, learning_rate=0.1, batch_size=batch_size, epochs=1
    )


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda p: from_scratch.dense_apply(p, jnp.ones((2, 4))), r"shape \(B, 3\), got \(2, 4\)"),
        (lambda p: from_scratch.dense_apply(p, jnp.ones(3)), r"shape \(B, 3\), got \(3,\)"),
        (lambda p: from_scratch.mlp_init(jax.random.key(0), (3,)), "two or more positive"),
        (lambda p: from_scratch.mlp_init(jax.random.key(0), (3, 0)), r"got \(3, 0\)"),
        (
            lambda p: fit_one_epoch(4, 4, batch_size=5),
            r"`batch_size` must be in 1..4 \(the examples\), got 5",
        ),
        (lambda p: fit_one_epoch(4, 3, batch_size=2), "same examples, got 4 and 3"),
        (
            lambda p: from_scratch.fit_linear_regression(
                np.ones((4, 3)), np.ones(4), learning_rate=0.1, steps=1
            ),
            r"\(N, D\) and \(N, K\), got \(4, 3\) and \(4,\)",
        ),
    ],
)
def test_bad_input_is_refused_with_a_named_argument(call, match):
    params = from_scratch.dense_init(jax.random.key(0), 3, 2)
    with pytest.raises(ValueError, match=match):
        call(params)


@settings(max_examples=10)
@given(
    start=st.lists(st.floats(-3, 3), min_size=3, max_size=3),
    learning_rate=st.floats(0.01, 0.5),
)
def test_sgd_step_moves_each_leaf_against_its_gradient(start, learning_rate):
    target = jnp.array([1.0, -2.0, 0.5])
    x = y = jnp.zeros((1, 1))  # unused by this loss

    def loss_fn(params, x, y):
        del x, y
        return jnp.sum((params["p"] - target) ** 2) + params["q"] ** 2

    params = {"p": jnp.array(start, jnp.float32), "q": jnp.float32(2.0)}
    updated, loss = from_scratch.sgd_step(
        params, x, y, loss_fn=loss_fn, learning_rate=learning_rate
    )
    np.testing.assert_allclose(loss, loss_fn(params, x, y), rtol=1e-6)
    gradient_p = 2 * (params["p"] - target)
    np.testing.assert_allclose(updated["p"], params["p"] - learning_rate * gradient_p, atol=1e-6)
    np.testing.assert_allclose(updated["q"], 2.0 - learning_rate * 4.0, atol=1e-6)
    np.testing.assert_array_equal(params["p"], np.array(start, np.float32))  # not in place


def test_sgd_fit_compiles_its_step_once(windsor):
    train, _ = windsor
    x, y = train.arrays["x"], train.arrays["y"]

    def loss_fn(params, x, y):
        return mlp_loss(params, x, y)

    counted = chex.assert_max_traces(loss_fn, n=1)  # raises on a second trace
    start = from_scratch.mlp_init(jax.random.key(0), (11, 4, 1))
    _, losses = from_scratch.sgd_fit(
        counted, start, x, y, learning_rate=0.05, batch_size=64, epochs=3, seed=0
    )
    assert len(losses) == 3


def least_squares(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    design = np.concatenate([x, np.ones((len(x), 1))], axis=1).astype(np.float64)
    return np.linalg.lstsq(design, y.astype(np.float64), rcond=None)[0][:, 0]


def coefficients(dense) -> np.ndarray:
    return np.concatenate([np.asarray(dense["kernel"])[:, 0], np.asarray(dense["bias"])])


def test_hand_gradient_descent_reaches_least_squares_on_windsor(windsor):
    train, _ = windsor
    x, y = train.arrays["x"], train.arrays["y"]
    hand = from_scratch.fit_linear_regression(x, y, learning_rate=0.3, steps=100)
    # The error shrinks by 0.76 a step (curvature in [0.81, 4.67]): 100 steps reach float32
    # rounding (measured 3e-8).
    np.testing.assert_allclose(coefficients(hand), least_squares(x, y), atol=1e-6)
    few = from_scratch.fit_linear_regression(x, y, learning_rate=0.3, steps=5)
    assert np.max(np.abs(coefficients(few) - least_squares(x, y))) > 1e-3  # not there yet


def test_hand_gradient_descent_equals_the_library_linear_regression(windsor):
    train, _ = windsor
    x, y = train.arrays["x"], train.arrays["y"]
    hand = from_scratch.fit_linear_regression(x, y, learning_rate=0.3, steps=100)
    model = adljax.models.LinearRegression(num_outputs=1)
    tx = adljax.create_optimizer("sgd", 0.3)
    state = adljax.create_train_state(model, tx, x[:1], jax.random.key(0))
    # From the library's random start, 60 full-batch epochs converge as well (measured 4e-8).
    result = adljax.fit(
        state, train, task="regression", epochs=60, batch_size=len(train), progress=False
    )
    library = coefficients(result.state.params["dense"])
    np.testing.assert_allclose(library, coefficients(hand), atol=1e-6)


def test_hand_sgd_loop_equals_adljax_fit_from_the_same_start(windsor):
    train, _ = windsor
    x, y = train.arrays["x"], train.arrays["y"]
    start = from_scratch.mlp_init(jax.random.key(0), (11, 16, 1))
    hand, losses = from_scratch.sgd_fit(
        mlp_loss, start, x, y, learning_rate=0.05, batch_size=32, epochs=3, seed=0
    )
    assert len(losses) == 3 and losses[-1] < losses[0]
    model = adljax.models.MLP(hidden_sizes=(16,), num_outputs=1)
    tx = adljax.create_optimizer("sgd", 0.05)
    named = {"dense_0": start[0], "head": start[1]}
    state = adljax.create_train_state(model, tx, x[:1], jax.random.key(0))
    state = state.replace(params=named, opt_state=tx.init(named))
    result = adljax.fit(
        state,
        train,
        task="regression",
        epochs=3,
        batch_size=32,
        seed=0,
        whole_epoch=False,
        progress=False,
    )
    # Same batches (the epoch_permutation rule), same update: equal to float32 rounding
    # (measured: bitwise on CPU).
    learned = [result.state.params["dense_0"], result.state.params["head"]]
    assert max_gap(learned, hand) <= 1e-6
    np.testing.assert_allclose([h["train"]["loss"] for h in result.history], losses, rtol=1e-5)


@pytest.mark.parametrize("stop", [1, 2])
def test_training_resumed_from_an_orbax_checkpoint_is_bitwise_uninterrupted(
    windsor, tmp_path, stop
):
    train, test = windsor
    x, y = train.arrays["x"], train.arrays["y"]
    start = from_scratch.mlp_init(jax.random.key(0), (11, 8, 1))
    settings = {"learning_rate": 0.05, "batch_size": 64, "seed": 3}
    uninterrupted, _ = from_scratch.sgd_fit(mlp_loss, start, x, y, epochs=3, **settings)
    half, _ = from_scratch.sgd_fit(mlp_loss, start, x, y, epochs=stop, **settings)
    from_scratch.save_pytree(tmp_path / "ckpt", {"params": half, "epoch": stop})
    restored = from_scratch.restore_pytree(tmp_path / "ckpt", {"params": start, "epoch": 0})
    assert restored["epoch"] == stop
    resumed, losses = from_scratch.sgd_fit(
        mlp_loss, restored["params"], x, y, epochs=3, start_epoch=restored["epoch"], **settings
    )
    assert len(losses) == 3 - stop
    for a, b in zip(jax.tree.leaves(resumed), jax.tree.leaves(uninterrupted), strict=True):
        np.testing.assert_array_equal(a, b)
    assert max_gap(half, uninterrupted) > 0  # the stop was real: training moved on after it
    x_test = test.arrays["x"]
    np.testing.assert_array_equal(
        from_scratch.mlp_apply(restored["params"], x_test), from_scratch.mlp_apply(half, x_test)
    )


def test_restore_pytree_takes_shapes_from_an_abstract_template(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # a relative directory works too
    tree = {"w": jnp.arange(6.0).reshape(2, 3), "step": jnp.int32(7)}
    from_scratch.save_pytree("saved", tree)
    template = jax.eval_shape(lambda: tree)  # ShapeDtypeStructs: no data needed
    restored = from_scratch.restore_pytree("saved", template)
    np.testing.assert_array_equal(restored["w"], tree["w"])
    assert restored["step"] == 7 and restored["step"].dtype == jnp.int32
    with pytest.raises(ValueError, match="already exists"):
        from_scratch.save_pytree("saved", tree)  # Orbax never overwrites
