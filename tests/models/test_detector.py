"""The FCOS-style detector: output shapes over sizes, points, jit, vmap, gradients, config."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from adljax import ops
from adljax.models import Detector, create_model, detector_points, model_config

pytestmark = pytest.mark.usefixtures("fast_compiles")


@given(
    side=st.sampled_from([32, 48]),
    classes=st.integers(1, 4),
    strides=st.sampled_from([(8,), (8, 16), (4, 16)]),
)
def test_output_shapes_follow_the_pyramid(side, classes, strides):
    model = Detector(
        num_outputs=classes, input_shape=(side, side, 3), width=4, head_width=8, strides=strides
    )
    x = jnp.zeros((2, side, side, 3))
    out = jax.eval_shape(lambda: model.init_with_output(jax.random.key(0), x, train=False)[0])
    count = sum((side // s) ** 2 for s in strides)
    assert out["class_logits"].shape == (2, count, classes)
    assert out["box_distances"].shape == (2, count, 4)
    assert out["centerness_logits"].shape == (2, count)
    assert out["points"].shape == (count, 2) and out["strides"].shape == (count,)


def test_points_are_the_pyramid_points_and_distances_positive(key):
    model = Detector(width=4, head_width=8, tower_depth=1)
    x = jax.random.uniform(key, (2, 64, 64, 3))
    variables = model.init(key, x, train=False)
    out = jax.jit(lambda v, x: model.apply(v, x, train=False))(variables, x)
    points, strides = ops.pyramid_centre_points(64, 64, (8, 16))
    np.testing.assert_array_equal(out["points"], points)
    np.testing.assert_array_equal(detector_points(model)[1], strides)
    assert np.all(np.asarray(out["box_distances"]) > 0)
    # The class prior: sigmoid(logit) starts near 0.01.
    assert abs(float(jax.nn.sigmoid(out["class_logits"]).mean()) - 0.01) < 0.005
    # vmap over single images equals the batch in eval mode.
    single = jax.jit(jax.vmap(lambda image: model.apply(variables, image[None], train=False)))(x)
    np.testing.assert_allclose(
        single["class_logits"][:, 0], out["class_logits"], rtol=1e-4, atol=1e-5
    )


def test_gradients_reach_every_parameter(key):
    model = Detector(width=4, head_width=8, tower_depth=1)
    x = jax.random.uniform(key, (2, 64, 64, 3))
    variables = model.init(key, x, train=False)

    def loss(params):
        out = model.apply({**variables, "params": params}, x, train=True, mutable=["batch_stats"])[
            0
        ]
        return sum(jnp.sum(out[k] ** 2) for k in ("class_logits", "box_distances"))

    grads = jax.jit(jax.grad(loss))(variables["params"])
    norms = {
        "/".join(map(str, p)): float(jnp.abs(g).sum())
        for p, g in jax.tree_util.tree_leaves_with_path(grads)
    }
    dead = [name for name, norm in norms.items() if norm == 0 and "centerness" not in name]
    assert not dead


def test_config_round_trips_through_the_registry():
    model = create_model("detector", num_outputs=5, input_shape=[32, 32, 3], strides=[8])
    again = create_model("detector", **model_config(model))
    assert again == model and again.strides == (8,)


@pytest.mark.parametrize(
    ("config", "match"),
    [
        ({"strides": (16, 8)}, "`strides` must be increasing stage strides"),
        ({"strides": (32,)}, r"a subset of \(4, 8, 16\)"),
        ({"input_shape": (60, 64, 3)}, "multiples of 16"),
        ({"head_width": 12}, "`head_width` must be a multiple of 8"),
        ({"num_outputs": 0}, "`num_outputs` must be a positive integer"),
    ],
)
def test_bad_configs_raise(config, match):
    with pytest.raises(ValueError, match=match):
        Detector(**config)


def test_wrong_input_shape_raises_at_trace_time(key):
    model = Detector(width=4, head_width=8)
    with pytest.raises(ValueError, match=r"`x` must have shape \(batch, 64, 64, 3\)"):
        model.init(key, jnp.zeros((1, 32, 32, 3)), train=False)
