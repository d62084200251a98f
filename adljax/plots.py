"""Figures for the course: filters, feature maps, embeddings, neighbours, the XOR warp, history,
training diagnostics and gradient-descent paths.

Every function draws on its own ``matplotlib.figure.Figure`` (Agg canvas, no pyplot global
state, safe in scripts, tests and threads), saves one PNG to ``path`` and returns the path.
An existing file is never overwritten unless ``overwrite=True``; ``path`` must end in
``.png`` and its missing parent directories are created.

Synopsis::

    from adljax import plots, representations as rep

    plots.plot_history(result.history, "figures/loss.png", metrics=("loss", "accuracy"))
    acts = rep.capture(state, x, ["hidden_0"])
    plots.plot_embedding(rep.pca(acts["hidden_0"]), y, "figures/pca.png", title="hidden_0")
    plots.plot_xor_warp(xor_state, "figures/xor.png")
"""

import io
import math
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import jax
import numpy as np
from matplotlib import colormaps
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from adljax._validate import check_choice, check_positive_int
from adljax.representations import ModelState, capture, pca

_DPI = 100
_PANEL_INCHES = 1.2  # side of one small image panel


def _check_path(path: str | os.PathLike, overwrite: bool) -> Path:
    """``path`` as a ``Path`` ending in ``.png`` that may be written, else raises."""
    path = Path(path)
    if path.suffix.lower() != ".png":
        raise ValueError(f"`path` must end in .png, got {str(path)!r}")
    if path.exists() and not overwrite:
        raise FileExistsError(f"{str(path)!r} already exists; pass overwrite=True to replace it")
    return path


def _save(figure: Figure, path: Path, overwrite: bool) -> Path:
    """Writes ``figure`` as a PNG to ``path`` (exclusively unless ``overwrite``)."""
    image = io.BytesIO()  # render first: a failed drawing leaves no file behind
    figure.savefig(image, format="png", dpi=_DPI, bbox_inches="tight")
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        with open(path, "wb" if overwrite else "xb") as file:
            file.write(image.getvalue())
    except FileExistsError:
        raise FileExistsError(
            f"{str(path)!r} already exists; pass overwrite=True to replace it"
        ) from None
    return path


def _check_array(value: Any, name: str, ndim: int, layout: str) -> np.ndarray:
    """``value`` as a finite float array of rank ``ndim`` with no empty axis."""
    array = np.asarray(value)
    if array.ndim != ndim or 0 in array.shape or not np.issubdtype(array.dtype, np.number):
        raise ValueError(
            f"`{name}` must be a non-empty numeric array {layout}, got shape {array.shape} "
            f"and dtype {array.dtype}"
        )
    array = array.astype(np.float64)
    if not np.all(np.isfinite(array)):
        raise ValueError(f"`{name}` contains NaN or infinite values")
    return array


def _rescale(image: np.ndarray) -> np.ndarray:
    """Min-max scales ``image`` to [0, 1] (a constant image becomes 0.5)."""
    low, high = image.min(), image.max()
    return (image - low) / (high - low) if high > low else np.full_like(image, 0.5)


def _show(
    axes: Axes,
    image: np.ndarray,
    title: str = "",
    cmap: str = "gray",
    limits: tuple[float, float] | None = None,
) -> None:
    """Draws an ``(H, W)`` or ``(H, W, 3)`` image without ticks (grey levels in ``limits``)."""
    if image.ndim == 3 and image.shape[-1] == 1:
        image = image[..., 0]
    vmin, vmax = limits or (None, None)
    axes.imshow(
        image,
        cmap=cmap if image.ndim == 2 else None,
        vmin=vmin,
        vmax=vmax,
        interpolation="nearest",
    )
    axes.set_xticks([])
    axes.set_yticks([])
    if title:
        axes.set_title(title, fontsize=8)


def _grid(count: int) -> tuple[int, int]:
    """(rows, columns) of a near-square grid holding ``count`` panels."""
    columns = math.ceil(math.sqrt(count))
    return math.ceil(count / columns), columns


