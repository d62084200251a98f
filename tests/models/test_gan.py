"""``gan`` and ``dcgan``: both players in one module, shapes, config round trips, checks."""

import functools

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adljax.models import DCGAN, GAN, create_model, model_config

pytestmark = pytest.mark.usefixtures("fast_compiles")


@settings(max_examples=10)
@given(st.integers(1, 5), st.integers(1, 6), st.integers(1, 4), st.integers(1, 2))
def test_gan_shapes(batch, latent_dim, dim, layers):
    model = GAN(input_shape=(dim,), latent_dim=latent_dim, generator_sizes=(8,) * layers)
    x = jax.ShapeDtypeStruct((batch, dim), jnp.float32)
    variables = jax.eval_shape(lambda x: model.init(jax.random.key(0), x, train=False), x)
    assert set(variables["params"]) == {"generator", "discriminator"}
    z = jax.ShapeDtypeStruct((batch, latent_dim), jnp.float32)
    points = jax.eval_shape(
        lambda v, z: model.apply(v, z, train=False, method="generate"), variables, z
    )
    assert points.shape == (batch, dim)
    logits = jax.eval_shape(lambda v, x: model.apply(v, x, train=False), variables, points)
    assert logits.shape == (batch,)


@pytest.mark.parametrize("shape", [(8, 8, 1), (12, 4, 3)])
def test_dcgan_shapes_and_batch_statistics(shape):
    model = DCGAN(input_shape=shape, latent_dim=4, features=4)
    z = jax.random.normal(jax.random.key(1), (3, 4))

    @jax.jit
    def run(x, z):
        variables = model.init(jax.random.key(0), x, train=False)
        generated = model.apply(
            variables, z, train=True, method="generate", mutable=["batch_stats"]
        )
        return variables, generated, model.apply(variables, generated[0], train=False)

    variables, (images, updates), logits = run(jnp.zeros((3, *shape)), z)
    assert set(variables["batch_stats"]) == {"generator", "discriminator"}
    assert images.shape == (3, *shape)
    assert np.all((images >= 0) & (images <= 1))  # sigmoid output, like the image datasets
    assert logits.shape == (3,)
    moved = jax.tree.map(
        lambda a, b: bool(jnp.any(a != b)), updates["batch_stats"], variables["batch_stats"]
    )
    assert all(jax.tree.leaves(moved["generator"]))  # only the generator ran
    assert not any(jax.tree.leaves(moved["discriminator"]))


def test_dcgan_matmul_xla_and_auto_convolutions_agree():
    x = jax.random.uniform(jax.random.key(0), (2, 8, 8, 1))
    z = jax.random.normal(jax.random.key(1), (2, 4))
    outputs = []
    for convolutions in ("matmul", "xla", "auto"):
        model = DCGAN(input_shape=(8, 8, 1), latent_dim=4, features=4, convolutions=convolutions)

        @jax.jit
        def run(x, z, model=model):
            variables = model.init(jax.random.key(2), x, train=False)

            def score(params):
                images = model.apply(
                    {**variables, "params": params}, z, train=False, method="generate"
                )
                logits = model.apply({**variables, "params": params}, images, train=False)
                return jnp.sum(logits), (images, model.apply(variables, x, train=False))

            grads, outputs = jax.grad(score, has_aux=True)(variables["params"])
            return (*outputs, grads)

        outputs.append(run(x, z))
    for other in outputs[1:]:  # generated images, scores, gradients of both players
        chex.assert_trees_all_close(outputs[0], other, rtol=1e-5, atol=1e-5)


def test_layer_norm_discriminator_has_no_batch_statistics():
    model = DCGAN(input_shape=(8, 8, 1), latent_dim=4, features=4, discriminator_norm="layer")
    x = jax.ShapeDtypeStruct((2, 8, 8, 1), jnp.float32)
    variables = jax.eval_shape(lambda x: model.init(jax.random.key(0), x, train=False), x)
    assert set(variables["batch_stats"]) == {"generator"}


@pytest.mark.parametrize(
    ("name", "config"),
    [("gan", {"input_shape": (2,), "latent_dim": 3}), ("dcgan", {"input_shape": (8, 8, 1)})],
)
def test_config_round_trips_through_the_registry(name, config):
    model = create_model(name, **config)
    assert create_model(name, **model_config(model)) == model


@pytest.mark.parametrize(
    ("factory", "config", "message"),
    [
        (GAN, {"input_shape": (8, 8, 1)}, "input_shape"),
        (GAN, {"input_shape": (2,), "latent_dim": 0}, "latent_dim"),
        (DCGAN, {"input_shape": (2,)}, "input_shape"),
        (DCGAN, {"input_shape": (6, 6, 1)}, "divisible by 4"),
        (DCGAN, {"input_shape": (8, 8, 1), "discriminator_norm": "group"}, "discriminator_norm"),
        (DCGAN, {"input_shape": (8, 8, 1), "convolutions": "fft"}, "convolutions"),
    ],
)
def test_bad_configuration_is_refused(factory, config, message):
    with pytest.raises(ValueError, match=message):
        factory(**config)


def test_bad_inputs_name_the_argument():
    model = GAN(input_shape=(2,), latent_dim=3)
    variables = model.init(jax.random.key(0), jnp.zeros((1, 2)), train=False)
    with pytest.raises(ValueError, match="`z` must have shape"):
        model.apply(variables, jnp.zeros((1, 4)), train=False, method="generate")
    with pytest.raises(ValueError, match="`x` must have shape"):
        model.apply(variables, jnp.zeros((1, 3)), train=False)


def test_layer_norm_discriminator_scores_each_example_on_its_own(key):
    model = DCGAN(input_shape=(8, 8, 1), latent_dim=4, features=4, discriminator_norm="layer")
    images = jax.random.uniform(key, (3, 8, 8, 1))
    variables = model.init(jax.random.key(1), images, train=False)
    discriminate = functools.partial(model.apply, variables, train=False, method="discriminate")
    together = discriminate(images)
    np.testing.assert_allclose(discriminate(images[:1]), together[:1], rtol=1e-5, atol=1e-6)
    shifted = images.at[1:].multiply(3.0)  # other examples change, the first does not
    np.testing.assert_allclose(discriminate(shifted)[0], together[0], rtol=1e-5, atol=1e-6)
