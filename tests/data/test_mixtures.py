"""The embedded 2-D mixtures ``ring8`` and ``grid25``."""

import numpy as np
import pytest

from adljax.data import load
from adljax.data.mixtures import GRID_STD, RING_RADIUS, RING_STD, grid_centres, ring_centres


@pytest.mark.parametrize(
    ("name", "modes", "std"), [("ring8", 8, RING_STD), ("grid25", 25, GRID_STD)]
)
def test_mixture_points_come_from_their_modes(name, modes, std):
    train = load(name, "train")
    info = train.info
    assert info.task == "generation" and info.input_shape == (2,)
    centres = np.asarray(info.extras["centres"])
    assert centres.shape == (modes, 2) and info.extras["std"] == std
    x, y = train.arrays["x"], train.arrays["y"]
    assert x.dtype == np.float32 and x.shape == (10_000, 2)
    offsets = x - centres[y]
    # Each point is its mode's centre plus N(0, std^2) noise per axis.
    np.testing.assert_allclose(offsets.std(axis=0), std, rtol=0.05)
    np.testing.assert_allclose(offsets.mean(axis=0), 0.0, atol=4 * std / np.sqrt(len(x)))
    counts = np.bincount(y, minlength=modes)
    assert counts.min() > 0.8 * len(x) / modes  # equal weights
    # The modes are far apart relative to their spread: every point is nearest its own mode.
    nearest = np.linalg.norm(x[:, None] - centres[None], axis=-1).argmin(axis=1)
    np.testing.assert_array_equal(nearest, y)


def test_mixtures_are_deterministic_per_seed_and_splits_differ():
    a, b = load("ring8", "train", seed=3), load("ring8", "train", seed=3)
    np.testing.assert_array_equal(a.arrays["x"], b.arrays["x"])
    assert not np.array_equal(a.arrays["x"], load("ring8", "train", seed=4).arrays["x"])
    test = load("ring8", "test", seed=3)
    assert len(test) == 2_500 and not np.array_equal(test.arrays["x"], a.arrays["x"][:2_500])


def test_centres():
    ring = ring_centres()
    np.testing.assert_allclose(np.linalg.norm(ring, axis=1), RING_RADIUS)
    np.testing.assert_allclose(ring[0], [RING_RADIUS, 0.0], atol=1e-12)
    grid = grid_centres()
    assert sorted(set(grid[:, 0])) == [-4.0, -2.0, 0.0, 2.0, 4.0]
    assert len({tuple(p) for p in grid}) == 25
