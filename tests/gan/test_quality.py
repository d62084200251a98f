"""``adljax.gan.quality``: Fréchet distance against SciPy, mode and class coverage."""

import numpy as np
import pytest
import scipy.linalg
from hypothesis import given
from hypothesis import strategies as st

from adljax.data.mixtures import ring_centres
from adljax.gan import quality


def _scipy_frechet(mean1, cov1, mean2, cov2) -> float:
    """The textbook formula with SciPy's general matrix square root of ``C1 C2``."""
    root = scipy.linalg.sqrtm(cov1 @ cov2)
    return float(np.sum((mean1 - mean2) ** 2) + np.trace(cov1 + cov2 - 2 * np.real(root)))


def _covariance(rng: np.random.Generator, dim: int, rank: int) -> np.ndarray:
    factor = rng.normal(size=(dim, rank))
    return factor @ factor.T / rank


@given(st.integers(1, 12), st.integers(0, 2**31 - 1))
def test_frechet_distance_matches_scipy_sqrtm(dim, seed):
    rng = np.random.default_rng(seed)
    mean1, mean2 = rng.normal(size=dim), rng.normal(size=dim)
    cov1, cov2 = _covariance(rng, dim, dim + 3), _covariance(rng, dim, dim + 3)
    expected = _scipy_frechet(mean1, cov1, mean2, cov2)
    got = quality.frechet_distance(mean1, cov1, mean2, cov2)
    np.testing.assert_allclose(got, expected, rtol=1e-7, atol=1e-9)


def test_frechet_distance_of_rank_deficient_covariances_is_finite_and_exact():
    # Fewer samples than dimensions: singular covariances, where sqrtm(C1 C2) is fragile.
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(6, 20)), rng.normal(size=(6, 20)) + 0.5
    got = quality.frechet_distance_of(a, b)
    assert np.isfinite(got) and got > 0
    # Exact on a case with a closed form: C1 = C2 = C gives |m1 - m2|^2 + 2 tr C - 2 tr C.
    mean, cov = a.mean(axis=0), np.cov(a, rowvar=False)
    np.testing.assert_allclose(
        quality.frechet_distance(mean, cov, mean + 1.0, cov), 20.0, rtol=1e-6
    )


def test_frechet_distance_of_identical_features_is_zero_and_grows_with_a_shift():
    features = np.random.default_rng(1).normal(size=(500, 4))
    assert quality.frechet_distance_of(features, features) == pytest.approx(0.0, abs=1e-9)
    assert quality.frechet_distance_of(features, features + 2.0) == pytest.approx(16.0)


def test_frechet_distance_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="cov2"):
        quality.frechet_distance(np.zeros(2), np.eye(2), np.zeros(2), np.eye(3))


def test_mode_coverage_counts_constructed_samples():
    centres = ring_centres()  # 8 modes on a circle of radius 2
    std = 0.02
    rng = np.random.default_rng(0)
    # 1000 samples: 5 modes with 190 close samples each, 1 mode with only 5 (0.5% < 0.8%),
    # and 45 samples far from every mode (the origin).
    close = [centres[m] + rng.normal(0, std, (190, 2)) for m in range(5)]
    rare = centres[5] + rng.normal(0, std, (5, 2))
    far = np.zeros((45, 2))
    samples = np.concatenate([*close, rare, far])
    expected_good = np.sum(
        np.linalg.norm(samples[:955, None] - centres[None], axis=-1).min(axis=1) <= 3 * std
    )
    result = quality.mode_coverage(samples, centres, std)
    assert result["modes"] == 5.0
    assert result["high_quality"] == pytest.approx(expected_good / 1000)
    assert result["high_quality"] > 0.94  # nearly all of the 955 near samples lie within 3 std


def test_mode_coverage_of_every_mode_and_of_none():
    centres = ring_centres()
    assert quality.mode_coverage(np.repeat(centres, 10, axis=0), centres, 0.02) == {
        "modes": 8.0,
        "high_quality": 1.0,
    }
    assert quality.mode_coverage(np.zeros((80, 2)), centres, 0.02) == {
        "modes": 0.0,
        "high_quality": 0.0,
    }


def test_mode_coverage_rejects_bad_input():
    with pytest.raises(ValueError, match="same dimension"):
        quality.mode_coverage(np.zeros((3, 3)), ring_centres(), 0.02)
    with pytest.raises(ValueError, match="std"):
        quality.mode_coverage(np.zeros((3, 2)), ring_centres(), 0.0)


def test_class_coverage_counts_classes_and_measures_evenness():
    even = quality.class_coverage(np.repeat(np.arange(10), 20), 10)
    assert even == {"classes_covered": 10.0, "class_entropy": pytest.approx(1.0)}
    collapsed = quality.class_coverage(np.full(200, 3), 10)
    assert collapsed == {"classes_covered": 1.0, "class_entropy": 0.0}
    # Two classes half and half: entropy log 2 / log 10; a class with 1 of 200 (0.5%) is
    # below the 1% threshold.
    two = quality.class_coverage(np.array([0] * 100 + [1] * 99 + [2]), 10)
    assert two["classes_covered"] == 2.0
    shares = np.array([100, 99, 1]) / 200
    assert two["class_entropy"] == pytest.approx(-np.sum(shares * np.log(shares)) / np.log(10))


def test_class_coverage_rejects_out_of_range_classes():
    with pytest.raises(ValueError, match="predicted"):
        quality.class_coverage(np.array([0, 10]), 10)
