"""Tests for adljax.models.resnet: parameter contract, shapes, modes and training."""

import functools
import json

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jax.test_util import check_grads

from adljax.data import compose, random_crop_with_padding, random_flip_horizontal
from adljax.losses import softmax_cross_entropy
from adljax.models import (
    BottleneckResNetBlock,
    ResNet,
    ResNet18,
    ResNet50,
    ResNetBlock,
    create_model,
    model_config,
    registered_name,
)
from adljax.tasks import Classification
from adljax.training import create_optimizer, create_train_state, make_train_step

pytestmark = pytest.mark.usefixtures("fast_compiles")

# torchvision's counts with the ImageNet stem and 1000 classes (parameters, not buffers).
RESNET18_IMAGENET_PARAMS = 11_689_512
RESNET34_IMAGENET_PARAMS = 21_797_672
RESNET50_IMAGENET_PARAMS = 25_557_032
# torchvision's running means and variances (its num_batches_tracked counters excluded).
RESNET18_IMAGENET_STATS = 9_600
RESNET34_IMAGENET_STATS = 17_024
RESNET50_IMAGENET_STATS = 53_120
# CIFAR stem (one 3x3 conv, no max pool) and 10 classes.
RESNET18_CIFAR10_PARAMS = 11_173_962

_KEY = jax.random.key(0)
# A tiny ResNet per block type: two stages, so the second one downsamples.
_TINY = {
    "basic": ResNet((1, 1), "basic", num_outputs=3, stem="cifar", width=4),
    "bottleneck": ResNet((1, 1), "bottleneck", num_outputs=3, stem="cifar", width=2),
}
_X_SHAPE = (4, 8, 8, 3)
_LABELS = jnp.array([0, 1, 2, 1])


def _num_params(tree: object) -> int:
    return sum(leaf.size for leaf in jax.tree.leaves(tree))


def _abstract_variables(model, shape):
    return jax.eval_shape(lambda: model.init(_KEY, jnp.ones(shape), train=False))


@functools.cache
def _tiny(block: str) -> tuple[ResNet, jax.Array, dict]:
    """A tiny model, its input and its initial variables, built once per test session."""
    model = _TINY[block]
    x = jax.random.normal(_KEY, _X_SHAPE)
    return model, x, jax.jit(model.init, static_argnames="train")(_KEY, x, train=False)


def _train_forward(model, variables, x):
    return model.apply(variables, x, train=True, mutable=["batch_stats"])


_jit_train_forward = jax.jit(_train_forward, static_argnums=0)


@pytest.mark.parametrize(
    ("name", "expected_params", "expected_stats"),
    [
        ("resnet18", RESNET18_IMAGENET_PARAMS, RESNET18_IMAGENET_STATS),
        ("resnet34", RESNET34_IMAGENET_PARAMS, RESNET34_IMAGENET_STATS),
        ("resnet50", RESNET50_IMAGENET_PARAMS, RESNET50_IMAGENET_STATS),
    ],
)
def test_parameter_count_matches_torchvision(name, expected_params, expected_stats):
    variables = _abstract_variables(create_model(name), (1, 224, 224, 3))
    assert _num_params(variables["params"]) == expected_params
    assert _num_params(variables["batch_stats"]) == expected_stats


def test_parameter_count_with_the_cifar_stem():
    variables = _abstract_variables(ResNet18(num_outputs=10, stem="cifar"), (1, 32, 32, 3))
    assert _num_params(variables["params"]) == RESNET18_CIFAR10_PARAMS


def _bn(channels: int) -> dict:
    return {"scale": (channels,), "bias": (channels,)}


def test_basic_parameter_names_and_shapes_follow_the_contract():
    model = ResNet((1, 1), "basic", num_outputs=5, stem="imagenet", width=4)
    variables = _abstract_variables(model, (1, 32, 32, 3))
    expected = {
        "stem_conv": {"kernel": (7, 7, 3, 4)},
        "stem_bn": _bn(4),
        "stage0_block0": {
            "conv0": {"kernel": (3, 3, 4, 4)},
            "bn0": _bn(4),
            "conv1": {"kernel": (3, 3, 4, 4)},
            "bn1": _bn(4),
        },
        "stage1_block0": {
            "conv0": {"kernel": (3, 3, 4, 8)},
            "bn0": _bn(8),
            "conv1": {"kernel": (3, 3, 8, 8)},
            "bn1": _bn(8),
            "downsample_conv": {"kernel": (1, 1, 4, 8)},
            "downsample_bn": _bn(8),
        },
        "head": {"kernel": (8, 5), "bias": (5,)},
    }
    assert jax.tree.map(jnp.shape, variables["params"]) == expected
    # Every batch norm has running statistics under the same name.
    stats = jax.tree.map(jnp.shape, variables["batch_stats"])
    assert stats["stage1_block0"]["downsample_bn"] == {"mean": (8,), "var": (8,)}


