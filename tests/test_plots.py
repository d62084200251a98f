"""Plots: every figure is a readable PNG, nothing is overwritten, bad shapes are refused."""

from pathlib import Path

import jax
import numpy as np
import pytest
from PIL import Image

from adljax import plots
from adljax.data import load
from adljax.models import MLP
from adljax.training import create_optimizer, create_train_state

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
HISTORY = [
    {"epoch": e, "train": {"loss": 1.0 / e, "accuracy": 0.5 + e / 20}, "eval": {"loss": 1.2 / e}}
    for e in range(1, 6)
]
ENSEMBLE_HISTORY = [
    {"epoch": e, "train": {"loss": 1.0 / e, "loss_std": 0.1 / e}, "eval": {}} for e in range(1, 4)
]


def _rng() -> np.random.Generator:
    return np.random.default_rng(0)


def _xor_state(hidden_size: int):
    model = MLP(hidden_sizes=(hidden_size,), num_outputs=1, activation="tanh")
    x = load("xor", "test").arrays["x"]
    return create_train_state(model, create_optimizer("adam", 0.05), x[:1], jax.random.key(0))


# (name, draw(path, **kwargs) -> Path) for one valid call of every plotting function.
VALID_CALLS = {
    "filters_grey": lambda path, **kw: plots.plot_filters(
        _rng().normal(size=(3, 3, 1, 6)), path, **kw
    ),
    "filters_rgb": lambda path, **kw: plots.plot_filters(
        _rng().normal(size=(5, 5, 3, 70)), path, **kw
    ),
    "feature_maps_dict": lambda path, **kw: plots.plot_feature_maps(
        {"stage_0": _rng().random((8, 8, 10)), "stage_1": _rng().random((4, 4, 3))}, path, **kw
    ),
    "feature_maps_list": lambda path, **kw: plots.plot_feature_maps(
        [_rng().random((6, 6, 2))], path, **kw
    ),
    "embedding": lambda path, **kw: plots.plot_embedding(
        _rng().normal(size=(40, 2)),
        _rng().integers(0, 3, 40),
        path,
        class_names=["a", "b", "c"],
        title="t",
        **kw,
    ),
    "neighbours_grey": lambda path, **kw: plots.plot_neighbours(
        _rng().random((10, 8, 8, 1)), 2, np.array([5, 1, 7]), path, **kw
    ),
    "neighbours_rgb": lambda path, **kw: plots.plot_neighbours(
        _rng().normal(size=(4, 6, 6, 3)), 0, [3], path, **kw
    ),
    "xor_warp_2d": lambda path, **kw: plots.plot_xor_warp(_xor_state(2), path, **kw),
    "xor_warp_pca": lambda path, **kw: plots.plot_xor_warp(
        _xor_state(8), path, projection="pca", **kw
    ),
    "xor_warp_separating": lambda path, **kw: plots.plot_xor_warp(_xor_state(8), path, **kw),
    "history": lambda path, **kw: plots.plot_history(
        HISTORY, path, metrics=("loss", "accuracy"), **kw
    ),
    "history_ensemble": lambda path, **kw: plots.plot_history(ENSEMBLE_HISTORY, path, **kw),
}


def _assert_png(path: Path) -> None:
    assert path.read_bytes()[:8] == PNG_SIGNATURE
    with Image.open(path) as image:
        assert image.format == "PNG"
        width, height = image.size
    assert width > 0
    assert height > 0


@pytest.mark.parametrize("name", list(VALID_CALLS))
def test_writes_a_png_and_refuses_to_overwrite(tmp_path, name):
    path = tmp_path / "figures" / f"{name}.png"  # missing parents are created
    assert VALID_CALLS[name](path) == path
    _assert_png(path)
    written = path.read_bytes()
    with pytest.raises(FileExistsError, match=r"already exists; pass overwrite=True"):
        VALID_CALLS[name](path)
    assert path.read_bytes() == written
    assert VALID_CALLS[name](str(path), overwrite=True) == path
    _assert_png(path)


