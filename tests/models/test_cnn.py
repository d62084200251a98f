"""Tests for adljax.models.cnn: SimpleCNN, LeNet5 and VGG."""

import functools
import json

import chex
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jax.test_util import check_grads

from adljax.losses import softmax_cross_entropy
from adljax.models import VGG, LeNet5, SimpleCNN, create_model, model_config
from adljax.models.cnn import _pool

pytestmark = pytest.mark.usefixtures("fast_compiles")

# The Flax MNIST example CNN on 28x28x1, 10 classes: conv 3*3*1*32+32 + conv 3*3*32*64+64
# + dense 7*7*64*256+256 + head 256*10+10. Its 'SAME' padding and our explicit padding 1 are
# the same for 3x3 stride-1 convs (see test_simple_cnn_equals_the_flax_example).
CNN_MNIST_PARAMS = 824_458
# With batch norm the two convs lose their biases (96) and gain scale and shift (192).
CNN_MNIST_BN_PARAMS = 824_554
CNN_MNIST_BN_STATS = 192
# LeNet-5 on 28x28x1, 10 classes: 156 + 2,416 + 400*120+120 + 120*84+84 + 84*10+10.
LENET5_MNIST_PARAMS = 61_706
# VGG (32, 64, 128) x 2 convs with batch norm, global average pool, 10 classes.
VGG_DIGITS_PARAMS = 288_170
VGG_DIGITS_STATS = 896

# One small instance per family, each with batch norm and dropout, and its input shape.
_CASES = {
    "cnn": (SimpleCNN(3, dropout_rate=0.5, batch_norm=True), (4, 8, 8, 1)),
    "lenet": (LeNet5(3, "tanh", "avg", dropout_rate=0.5, batch_norm=True), (4, 28, 28, 1)),
    "vgg": (VGG((4, 8), 1, 3, dropout_rate=0.5), (4, 8, 8, 2)),
}
# Stage outputs and head input of each case: ((stage_0, stage_1), features).
_SOWN_SHAPES = {
    "cnn": (((4, 4, 4, 32), (4, 2, 2, 64)), (4, 256)),
    "lenet": (((4, 14, 14, 6), (4, 5, 5, 16)), (4, 84)),
    "vgg": (((4, 4, 4, 4), (4, 2, 2, 8)), (4, 8)),
}
_NAMES = sorted(_CASES)


_KEY = jax.random.key(0)


def _num_params(tree: object) -> int:
    return sum(leaf.size for leaf in jax.tree.leaves(tree))


@functools.cache
def _case(name: str) -> tuple[nn.Module, jax.Array, dict]:
    """The model, its input and its initial variables, built once per test session."""
    model, shape = _CASES[name]
    x = jax.random.uniform(_KEY, shape)
    return model, x, jax.jit(model.init, static_argnames="train")(_KEY, x, train=False)


def _train_forward(model, variables, x, dropout_key):
    return model.apply(
        variables, x, train=True, rngs={"dropout": dropout_key}, mutable=["batch_stats"]
    )


# Compiled once per model and shared by the tests (the model is a static argument).
_jit_train_forward = jax.jit(_train_forward, static_argnums=0)


@functools.partial(jax.jit, static_argnums=0)
def _eval_forward(model, variables, x):
    return model.apply(variables, x, train=False, mutable=["batch_stats", "intermediates"])


_shape_cases = st.one_of(
    st.tuples(st.just(SimpleCNN), st.integers(4, 12)),
    st.tuples(st.just(LeNet5), st.integers(28, 33)),
    st.tuples(st.just(VGG), st.integers(8, 12)),
)


@settings(max_examples=12, deadline=None)
@given(
    case=_shape_cases,
    batch=st.integers(1, 3),
    width_extra=st.integers(0, 3),
    channels=st.integers(1, 3),
    num_outputs=st.integers(1, 4),
    batch_norm=st.booleans(),
)
def test_output_shape(case, batch, width_extra, channels, num_outputs, batch_norm):
    model_class, height = case
    model = model_class(num_outputs=num_outputs, batch_norm=batch_norm)
    x = jax.ShapeDtypeStruct((batch, height, height + width_extra, channels), jnp.float32)
    # eval_shape traces the model without compiling it: shapes are static.
    y = jax.eval_shape(lambda x: model.init_with_output(jax.random.key(0), x, train=False)[0], x)
    assert y.shape == (batch, num_outputs)
    assert y.dtype == jnp.float32


