"""Figures of a GAN's samples: a sample grid (images) or scatter (points), and a latent
interpolation strip. Same conventions as ``adljax.plots``: one PNG per call, never
overwriting an existing file unless ``overwrite=True``.
"""

import os
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from adljax.plots import _check_array, _check_path, _grid, _save, _show

_PANEL_INCHES = 0.9


def plot_samples(
    samples,
    path: str | os.PathLike,
    *,
    centres=None,
    title: str = "",
    overwrite: bool = False,
) -> Path:
    """A grid of generated images ``(N, H, W, C)`` in [0, 1], or a scatter of points ``(N, 2)``.

    ``centres`` ``(K, 2)`` (points only) marks the modes of the real mixture. Returns ``path``.
    """
    path = _check_path(path, overwrite)
    samples = np.asarray(samples)
    if samples.ndim == 2:
        points = _check_array(samples, "samples", 2, "(N, 2)")
        figure = Figure(figsize=(4.5, 4.5))
        ax = figure.subplots()
        ax.scatter(points[:, 0], points[:, 1], s=3, alpha=0.4, label="samples")
        if centres is not None:
            modes = _check_array(centres, "centres", 2, "(K, 2)")
            ax.scatter(modes[:, 0], modes[:, 1], marker="x", c="red", s=40, label="modes")
            ax.legend(loc="upper right", fontsize=7)
        ax.set_aspect("equal")
    else:
        images = _check_array(samples, "samples", 4, "(N, H, W, C)")
        rows, columns = _grid(len(images))
        figure = Figure(figsize=(columns * _PANEL_INCHES, rows * _PANEL_INCHES))
        for ax, image in zip(
            figure.subplots(rows, columns, squeeze=False).flat, images, strict=False
        ):
            _show(ax, image, limits=(0.0, 1.0))
        for ax in figure.axes[len(images) :]:
            ax.set_axis_off()
    if title:
        figure.suptitle(title)
    return _save(figure, path, overwrite)


def plot_interpolation(
    frames, path: str | os.PathLike, *, centres=None, title: str = "", overwrite: bool = False
) -> Path:
    """Samples along a latent line: a strip of images ``(T, H, W, C)`` or a path of points
    ``(T, 2)`` (with the mixture's ``centres`` ``(K, 2)``, if given). Returns ``path``."""
    path = _check_path(path, overwrite)
    frames = np.asarray(frames)
    if frames.ndim == 2:
        points = _check_array(frames, "frames", 2, "(T, 2)")
        figure = Figure(figsize=(4.5, 4.5))
        ax = figure.subplots()
        if centres is not None:
            modes = _check_array(centres, "centres", 2, "(K, 2)")
            ax.scatter(modes[:, 0], modes[:, 1], marker="x", c="red", s=40)
        ax.plot(points[:, 0], points[:, 1], "-", c="grey", lw=0.8)
        ax.scatter(points[:, 0], points[:, 1], c=np.arange(len(points)), cmap="viridis", s=12)
        ax.set_aspect("equal")
    else:
        images = _check_array(frames, "frames", 4, "(T, H, W, C)")
        figure = Figure(figsize=(len(images) * _PANEL_INCHES, _PANEL_INCHES + 0.3))
        for ax, image in zip(
            figure.subplots(1, len(images), squeeze=False).flat, images, strict=True
        ):
            _show(ax, image, limits=(0.0, 1.0))
    if title:
        figure.suptitle(title)
    return _save(figure, path, overwrite)
