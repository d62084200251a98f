"""adljax.backprop: the hand-written gradients equal ``jax.grad`` (float32) and central finite
differences (float64); gradient descent on a line fit crawls, converges or diverges as the
learning rate says; the descent figure."""

import functools

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from adljax import backprop, plots
from adljax.losses import softmax_cross_entropy
from adljax.models import ACTIVATIONS, MLP

pytestmark = pytest.mark.usefixtures("fast_compiles")

# Each gradient entry is a sum of up to B * C (or B * H) products of numbers of order 1, added
# in a different order by the chain rule by hand and by jax.grad: float32 round-off of a few
# ulps of those terms, about 1e-7 (measured 1.5e-8 to 1.2e-7 on the spirals).
FLOAT32_TOLERANCE = {"rtol": 1e-5, "atol": 1e-6}
# Central differences with eps = 1e-6 in float64: truncation eps² f''' ~ 1e-12 plus round-off
# 1e-16 / eps ~ 1e-10 of the loss (measured at most 2.4e-9 of the largest gradient entry).
FINITE_DIFFERENCE_TOLERANCE = 1e-7
# Every example of the properties below has new shapes or a new loss, so it compiles (about
# 0.5 s on 2 CPU cores): a third of the profile's examples, each checking a stack of networks.
COMPILING = settings(max_examples=max(5, settings.default.max_examples // 3))
NETWORKS_PER_EXAMPLE = 8


@pytest.fixture(autouse=True)
def _float64_does_not_leak():
    yield
    assert not jax.config.read("jax_enable_x64"), "a test left jax_enable_x64 on"


@st.composite
def networks(draw, dtype=np.float32):
    """``NETWORKS_PER_EXAMPLE`` random two-layer networks of one drawn shape (biases too), each
    with a batch ``x (B, F)`` and labels ``(B,)``, stacked on a leading axis, as NumPy arrays
    (drawing them with NumPy compiles nothing); and an activation."""
    batch, features = draw(st.integers(1, 6)), draw(st.integers(1, 4))
    hidden, classes = draw(st.integers(1, 5)), draw(st.integers(2, 4))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))

    def normal(*shape):
        return rng.normal(size=(NETWORKS_PER_EXAMPLE, *shape)).astype(dtype)

    params = backprop.TwoLayerParams(
        w1=normal(features, hidden),
        b1=normal(hidden),
        w2=normal(hidden, classes),
        b2=normal(classes),
    )
    labels = rng.integers(0, classes, (NETWORKS_PER_EXAMPLE, batch))
    return params, normal(batch, features), labels, draw(st.sampled_from(sorted(ACTIVATIONS)))


@functools.partial(jax.jit, static_argnames="activation")
def by_hand_and_by_autodiff(params, x, labels, activation):
    """For each stacked network: ``(loss, grads)`` by hand and by ``jax.value_and_grad``."""

    def both(params, x, labels):
        by_hand = backprop.two_layer_gradients(params, x, labels, activation)
        return by_hand, jax.value_and_grad(backprop.two_layer_loss)(params, x, labels, activation)

    return jax.vmap(both)(params, x, labels)


@COMPILING
@given(networks())
def test_hand_gradients_equal_jax_grad_in_float32(networks):
    params, x, labels, activation = networks
    (loss, grads), (expected_loss, expected) = by_hand_and_by_autodiff(
        params, x, labels, activation=activation
    )
    chex.assert_trees_all_equal_shapes_and_dtypes(grads, params)
    np.testing.assert_allclose(loss, expected_loss, rtol=1e-6)
    chex.assert_trees_all_close(grads, expected, **FLOAT32_TOLERANCE)


def test_gradients_are_the_same_without_jit(key):
    params = backprop.init_two_layer(key, 3, 4, 2)
    x, labels = jax.random.normal(key, (5, 3)), jnp.array([0, 1, 1, 0, 1])
    eager = backprop.two_layer_gradients(params, x, labels, "tanh")
    compiled = jax.jit(backprop.two_layer_gradients, static_argnums=3)(params, x, labels, "tanh")
    chex.assert_trees_all_close(eager, compiled, rtol=1e-6, atol=1e-7)


@functools.partial(jax.jit, static_argnames="activation")
def by_hand_and_by_finite_differences(params, x, labels, activation):
    """For each stacked network: ``z1``, the gradients by hand and by central differences."""

    def both(params, x, labels):
        _, by_hand = backprop.two_layer_gradients(params, x, labels, activation)
        numerical = backprop.finite_difference_gradients(
            lambda p: backprop.two_layer_loss(p, x, labels, activation), params
        )
        return backprop.forward(params, x, activation).z1, by_hand, numerical

    return jax.vmap(both)(params, x, labels)