@pytest.mark.parametrize(
    ("model", "input_shape", "expected_params", "expected_stats"),
    [
        (SimpleCNN(), (28, 28, 1), CNN_MNIST_PARAMS, 0),
        (SimpleCNN(batch_norm=True), (28, 28, 1), CNN_MNIST_BN_PARAMS, CNN_MNIST_BN_STATS),
        (LeNet5(), (28, 28, 1), LENET5_MNIST_PARAMS, 0),
        (LeNet5(activation="tanh", pooling="avg"), (28, 28, 1), LENET5_MNIST_PARAMS, 0),
        (VGG(), (8, 8, 1), VGG_DIGITS_PARAMS, VGG_DIGITS_STATS),
    ],
)
def test_parameter_count(key, model, input_shape, expected_params, expected_stats):
    x = jnp.ones((1, *input_shape))
    variables = jax.eval_shape(lambda: model.init(key, x, train=False))
    assert _num_params(variables["params"]) == expected_params
    assert _num_params(variables.get("batch_stats", {})) == expected_stats


def test_convs_feeding_batch_norm_have_no_bias(key):
    variables = jax.eval_shape(lambda: VGG().init(key, jnp.ones((1, 8, 8, 1)), train=False))
    assert set(variables["params"]["stage0_conv0"]) == {"kernel"}
    variables = jax.eval_shape(
        lambda: VGG(batch_norm=False).init(key, jnp.ones((1, 8, 8, 1)), train=False)
    )
    assert set(variables["params"]["stage0_conv0"]) == {"kernel", "bias"}


class _FlaxExampleCNN(nn.Module):
    """The CNN of flax/examples/mnist (Linen version, commit 772d997414), verbatim."""

    @nn.compact
    def __call__(self, x):
        x = nn.Conv(features=32, kernel_size=(3, 3))(x)
        x = nn.relu(x)
        x = nn.avg_pool(x, window_shape=(2, 2), strides=(2, 2))
        x = nn.Conv(features=64, kernel_size=(3, 3))(x)
        x = nn.relu(x)
        x = nn.avg_pool(x, window_shape=(2, 2), strides=(2, 2))
        x = x.reshape((x.shape[0], -1))
        x = nn.Dense(features=256)(x)
        x = nn.relu(x)
        return nn.Dense(features=10)(x)


