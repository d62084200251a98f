"""The adversarial step: each player's update does its job, n_critic, EMA, exact resume."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from adljax.gan.experiment import run_gan_experiment
from adljax.gan.task import Generation
from adljax.gan.training import (
    EMA,
    AdversarialOptimizer,
    create_gan_state,
    ema_decay_at,
    make_gan_train_step,
)
from adljax.models import DCGAN, GAN
from adljax.training import create_optimizer

pytestmark = pytest.mark.usefixtures("fast_compiles")

REAL = {"x": jnp.tile(jnp.array([[2.0, 2.0]]), (64, 1))}
TINY = {"generator_sizes": (16,), "discriminator_sizes": (16,), "latent_dim": 2}


def _state(generator_lr: float, discriminator_lr: float, seed: int = 0):
    model = GAN(input_shape=(2,), **TINY)
    tx = AdversarialOptimizer(
        create_optimizer("adam", generator_lr), create_optimizer("adam", discriminator_lr)
    )
    return create_gan_state(model, tx, REAL["x"][:1], jax.random.key(seed))


def _logits(state, x):
    return state.model.apply({"params": state.params}, x, train=False)


def _fakes(state, key, num=256):
    z = jax.random.normal(key, (num, state.model.latent_dim))
    return state.model.apply({"params": state.params}, z, train=False, method="generate")


@pytest.mark.parametrize("loss", ["non_saturating", "hinge", "wgan_gp"])
def test_one_step_updates_both_players_and_the_ema(loss):
    state = _state(1e-2, 1e-2)
    step = jax.jit(make_gan_train_step(Generation(loss=loss)))
    new, metrics = step(state, REAL)
    assert int(new.step) == 1
    assert all(np.isfinite(float(v)) for v in metrics.values())
    expected = {"loss", "real_score", "fake_score", "generator_loss", "learning_rate"}
    assert set(metrics) == expected | ({"gradient_penalty"} if loss == "wgan_gp" else set())
    changed = jax.tree.map(lambda a, b: bool(jnp.any(a != b)), new.params, state.params)
    for player in ("generator", "discriminator"):
        # Every kernel moves (WGAN's critic bias gets no gradient: fake - real cancels it).
        assert all(layer["kernel"] for layer in changed[player].values())
    # The EMA follows the new generator with the warm-up decay of step 0: 1/10.
    decay = float(ema_decay_at(0.999, 0))
    assert decay == pytest.approx(0.1)
    expected_ema = jax.tree.map(
        lambda old, now: decay * old + (1 - decay) * now,
        state.model_state[EMA]["generator"],
        new.params["generator"],
    )
    for a, b in zip(
        jax.tree.leaves(new.model_state[EMA]), jax.tree.leaves(expected_ema), strict=True
    ):
        np.testing.assert_allclose(a, b, rtol=1e-6)


def test_discriminator_separates_real_from_fake_after_its_updates():
    state = _state(0.0, 1e-2)  # the generator stands still
    key = jax.random.key(7)
    accuracy = lambda s: float(  # noqa: E731
        (jnp.mean(_logits(s, REAL["x"]) > 0) + jnp.mean(_logits(s, _fakes(s, key)) < 0)) / 2
    )
    before = accuracy(state)
    new, _ = jax.jit(make_gan_train_step(Generation(), n_critic=20))(state, REAL)
    assert accuracy(new) >= 0.9 > before + 0.2
    np.testing.assert_array_equal(
        new.params["generator"]["out"]["kernel"], state.params["generator"]["out"]["kernel"]
    )


def test_generator_update_reduces_its_loss_on_a_fixed_batch():
    state = _state(1e-2, 0.0)  # the discriminator stands still
    task = Generation()
    key = jax.random.key(11)  # a fixed batch of latents, not the step's own
    loss = lambda s: float(task.generator_loss(_logits(s, _fakes(s, key))))  # noqa: E731
    new, metrics = jax.jit(make_gan_train_step(task))(state, REAL)
    assert loss(new) < loss(state)
    assert float(metrics["generator_loss"]) == pytest.approx(loss(state), rel=0.2)


def test_n_critic_discriminator_updates_per_generator_update():
    state = _state(1e-3, 1e-3)
    step = jax.jit(make_gan_train_step(Generation(), n_critic=3))
    for _ in range(2):
        state, _ = step(state, REAL)

    def count(player):
        found = optax.tree_utils.tree_get_all_with_path(state.opt_state[player], "count")
        return int(found[0][1])

    assert (count("discriminator"), count("generator"), int(state.step)) == (6, 2, 2)


def test_ema_decay_warms_up_to_its_ceiling():
    steps = jnp.array([0, 10, 100, 10_000])
    np.testing.assert_allclose(
        ema_decay_at(0.999, steps), [0.1, 11 / 20, 101 / 110, 0.999], rtol=1e-6
    )


def test_wgan_gp_refuses_a_batch_norm_discriminator():
    model = DCGAN(input_shape=(8, 8, 1), latent_dim=2, features=2)
    tx = AdversarialOptimizer(optax.adam(1e-3), optax.adam(1e-3))
    step = make_gan_train_step(Generation(loss="wgan_gp"))

    def trace():  # the check runs while tracing: shapes only, nothing computed
        state = create_gan_state(model, tx, jnp.zeros((1, 8, 8, 1)), jax.random.key(0))
        return step(state, {"x": jnp.zeros((2, 8, 8, 1))})

    with pytest.raises(ValueError, match="discriminator_norm"):
        jax.eval_shape(trace)


def _ring(**kwargs):
    overrides = {**TINY, "loss": "hinge", "n_critic": 2}
    return run_gan_experiment(
        "gan",
        "ring8",
        batch_size=1000,
        learning_rate=1e-3,
        model_config_overrides=overrides,
        progress=False,
        **kwargs,
    )


def test_checkpoint_and_exact_resume_of_both_players(tmp_path):
    straight = _ring(epochs=2, checkpoint_dir=tmp_path / "straight")
    _ring(epochs=1, checkpoint_dir=tmp_path / "split")
    resumed = _ring(epochs=2, checkpoint_dir=tmp_path / "split", resume=True)
    a, b = straight.result.state, resumed.result.state
    for part in ("params", "opt_state", "model_state", "step"):
        for x, y in zip(
            jax.tree.leaves(getattr(a, part)), jax.tree.leaves(getattr(b, part)), strict=True
        ):
            np.testing.assert_array_equal(x, y)
    assert straight.result.history[-1]["eval"] == resumed.result.history[-1]["eval"]
    assert set(straight.summary["eval"]) == {"modes", "high_quality"}


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"ensemble": 2}, "ensemble"),
        ({"augment": True}, "augment"),
        ({"optimizer": "sgd", "model_config_overrides": {"beta1": 0.9}}, "beta1"),
        ({"model_config_overrides": {"n_critic": 0}}, "n_critic"),
        ({"model_config_overrides": {"loss": "minimax"}}, "loss"),
    ],
)
def test_unsupported_or_bad_options_are_refused_before_training(kwargs, message):
    with pytest.raises(ValueError, match=message):
        run_gan_experiment("gan", "ring8", epochs=1, progress=False, **kwargs)


def test_a_dataset_without_images_or_modes_is_refused():
    with pytest.raises(ValueError, match="classification images"):
        run_gan_experiment("gan", "xor", epochs=1, progress=False)
