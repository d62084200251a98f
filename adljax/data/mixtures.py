"""2-D Gaussian mixtures for GANs: ``ring8`` and ``grid25`` (generated from a seed).

The benchmarks of the unrolled-GAN literature (Metz et al., 2017; Srivastava et al., 2017):
8 Gaussians on a circle of radius 2 (std 0.02) and 25 Gaussians on the 5x5 grid
``{-4, -2, 0, 2, 4}^2`` (std 0.05), equally weighted. ``x`` holds the points ``(2,)``,
``y`` the index of the mode each was drawn from (for evaluation only); ``info.extras``
holds ``"centres"`` ``(K, 2)`` and ``"std"``.
"""

import numpy as np

from adljax.data.dataset import ArrayDataset
from adljax.data.info import DatasetInfo

TRAIN_SIZE = 10_000
"""Points in each mixture's train split."""
TEST_SIZE = 2_500
"""Points in each mixture's test split (as many as the quality measures sample)."""
RING_RADIUS = 2.0
"""Radius of ``ring8``'s circle of modes."""
RING_STD = 0.02
"""Standard deviation of each ``ring8`` mode."""
GRID_SPACING = 2.0
"""Distance between neighbouring ``grid25`` modes."""
GRID_STD = 0.05
"""Standard deviation of each ``grid25`` mode."""


def ring_centres(modes: int = 8, radius: float = RING_RADIUS) -> np.ndarray:
    """``(modes, 2)`` points evenly spaced on a circle of ``radius`` (the first at angle 0)."""
    angles = 2 * np.pi * np.arange(modes) / modes
    return radius * np.stack([np.cos(angles), np.sin(angles)], axis=1)


def grid_centres(side: int = 5, spacing: float = GRID_SPACING) -> np.ndarray:
    """``(side**2, 2)`` points of a ``side`` x ``side`` grid centred on 0, row by row."""
    axis = spacing * (np.arange(side) - (side - 1) / 2)
    return np.stack(np.meshgrid(axis, axis, indexing="ij"), axis=-1).reshape(-1, 2)


def _mixture(
    name: str, centres: np.ndarray, std: float, seed: int, description: str
) -> dict[str, ArrayDataset]:
    """Equal-weight isotropic Gaussians at ``centres``: train and test splits from ``seed``."""
    info = DatasetInfo(
        name=name,
        task="generation",
        input_shape=(2,),
        num_outputs=1,
        feature_names=("x0", "x1"),
        description=description,
        extras={"centres": centres.tolist(), "std": std},
    )
    rng = np.random.default_rng(seed)
    splits = {}
    for split, size in (("train", TRAIN_SIZE), ("test", TEST_SIZE)):
        modes = rng.integers(0, len(centres), size)
        points = centres[modes] + rng.normal(0.0, std, (size, 2))
        arrays = {"x": points.astype(np.float32), "y": modes.astype(np.int32)}
        splits[split] = ArrayDataset(info, arrays, split)
    return splits


def ring8(*, seed: int, data_dir: str | None, download: bool) -> dict[str, ArrayDataset]:
    """8 Gaussians (std 0.02) on a circle of radius 2: 10,000 train and 2,500 test points."""
    del data_dir, download
    return _mixture(
        "ring8", ring_centres(), RING_STD, seed, "8 Gaussians (std 0.02) on a circle of radius 2"
    )


def grid25(*, seed: int, data_dir: str | None, download: bool) -> dict[str, ArrayDataset]:
    """25 Gaussians (std 0.05) on a 5x5 grid, spacing 2: 10,000 train and 2,500 test points."""
    del data_dir, download
    return _mixture(
        "grid25",
        grid_centres(),
        GRID_STD,
        seed,
        "25 Gaussians (std 0.05) on the 5x5 grid {-4, -2, 0, 2, 4}^2",
    )