def test_path_must_be_a_png(tmp_path):
    with pytest.raises(ValueError, match=r"`path` must end in .png"):
        plots.plot_history(HISTORY, tmp_path / "loss.jpg")


# name -> (draw(path), message): one bad call per argument check.
BAD_CALLS = {
    "filters_rank": (
        lambda p: plots.plot_filters(np.ones((3, 3, 4)), p),
        r"`kernel` must be .*\(kh, kw",
    ),
    "filters_nan": (
        lambda p: plots.plot_filters(np.full((3, 3, 1, 2), np.nan), p),
        r"`kernel` contains NaN",
    ),
    "maps_batch": (
        lambda p: plots.plot_feature_maps({"s": np.ones((1, 4, 4, 2))}, p),
        r"`maps\['s'\]` must be .*\(H, W, C\) of one input",
    ),
    "maps_empty": (lambda p: plots.plot_feature_maps({}, p), r"`maps` is empty"),
    "maps_str": (lambda p: plots.plot_feature_maps("stage", p), r"`maps` must be a dict or list"),
    "embedding_points": (
        lambda p: plots.plot_embedding(np.ones((5, 3)), np.ones(5), p),
        r"`points` must have shape \(N, 2\)",
    ),
    "embedding_labels": (
        lambda p: plots.plot_embedding(np.ones((5, 2)), np.ones(4), p),
        r"`labels` must have shape \(5,\)",
    ),
    "embedding_class_names": (
        lambda p: plots.plot_embedding(np.ones((3, 2)), [0, 1, 2], p, class_names=["a"]),
        r"`class_names` \(1 names\)",
    ),
    "neighbours_rank": (
        lambda p: plots.plot_neighbours(np.ones((4, 8, 8)), 0, [1], p),
        r"`images` must be .*\(N, H, W, C\)",
    ),
    "neighbours_channels": (
        lambda p: plots.plot_neighbours(np.ones((4, 8, 8, 2)), 0, [1], p),
        r"`images` must have 1 or 3 channels",
    ),
    "neighbours_query": (
        lambda p: plots.plot_neighbours(np.ones((4, 8, 8, 1)), 4, [1], p),
        r"`query_index` must be an index in \[0, 4\)",
    ),
    "neighbours_index": (
        lambda p: plots.plot_neighbours(np.ones((4, 8, 8, 1)), 0, [1, 9], p),
        r"`neighbour_indices\[1\]` must be an index in \[0, 4\)",
    ),
    "neighbours_empty": (
        lambda p: plots.plot_neighbours(np.ones((4, 8, 8, 1)), 0, [], p),
        r"`neighbour_indices` must be a non-empty \(k,\)",
    ),
    "xor_one_unit": (lambda p: plots.plot_xor_warp(_xor_state(1), p), r"with D >= 2"),
    "xor_unknown_layer": (
        lambda p: plots.plot_xor_warp(_xor_state(2), p, layer="x"),
        r"unknown layer\(s\) \['x'\]",
    ),
    "xor_projection": (
        lambda p: plots.plot_xor_warp(_xor_state(2), p, projection="tsne"),
        r"unknown projection 'tsne'",
    ),
    "history_empty": (
        lambda p: plots.plot_history([], p),
        r"`history` must be a non-empty list",
    ),
    "history_epoch": (lambda p: plots.plot_history([{"train": {}}], p), r"an 'epoch' key"),
    "history_metrics_str": (
        lambda p: plots.plot_history(HISTORY, p, metrics="loss"),
        r"`metrics` must be a non-empty sequence",
    ),
    "history_unknown_metric": (
        lambda p: plots.plot_history(HISTORY, p, metrics=("r2",)),
        r"\['r2'\] are not in `history`; available: \['accuracy', 'loss'\]",
    ),
}


@pytest.mark.parametrize("name", list(BAD_CALLS))
def test_rejects_bad_input_and_writes_nothing(tmp_path, name):
    draw, message = BAD_CALLS[name]
    path = tmp_path / "figure.png"
    with pytest.raises(ValueError, match=message):
        draw(path)
    assert not path.exists()