def test_bottleneck_parameter_names_and_shapes_follow_the_contract():
    model = ResNet((1, 1), "bottleneck", num_outputs=5, stem="cifar", width=4)
    params = _abstract_variables(model, (1, 8, 8, 3))["params"]
    shapes = jax.tree.map(jnp.shape, params)
    assert shapes["stem_conv"] == {"kernel": (3, 3, 3, 4)}
    # Stage 0 changes the channels (4 -> 16), so even its stride-1 block has a downsample.
    assert shapes["stage0_block0"] == {
        "conv0": {"kernel": (1, 1, 4, 4)},
        "bn0": _bn(4),
        "conv1": {"kernel": (3, 3, 4, 4)},
        "bn1": _bn(4),
        "conv2": {"kernel": (1, 1, 4, 16)},
        "bn2": _bn(16),
        "downsample_conv": {"kernel": (1, 1, 4, 16)},
        "downsample_bn": _bn(16),
    }
    assert shapes["stage1_block0"]["conv1"] == {"kernel": (3, 3, 8, 8)}
    assert shapes["stage1_block0"]["downsample_conv"] == {"kernel": (1, 1, 16, 32)}
    assert shapes["head"] == {"kernel": (32, 5), "bias": (5,)}


@pytest.mark.parametrize(
    ("model", "image", "stage_shapes"),
    [
        (
            ResNet18(num_outputs=10, stem="cifar"),
            (32, 32, 3),
            [(32, 32, 64), (16, 16, 128), (8, 8, 256), (4, 4, 512)],
        ),
        (
            ResNet18(num_outputs=10),
            (224, 224, 3),
            [(56, 56, 64), (28, 28, 128), (14, 14, 256), (7, 7, 512)],
        ),
        (
            ResNet50(num_outputs=10),
            (224, 224, 3),
            [(56, 56, 256), (28, 28, 512), (14, 14, 1024), (7, 7, 2048)],
        ),
    ],
    ids=["resnet18-cifar", "resnet18-imagenet", "resnet50-imagenet"],
)
def test_stage_and_feature_shapes(model, image, stage_shapes):
    x = jax.ShapeDtypeStruct((2, *image), jnp.float32)

    def forward(x):
        variables = model.init(_KEY, x, train=False)
        return model.apply(variables, x, train=False, mutable=["intermediates"])

    logits, state = jax.eval_shape(forward, x)
    assert logits.shape == (2, 10)
    intermediates = state["intermediates"]
    for i, shape in enumerate(stage_shapes):
        assert intermediates[f"stage_{i}"][0].shape == (2, *shape)
    assert intermediates["features"][0].shape == (2, stage_shapes[-1][-1])


@settings(max_examples=10, deadline=None)
@given(
    block=st.sampled_from(["basic", "bottleneck"]),
    stem=st.sampled_from(["cifar", "imagenet"]),
    stage_sizes=st.lists(st.integers(1, 2), min_size=1, max_size=3).map(tuple),
    width=st.integers(1, 4),
    batch=st.integers(1, 3),
    extra=st.tuples(st.integers(0, 5), st.integers(0, 5)),
    num_outputs=st.integers(1, 4),
)
def test_output_shape(block, stem, stage_sizes, width, batch, extra, num_outputs):
    model = ResNet(stage_sizes, block, num_outputs, stem, width)
    smallest = (4 if stem == "imagenet" else 1) * 2 ** (len(stage_sizes) - 1)
    x = jax.ShapeDtypeStruct((batch, smallest + extra[0], smallest + extra[1], 3), jnp.float32)
    y = jax.eval_shape(lambda x: model.init_with_output(_KEY, x, train=False)[0], x)
    assert y.shape == (batch, num_outputs)
    assert y.dtype == jnp.float32


