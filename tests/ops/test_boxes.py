"""Box conversions, clipping, area, IoU (against pycocotools) and generalised IoU."""

import chex
import hypothesis.extra.numpy as hnp
import jax
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from pycocotools import mask as coco_mask

from adljax import ops


@st.composite
def xyxy_boxes(draw, n: int = 6):
    """Random valid corner boxes (n, 4) with positive sizes, float64 (a fixed n: eager ops
    compile once per shape)."""
    corner = draw(hnp.arrays(np.float64, (n, 2), elements=st.floats(-50, 50)))
    size = draw(hnp.arrays(np.float64, (n, 2), elements=st.floats(0.5, 40)))
    return np.concatenate([corner, corner + size], axis=-1)


@given(xyxy_boxes())
def test_conversions_round_trip_and_agree(boxes):
    np.testing.assert_allclose(ops.xywh_to_xyxy(ops.xyxy_to_xywh(boxes)), boxes, atol=1e-4)
    np.testing.assert_allclose(ops.cxcywh_to_xyxy(ops.xyxy_to_cxcywh(boxes)), boxes, atol=1e-4)
    xywh = ops.xyxy_to_xywh(boxes)
    np.testing.assert_allclose(ops.xywh_to_cxcywh(xywh), ops.xyxy_to_cxcywh(boxes), atol=1e-4)
    np.testing.assert_allclose(ops.cxcywh_to_xywh(ops.xyxy_to_cxcywh(boxes)), xywh, atol=1e-4)


def test_conversions_by_hand():
    box = np.array([[1.0, 2.0, 5.0, 8.0]])
    np.testing.assert_allclose(ops.xyxy_to_xywh(box), [[1, 2, 4, 6]])
    np.testing.assert_allclose(ops.xyxy_to_cxcywh(box), [[3, 5, 4, 6]])
    np.testing.assert_allclose(ops.area_xyxy(box), [24])
    np.testing.assert_allclose(ops.area_xyxy([[5.0, 5.0, 1.0, 9.0]]), [0.0])  # inverted: empty
    np.testing.assert_allclose(ops.clip_xyxy([[-3.0, 2.0, 70.0, 90.0]], 64, 48), [[0, 2, 48, 64]])


@given(xyxy_boxes(), xyxy_boxes(5))
def test_pairwise_iou_matches_pycocotools(a, b):
    ours = np.asarray(ops.pairwise_iou_xyxy(a.astype(np.float32), b.astype(np.float32)))
    reference = coco_mask.iou(
        np.asarray(ops.xyxy_to_xywh(a), np.float64).tolist(),
        np.asarray(ops.xyxy_to_xywh(b), np.float64).tolist(),
        [0] * len(b),
    )
    np.testing.assert_allclose(ours, reference, atol=2e-5)


@given(xyxy_boxes(), xyxy_boxes(5))
def test_giou_is_bounded_by_iou_symmetric_and_exact_for_nested_boxes(a, b):
    iou = np.asarray(ops.pairwise_iou_xyxy(a, b))
    giou = np.asarray(ops.pairwise_giou_xyxy(a, b))
    assert np.all(giou <= iou + 1e-6)
    assert np.all(giou >= -1 - 1e-6)
    np.testing.assert_allclose(giou, np.asarray(ops.pairwise_giou_xyxy(b, a)).T, atol=1e-6)
    np.testing.assert_allclose(np.diag(np.asarray(ops.pairwise_giou_xyxy(a, a))), 1, atol=1e-6)
    inner = (a + np.array([[0.1, 0.1, -0.1, -0.1]])).astype(np.float32)  # inside a
    np.testing.assert_allclose(ops.giou_xyxy(a, inner), ops.iou_xyxy(a, inner), atol=1e-6)


def test_giou_by_hand():
    # Two unit squares two units apart: IoU 0, enclosing 3x1, union 2 -> -1/3.
    a, b = np.array([0.0, 0.0, 1.0, 1.0]), np.array([2.0, 0.0, 3.0, 1.0])
    np.testing.assert_allclose(ops.giou_xyxy(a, b), -1 / 3, rtol=1e-6)
    np.testing.assert_allclose(ops.iou_xyxy(a, np.array([0.0, 0.0, 2.0, 1.0])), 0.5)


def test_iou_of_empty_boxes_is_zero_not_nan():
    empty = np.zeros((2, 4), np.float32)
    assert np.all(np.asarray(ops.pairwise_iou_xyxy(empty, empty)) == 0)


def test_jit_of_vmap_agrees_with_eager_per_image():
    rng = np.random.default_rng(0)
    a = rng.uniform(0, 10, (3, 5, 4)).astype(np.float32)
    a[..., 2:] += a[..., :2]
    b = a[:, ::-1]
    batched = jax.jit(jax.vmap(ops.pairwise_giou_xyxy))(a, b)
    for i in range(3):
        chex.assert_trees_all_close(batched[i], ops.pairwise_giou_xyxy(a[i], b[i]), atol=1e-6)


@pytest.mark.parametrize(
    ("fn", "args", "match"),
    [
        (ops.xyxy_to_xywh, (np.zeros((3, 5)),), r"`boxes` must have shape \(..., 4\)"),
        (ops.pairwise_iou_xyxy, (np.zeros((2, 3, 4)), np.zeros((2, 4))), r"`a` must have shape"),
        (ops.iou_xyxy, (np.zeros(4), np.zeros(3)), r"`b` must have shape \(..., 4\)"),
    ],
)
def test_bad_shapes_raise_naming_the_argument(fn, args, match):
    with pytest.raises(ValueError, match=match):
        fn(*args)