def test_simple_cnn_equals_the_flax_example(key):
    x = jax.random.uniform(key, (2, 28, 28, 1))
    example_params = jax.jit(_FlaxExampleCNN().init)(key, x)["params"]
    assert _num_params(example_params) == CNN_MNIST_PARAMS
    renamed = {
        ours: example_params[theirs]
        for ours, theirs in [
            ("conv_0", "Conv_0"),
            ("conv_1", "Conv_1"),
            ("dense_0", "Dense_0"),
            ("head", "Dense_1"),
        ]
    }
    ours = jax.jit(lambda p, x: SimpleCNN().apply({"params": p}, x, train=False))
    theirs = jax.jit(lambda p, x: _FlaxExampleCNN().apply({"params": p}, x))
    chex.assert_trees_all_close(ours(renamed, x), theirs(example_params, x), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", _NAMES)
def test_jit_agrees_with_eager(name):
    model, x, variables = _case(name)
    expected = _train_forward(model, variables, x, jax.random.key(1))
    actual = _jit_train_forward(model, variables, x, jax.random.key(1))
    chex.assert_trees_all_close(actual, expected, rtol=1e-5, atol=1e-6)


def test_gradients_match_finite_differences(key):
    model = VGG((2, 3), 1, 2)
    x = jax.random.uniform(key, (3, 4, 4, 1))
    labels = jnp.array([0, 1, 1])
    # float64, so that finite differences are accurate enough for the default tolerances;
    # standard promotion, because flax's BatchNorm promotes float64 with float32 internally.
    with jax.enable_x64(True), jax.numpy_dtype_promotion("standard"):
        x = x.astype(jnp.float64)
        variables = jax.jit(model.init, static_argnames="train")(key, x, train=False)
        variables = jax.tree.map(lambda v: v.astype(jnp.float64), variables)

        def loss(params, x):
            logits, _ = model.apply(
                {"params": params, "batch_stats": variables["batch_stats"]},
                x,
                train=True,
                mutable=["batch_stats"],
            )
            return jnp.mean(softmax_cross_entropy(logits, labels))

        check_grads(jax.jit(loss), (variables["params"], x), order=1, modes=("rev",))


@pytest.mark.parametrize("name", _NAMES)
def test_batch_stats_change_only_in_train_mode(name):
    model, x, variables = _case(name)
    _, updates = _jit_train_forward(model, variables, x, jax.random.key(1))
    moved = jax.tree.map(
        lambda a, b: bool(jnp.any(a != b)), updates["batch_stats"], variables["batch_stats"]
    )
    assert all(jax.tree.leaves(moved))

    _, state = _eval_forward(model, variables, x)
    chex.assert_trees_all_equal(state["batch_stats"], variables["batch_stats"])


@pytest.mark.parametrize("name", _NAMES)
def test_dropout_is_random_in_train(name):
    model, x, variables = _case(name)
    first, _ = _jit_train_forward(model, variables, x, jax.random.key(1))
    second, _ = _jit_train_forward(model, variables, x, jax.random.key(2))
    assert not np.allclose(first, second)


@pytest.mark.parametrize("name", _NAMES)
def test_stages_and_features_are_sown(name):
    model, x, variables = _case(name)
    logits, state = _eval_forward(model, variables, x)
    stage_shapes, feature_shape = _SOWN_SHAPES[name]
    intermediates = state["intermediates"]
    assert sorted(intermediates) == ["features", *(f"stage_{i}" for i in range(2))]
    for i, shape in enumerate(stage_shapes):
        assert intermediates[f"stage_{i}"][0].shape == shape
    (features,) = intermediates["features"]
    assert features.shape == feature_shape
    # In eval the head sees exactly the sown features: dropout is the identity.
    head = variables["params"]["head"]
    chex.assert_trees_all_close(
        features @ head["kernel"] + head["bias"][None], logits, rtol=1e-5, atol=1e-6
    )


def test_train_flag_is_required():
    with pytest.raises(TypeError, match="train"):
        jax.eval_shape(lambda: SimpleCNN().init(_KEY, jnp.ones((1, 8, 8, 1))))


@pytest.mark.parametrize("name", _NAMES)
def test_few_sgd_steps_reduce_loss(key, name):
    model, x, variables = _case(name)
    labels = jnp.array([0, 1, 2, 1])
    optimizer = optax.sgd(0.05, momentum=0.9)

    def loss_fn(params, batch_stats, dropout_key):
        logits, updates = _train_forward(
            model, {"params": params, "batch_stats": batch_stats}, x, dropout_key
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
    for dropout_key in jax.random.split(key, 15):
        carry, loss = step(carry, dropout_key)
        losses.append(float(loss))
    assert losses[-1] < 0.5 * losses[0]


def test_vmap_over_parameter_sets_equals_loop():
    model, x, variables = _case("vgg")
    stacked = jax.tree.map(lambda v: jnp.stack([v, 0.5 * v, -v]), variables)
    apply = jax.jit(lambda variables: model.apply(variables, x, train=False))
    batched = jax.jit(jax.vmap(apply))(stacked)
    looped = jnp.stack([apply(jax.tree.map(lambda v, i=i: v[i], stacked)) for i in range(3)])
    chex.assert_trees_all_close(batched, looped, rtol=1e-5, atol=1e-6)


def test_integer_inputs_are_cast_to_float():
    model, x, variables = _case("cnn")
    pixels = jnp.arange(x.size, dtype=jnp.uint8).reshape(x.shape)
    chex.assert_trees_all_close(
        _eval_forward(model, variables, pixels),
        _eval_forward(model, variables, pixels.astype(jnp.float32)),
    )


@pytest.mark.parametrize(
    ("name", "config"),
    [
        (
            "cnn",
            {"num_outputs": 3, "dropout_rate": 0.25, "batch_norm": True, "input_shape": (8, 8, 1)},
        ),
        (
            "lenet",
            {
                "num_outputs": 5,
                "activation": "tanh",
                "pooling": "avg",
                "dropout_rate": 0.0,
                "batch_norm": False,
                "input_shape": (28, 28, 1),
            },
        ),
        (
            "vgg",
            {
                "stage_features": (4, 8, 16),
                "convs_per_stage": 1,
                "num_outputs": 3,
                "dropout_rate": 0.5,
                "batch_norm": True,
                "input_shape": (8, 8, 1),
            },
        ),
    ],
)
def test_registry_config_round_trips_through_json(name, config):
    model = create_model(name, **config)
    assert model_config(model) == config
    assert create_model(name, **json.loads(json.dumps(model_config(model)))) == model


@pytest.mark.parametrize(
    ("model_class", "kwargs", "match"),
    [
        (SimpleCNN, {"num_outputs": 0}, r"`num_outputs` must be a positive integer, got 0"),
        (SimpleCNN, {"dropout_rate": 1.0}, r"`dropout_rate` must be in \[0, 1\), got 1.0"),
        (SimpleCNN, {"batch_norm": 1}, r"`batch_norm` must be a bool, got 1"),
        (SimpleCNN, {"input_shape": (8, 8)}, r"`input_shape` must be \(height, width, channels\)"),
        (SimpleCNN, {"input_shape": (3, 8, 1)}, r"SimpleCNN needs images of at least 4x4"),
        (LeNet5, {"activation": "swishy"}, r"`activation` must be one of .*got 'swishy'"),
        (LeNet5, {"pooling": "min"}, r"unknown pooling 'min'; choose one of 'max', 'avg'"),
        (LeNet5, {"input_shape": (8, 8, 1)}, r"LeNet5 needs images of at least 28x28.*got 8x8"),
        (VGG, {"stage_features": ()}, r"`stage_features` must be a non-empty tuple"),
        (VGG, {"stage_features": (8, 0)}, r"`stage_features\[1\]` must be a positive integer"),
        (VGG, {"convs_per_stage": 0}, r"`convs_per_stage` must be a positive integer, got 0"),
        (VGG, {"input_shape": (4, 4, 1)}, r"VGG with 3 stages needs images of at least 8x8"),
    ],
)
def test_bad_attributes_raise(model_class, kwargs, match):
    with pytest.raises(ValueError, match=match):
        model_class(**kwargs)


@pytest.mark.parametrize(
    ("model", "x_shape", "match"),
    [
        (SimpleCNN(), (2, 64), r"`x` must have rank 4 \(batch, \.\.\.\), got shape \(2, 64\)"),
        (
            SimpleCNN(input_shape=(8, 8, 1)),
            (2, 8, 8, 3),
            r"`x` must have shape \(batch, 8, 8, 1\), got \(2, 8, 8, 3\)",
        ),
        (SimpleCNN(), (2, 3, 8, 1), r"SimpleCNN needs images of at least 4x4.*got 3x8"),
        (LeNet5(), (2, 8, 8, 1), r"LeNet5 needs images of at least 28x28.*got 8x8"),
        (LeNet5(), (2, 28, 28), r"`x` must have rank 4"),
        (VGG(), (2, 8, 7, 1), r"VGG with 3 stages needs images of at least 8x8.*got 8x7"),
    ],
)
def test_bad_input_shape_raises_under_jit(key, model, x_shape, match):
    with pytest.raises(ValueError, match=match):
        jax.jit(lambda x: model.init(key, x, train=False))(jnp.ones(x_shape))


@settings(max_examples=20, deadline=None)
@given(
    kind=st.sampled_from(["max", "avg"]),
    height=st.integers(2, 7),
    width=st.integers(2, 7),
    levels=st.integers(2, 50),
    seed=st.integers(0, 2**16),
)
def test_pool_equals_flax_pools_with_gradients(kind, height, width, levels, seed):
    """`_pool` (a reshape) gives nn.max_pool's / nn.avg_pool's values and input gradients,
    odd sizes and tied maxima (few distinct values) included."""
    rng = np.random.default_rng(seed)
    x = jnp.asarray(rng.integers(0, levels, (2, height, width, 3)).astype(np.float32))
    cotangent = jnp.asarray(rng.standard_normal((2, height // 2, width // 2, 3), np.float32))
    flax_pool = nn.max_pool if kind == "max" else nn.avg_pool

    def reference(x):
        return flax_pool(x, (2, 2), strides=(2, 2))

    got, got_vjp = jax.vjp(lambda x: _pool(x, kind), x)
    expected, expected_vjp = jax.vjp(reference, x)
    np.testing.assert_allclose(got, expected, rtol=1e-6)
    np.testing.assert_allclose(got_vjp(cotangent)[0], expected_vjp(cotangent)[0], rtol=1e-6)


def test_max_pool_propagates_nan():
    x = jnp.zeros((1, 2, 2, 1)).at[0, 1, 0, 0].set(jnp.nan)
    assert jnp.isnan(_pool(x, "max")).all()