@pytest.mark.parametrize(
    ("block", "strides", "in_shape", "out_shape", "downsample"),
    [
        (ResNetBlock(8, strides=2), 2, (1, 7, 7, 4), (1, 4, 4, 8), True),
        (ResNetBlock(4), 1, (1, 5, 5, 4), (1, 5, 5, 4), False),
        (BottleneckResNetBlock(4, strides=2), 2, (1, 8, 8, 16), (1, 4, 4, 16), True),
        (BottleneckResNetBlock(4), 1, (1, 5, 5, 16), (1, 5, 5, 16), False),
    ],
)
def test_blocks_downsample_only_when_the_shape_changes(
    block, strides, in_shape, out_shape, downsample
):
    y, variables = jax.eval_shape(
        lambda: block.init_with_output(_KEY, jnp.ones(in_shape), train=False)
    )
    assert block.strides == strides
    assert y.shape == out_shape
    assert ("downsample_conv" in variables["params"]) is downsample


@pytest.mark.parametrize("block", sorted(_TINY))
def test_jit_agrees_with_eager(block):
    model, x, variables = _tiny(block)
    chex.assert_trees_all_close(
        _jit_train_forward(model, variables, x),
        _train_forward(model, variables, x),
        rtol=1e-5,
        atol=1e-5,
    )


@pytest.mark.parametrize("block", sorted(_TINY))
def test_batch_stats_change_only_in_train_mode(block):
    model, x, variables = _tiny(block)
    _, updates = _jit_train_forward(model, variables, x)
    moved = jax.tree.map(
        lambda a, b: bool(jnp.any(a != b)), updates["batch_stats"], variables["batch_stats"]
    )
    assert all(jax.tree.leaves(moved))

    eval_forward = jax.jit(lambda v, x: model.apply(v, x, train=False, mutable=["batch_stats"]))
    _, updates = eval_forward(variables, x)
    chex.assert_trees_all_equal(updates["batch_stats"], variables["batch_stats"])


def test_gradients_match_finite_differences(key):
    model = ResNet((1, 1), "basic", num_outputs=2, stem="cifar", width=2)
    labels = jnp.array([0, 1, 1])
    # float64 for accurate finite differences; standard promotion for flax's BatchNorm.
    with jax.enable_x64(True), jax.numpy_dtype_promotion("standard"):
        x = jax.random.normal(key, (3, 4, 4, 2), jnp.float64)
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


@pytest.mark.parametrize("block", sorted(_TINY))
def test_few_sgd_steps_reduce_loss(block):
    model, x, variables = _tiny(block)
    optimizer = optax.sgd(0.05, momentum=0.9)

    def loss_fn(params, batch_stats):
        logits, updates = _train_forward(model, {"params": params, "batch_stats": batch_stats}, x)
        return jnp.mean(softmax_cross_entropy(logits, _LABELS)), updates["batch_stats"]

    def step(carry, _):
        params, batch_stats, opt_state = carry
        (loss, batch_stats), grads = jax.value_and_grad(loss_fn, has_aux=True)(params, batch_stats)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return (optax.apply_updates(params, updates), batch_stats, opt_state), loss

    carry = (variables["params"], variables["batch_stats"], optimizer.init(variables["params"]))
    _, losses = jax.jit(lambda carry: jax.lax.scan(step, carry, length=15))(carry)
    assert losses[-1] < 0.5 * losses[0]


def test_resnet18_train_step_runs_on_a_tiny_batch(key):
    model = create_model("resnet18", num_outputs=10, width=8, stem="cifar")
    batch = {
        "x": jax.random.uniform(key, (4, 8, 8, 3)),
        "y": jnp.array([0, 3, 5, 9], jnp.int32),
    }
    init = jax.jit(create_train_state, static_argnums=(0, 1))
    state = init(model, create_optimizer("sgd", 0.1), batch["x"][:1], key)
    augment = compose(random_crop_with_padding, random_flip_horizontal)
    step = jax.jit(chex.assert_max_traces(make_train_step(Classification(), augment), n=1))
    for _ in range(3):
        new_state, metrics = step(state, batch)
        assert np.isfinite(float(metrics["loss"]))
        moved = jax.tree.map(
            lambda a, b: bool(jnp.any(a != b)), new_state.model_state, state.model_state
        )
        assert all(jax.tree.leaves(moved))
        state = new_state
    assert int(state.step) == 3


