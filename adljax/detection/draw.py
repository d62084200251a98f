"""PNG figures of detection: images with their boxes, and mAP against training time.

Like `adljax.plots`, every function draws on its own figure, writes one ``.png`` and never
overwrites an existing file unless ``overwrite=True``.
"""

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Rectangle

from adljax.plots import _check_array, _check_path, _grid, _save

MIN_SCORE = 0.5
"""Detections scoring below this are not drawn (by default): lower ones are mostly
near-duplicates of a better box that non-maximum suppression kept (scores 0.3-0.5)."""
_LABEL_PAD = 1.0  # points around a label's text, its coloured background
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
    class name and score, the labels placed so that none overlaps another
    (`place_labels`), and a legend telling predictions (solid) from the truth (dashed).

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
    if not 0 <= min_score <= 1:
        raise ValueError(f"`min_score` must be in [0, 1], got {min_score}")
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
    renderer = FigureCanvasAgg(figure).get_renderer()
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
        scores = np.asarray(detections["scores"])[i][valid]
        order = np.argsort(-scores, kind="stable")  # the best detections get the best places
        texts = []
        for box, score, label in zip(
            boxes[i][valid][order],
            scores[order],
            np.asarray(detections["classes"])[i][valid][order],
            strict=True,
        ):
            colour = _COLOURS[int(label) % len(_COLOURS)]
            ax.add_patch(_rectangle(box, colour, linewidth=1.5))
            texts.append(
                ax.text(
                    box[0],
                    box[1],
                    f"{class_names[int(label)]} {score:.2f}",
                    color="black",
                    fontsize=6,
                    va="top",
                    bbox={"facecolor": colour, "edgecolor": "none", "pad": _LABEL_PAD},
                )
            )
        if texts:
            extents = [_label_extent(ax, text, renderer) for text in texts]
            corners = place_labels(boxes[i][valid][order][:, :2], [e[:2] for e in extents], width)
            for text, (x, y), (_, _, dx, dy) in zip(texts, corners, extents, strict=True):
                text.set_position((x + dx, y + dy))
    legend = [Line2D([], [], color=_COLOURS[0], linewidth=1.5, label="prediction (class score)")]
    if truth is not None:
        legend.append(Line2D([], [], color="white", linestyle="--", label="ground truth"))
    axes[0].apply_aspect()  # the images' square boxes: the legend sits just above the top row
    figure.legend(
        handles=legend,
        loc="lower center",
        ncol=len(legend),
        fontsize=7,
        facecolor="#404040",
        labelcolor="white",
        bbox_to_anchor=(0.5, axes[0].get_position().y1 + 0.01),
    )
    return _save(figure, path, overwrite)


def place_labels(
    anchors: np.ndarray, sizes: Sequence[tuple[float, float]], width: float
) -> list[tuple[float, float]]:
    """Greedy label placement in image coordinates (y down): the top-left corner of each
    label, in order, so that no two labels overlap.

    Label ``k`` (``sizes[k]`` = ``(w, h)``) goes just above its box's top-left corner
    ``anchors[k]`` (``(K, 2)``), else just inside it, else the first free place below that corner
    (each step to the bottom of the labels in the way); ``x`` is kept within ``[0, width - w]``.
    """
    placed: list[tuple[float, float, float, float]] = []
    corners = []
    for (x0, y0), (w, h) in zip(np.asarray(anchors, float), sizes, strict=True):
        x = min(max(float(x0), 0.0), max(width - w, 0.0))
        candidates = [float(y0) - h, float(y0)]
        y = next((c for c in candidates if _free(placed, x, c, w, h)), None)
        if y is None:
            y = float(y0)
            while not _free(placed, x, y, w, h):  # below the lowest label in the way
                y = max(rect[3] for rect in placed if _hits(rect, x, y, w, h))
        placed.append((x, y, x + w, y + h))
        corners.append((x, y))
    return corners


def _hits(rect: tuple[float, float, float, float], x: float, y: float, w: float, h: float) -> bool:
    left, top, right, bottom = rect
    return x < right and left < x + w and y < bottom and top < y + h


def _free(placed: list, x: float, y: float, w: float, h: float) -> bool:
    return not any(_hits(rect, x, y, w, h) for rect in placed)


def _label_extent(ax: Any, text: Any, renderer: Any) -> tuple[float, float, float, float]:
    """A label's ``(width, height)`` with its background's padding, and the offset from
    that background's top-left corner to the text's position, in data units (pixels, y down).
    """
    text.update_bbox_position_size(renderer)  # lays the background out
    extent = text.get_bbox_patch().get_window_extent(renderer)
    (x0, y0), (x1, y1) = ax.transData.inverted().transform(extent.get_points())
    left, top = min(x0, x1), min(y0, y1)
    x, y = text.get_position()
    return abs(x1 - x0), abs(y1 - y0), x - left, y - top


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
