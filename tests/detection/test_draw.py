"""`plot_detections`: the score threshold, labels that never overlap, the legend."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adljax.detection import draw


def _overlap(a, b):
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(st.floats(-10, 60), st.floats(-10, 60), st.floats(1, 40), st.floats(1, 15)),
        min_size=1,
        max_size=12,
    )
)
def test_placed_labels_never_overlap(labels):
    anchors = np.array([(x, y) for x, y, _, _ in labels])
    sizes = [(w, h) for _, _, w, h in labels]
    corners = draw.place_labels(anchors, sizes, width=48.0)
    rects = [(x, y, x + w, y + h) for (x, y), (w, h) in zip(corners, sizes, strict=True)]
    for i, a in enumerate(rects):
        assert all(not _overlap(a, b) for b in rects[:i])
        assert a[0] >= 0 or sizes[i][0] > 48  # kept inside the image when it fits
        assert a[2] <= 48 + 1e-9 or sizes[i][0] > 48


def test_a_lone_label_sits_just_above_its_box():
    assert draw.place_labels(np.array([[5.0, 20.0]]), [(10.0, 4.0)], width=48) == [(5.0, 16.0)]


def _duplicates():
    """One image, a confident box and its near-duplicates scoring 0.31-0.49."""
    boxes = np.array([[[8, 8, 30, 30], [9, 8, 30, 31], [8, 9, 31, 30], [9, 9, 29, 30]]], float)
    return {
        "boxes": boxes,
        "scores": np.array([[0.93, 0.49, 0.41, 0.31]]),
        "classes": np.array([[0, 0, 1, 0]]),
        "valid": np.ones((1, 4), bool),
    }


@pytest.mark.parametrize(("min_score", "drawn"), [(draw.MIN_SCORE, 1), (0.3, 4), (0.45, 2)])
def test_draws_only_boxes_at_or_above_the_threshold(tmp_path, monkeypatch, min_score, drawn):
    figures = []
    save = draw._save
    monkeypatch.setattr(draw, "_save", lambda f, *a: figures.append(f) or save(f, *a))
    images = np.zeros((1, 40, 40, 3))
    truth = {"boxes": np.array([[[8, 8, 30, 30]]], float), "box_mask": np.ones((1, 1))}
    path = draw.plot_detections(
        images, _duplicates(), tmp_path / "p.png", ["a", "b"], truth=truth, min_score=min_score
    )
    assert path.stat().st_size > 0
    (figure,) = figures
    ax = figure.axes[0]
    solid = [p for p in ax.patches if p.get_linestyle() in ("-", "solid")]
    assert len(solid) == drawn and len(ax.texts) == drawn
    figure.canvas.draw()  # lays the label backgrounds out at the figure's own dpi
    renderer = figure.canvas.get_renderer()
    boxes = [t.get_bbox_patch().get_window_extent(renderer).extents for t in ax.texts]
    for i, a in enumerate(boxes):  # touching is fine: shrink each by a rounding error
        assert not any(_overlap(a + np.array([1e-6, 1e-6, -1e-6, -1e-6]), b) for b in boxes[:i])
    (legend,) = figure.legends
    assert [t.get_text() for t in legend.get_texts()] == [
        "prediction (class score)",
        "ground truth",
    ]


def test_rejects_a_threshold_outside_0_1(tmp_path):
    with pytest.raises(ValueError, match="min_score"):
        draw.plot_detections(
            np.zeros((1, 8, 8, 3)), _duplicates(), tmp_path / "p.png", ["a"], min_score=1.5
        )
