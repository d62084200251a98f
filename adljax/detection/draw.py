"""PNG figures of detection: images with their boxes, and mAP against training time.

Like `adljax.plots`, every function draws on its own figure, writes one ``.png`` and never
overwrites an existing file unless ``overwrite=True``.
"""

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from adljax.plots import _check_array, _check_path, _grid, _save

MIN_SCORE = 0.3
"""Detections scoring below this are not drawn (by default)."""
_COLOURS = ("#ffdd00", "#00e5ff", "#ff4fd8", "#7dff5a", "#ff8c1a", "#b18cff")


def plot_detections(
    images: np.ndarray,
    detections: Mapping[str, np.ndarray],
    path: str | os.PathLike,
    class_names: Sequence[str],
    *,
    truth: Mapping[str, np.ndarray] | None = None,
    min_score: float = MIN_SCORE,
    overwrite: bool = False,
) -> Path:
    """Draws each image with its valid detections scoring at least ``min_score``: box,
    class name and score.

    Args:
        images: ``(N, H, W, 3)`` in ``[0, 1]``.
        detections: ``{"boxes": (N, D, 4), "scores": (N, D), "classes": (N, D),
            "valid": (N, D)}`` (corners in pixels), e.g. ``Detections._asdict()``.
        path: the ``.png`` to write.
        class_names: one name per class id.
        truth: optional ``{"boxes": (N, M, 4), "box_mask": (N, M)}``, drawn dashed white.
        min_score: the lowest score drawn.
        overwrite: replace an existing file.

    Returns:
        ``path``.
    """
    path = _check_path(path, overwrite)
    images = _check_array(images, "images", 4, "(N, H, W, 3)")
    boxes = np.asarray(detections["boxes"])
    if boxes.shape[:1] != images.shape[:1]:
        raise ValueError(
            f"`detections['boxes']` must have {len(images)} rows (one per image), "
            f"got shape {boxes.shape}"
        )
    rows, columns = _grid(len(images))
    figure = Figure(figsize=(2.6 * columns, 2.6 * rows))
    axes = figure.subplots(rows, columns, squeeze=False).ravel()
    for i, ax in enumerate(axes):
        ax.set_axis_off()
        if i >= len(images):
            continue
        height, width = images.shape[1:3]
        ax.imshow(np.clip(images[i], 0, 1), extent=(0, width, height, 0), interpolation="nearest")
        if truth is not None:
            for box in np.asarray(truth["boxes"])[i][np.asarray(truth["box_mask"])[i] > 0]:
                ax.add_patch(_rectangle(box, "white", linestyle="--", linewidth=0.8))
        valid = np.asarray(detections["valid"])[i] & (
            np.asarray(detections["scores"])[i] >= min_score
        )
        for box, score, label in zip(
            boxes[i][valid],
            np.asarray(detections["scores"])[i][valid],
            np.asarray(detections["classes"])[i][valid],
            strict=True,
        ):
            colour = _COLOURS[int(label) % len(_COLOURS)]
            ax.add_patch(_rectangle(box, colour, linewidth=1.5))
            ax.text(
                box[0],
                box[1],
                f"{class_names[int(label)]} {score:.2f}",
                color="black",
                fontsize=6,
                va="bottom",
                bbox={"facecolor": colour, "edgecolor": "none", "pad": 1},
            )
    return _save(figure, path, overwrite)


def _rectangle(box: np.ndarray, colour: str, **style: Any) -> Rectangle:
    x0, y0, x1, y1 = (float(v) for v in box)
    return Rectangle((x0, y0), x1 - x0, y1 - y0, fill=False, edgecolor=colour, **style)


def plot_map_curve(
    history: Sequence[Mapping[str, Any]], path: str | os.PathLike, *, overwrite: bool = False
) -> Path:
    """Test VOC mAP@0.5 and COCO AP@[.50:.95] against cumulative training time (s) from
    ``fit``'s history (records with ``time_s`` and ``eval`` ``voc_map50`` and ``ap``).

    Returns:
        ``path``.
    """
    path = _check_path(path, overwrite)
    if not history or not all({"voc_map50", "ap"} <= set(r.get("eval") or {}) for r in history):
        raise ValueError("`history` must be a non-empty fit history with eval 'voc_map50', 'ap'")
    seconds = np.cumsum([r["time_s"] for r in history])
    figure = Figure(figsize=(5, 3.5))
    ax = figure.subplots()
    for metric, label in (
        ("voc_map50", "VOC mAP@0.5 (voc_map50)"),
        ("ap", "COCO AP@[.50:.95] (ap)"),
    ):
        ax.plot(seconds, [r["eval"][metric] for r in history], marker=".", label=label)
    ax.set_xlabel("training time (s)")
    ax.set_ylim(0, 1)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _save(figure, path, overwrite)