@COMPILING
@given(networks(dtype=np.float64))
def test_hand_gradients_equal_central_differences_in_float64(networks):
    params, x, labels, activation = networks
    with jax.enable_x64(True):
        z1, grads, numerical = by_hand_and_by_finite_differences(
            params, x, labels, activation=activation
        )
    # At a kink (ReLU's 0) a central difference straddles both slopes: stay away from it.
    assume(np.abs(z1).min() > 1e-4)
    assert grads.w1.dtype == np.float64
    scale = max(np.abs(g).max() for g in numerical)
    chex.assert_trees_all_close(grads, numerical, rtol=0, atol=FINITE_DIFFERENCE_TOLERANCE * scale)


@COMPILING
@given(networks())
def test_forward_is_the_flax_mlp_with_one_hidden_layer(networks):
    params, x, _, activation = networks
    model = MLP(
        hidden_sizes=(params.b1.shape[-1],), num_outputs=params.b2.shape[-1], activation=activation
    )

    @jax.jit
    @jax.vmap
    def both(params, x):
        layers = {"dense_0": (params.w1, params.b1), "head": (params.w2, params.b2)}
        variables = {"params": {k: {"kernel": w, "bias": b} for k, (w, b) in layers.items()}}
        return backprop.forward(params, x, activation).z2, model.apply(variables, x, train=False)

    logits, expected = both(params, x)
    np.testing.assert_allclose(logits, expected, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_activation_derivatives_equal_jax_grad_kinks_included(name):
    z = jnp.linspace(-3.0, 3.0, 13)  # includes 0, where ReLU has its kink
    f = ACTIVATIONS[name]
    expected = jax.vmap(jax.grad(f))(z)
    np.testing.assert_allclose(backprop.activation_derivative(name)(z, f(z)), expected, atol=1e-6)


def test_deltas_follow_the_chain_rule(key):
    params = backprop.init_two_layer(key, 3, 4, 2)
    x, labels = jax.random.normal(key, (5, 3)), jnp.array([0, 1, 1, 0, 1])
    cache = backprop.forward(params, x, "sigmoid")
    _, deltas = backprop.backward(params, cache, labels, "sigmoid")

    def loss_of_logits(z2):
        return softmax_cross_entropy(z2, labels).mean()

    np.testing.assert_allclose(deltas.z2, jax.grad(loss_of_logits)(cache.z2), atol=1e-7)
    np.testing.assert_allclose(deltas.h, deltas.z2 @ params.w2.T, atol=1e-7)
    np.testing.assert_allclose(deltas.z1, deltas.h * cache.h * (1 - cache.h), atol=1e-7)
    np.testing.assert_allclose(deltas.z2.sum(axis=1), 0.0, atol=1e-7)  # softmax sums to 1


def test_init_scales_by_fan_in_with_zero_biases(key):
    params = backprop.init_two_layer(key, 400, 300, 10)
    chex.assert_shape(
        [params.w1, params.b1, params.w2, params.b2], [(400, 300), (300,), (300, 10), (10,)]
    )
    assert float(jnp.std(params.w1)) == pytest.approx(1 / np.sqrt(400), rel=0.02)
    assert float(jnp.std(params.w2)) == pytest.approx(1 / np.sqrt(300), rel=0.05)
    assert not jnp.any(params.b1) and not jnp.any(params.b2)
    with jax.enable_x64(True):
        assert backprop.init_two_layer(key, 2, 3, 2, dtype=jnp.float64).w1.dtype == jnp.float64


def test_training_with_hand_gradients_is_gradient_descent_with_jax_grad(key):
    params = backprop.init_two_layer(key, 2, 8, 3)
    x = jax.random.normal(key, (12, 2))
    labels = jnp.arange(12) % 3
    trained, losses = backprop.train_two_layer(
        params, x, labels, "tanh", learning_rate=0.5, steps=20
    )
    expected, expected_losses = params, []
    grad_fn = jax.jit(jax.value_and_grad(backprop.two_layer_loss), static_argnames="activation")
    for _ in range(20):
        loss, grads = grad_fn(expected, x, labels, activation="tanh")
        expected = jax.tree.map(lambda p, g: p - 0.5 * g, expected, grads)
        expected_losses.append(loss)
    chex.assert_trees_all_close(trained, expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(losses, expected_losses, rtol=1e-5)
    assert losses[-1] < 0.8 * losses[0]


def test_finite_differences_of_a_known_gradient():
    with jax.enable_x64(True):
        point = {"u": jnp.array([0.3, -1.2]), "v": jnp.array(2.0)}

        def loss(p):  # gradient: u -> cos(u) + 2 v u, v -> |u|^2
            return jnp.sum(jnp.sin(p["u"])) + p["v"] * jnp.sum(p["u"] ** 2)

        numerical = backprop.finite_difference_gradients(loss, point)
        expected = {
            "u": jnp.cos(point["u"]) + 2 * point["v"] * point["u"],
            "v": jnp.sum(point["u"] ** 2),
        }
        chex.assert_trees_all_close(numerical, expected, atol=1e-9)


# ----- gradient descent on a line fit -------------------------------------------------------


@st.composite
def lines(draw):
    """A few points around a random line, as float64: ``(x (N,), y (N,))``."""
    n = draw(st.integers(3, 30))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    x = rng.uniform(draw(st.floats(-2, 0)), draw(st.floats(0.5, 2)), n)
    y = draw(st.floats(-3, 3)) * x + draw(st.floats(-3, 3)) + 0.3 * rng.normal(size=n)
    return x, y


def _hessian(x):
    """The Hessian of ``mean((a x + b - y)²)`` over ``(a, b)``, the same everywhere: ``(2, 2)``."""
    return 2 * np.array([[np.mean(x * x), np.mean(x)], [np.mean(x), 1.0]])


def _losses(path, x, y):
    """The line fit's loss at each iterate of ``path (S, 2)``: ``(S,)``."""
    return np.mean((path[:, :1] * x + path[:, 1:] - y) ** 2, axis=1)


START = (1.5, -2.5)


@COMPILING
@given(lines(), st.floats(0.05, 0.95))
def test_below_the_stability_limit_every_step_lowers_the_loss(line, fraction):
    rate = fraction * 2 / np.linalg.eigvalsh(_hessian(line[0])).max()
    with jax.enable_x64(True):
        path = backprop.descent_path(backprop.line_fit_loss(*line), START, rate, 40)
    assert path.shape == (41, 2)
    np.testing.assert_array_equal(path[0], START)
    losses = _losses(np.asarray(path), *line)
    assert np.all(np.diff(losses) <= 1e-12 * losses[0])
    assert losses[-1] < losses[0]


@COMPILING
@given(lines(), st.floats(1.1, 1.5))
def test_above_the_stability_limit_descent_overshoots_and_diverges(line, fraction):
    curvatures, directions = np.linalg.eigh(_hessian(line[0]))
    rate = fraction * 2 / curvatures.max()
    with jax.enable_x64(True):
        path = np.asarray(backprop.descent_path(backprop.line_fit_loss(*line), START, rate, 60))
    steep = (path - np.polyfit(*line, 1)) @ directions[:, -1]  # the error along the steepest
    assert np.all(np.sign(steep[1:]) == -np.sign(steep[:-1]))  # overshoots every step
    losses = _losses(path, *line)
    assert losses[-1] > 100 * losses[0]


def test_the_fastest_learning_rate_reaches_least_squares_in_float32():
    x = np.linspace(-0.5, 1.5, 20, dtype=np.float32)
    y = 2 * x + 1 + 0.2 * np.random.default_rng(0).normal(size=20).astype(np.float32)
    low, high = np.linalg.eigvalsh(_hessian(x))
    path = backprop.descent_path(backprop.line_fit_loss(x, y), [0, 0], 2 / (low + high), 100)
    assert path.dtype == jnp.float32
    np.testing.assert_allclose(path[-1], np.polyfit(x, y, 1), atol=1e-5)


# ----- bad input ----------------------------------------------------------------------------

_PARAMS = backprop.TwoLayerParams(jnp.ones((3, 4)), jnp.ones(4), jnp.ones((4, 2)), jnp.ones(2))
_X, _LABELS = jnp.ones((5, 3)), jnp.zeros(5, int)
_LINE = backprop.line_fit_loss(jnp.arange(4.0), jnp.arange(4.0))

BAD_CALLS = {
    "x_features": (
        lambda: backprop.forward(_PARAMS, jnp.ones((5, 2)), "tanh"),
        r"`x` must have shape \(B, 3\), got \(5, 2\)",
    ),
    "x_rank": (lambda: backprop.forward(_PARAMS, jnp.ones(3), "tanh"), r"`x` must have shape"),
    "params_type": (
        lambda: backprop.forward({"w1": jnp.ones((3, 4))}, _X, "tanh"),
        r"`params` must be a TwoLayerParams, got dict",
    ),
    "params_shapes": (
        lambda: backprop.forward(_PARAMS._replace(w2=jnp.ones((5, 2))), _X, "tanh"),
        r"`params.w2` must have shape \(4, 2\)",
    ),
    "activation": (
        lambda: backprop.two_layer_gradients(_PARAMS, _X, _LABELS, "swish"),
        r"`activation` must be one of .*'relu'.*got 'swish'",
    ),
    "labels_shape": (
        lambda: backprop.two_layer_gradients(_PARAMS, _X, jnp.zeros(4, int), "tanh"),
        r"`labels` must have shape \(5,\), got \(4,\)",
    ),
    "labels_float": (
        lambda: backprop.two_layer_gradients(_PARAMS, _X, jnp.zeros(5), "tanh"),
        r"`labels` must be integer class indices",
    ),
    "init_size": (
        lambda: backprop.init_two_layer(jax.random.key(0), 2, 0, 2),
        r"`hidden_features` must be a positive integer, got 0",
    ),
    "train_rate": (
        lambda: backprop.train_two_layer(_PARAMS, _X, _LABELS, "relu", learning_rate=0, steps=3),
        r"`learning_rate` must be a positive finite number, got 0",
    ),
    "train_steps": (
        lambda: backprop.train_two_layer(_PARAMS, _X, _LABELS, "relu", learning_rate=0.1, steps=0),
        r"`steps` must be a positive integer, got 0",
    ),
    "line_shapes": (
        lambda: backprop.line_fit_loss(jnp.ones(3), jnp.ones(4)),
        r"`x` and `y` must both have shape \(N,\), got \(3,\) and \(4,\)",
    ),
    "start_rank": (
        lambda: backprop.descent_path(_LINE, jnp.zeros((1, 2)), 0.1, 3),
        r"`start` must be a parameter vector \(P,\), got shape \(1, 2\)",
    ),
    "descent_rate": (
        lambda: backprop.descent_path(_LINE, jnp.zeros(2), -0.1, 3),
        r"`learning_rate` must be a positive finite number, got -0.1",
    ),
    "descent_steps": (
        lambda: backprop.descent_path(_LINE, jnp.zeros(2), 0.1, 2.5),
        r"`steps` must be a positive integer, got 2.5",
    ),
    "epsilon": (
        lambda: backprop.finite_difference_gradients(_LINE, jnp.zeros(2), epsilon=0.0),
        r"`epsilon` must be a positive finite number, got 0.0",
    ),
}


@pytest.mark.parametrize("name", list(BAD_CALLS))
def test_bad_input_is_refused_with_the_argument_named(name):
    call, message = BAD_CALLS[name]
    with pytest.raises(ValueError, match=message):
        call()


# ----- the figure ---------------------------------------------------------------------------


def _descent_figure(path, **kwargs):
    paths = {
        f"learning rate {rate}": backprop.descent_path(_LINE, [0.0, 0.0], rate, 10)
        for rate in (0.01, 0.1)
    }
    return plots.plot_descent_paths(_LINE, paths, path, minimum=[1.0, 0.0], **kwargs)


def test_descent_figure_is_a_png_that_is_not_overwritten_by_default(tmp_path):
    path = tmp_path / "figures" / "descent.png"
    assert _descent_figure(path) == path
    written = path.read_bytes()
    assert written[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(FileExistsError, match=r"already exists; pass overwrite=True"):
        _descent_figure(path)
    assert path.read_bytes() == written
    assert _descent_figure(path, overwrite=True, parameter_names=("slope", "intercept")) == path


@pytest.mark.parametrize(
    ("paths", "kwargs", "message"),
    [
        ({}, {}, r"`paths` must be a non-empty dict"),
        ({"lr": np.zeros((5, 3))}, {}, r"`paths\['lr'\]` must have shape \(steps \+ 1, 2\)"),
        ({"lr": np.full((5, 2), np.nan)}, {}, r"`paths\['lr'\]` contains NaN"),
        ({"lr": np.zeros((5, 2))}, {"minimum": [1.0]}, r"`minimum` must have shape \(2,\)"),
        ({"lr": np.zeros((5, 2))}, {"parameter_names": "ab"}, r"`parameter_names` must be two"),
    ],
)
def test_descent_figure_refuses_bad_input_and_writes_nothing(tmp_path, paths, kwargs, message):
    path = tmp_path / "descent.png"
    with pytest.raises(ValueError, match=message):
        plots.plot_descent_paths(_LINE, paths, path, **kwargs)
    assert not path.exists()
