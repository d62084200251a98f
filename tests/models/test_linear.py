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
    variables = LinearRegression(num_outputs=2).init(key, jnp.ones((1, 13)))
    assert sum(leaf.size for leaf in jax.tree.leaves(variables)) == LINEAR_13_TO_2_PARAMS


def test_is_an_affine_map_of_the_flattened_input(key):
    x = jax.random.normal(key, (5, 2, 3))
    model = LinearRegression(num_outputs=4)
    variables = model.init(key, x)
    dense = variables["params"]["dense"]
    expected = np.asarray(x).reshape(5, 6) @ dense["kernel"] + dense["bias"][None, :]
    np.testing.assert_allclose(model.apply(variables, x), expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("transform", [jax.jit, lambda f: f], ids=["jit", "no_jit"])
def test_jit_agrees_with_eager(key, transform):
    model = LinearRegression(num_outputs=2)
    x = jax.random.normal(key, (4, 3))
    variables = model.init(key, x)
    forward = lambda variables, x: model.apply(variables, x, train=True)  # noqa: E731
    chex.assert_trees_all_close(
        transform(forward)(variables, x), forward(variables, x), rtol=1e-6, atol=1e-6
    )


def test_train_flag_changes_nothing(key):
    model = LinearRegression(num_outputs=2)
    x = jax.random.normal(key, (4, 3))
    variables = model.init(key, x, train=False)
    chex.assert_trees_all_equal(
        model.apply(variables, x, train=True), model.apply(variables, x, train=False)
    )


def test_gradients_match_finite_differences(key):
    with jax.enable_x64(True):
        model = LinearRegression(num_outputs=2)
        x = jax.random.normal(key, (4, 3), jnp.float64)
        y = jax.random.normal(key, (4, 2), jnp.float64)
        params = jax.tree.map(
            lambda p: p.astype(jnp.float64), model.init(key, x.astype(jnp.float32))["params"]
        )

        def loss(params, x):
            return jnp.mean(squared_error(model.apply({"params": params}, x), y))

        check_grads(jax.jit(loss), (params, x), order=1, modes=("fwd", "rev"))


def test_gradient_descent_reaches_least_squares_solution(key):
    x_key, w_key, noise_key = jax.random.split(key, 3)
    x = jax.random.normal(x_key, (64, 3))
    y = x @ jax.random.normal(w_key, (3, 2)) + 0.5 + 0.1 * jax.random.normal(noise_key, (64, 2))
    model = LinearRegression(num_outputs=2)
    params = model.init(key, x)["params"]
    optimizer = optax.sgd(0.1)

    def body(_, carry):
        params, opt_state = carry
        grads = jax.grad(lambda p: jnp.mean(squared_error(model.apply({"params": p}, x), y)))(
            params
        )
        updates, opt_state = optimizer.update(grads, opt_state)
        return optax.apply_updates(params, updates), opt_state

    params, _ = jax.jit(
        lambda params: jax.lax.fori_loop(0, 500, body, (params, optimizer.init(params)))
    )(params)

    design = np.hstack([np.asarray(x), np.ones((64, 1))])
    solution, *_ = np.linalg.lstsq(design, np.asarray(y), rcond=None)
    np.testing.assert_allclose(params["dense"]["kernel"], solution[:3], atol=1e-4)
    np.testing.assert_allclose(params["dense"]["bias"], solution[3], atol=1e-4)


def test_vmap_over_parameter_sets_equals_loop(key):
    model = LinearRegression(num_outputs=2)
    x = jax.random.normal(key, (5, 3))
    params = jax.vmap(lambda k: model.init(k, x))(jax.random.split(key, 3))
    batched = jax.vmap(lambda p: model.apply(p, x))(params)
    looped = jnp.stack(
        [model.apply(jax.tree.map(lambda p, i=i: p[i], params), x) for i in range(3)]
    )
    chex.assert_trees_all_close(batched, looped, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"num_outputs": 0}, r"`num_outputs` must be a positive integer, got 0"),
        ({"num_outputs": 1.5}, r"`num_outputs` must be a positive integer, got 1.5"),
        ({"input_shape": "28x28"}, r"`input_shape` must be a tuple of positive ints"),
        ({"input_shape": ()}, r"`input_shape` must be a tuple of positive ints"),
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
