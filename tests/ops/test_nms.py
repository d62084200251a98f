"""Fixed-shape NMS: the same boxes as a plain greedy NMS, under jit and vmap."""

import functools

import hypothesis.extra.numpy as hnp
import jax
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from adljax import ops

pytestmark = pytest.mark.usefixtures("fast_compiles")


def greedy_nms(boxes, scores, classes, iou_threshold, score_threshold, per_class):
    """The textbook loop: indices kept, best first."""
    order = np.argsort(-scores, kind="stable")
    iou = np.asarray(ops.pairwise_iou_xyxy(boxes, boxes))
    kept = []
    for i in order:
        if scores[i] <= score_threshold:
            continue
        rivals = [k for k in kept if not per_class or classes[k] == classes[i]]
        if all(iou[k, i] <= iou_threshold for k in rivals):
            kept.append(i)
    return kept


@st.composite
def scenes(draw):
    n = 40  # one shape: one compilation per max_output
    corner = draw(hnp.arrays(np.float32, (n, 2), elements=st.floats(0, 50, width=32)))
    size = draw(hnp.arrays(np.float32, (n, 2), elements=st.floats(2, 30, width=32)))
    scores = draw(hnp.arrays(np.float32, (n,), elements=st.floats(0, 1, width=32), unique=True))
    classes = draw(hnp.arrays(np.int32, (n,), elements=st.integers(0, 2)))
    return np.concatenate([corner, corner + size], -1), scores, classes


# Thresholds are traced: one compilation per (max_output, per_class), not per example.
_jitted_nms = jax.jit(
    lambda boxes, scores, classes, iou, score, max_output, per_class: ops.non_max_suppression(
        boxes,
        scores,
        classes,
        max_output=max_output,
        iou_threshold=iou,
        score_threshold=score,
        per_class=per_class,
    ),
    static_argnums=(5, 6),
)


@pytest.mark.parametrize(("per_class", "max_output"), [(True, 50), (False, 3)])
@given(scene=scenes(), iou_threshold=st.floats(0.1, 0.9))
def test_matches_a_plain_greedy_nms(scene, iou_threshold, per_class, max_output):
    boxes, scores, classes = scene
    result = _jitted_nms(boxes, scores, classes, iou_threshold, 0.2, max_output, per_class)
    expected = greedy_nms(boxes, scores, classes, iou_threshold, 0.2, per_class)[:max_output]
    count = len(expected)
    assert result.boxes.shape == (max_output, 4)
    np.testing.assert_array_equal(result.valid, np.arange(max_output) < count)
    np.testing.assert_array_equal(result.boxes[:count], boxes[expected])
    np.testing.assert_array_equal(result.scores[:count], scores[expected])
    np.testing.assert_array_equal(result.classes[:count], classes[expected])
    np.testing.assert_array_equal(result.classes[count:], -1)
    np.testing.assert_array_equal(result.scores[count:], 0)


def test_vmap_over_images_equals_one_call_per_image():
    rng = np.random.default_rng(1)
    boxes = rng.uniform(0, 40, (4, 30, 4)).astype(np.float32)
    boxes[..., 2:] = boxes[..., :2] + rng.uniform(3, 20, (4, 30, 2))
    scores = rng.random((4, 30)).astype(np.float32)
    classes = rng.integers(0, 3, (4, 30)).astype(np.int32)
    nms = functools.partial(ops.non_max_suppression, max_output=10, pre_nms_top_k=20)
    batched = jax.jit(jax.vmap(nms))(boxes, scores, classes)
    single_nms = jax.jit(nms)
    for i in range(4):
        single = single_nms(boxes[i], scores[i], classes[i])
        for got, want in zip(batched, single, strict=True):
            np.testing.assert_array_equal(got[i], want)


def test_per_class_keeps_overlapping_boxes_of_other_classes():
    boxes = np.array([[0, 0, 10, 10], [1, 1, 10, 10], [0, 0, 10, 9]], np.float32)
    scores = np.array([0.9, 0.8, 0.7], np.float32)
    classes = np.array([0, 1, 0], np.int32)
    per_class = ops.non_max_suppression(boxes, scores, classes, max_output=3)
    np.testing.assert_array_equal(per_class.valid, [True, True, False])
    agnostic = ops.non_max_suppression(boxes, scores, classes, max_output=3, per_class=False)
    np.testing.assert_array_equal(agnostic.valid, [True, False, False])


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"max_output": 0}, "`max_output` must be a positive integer"),
        ({"max_output": 2, "iou_threshold": 1.5}, r"`iou_threshold` must lie in \[0, 1\]"),
        ({"max_output": 2, "pre_nms_top_k": 0}, "`pre_nms_top_k` must be a positive integer"),
    ],
)
def test_bad_arguments_raise(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ops.non_max_suppression(np.zeros((3, 4)), np.zeros(3), **kwargs)


def test_mismatched_shapes_raise():
    with pytest.raises(ValueError, match=r"`scores` must have shape \(3,\), got \(2,\)"):
        ops.non_max_suppression(np.zeros((3, 4)), np.zeros(2), max_output=2)