def plot_filters(
    kernel: Any, path: str | os.PathLike, *, max_filters: int = 64, overwrite: bool = False
) -> Path:
    """A grid of convolution filters, e.g. a ConvNet's first layer.

    Each filter is scaled to its own range. A 3-channel kernel is shown in colour (RGB);
    otherwise each filter is the mean over its input channels, in a diverging colour map
    (red positive, blue negative).

    Args:
        kernel: ``(kh, kw, in, out)``, e.g. ``state.params["conv_0"]["kernel"]``.
        path: the ``.png`` to write.
        max_filters: show the first this many of the ``out`` filters.
        overwrite: replace an existing file.

    Returns:
        ``path``.
    """
    path = _check_path(path, overwrite)
    kernel = _check_array(kernel, "kernel", 4, "(kh, kw, in, out)")
    check_positive_int(max_filters, "max_filters")
    count = min(kernel.shape[3], max_filters)
    rows, columns = _grid(count)
    figure = Figure(figsize=(columns * 0.8, rows * 0.8))
    axes = figure.subplots(rows, columns, squeeze=False)
    for i, ax in enumerate(axes.flat):
        if i >= count:
            ax.set_axis_off()
        elif kernel.shape[2] == 3:
            _show(ax, _rescale(kernel[..., i]))
        else:
            weights = kernel[..., i].mean(axis=-1)
            limit = float(np.abs(weights).max()) or 1.0
            _show(ax, weights, cmap="RdBu_r", limits=(-limit, limit))
    figure.suptitle(f"{count} of {kernel.shape[3]} filters, {kernel.shape[0]}x{kernel.shape[1]}")
    return _save(figure, path, overwrite)


def plot_feature_maps(
    maps: Mapping[str, Any] | Sequence[Any],
    path: str | os.PathLike,
    *,
    max_channels: int = 8,
    overwrite: bool = False,
) -> Path:
    """The feature maps of one input at each stage: one row per stage, one panel per channel.

    Each panel is scaled to its own range (colour map viridis).

    Args:
        maps: ``{stage name: (H, W, C)}`` (e.g. ``{k: v[0] for k, v in capture(...).items()}``)
            or a list of ``(H, W, C)`` arrays, named ``stage_0``, ``stage_1``, ...
        path: the ``.png`` to write.
        max_channels: show the first this many channels of each stage.
        overwrite: replace an existing file.

    Returns:
        ``path``.
    """
    path = _check_path(path, overwrite)
    check_positive_int(max_channels, "max_channels")
    if isinstance(maps, Mapping):
        named = dict(maps)
    elif isinstance(maps, Sequence) and not isinstance(maps, str | bytes):
        named = {f"stage_{i}": value for i, value in enumerate(maps)}
    else:
        raise ValueError(f"`maps` must be a dict or list of (H, W, C) arrays, got {type(maps)}")
    if not named:
        raise ValueError("`maps` is empty")
    stages = {
        name: _check_array(value, f"maps[{name!r}]", 3, "(H, W, C) of one input")
        for name, value in named.items()
    }
    columns = min(max_channels, max(value.shape[2] for value in stages.values()))
    figure = Figure(figsize=(columns * _PANEL_INCHES, len(stages) * _PANEL_INCHES))
    axes = figure.subplots(len(stages), columns, squeeze=False)
    for row, (name, value) in zip(axes, stages.items(), strict=True):
        for channel, ax in enumerate(row):
            if channel < value.shape[2]:
                title = f"{name} {value.shape[0]}x{value.shape[1]}" if channel == 0 else ""
                _show(ax, value[..., channel], title, cmap="viridis")
            else:
                ax.set_axis_off()
    return _save(figure, path, overwrite)


