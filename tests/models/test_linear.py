"""Tests for adljax.models.linear."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jax.test_util import check_grads

from adljax.losses import squared_error
from adljax.models import LinearRegression

# 13 features (the Boston housing shape) -> 2 outputs: 13 * 2 weights + 2 biases.
LINEAR_13_TO_2_PARAMS = 28

# One model and input shape for most tests, so that JAX compiles each function once.
_MODEL = LinearRegression(num_outputs=2)
_init = jax.jit(_MODEL.init)


@pytest.fixture
def x(key) -> jax.Array:
    return jax.random.normal(key, (4, 3))


@pytest.fixture
def variables(key, x) -> dict:
    return _init(key, x)


@settings(max_examples=10, deadline=None)
@given(
    batch=st.integers(1, 4),
    input_shape=st.lists(st.integers(1, 4), min_size=1, max_size=3).map(tuple),
    num_outputs=st.integers(1, 4),
)
def test_output_shape(batch, input_shape, num_outputs):
    model = LinearRegression(num_outputs=num_outputs, input_shape=input_shape)
    x = jax.ShapeDtypeStruct((batch, *input_shape), jnp.float32)
    # eval_shape traces the model without compiling it: shapes are static.
    y = jax.eval_shape(lambda x: model.init_with_output(jax.random.key(0), x)[0], x)
    assert y.shape == (batch, num_outputs)
    assert y.dtype == jnp.float32


def test_parameter_count(key):
    variables = jax.eval_shape(LinearRegression(num_outputs=2).init, key, jnp.ones((1, 13)))
    assert sum(leaf.size for leaf in jax.tree.leaves(variables)) == LINEAR_13_TO_2_PARAMS


def test_is_an_affine_map_of_the_flattened_input(x, variables):
    x = x.reshape(4, 3, 1)  # flattened back to (4, 3)
    dense = variables["params"]["dense"]
    expected = np.asarray(x).reshape(4, 3) @ dense["kernel"] + dense["bias"][None, :]
    np.testing.assert_allclose(_MODEL.apply(variables, x), expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("transform", [jax.jit, lambda f: f], ids=["jit", "no_jit"])
def test_jit_agrees_with_eager(x, variables, transform):
    def forward(variables, x):
        return _MODEL.apply(variables, x, train=True)

    chex.assert_trees_all_close(
        transform(forward)(variables, x), forward(variables, x), rtol=1e-6, atol=1e-6
    )


def test_train_flag_changes_nothing(x, variables):
    chex.assert_trees_all_equal(
        _MODEL.apply(variables, x, train=True), _MODEL.apply(variables, x, train=False)
    )


def test_gradients_match_finite_differences(key, x, variables):
    with jax.enable_x64(True):
        y = jax.random.normal(key, (4, 2), jnp.float64)

        def loss(params, x):
            return jnp.mean(squared_error(_MODEL.apply({"params": params}, x), y))

        params = jax.tree.map(lambda p: p.astype(jnp.float64), variables["params"])
        check_grads(jax.jit(loss), (params, x.astype(jnp.float64)), order=1)


def test_gradient_descent_reaches_least_squares_solution(key):
    x_key, w_key, noise_key = jax.random.split(key, 3)
    x = jax.random.normal(x_key, (64, 3))
    y = x @ jax.random.normal(w_key, (3, 2)) + 0.5 + 0.1 * jax.random.normal(noise_key, (64, 2))
    optimizer = optax.sgd(0.1)

    def loss(params):
        return jnp.mean(squared_error(_MODEL.apply({"params": params}, x), y))

    def body(_, carry):
        params, opt_state = carry
        updates, opt_state = optimizer.update(jax.grad(loss)(params), opt_state)
        return optax.apply_updates(params, updates), opt_state

    @jax.jit
    def fit(params):
        return jax.lax.fori_loop(0, 500, body, (params, optimizer.init(params)))[0]

    params = fit(_init(key, x)["params"])

    design = np.hstack([np.asarray(x), np.ones((64, 1))])
    solution, *_ = np.linalg.lstsq(design, np.asarray(y), rcond=None)
    np.testing.assert_allclose(params["dense"]["kernel"], solution[:3], atol=1e-4)
    np.testing.assert_allclose(params["dense"]["bias"], solution[3], atol=1e-4)


def test_vmap_over_parameter_sets_equals_loop(x, variables):
    # Three parameter sets: the initial one, scaled.
    stacked = jax.tree.map(lambda v: jnp.stack([v, 0.5 * v, -v]), variables)
    batched = jax.vmap(lambda v: _MODEL.apply(v, x))(stacked)
    looped = jnp.stack(
        [_MODEL.apply(jax.tree.map(lambda v, i=i: v[i], stacked), x) for i in range(3)]
    )
    chex.assert_trees_all_close(batched, looped, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"num_outputs": 0}, r"`num_outputs` must be a positive integer, got 0"),
        ({"num_outputs": 1.5}, r"`num_outputs` must be a positive integer, got 1.5"),
        ({"input_shape": "28x28"}, r"`input_shape` must be a non-empty tuple of positive ints"),
        ({"input_shape": ()}, r"`input_shape` must be a non-empty tuple of positive ints"),
    ],
)
def test_bad_attributes_raise(kwargs, match):
    with pytest.raises(ValueError, match=match):
        LinearRegression(**kwargs)


@pytest.mark.parametrize(
    ("input_shape", "x_shape", "match"),
    [
        (None, (5,), r"`x` must have rank >= 2 \(batch, \.\.\.\), got shape \(5,\)"),
        ((13,), (5, 12), r"`x` must have shape \(batch, 13\), got \(5, 12\)"),
        ((13,), (5, 13, 1), r"`x` must have shape \(batch, 13\), got \(5, 13, 1\)"),
    ],
)
def test_bad_input_shape_raises_under_jit(key, input_shape, x_shape, match):
    model = LinearRegression(input_shape=input_shape)
    with pytest.raises(ValueError, match=match):
        jax.jit(model.init)(key, jnp.ones(x_shape))
