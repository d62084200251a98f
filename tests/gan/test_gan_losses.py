"""``adljax.gan.losses`` and the ``generation`` task: formulas, the gradient penalty."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from adljax.gan.losses import discriminator_losses, generator_losses, gradient_penalty
from adljax.gan.task import Generation
from adljax.tasks import get_task

REAL = jnp.array([2.0, -0.5, 0.0, 3.0])
FAKE = jnp.array([-1.0, 0.5, 4.0, -2.0])


def _softplus(x):
    return np.log1p(np.exp(x))


def test_non_saturating_is_sigmoid_cross_entropy():
    r, f = np.asarray(REAL), np.asarray(FAKE)
    sigmoid = lambda x: 1 / (1 + np.exp(-x))  # noqa: E731
    expected_d = -np.log(sigmoid(r)) - np.log(1 - sigmoid(f))
    np.testing.assert_allclose(discriminator_losses("non_saturating", REAL, FAKE), expected_d, 1e-5)
    np.testing.assert_allclose(
        generator_losses("non_saturating", FAKE), -np.log(sigmoid(f)), rtol=1e-5
    )
    np.testing.assert_allclose(generator_losses("non_saturating", FAKE), _softplus(-f), 1e-5)


def test_hinge_and_wasserstein_losses():
    r, f = np.asarray(REAL), np.asarray(FAKE)
    np.testing.assert_allclose(
        discriminator_losses("hinge", REAL, FAKE),
        np.maximum(0, 1 - r) + np.maximum(0, 1 + f),
    )
    np.testing.assert_allclose(discriminator_losses("wgan_gp", REAL, FAKE), f - r)
    for kind in ("hinge", "wgan_gp"):
        np.testing.assert_allclose(generator_losses(kind, FAKE), -f)


def test_unknown_loss_is_refused():
    with pytest.raises(ValueError, match="loss"):
        discriminator_losses("minimax", REAL, FAKE)
    with pytest.raises(ValueError, match="loss"):
        Generation(loss="minimax")


def test_gradient_penalty_of_a_linear_critic_is_its_norm_gap_squared():
    # critic(x) = <w, x>: the gradient is w at every point, so the penalty is (|w| - 1)^2.
    w = jnp.array([[3.0, 0.0], [0.0, 4.0]])  # |w| = 5 over the flattened (2, 2) example
    real = jax.random.normal(jax.random.key(0), (16, 2, 2))
    fake = jax.random.normal(jax.random.key(1), (16, 2, 2))
    critic = lambda x: jnp.sum(x * w[None], axis=(1, 2))  # noqa: E731
    assert gradient_penalty(critic, real, fake, jax.random.key(2)) == pytest.approx(16.0)


def test_gradient_penalty_of_a_quadratic_critic_depends_on_the_mixed_points():
    # critic(x) = |x|^2 / 2 has gradient x: the penalty is mean((|x_hat| - 1)^2) with
    # x_hat = e real + (1 - e) fake for the draws e of the same key.
    real = jnp.array([[2.0, 0.0], [0.0, 3.0]])
    fake = jnp.zeros((2, 2))
    key = jax.random.key(3)
    e = jax.random.uniform(key, (2, 1))
    norms = np.linalg.norm(np.asarray(e * real), axis=1)
    critic = lambda x: 0.5 * jnp.sum(x**2, axis=1)  # noqa: E731
    assert gradient_penalty(critic, real, fake, key) == pytest.approx(
        np.mean((norms - 1) ** 2), rel=1e-5
    )


def test_generation_task_is_registered_and_its_statistics_sum_exactly():
    assert isinstance(get_task("generation"), Generation)
    task = Generation(loss="hinge")
    batch = {"x": jnp.zeros((4, 2)), "mask": jnp.array([1.0, 1.0, 1.0, 0.0])}
    loss, statistics = task.loss_and_statistics({"real": REAL, "fake": FAKE}, batch)
    per_example = np.asarray(discriminator_losses("hinge", REAL, FAKE))
    assert loss == pytest.approx(per_example[:3].mean())
    metrics = task.metrics(statistics)
    assert metrics["loss"] == pytest.approx(per_example[:3].mean())
    assert metrics["real_score"] == pytest.approx(float(REAL[:3].mean()))
    assert metrics["fake_score"] == pytest.approx(float(FAKE[:3].mean()))
    assert task.generator_loss(FAKE) == pytest.approx(float(-FAKE.mean()))