def plot_embedding(
    points: Any,
    labels: Any,
    path: str | os.PathLike,
    *,
    class_names: Sequence[str] | None = None,
    title: str = "",
    overwrite: bool = False,
) -> Path:
    """A 2-D scatter of ``points`` coloured by class, e.g. from ``pca`` or ``tsne``.

    Args:
        points: ``(N, 2)``.
        labels: ``(N,)`` class labels.
        path: the ``.png`` to write.
        class_names: legend names indexed by label (integer labels in ``[0, len)``);
            default the labels themselves.
        title: the figure title.
        overwrite: replace an existing file.

    Returns:
        ``path``.
    """
    path = _check_path(path, overwrite)
    points = _check_array(points, "points", 2, "(N, 2)")
    if points.shape[1] != 2:
        raise ValueError(f"`points` must have shape (N, 2), got {points.shape}")
    labels = np.asarray(labels)
    if labels.shape != (len(points),):
        raise ValueError(f"`labels` must have shape ({len(points)},), got {labels.shape}")
    classes = np.unique(labels)
    if class_names is not None:
        integral = np.issubdtype(labels.dtype, np.integer)
        if not integral or classes.min() < 0 or classes.max() >= len(class_names):
            raise ValueError(
                f"`class_names` ({len(class_names)} names) needs integer labels in "
                f"[0, {len(class_names)}), got labels {classes.tolist()}"
            )
    palette = colormaps["tab10" if len(classes) <= 10 else "tab20"]
    figure = Figure(figsize=(6, 5))
    ax = figure.subplots()
    for i, label in enumerate(classes):
        chosen = labels == label
        ax.scatter(
            points[chosen, 0],
            points[chosen, 1],
            s=10,
            alpha=0.8,
            color=palette(i % palette.N),
            label=class_names[int(label)] if class_names is not None else str(label),
        )
    if len(classes) <= palette.N:
        ax.legend(fontsize=7, markerscale=1.5, title="class")
    ax.set_title(title)
    return _save(figure, path, overwrite)


