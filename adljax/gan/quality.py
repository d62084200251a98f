"""How good are a GAN's samples? Mode coverage, Fréchet distance and class coverage.

- 2-D mixtures (Metz et al., 2017; Srivastava et al., 2017): a sample is *high quality*
  when it lies within three standard deviations of its nearest mode; a mode is *covered*
  when at least ``min_fraction`` of the samples are high-quality samples of that mode.
- Images: the Fréchet distance between Gaussians fitted to real and generated features
  (Heusel et al., 2017) in the feature space of a classifier trained on the same data, and
  class coverage: how many classes that classifier finds among the samples and how evenly.
"""

import numpy as np

from adljax._validate import check_positive_int

MIN_MODE_FRACTION = 0.008  # 20 of 2500 samples, as in PacGAN's mode counting
MIN_CLASS_FRACTION = 0.01


def _matrix(value, name: str, ndim: int) -> np.ndarray:
    array = np.asarray(value, np.float64)
    if array.ndim != ndim or 0 in array.shape or not np.all(np.isfinite(array)):
        raise ValueError(
            f"`{name}` must be a finite non-empty array of rank {ndim}, got shape {array.shape}"
        )
    return array


def mode_coverage(
    samples, centres, std: float, *, min_fraction: float = MIN_MODE_FRACTION
) -> dict[str, float]:
    """Modes covered and the high-quality fraction of 2-D (or any D) samples.

    Args:
        samples: ``(N, D)`` generated points.
        centres: ``(K, D)`` the mixture's mode centres.
        std: the (isotropic) standard deviation of each mode.
        min_fraction: a mode counts when at least this fraction of the N samples are
            high-quality samples of it.

    Returns:
        ``{"modes": covered modes (0..K), "high_quality": fraction of samples within
        3 std of their nearest centre}``.
    """
    samples, centres = _matrix(samples, "samples", 2), _matrix(centres, "centres", 2)
    if samples.shape[1] != centres.shape[1]:
        raise ValueError(
            f"`samples` (N, {samples.shape[1]}) and `centres` (K, {centres.shape[1]}) must "
            "have the same dimension"
        )
    if not std > 0:
        raise ValueError(f"`std` must be > 0, got {std!r}")
    distances = np.linalg.norm(samples[:, None, :] - centres[None, :, :], axis=-1)
    nearest = distances.argmin(axis=1)
    good = distances[np.arange(len(samples)), nearest] <= 3.0 * std
    counts = np.bincount(nearest[good], minlength=len(centres))
    return {
        "modes": float(np.sum(counts >= min_fraction * len(samples))),
        "high_quality": float(good.mean()),
    }


def feature_statistics(features) -> tuple[np.ndarray, np.ndarray]:
    """Mean ``(D,)`` and covariance ``(D, D)`` (unbiased, float64) of ``features`` ``(N, D)``."""
    features = _matrix(features, "features", 2)
    if len(features) < 2:
        raise ValueError(f"`features` needs at least 2 rows, got {len(features)}")
    return features.mean(axis=0), np.cov(features, rowvar=False).reshape(features.shape[1], -1)


def _psd_sqrt(matrix: np.ndarray) -> np.ndarray:
    """The symmetric square root of a symmetric PSD matrix (negative round-off clipped)."""
    values, vectors = np.linalg.eigh((matrix + matrix.T) / 2.0)
    return (vectors * np.sqrt(np.clip(values, 0.0, None))) @ vectors.T


def frechet_distance(mean1, cov1, mean2, cov2) -> float:
    """Fréchet distance between Gaussians: ``|m1 - m2|^2 + tr(C1 + C2 - 2 (C1 C2)^(1/2))``.

    ``tr((C1 C2)^(1/2))`` is computed as the sum of square roots of the eigenvalues of the
    symmetric PSD matrix ``C1^(1/2) C2 C1^(1/2)`` (which has the same eigenvalues as ``C1
    C2``), in float64 with symmetric eigendecompositions only: no complex parts and no
    ``sqrtm`` iterations to fail on singular (rank-deficient) covariances.
    """
    mean1, mean2 = _matrix(mean1, "mean1", 1), _matrix(mean2, "mean2", 1)
    cov1, cov2 = _matrix(cov1, "cov1", 2), _matrix(cov2, "cov2", 2)
    dim = len(mean1)
    for name, value in (("mean2", mean2), ("cov1", cov1), ("cov2", cov2)):
        expected = (dim,) if value.ndim == 1 else (dim, dim)
        if value.shape != expected:
            raise ValueError(f"`{name}` must have shape {expected}, got {value.shape}")
    root1 = _psd_sqrt(cov1)
    middle = root1 @ cov2 @ root1
    trace_sqrt = np.sum(np.sqrt(np.clip(np.linalg.eigvalsh((middle + middle.T) / 2), 0, None)))
    distance = np.sum((mean1 - mean2) ** 2) + np.trace(cov1) + np.trace(cov2) - 2 * trace_sqrt
    return float(max(distance, 0.0))


def frechet_distance_of(features1, features2) -> float:
    """`frechet_distance` of the Gaussians fitted to feature sets ``(N, D)`` and ``(M, D)``."""
    return frechet_distance(*feature_statistics(features1), *feature_statistics(features2))


def class_coverage(
    predicted, num_classes: int, *, min_fraction: float = MIN_CLASS_FRACTION
) -> dict[str, float]:
    """How many classes a classifier finds among samples, and how evenly.

    Args:
        predicted: ``(N,)`` predicted class of each sample.
        num_classes: the number of classes K.
        min_fraction: a class counts when at least this fraction of the samples fall in it.

    Returns:
        ``{"classes_covered": classes with enough samples (0..K), "class_entropy": the
        entropy of the predicted-class histogram divided by log K (1 = perfectly even)}``.
    """
    check_positive_int(num_classes, "num_classes")
    predicted = np.asarray(predicted)
    if predicted.ndim != 1 or len(predicted) == 0 or not np.issubdtype(predicted.dtype, np.integer):
        raise ValueError(f"`predicted` must be a non-empty (N,) int array, got {predicted.shape}")
    if predicted.min() < 0 or predicted.max() >= num_classes:
        raise ValueError(
            f"`predicted` must lie in [0, {num_classes}), got values from "
            f"{predicted.min()} to {predicted.max()}"
        )
    shares = np.bincount(predicted, minlength=num_classes) / len(predicted)
    present = shares[shares > 0]
    entropy = -np.sum(present * np.log(present))
    return {
        "classes_covered": float(np.sum(shares >= min_fraction)),
        "class_entropy": float(entropy / np.log(num_classes)) if num_classes > 1 else 1.0,
    }
