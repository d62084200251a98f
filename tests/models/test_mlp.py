"""Tests for adljax.models.mlp."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jax.test_util import check_grads

from adljax.losses import softmax_cross_entropy
from adljax.models import ACTIVATIONS, MLP, LinearRegression

# MLP(784 -> 512 -> 512 -> 10): 784*512+512 + 512*512+512 + 512*10+10.
MLP_MNIST_PARAMS = 669_706
# With batch norm the hidden dense layers lose their bias and gain BN scale and shift.
MLP_MNIST_BN_PARAMS = 670_730
MLP_MNIST_BN_STATS = 2_048


# One model and input shape for most tests, so that JAX compiles each operation once.
_MODEL = MLP((8,), 3, "tanh", dropout_rate=0.5, batch_norm=True)
_X_SHAPE = (8, 4)
_init = jax.jit(_MODEL.init, static_argnames="train")


@pytest.fixture
def x(key) -> jax.Array:
    return jax.random.normal(key, _X_SHAPE) + 3.0


@pytest.fixture
def variables(key, x) -> dict:
    return _init(key, x, train=False)


def _num_params(tree: object) -> int:
    return sum(leaf.size for leaf in jax.tree.leaves(tree))


@settings(max_examples=10, deadline=None)
@given(
    batch=st.integers(1, 4),
    input_shape=st.lists(st.integers(1, 4), min_size=1, max_size=3).map(tuple),
    hidden_sizes=st.lists(st.integers(1, 5), max_size=2).map(tuple),
    num_outputs=st.integers(1, 4),
    activation=st.sampled_from(sorted(ACTIVATIONS)),
    batch_norm=st.booleans(),
)
def test_output_shape(batch, input_shape, hidden_sizes, num_outputs, activation, batch_norm):
    model = MLP(hidden_sizes, num_outputs, activation, batch_norm=batch_norm)
    x = jax.ShapeDtypeStruct((batch, *input_shape), jnp.float32)
    # eval_shape traces the model without compiling it: shapes are static.
    y = jax.eval_shape(lambda x: model.init_with_output(jax.random.key(0), x, train=False)[0], x)
    assert y.shape == (batch, num_outputs)
    assert y.dtype == jnp.float32


@pytest.mark.parametrize(
    ("batch_norm", "expected_params", "expected_stats"),
    [(False, MLP_MNIST_PARAMS, 0), (True, MLP_MNIST_BN_PARAMS, MLP_MNIST_BN_STATS)],
)
def test_parameter_count(key, batch_norm, expected_params, expected_stats):
    model = MLP(hidden_sizes=(512, 512), num_outputs=10, batch_norm=batch_norm)
    variables = jax.eval_shape(lambda: model.init(key, jnp.ones((1, 28, 28, 1)), train=False))
    assert _num_params(variables["params"]) == expected_params
    assert _num_params(variables.get("batch_stats", {})) == expected_stats
    assert ("bias" in variables["params"]["dense_0"]) is not batch_norm


@pytest.mark.parametrize("transform", [jax.jit, lambda f: f], ids=["jit", "no_jit"])
def test_jit_agrees_with_eager(x, variables, transform):
    def forward(variables, x, dropout_key):
        return _MODEL.apply(
            variables, x, train=True, rngs={"dropout": dropout_key}, mutable=["batch_stats"]
        )

    expected = forward(variables, x, jax.random.key(1))
    actual = transform(forward)(variables, x, jax.random.key(1))
    chex.assert_trees_all_close(actual, expected, rtol=1e-5, atol=1e-6)


def test_gradients_match_finite_differences(key, x, variables):
    labels = jax.random.randint(key, (x.shape[0],), 0, _MODEL.num_outputs)
    # float64, so that finite differences are accurate enough for the default tolerances;
    # standard promotion, because flax's BatchNorm promotes float64 with float32 internally.
    with jax.enable_x64(True), jax.numpy_dtype_promotion("standard"):
        variables = jax.tree.map(lambda v: v.astype(jnp.float64), variables)

        def loss(params, x):
            logits, _ = _MODEL.clone(dropout_rate=0.0).apply(
                {"params": params, "batch_stats": variables["batch_stats"]},
                x,
                train=True,
                mutable=["batch_stats"],
            )
            return jnp.mean(softmax_cross_entropy(logits, labels))

        args = (variables["params"], x.astype(jnp.float64))
        check_grads(jax.jit(loss), args, order=1, modes=("fwd", "rev"))


def test_batch_stats_change_only_in_train_mode(x, variables):
    _, updates = _MODEL.apply(
        variables, x, train=True, rngs={"dropout": jax.random.key(1)}, mutable=["batch_stats"]
    )
    moved = jax.tree.map(
        lambda a, b: bool(jnp.any(a != b)), updates["batch_stats"], variables["batch_stats"]
    )
    assert all(jax.tree.leaves(moved))

    _, updates = _MODEL.apply(variables, x, train=False, mutable=["batch_stats"])
    chex.assert_trees_all_equal(updates["batch_stats"], variables["batch_stats"])


def test_dropout_is_identity_in_eval_and_random_in_train(x, variables):
    no_dropout = _MODEL.clone(dropout_rate=0.0)
    expected = no_dropout.apply(variables, x, train=False)
    chex.assert_trees_all_equal(_MODEL.apply(variables, x, train=False), expected)

    def train_forward(model, dropout_key):
        return model.apply(
            variables, x, train=True, rngs={"dropout": dropout_key}, mutable=["batch_stats"]
        )[0]

    first = train_forward(_MODEL, jax.random.key(1))
    second = train_forward(_MODEL, jax.random.key(2))
    assert not np.allclose(first, train_forward(no_dropout, jax.random.key(1)))
    assert not np.allclose(first, second)


def test_train_flag_is_required(key, x):
    with pytest.raises(TypeError, match="train"):
        _MODEL.init(key, x)


def test_hidden_activations_are_sown(x, variables):
    _, state = _MODEL.apply(variables, x, train=False, mutable=["intermediates"])
    (hidden,) = state["intermediates"]["hidden_0"]
    assert hidden.shape == (x.shape[0], _MODEL.hidden_sizes[0])
    assert bool(jnp.all(jnp.abs(hidden) <= 1))  # tanh


def test_few_sgd_steps_reduce_loss(key, x, variables):
    labels = jax.random.randint(key, (x.shape[0],), 0, _MODEL.num_outputs)
    optimizer = optax.sgd(0.1, momentum=0.9)

    def loss_fn(params, batch_stats, dropout_key):
        logits, updates = _MODEL.apply(
            {"params": params, "batch_stats": batch_stats},
            x,
            train=True,
            rngs={"dropout": dropout_key},
            mutable=["batch_stats"],
        )
        return jnp.mean(softmax_cross_entropy(logits, labels)), updates["batch_stats"]

    def step(carry, dropout_key):
        params, batch_stats, opt_state = carry
        (loss, batch_stats), grads = jax.value_and_grad(loss_fn, has_aux=True)(
            params, batch_stats, dropout_key
        )
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return (optax.apply_updates(params, updates), batch_stats, opt_state), loss

    step = jax.jit(chex.assert_max_traces(step, n=1))
    carry = (variables["params"], variables["batch_stats"], optimizer.init(variables["params"]))
    losses = []
    for dropout_key in jax.random.split(key, 20):
        carry, loss = step(carry, dropout_key)
        losses.append(float(loss))
    assert losses[-1] < 0.5 * losses[0]


def test_mlp_solves_xor_and_linear_model_does_not(key):
    x = jnp.array([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
    labels = jnp.array([0, 1, 1, 0])

    def fit_accuracy(model):
        params = model.init(key, x, train=False)["params"]
        # optax.adam fails under jax_numpy_dtype_promotion="strict" (its bias correction).
        optimizer = optax.sgd(0.5, momentum=0.9)

        def loss_fn(params):
            logits = model.apply({"params": params}, x, train=False)
            return jnp.mean(softmax_cross_entropy(logits, labels))

        def body(_, carry):
            params, opt_state = carry
            updates, opt_state = optimizer.update(jax.grad(loss_fn)(params), opt_state)
            return optax.apply_updates(params, updates), opt_state

        params, _ = jax.lax.fori_loop(0, 300, body, (params, optimizer.init(params)))
        logits = model.apply({"params": params}, x, train=False)
        return float(jnp.mean(jnp.argmax(logits, -1) == labels))

    assert fit_accuracy(MLP((8,), 2, "tanh")) == 1.0
    assert fit_accuracy(LinearRegression(num_outputs=2)) <= 0.75


def test_vmap_over_parameter_sets_equals_loop(x, variables):
    # Three parameter sets: the initial one, scaled.
    stacked = jax.tree.map(lambda v: jnp.stack([v, 0.5 * v, -v]), variables)

    def apply(variables):
        return _MODEL.apply(variables, x, train=False)

    batched = jax.jit(jax.vmap(apply))(stacked)
    looped = jnp.stack([apply(jax.tree.map(lambda v, i=i: v[i], stacked)) for i in range(3)])
    chex.assert_trees_all_close(batched, looped, rtol=1e-5, atol=1e-6)


def test_integer_inputs_are_cast_to_float(variables):
    x = jnp.arange(32, dtype=jnp.uint8).reshape(_X_SHAPE)
    chex.assert_trees_all_close(
        _MODEL.apply(variables, x, train=False),
        _MODEL.apply(variables, x.astype(jnp.float32), train=False),
    )


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"activation": "swishy"}, r"`activation` must be one of .*'relu'.*got 'swishy'"),
        ({"dropout_rate": 1.0}, r"`dropout_rate` must be in \[0, 1\), got 1.0"),
        ({"dropout_rate": -0.1}, r"`dropout_rate` must be in \[0, 1\), got -0.1"),
        ({"dropout_rate": "0.5"}, r"`dropout_rate` must be in \[0, 1\), got '0.5'"),
        ({"hidden_sizes": (8, 0)}, r"`hidden_sizes\[1\]` must be a positive integer, got 0"),
        ({"hidden_sizes": 8}, r"`hidden_sizes` must be a tuple of positive ints, got 8"),
        ({"num_outputs": 0}, r"`num_outputs` must be a positive integer, got 0"),
        ({"batch_norm": 1}, r"`batch_norm` must be a bool, got 1"),
        ({"input_shape": (28, -1)}, r"`input_shape` must be a non-empty tuple of positive ints"),
    ],
)
def test_bad_attributes_raise(kwargs, match):
    with pytest.raises(ValueError, match=match):
        MLP(**kwargs)


def test_lists_become_tuples():
    model = MLP(hidden_sizes=[4, 4], input_shape=[2, 2])
    assert model.hidden_sizes == (4, 4)
    assert model.input_shape == (2, 2)


@pytest.mark.parametrize(
    ("input_shape", "x_shape", "match"),
    [
        (None, (5,), r"`x` must have rank >= 2 \(batch, \.\.\.\), got shape \(5,\)"),
        ((8, 8, 1), (32, 64), r"`x` must have shape \(batch, 8, 8, 1\), got \(32, 64\)"),
        ((3,), (2, 4), r"`x` must have shape \(batch, 3\), got \(2, 4\)"),
    ],
)
def test_bad_input_shape_raises_under_jit(key, input_shape, x_shape, match):
    model = MLP((4,), 2, input_shape=input_shape)
    with pytest.raises(ValueError, match=match):
        jax.jit(lambda x: model.init(key, x, train=False))(jnp.ones(x_shape))