def _check_index(value: Any, name: str, size: int) -> int:
    """``value`` as an int in ``[0, size)``, else ``ValueError`` naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or not 0 <= value < size:
        raise ValueError(f"`{name}` must be an index in [0, {size}), got {value!r}")
    return int(value)


def plot_neighbours(
    images: Any,
    query_index: int,
    neighbour_indices: Sequence[int] | np.ndarray,
    path: str | os.PathLike,
    *,
    overwrite: bool = False,
) -> Path:
    """The query image followed by its nearest neighbours (e.g. from ``nearest_neighbours``).

    The shown images share one min-max scaling to [0, 1], so normalised inputs display too.

    Args:
        images: ``(N, H, W, C)`` with ``C`` 1 (grey) or 3 (RGB).
        query_index: index of the query in ``[0, N)``.
        neighbour_indices: ``(k,)`` indices in ``[0, N)``, nearest first.
        path: the ``.png`` to write.
        overwrite: replace an existing file.

    Returns:
        ``path``.
    """
    path = _check_path(path, overwrite)
    images = _check_array(images, "images", 4, "(N, H, W, C)")
    if images.shape[3] not in (1, 3):
        raise ValueError(f"`images` must have 1 or 3 channels (N, H, W, C), got {images.shape}")
    query = _check_index(query_index, "query_index", len(images))
    indices = np.asarray(neighbour_indices)
    if indices.ndim != 1 or indices.size == 0:
        raise ValueError(f"`neighbour_indices` must be a non-empty (k,) array, got {indices.shape}")
    chosen = [query] + [
        _check_index(i, f"neighbour_indices[{n}]", len(images)) for n, i in enumerate(indices)
    ]
    shown = _rescale(images[chosen])
    figure = Figure(figsize=(len(chosen) * _PANEL_INCHES, _PANEL_INCHES + 0.3))
    axes = figure.subplots(1, len(chosen), squeeze=False)[0]
    for position, (ax, index, image) in enumerate(zip(axes, chosen, shown, strict=True)):
        _show(ax, image, f"query #{index}" if position == 0 else f"{position}: #{index}")
    for spine in axes[0].spines.values():
        spine.set_edgecolor("tab:red")
        spine.set_linewidth(2)
    return _save(figure, path, overwrite)


_XOR_GRID = np.linspace(-0.25, 1.25, 7)  # grid lines through the corners and between them
_XOR_LINE_POINTS = 61  # points along each grid line


def _xor_grid_lines() -> np.ndarray:
    """Points along the grid lines of the input plane: ``(lines, points, 2)`` float32."""
    along = np.linspace(_XOR_GRID[0], _XOR_GRID[-1], _XOR_LINE_POINTS)
    horizontal = [np.stack([along, np.full_like(along, v)], axis=1) for v in _XOR_GRID]
    vertical = [np.stack([np.full_like(along, v), along], axis=1) for v in _XOR_GRID]
    return np.stack(horizontal + vertical).astype(np.float32)


def _draw_xor_panel(ax: Axes, lines: np.ndarray, corners: np.ndarray, labels: np.ndarray) -> None:
    """Grid lines ``(L, P, 2)`` in grey and the 4 ``corners`` ``(4, 2)`` coloured by class."""
    for line in lines:
        ax.plot(line[:, 0], line[:, 1], color="0.6", linewidth=0.8, zorder=1)
    for label, colour in ((0, "tab:blue"), (1, "tab:red")):
        chosen = labels == label
        ax.scatter(
            corners[chosen, 0],
            corners[chosen, 1],
            s=120,
            color=colour,
            edgecolors="black",
            zorder=3,
            label=f"class {label}",
        )
    ax.legend(fontsize=8, loc="best")


def _max_margin(points: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, float] | None:
    """``(w, b)`` of a maximum-margin hyperplane ``w.p + b = 0`` separating the classes of
    ``points`` ``(n, D)``, or ``None`` when no hyperplane separates them."""
    from sklearn.svm import SVC  # imported here: only the XOR figure needs it

    classifier = SVC(kernel="linear", C=1e6).fit(points.astype(np.float64), labels)
    if not np.array_equal(classifier.predict(points), labels):
        return None
    return classifier.coef_[0], float(classifier.intercept_[0])


def _project_hidden(
    hidden: np.ndarray, corners: np.ndarray, labels: np.ndarray, projection: str
) -> tuple[np.ndarray, str]:
    """Maps activations ``(M, D)`` to ``(M, 2)`` and names the axes.

    ``"separating"``: x is the signed distance to the hyperplane that best separates the
    ``corners`` activations ``(4, D)`` (if one does), y the first principal component of what
    is left; otherwise, and for ``"pca"``, the first 2 principal components.
    """
    if hidden.shape[1] == 2:
        return hidden, "units 0 and 1"
    plane = _max_margin(corners, labels) if projection == "separating" else None
    if plane is None:
        return pca(hidden, 2), "first 2 PCs"
    w, b = plane
    norm = float(np.linalg.norm(w))
    distance = (hidden @ w + b) / norm
    rest = hidden - np.outer(hidden @ w / norm, w / norm)
    return np.stack([distance, pca(rest, 1)[:, 0]], axis=1), "separating direction, PC 1"


def _draw_separating_line(ax: Axes, points: np.ndarray, labels: np.ndarray) -> float | None:
    """Draws the maximum-margin line between the classes of ``points`` ``(4, 2)``, if any,
    and returns its margin (distance to the nearest point); ``None`` if no line separates."""
    plane = _max_margin(points, labels)
    if plane is None:
        return None
    (w0, w1), b = plane
    xlim, ylim = ax.get_xlim(), ax.get_ylim()
    if abs(w1) >= abs(w0):
        xs = np.array(xlim)
        ax.plot(xs, -(w0 * xs + b) / w1, "k--", linewidth=1.5, zorder=2)
    else:
        ys = np.array(ylim)
        ax.plot(-(w1 * ys + b) / w0, ys, "k--", linewidth=1.5, zorder=2)
    ax.set_xlim(xlim)
    ax.set_ylim(ylim)
    return float(np.min(np.abs(points @ plane[0] + b)) / np.linalg.norm(plane[0]))


def plot_xor_warp(
    state: ModelState,
    path: str | os.PathLike,
    *,
    layer: str = "hidden_0",
    projection: str = "separating",
    overwrite: bool = False,
) -> Path:
    """How an XOR network's hidden layer bends the input plane until the classes separate.

    Left: the input plane with grid lines and the 4 XOR corners coloured by class (no line
    separates them). Right: the same grid lines and corners mapped through ``layer``. Where a
    line separates the mapped corners, the maximum-margin one is drawn dashed and its margin
    (distance to the nearest corner) is shown in the title.

    A 2-unit layer is drawn as it is. A wider one is projected to 2-D: ``"pca"`` takes its
    first 2 principal components (of all mapped points), which need not keep the classes
    apart; ``"separating"`` (default) puts the direction that best separates the mapped
    corners on the x axis (maximum-margin hyperplane in all D units) and the first principal
    component of the rest on the y axis, falling back to ``"pca"`` when no hyperplane does.
    Note that any 4 points in general position in 3 or more dimensions are linearly separable,
    even through an untrained layer (with a small margin): a 2-unit layer shows the lesson
    without that caveat.

    Args:
        state: a model of inputs ``(B, 2)`` (``TrainState`` or ``InferenceState``), e.g. an
            ``MLP(hidden_sizes=(2,), num_outputs=1, activation="tanh")`` trained on ``xor``.
        path: the ``.png`` to write.
        layer: the layer to map through (a ``capture`` name), output ``(B, D)`` with D >= 2.
        projection: ``"separating"`` or ``"pca"``, for D > 2.
        overwrite: replace an existing file.

    Returns:
        ``path``.
    """
    from adljax.data import load  # the corners and labels of the lesson's data

    path = _check_path(path, overwrite)
    check_choice(projection, "projection", ("separating", "pca"))
    xor = load("xor", "test").arrays
    corners, labels = xor["x"], xor["y"]
    lines = _xor_grid_lines()
    num_line_points = lines.shape[0] * lines.shape[1]
    hidden = capture(state, np.concatenate([lines.reshape(-1, 2), corners]), [layer])[layer]
    if hidden.ndim != 2 or hidden.shape[1] < 2:
        raise ValueError(
            f"layer {layer!r} must give (B, D) activations with D >= 2, got {hidden.shape[1:]} "
            "per example"
        )
    hidden = hidden.astype(np.float64)
    projected, axes_name = _project_hidden(hidden, hidden[num_line_points:], labels, projection)
    figure = Figure(figsize=(10, 4.8))
    left, right = figure.subplots(1, 2)
    _draw_xor_panel(left, lines, corners, labels)
    left.set_aspect("equal")
    left.set_title("input plane: no line separates the classes", fontsize=10)
    mapped_corners = projected[num_line_points:]
    _draw_xor_panel(right, projected[:num_line_points].reshape(lines.shape), mapped_corners, labels)
    margin = _draw_separating_line(right, mapped_corners, labels)
    verdict = "no line separates" if margin is None else f"separable, margin {margin:.2f}"
    right.set_title(f"{layer} ({axes_name}): {verdict}", fontsize=10)
    return _save(figure, path, overwrite)


def plot_history(
    history: Sequence[Mapping[str, Any]],
    path: str | os.PathLike,
    metrics: Sequence[str] = ("loss",),
    *,
    overwrite: bool = False,
) -> Path:
    """Training curves from ``fit`` history: one panel per metric, train and eval per epoch.

    Ensemble histories (``<metric>_std`` beside ``<metric>``) are drawn with a band of one
    standard deviation over members.

    Args:
        history: ``FitResult.history``, records ``{"epoch", "train": {...}, "eval": {...}}``.
        path: the ``.png`` to write.
        metrics: metric names, e.g. ``("loss", "accuracy")``.
        overwrite: replace an existing file.

    Returns:
        ``path``.
    """
    path = _check_path(path, overwrite)
    if isinstance(history, Mapping | str) or not isinstance(history, Sequence) or not history:
        raise ValueError("`history` must be a non-empty list of fit records (FitResult.history)")
    if not all(isinstance(r, Mapping) and "epoch" in r for r in history):
        raise ValueError("every record of `history` must be a dict with an 'epoch' key")
    if isinstance(metrics, str) or not isinstance(metrics, Sequence) or not metrics:
        raise ValueError(f"`metrics` must be a non-empty sequence of names, e.g. [{metrics!r}]")
    splits = ("train", "eval")
    available = sorted({m for r in history for s in splits for m in r.get(s) or {}})
    missing = [m for m in metrics if m not in available]
    if missing:
        raise ValueError(f"metric(s) {missing} are not in `history`; available: {available}")
    epochs = np.array([r["epoch"] for r in history], np.float64)
    figure = Figure(figsize=(4.5 * len(metrics), 3.5))
    for ax, metric in zip(figure.subplots(1, len(metrics), squeeze=False)[0], metrics, strict=True):
        for split in splits:
            records = [r.get(split) or {} for r in history]
            values = np.array([rec.get(metric, np.nan) for rec in records], np.float64)
            if np.all(np.isnan(values)):
                continue
            ax.plot(epochs, values, marker="." if len(epochs) < 30 else None, label=split)
            spread = np.array([rec.get(f"{metric}_std", np.nan) for rec in records], np.float64)
            if not np.all(np.isnan(spread)):
                ax.fill_between(epochs, values - spread, values + spread, alpha=0.25)
        ax.set_xlabel("epoch")
        ax.set_title(metric)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    return _save(figure, path, overwrite)


_DIAGNOSTIC_GROUPS = ("grad_norm", "update_ratio", "activations", "batch_norm")


def plot_diagnostics(
    history: Sequence[Mapping[str, Any]],
    path: str | os.PathLike,
    statistics: Sequence[str] = ("grad_norm", "update_ratio"),
    *,
    overwrite: bool = False,
) -> Path:
    """Per-layer training diagnostics over steps: one panel per statistic, one line per layer.

    Args:
        history: ``FitResult.history`` of a ``fit(diagnostics_every=N)`` run (each record's
            ``"diagnostics"`` list of reports).
        path: the ``.png`` to write.
        statistics: ``"grad_norm"``, ``"update_ratio"`` (log scale) or ``"<group>/<name>"``
            of the activation and batch-norm groups, e.g. ``"activations/dead_fraction"``,
            ``"activations/saturated_fraction"``, ``"batch_norm/mean_shift"``. Ensemble
            values are averaged over members.
        overwrite: replace an existing file.

    Returns:
        ``path``.
    """
    path = _check_path(path, overwrite)
    if isinstance(history, Mapping | str) or not isinstance(history, Sequence):
        raise ValueError("`history` must be a list of fit records (FitResult.history)")
    reports = [report for record in history for report in record.get("diagnostics", [])]
    if not reports:
        raise ValueError("`history` has no diagnostics: train with fit(diagnostics_every=N)")
    if isinstance(statistics, str) or not isinstance(statistics, Sequence) or not statistics:
        raise ValueError(f"`statistics` must be a non-empty sequence, e.g. [{statistics!r}]")
    series = {statistic: _diagnostic_series(reports, statistic) for statistic in statistics}
    steps = np.array([report["step"] for report in reports], np.float64)
    figure = Figure(figsize=(5.0 * len(statistics), 3.8))
    axes = figure.subplots(1, len(statistics), squeeze=False)[0]
    for ax, (statistic, lines) in zip(axes, series.items(), strict=True):
        for name, values in lines.items():
            ax.plot(steps, values, marker="." if len(steps) < 30 else None, label=name)
        if statistic in ("grad_norm", "update_ratio"):
            ax.set_yscale("log")
        ax.set_xlabel("step")
        ax.set_title(statistic)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=6, ncol=2 if len(lines) > 6 else 1)
    return _save(figure, path, overwrite)


def _diagnostic_series(
    reports: Sequence[Mapping[str, Any]], statistic: str
) -> dict[str, np.ndarray]:
    """``{layer: values over reports}`` of one statistic (member means for ensembles)."""
    group, _, name = statistic.partition("/")
    check_choice(group, "statistic group", _DIAGNOSTIC_GROUPS)
    if (group in ("grad_norm", "update_ratio")) == bool(name):
        raise ValueError(
            f"`statistics` entry {statistic!r}: 'grad_norm' and 'update_ratio' take no name, "
            "the other groups one, e.g. 'activations/mean' or 'batch_norm/var_ratio'"
        )
    layers = reports[0][group]
    values = {}
    for layer in layers:
        entries = [report[group][layer] for report in reports]
        if name:
            if name not in entries[0]:
                raise ValueError(
                    f"{statistic!r}: {layer!r} has no {name!r}; it has {sorted(entries[0])}"
                )
            entries = [entry[name] for entry in entries]
        values[layer] = np.array([np.mean(entry) for entry in entries], np.float64)
    if not values:
        raise ValueError(f"no layer in the diagnostics reports has {statistic!r}")
    return values


def plot_layer_statistics(
    reports: Mapping[str, Mapping[str, Any]],
    path: str | os.PathLike,
    layers: Sequence[str],
    statistic: str = "grad_norm",
    *,
    title: str = "",
    overwrite: bool = False,
) -> Path:
    """One diagnostics statistic across depth, one line per run: e.g. the gradient norm of
    each layer at initialisation for several activations (vanishing gradients).

    Args:
        reports: ``{run label: diagnostics report}`` (``adljax.diagnostics`` reports, or the
            records ``fit(diagnostics_every=N)`` keeps in its history).
        path: the ``.png`` to write.
        layers: the layers to draw, in order (the x axis), e.g. ``["dense_0", "dense_1"]``.
        statistic: ``"grad_norm"`` or ``"update_ratio"`` (drawn on a log scale).
        title: the figure's title.
        overwrite: replace an existing file.

    Returns:
        ``path``.
    """
    path = _check_path(path, overwrite)
    check_choice(statistic, "statistic", ("grad_norm", "update_ratio"))
    if not isinstance(reports, Mapping) or not reports:
        raise ValueError("`reports` must be a non-empty {label: diagnostics report} mapping")
    if isinstance(layers, str) or not layers:
        raise ValueError(f"`layers` must be a non-empty sequence of layer names, got {layers!r}")
    figure = Figure(figsize=(6.0, 3.8))
    ax = figure.subplots()
    for label, report in reports.items():
        missing = [layer for layer in layers if layer not in report[statistic]]
        if missing:
            raise ValueError(f"run {label!r} has no {statistic} for layers {missing}")
        values = [np.mean(report[statistic][layer]) for layer in layers]
        ax.plot(range(1, len(layers) + 1), values, marker=".", label=label)
    ax.set_yscale("log")
    ax.set_xticks(range(1, len(layers) + 1))
    ax.set_xlabel("layer (input side first)")
    ax.set_ylabel(statistic.replace("_", " "))
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _save(figure, path, overwrite)


def plot_series(
    series: Mapping[str, Sequence[float]],
    path: str | os.PathLike,
    *,
    xlabel: str = "epoch",
    ylabel: str = "",
    title: str = "",
    overwrite: bool = False,
) -> Path:
    """Curves ``{label: values}`` over 1, 2, ... (e.g. a train-test gap per epoch per run).

    Returns:
        ``path``.
    """
    path = _check_path(path, overwrite)
    if not isinstance(series, Mapping) or not series:
        raise ValueError("`series` must be a non-empty {label: values} mapping")
    figure = Figure(figsize=(5.5, 3.6))
    ax = figure.subplots()
    for label, values in series.items():
        values = _check_array(values, f"series[{label!r}]", 1, "(points,)")
        ax.plot(np.arange(1, len(values) + 1), values, label=label)
    ax.axhline(0.0, color="0.6", linewidth=0.8)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _save(figure, path, overwrite)


def plot_descent_paths(
    loss_fn: Callable[[jax.Array], jax.Array],
    paths: Mapping[str, Any],
    path: str | os.PathLike,
    *,
    minimum: Any = None,
    parameter_names: Sequence[str] = ("a", "b"),
    overwrite: bool = False,
) -> Path:
    """Gradient-descent paths drawn over the contours of a loss of two parameters.

    The view covers every path and ``minimum``; the contour levels grow quadratically, so a
    quadratic bowl shows evenly spaced ellipses.

    Args:
        loss_fn: ``loss(theta (2,)) -> scalar``, evaluated on a grid with ``jax.vmap``, e.g.
            ``adljax.backprop.line_fit_loss(x, y)``.
        paths: label -> iterates ``(steps + 1, 2)``, e.g. from ``adljax.backprop.descent_path``;
            each is drawn from its start (a circle) to its end (a cross), the first on top.
        path: the ``.png`` to write.
        minimum: a point ``(2,)`` to mark with a star, e.g. the least-squares solution.
        parameter_names: the names of the two parameters, for the axes.
        overwrite: replace an existing file.

    Returns:
        ``path``.
    """
    path = _check_path(path, overwrite)
    if not isinstance(paths, Mapping) or not paths:
        raise ValueError("`paths` must be a non-empty dict of label -> iterates (steps + 1, 2)")
    iterates = {}
    for label, points in paths.items():
        points = _check_array(points, f"paths[{label!r}]", 2, "(steps + 1, 2)")
        if points.shape[1] != 2:
            raise ValueError(
                f"`paths[{label!r}]` must have shape (steps + 1, 2), got {points.shape}"
            )
        iterates[str(label)] = points
    marked = [] if minimum is None else [_check_array(minimum, "minimum", 1, "(2,)")]
    if marked and marked[0].shape != (2,):
        raise ValueError(f"`minimum` must have shape (2,), got {marked[0].shape}")
    if isinstance(parameter_names, str) or len(parameter_names) != 2:
        raise ValueError(f"`parameter_names` must be two names, got {parameter_names!r}")

    shown = np.concatenate([*iterates.values(), *(point[None] for point in marked)])
    low, high = shown.min(axis=0), shown.max(axis=0)
    pad = 0.1 * max(float((high - low).max()), 1e-3)
    a_grid, b_grid = np.meshgrid(
        np.linspace(low[0] - pad, high[0] + pad, 120), np.linspace(low[1] - pad, high[1] + pad, 120)
    )  # (120, 120) each
    grid = np.stack([a_grid.ravel(), b_grid.ravel()], axis=1).astype(np.float32)  # (14400, 2)
    losses = np.asarray(jax.vmap(loss_fn)(grid), np.float64).reshape(a_grid.shape)

    figure = Figure(figsize=(5.0, 4.0))
    ax = figure.subplots()
    lowest, highest = np.nanmin(losses), np.nanmax(losses)
    if highest > lowest:
        levels = lowest + (highest - lowest) * np.linspace(0.0, 1.0, 16)[1:] ** 2
        ax.contour(a_grid, b_grid, losses, levels=levels, cmap="viridis", linewidths=0.8)
    palette = colormaps["tab10"]
    for i, (label, points) in enumerate(iterates.items()):
        style = {"color": palette(i % palette.N), "zorder": 2 + len(iterates) - i}  # first on top
        ax.plot(points[:, 0], points[:, 1], ".-", markersize=3, lw=1, label=label, **style)
        ax.plot(*points[0], "o", markersize=7, fillstyle="none", **style)
        ax.plot(*points[-1], "x", markersize=7, **style)
    for point in marked:  # above every path
        ax.plot(*point, "*", color="k", markersize=12, label="minimum", zorder=3 + len(iterates))
    ax.set_xlabel(parameter_names[0])
    ax.set_ylabel(parameter_names[1])
    ax.set_title("gradient descent over the loss's contours", fontsize=10)
    ax.legend(fontsize=8)
    return _save(figure, path, overwrite)
