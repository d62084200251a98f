"""Shared test set-up: strict JAX numerics on the CPU, a `key` fixture, hypothesis profiles."""

import jax
import pytest
from hypothesis import HealthCheck, settings

jax.config.update("jax_platforms", "cpu")
jax.config.update("jax_numpy_rank_promotion", "raise")

settings.register_profile(
    "default",
    max_examples=15,
    deadline=None,  # the first example of a test compiles
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
settings.register_profile("thorough", parent=settings.get_profile("default"), max_examples=200)
settings.load_profile("default")


@pytest.fixture
def key() -> jax.Array:
    """A fresh typed PRNG key."""
    return jax.random.key(0)
