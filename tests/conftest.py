"""Shared test set-up: strict JAX numerics on the CPU, a `key` fixture, hypothesis profiles.

Tests run on the CPU unless ``ADLJAX_TEST_PLATFORMS`` names others (e.g. ``cuda,cpu`` for the
``gpu``-marked tests on a GPU machine).
"""

import os

import chex
import jax
import pytest
from hypothesis import HealthCheck, settings

jax.config.update("jax_platforms", os.environ.get("ADLJAX_TEST_PLATFORMS", "cpu"))
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


@pytest.fixture(scope="module")
def fast_compiles():
    """Compiles with most XLA optimisations off (2-5x faster for tiny models); opt in per module
    with ``pytestmark = pytest.mark.usefixtures("fast_compiles")``."""
    previous = jax.config.read("jax_disable_most_optimizations")
    jax.config.update("jax_disable_most_optimizations", True)
    yield
    jax.config.update("jax_disable_most_optimizations", previous)


@pytest.fixture(autouse=True)
def _own_trace_counts():
    """chex counts traces by call stack and source, which tests in other modules can share."""
    chex.clear_trace_counter()
    yield
    chex.clear_trace_counter()