def test_vmap_over_parameter_sets_equals_loop():
    model, x, variables = _tiny("basic")
    stacked = jax.tree.map(lambda v: jnp.stack([v, 0.5 * v, -v]), variables)
    apply = jax.jit(lambda variables: model.apply(variables, x, train=False))
    batched = jax.jit(jax.vmap(apply))(stacked)
    looped = jnp.stack([apply(jax.tree.map(lambda v, i=i: v[i], stacked)) for i in range(3)])
    chex.assert_trees_all_close(batched, looped, rtol=1e-5, atol=1e-5)


def test_train_flag_is_required():
    with pytest.raises(TypeError, match="train"):
        jax.eval_shape(lambda: _TINY["basic"].init(_KEY, jnp.ones(_X_SHAPE)))


def test_named_variant_config_round_trips_through_the_registry():
    model = create_model("resnet18", num_outputs=10, input_shape=(32, 32, 3), stem="cifar")
    config = model_config(model)
    assert config == {
        "stage_sizes": (2, 2, 2, 2),
        "block": "basic",
        "num_outputs": 10,
        "stem": "cifar",
        "width": 64,
        "input_shape": (32, 32, 3),
    }
    from_json = json.loads(json.dumps(config))
    assert create_model("resnet18", **from_json) == model
    assert registered_name(model) == "resnet"
    assert create_model("resnet", **from_json) == model
    assert create_model("resnet50", num_outputs=2) == ResNet((3, 4, 6, 3), "bottleneck", 2)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"block": "wide"}, r"unknown block 'wide'; choose one of 'basic', 'bottleneck'"),
        ({"stem": "tiny"}, r"unknown stem 'tiny'; choose one of 'imagenet', 'cifar'"),
        ({"stage_sizes": ()}, r"`stage_sizes` must be a non-empty tuple of positive ints"),
        ({"stage_sizes": (2, 0)}, r"`stage_sizes\[1\]` must be a positive integer, got 0"),
        ({"width": 0}, r"`width` must be a positive integer, got 0"),
        ({"num_outputs": -1}, r"`num_outputs` must be a positive integer, got -1"),
        ({"input_shape": (32, 32)}, r"`input_shape` must be \(height, width, channels\)"),
        (
            {"input_shape": (16, 16, 3)},
            r"ResNet with the 'imagenet' stem and 4 stages needs images of at least 32x32",
        ),
    ],
)
def test_bad_attributes_raise(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ResNet(**{"stage_sizes": (2, 2, 2, 2), **kwargs})


@pytest.mark.parametrize(
    ("model", "x_shape", "match"),
    [
        (ResNet18(), (2, 32, 32), r"`x` must have rank 4 \(batch, \.\.\.\), got shape"),
        (
            ResNet18(input_shape=(32, 32, 3)),
            (2, 32, 32, 1),
            r"`x` must have shape \(batch, 32, 32, 3\), got \(2, 32, 32, 1\)",
        ),
        (
            ResNet18(),
            (2, 16, 16, 3),
            r"ResNet with the 'imagenet' stem and 4 stages needs images of at least 32x32 "
            r"\(height x width\), got 16x16",
        ),
        (
            ResNet18(stem="cifar"),
            (2, 8, 4, 3),
            r"'cifar' stem and 4 stages needs images of at least 8x8 .*got 8x4",
        ),
    ],
)
def test_bad_input_shape_raises_under_jit(model, x_shape, match):
    with pytest.raises(ValueError, match=match):
        jax.jit(lambda x: model.init(_KEY, x, train=False))(jnp.ones(x_shape))


def test_training_step_materializes_conv_inputs_on_cpu_only():
    """On CPUs the train-mode program holds the `materialize` conditionals; eval does not."""
    model = create_model("resnet", stage_sizes=(1, 1), num_outputs=3, stem="cifar", width=4)
    x = jnp.ones((2, 8, 8, 3))
    variables = jax.eval_shape(lambda x: model.init(jax.random.key(0), x, train=False), x)

    def conditionals(train):
        def apply(variables, x):
            return model.apply(variables, x, train=train, mutable=["batch_stats"])[0]

        return str(jax.make_jaxpr(apply)(variables, x)).count(" cond[")

    expected = 4 if jax.default_backend() == "cpu" else 0  # 2 blocks: input, conv1 input
    assert conditionals(train=True) == expected
    assert conditionals(train=False) == 0
