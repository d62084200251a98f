"""COCO AP against pycocotools on random cases; VOC AP by hand."""

import contextlib
import io

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from adljax.detection import evaluate_detections

NUM_CLASSES = 3


def random_case(rng: np.random.Generator, n: int, m: int, d: int):
    """Ground truth with padding, crowd boxes, images without boxes; detections near the
    truth or anywhere, with tied scores, wrong classes and images without detections."""
    corner = rng.uniform(0, 40, (n, m, 2))
    truth = {
        "boxes": np.concatenate([corner, corner + rng.uniform(2, 20, (n, m, 2))], -1),
        "labels": rng.integers(0, NUM_CLASSES, (n, m)),
        "box_mask": (rng.random((n, m)) < 0.6) & (rng.random((n, 1)) < 0.8),
        "crowd": rng.random((n, m)) < 0.15,
    }
    source = rng.integers(0, m, (n, d))
    boxes = np.take_along_axis(truth["boxes"], source[..., None], 1) + rng.normal(0, 3, (n, d, 4))
    anywhere = rng.random((n, d)) < 0.3
    corner = rng.uniform(0, 40, (n, d, 2))
    boxes[anywhere] = np.concatenate([corner, corner + rng.uniform(2, 20, (n, d, 2))], -1)[anywhere]
    boxes[..., 2:] = np.maximum(boxes[..., 2:], boxes[..., :2] + 0.5)
    classes = np.where(
        rng.random((n, d)) < 0.8,
        np.take_along_axis(truth["labels"], source, 1),
        rng.integers(0, NUM_CLASSES, (n, d)),
    )
    detections = {
        "boxes": boxes,
        "scores": np.round(rng.random((n, d)), 2),  # rounded: ties happen
        "classes": classes,
        "valid": (rng.random((n, d)) < 0.8) & (rng.random((n, 1)) < 0.8),
    }
    return detections, truth


def pycocotools_ap(detections, truth):
    """``(AP@[.5:.95], per-class AP)`` from pycocotools on the same boxes."""
    n = len(truth["boxes"])
    annotations = []
    for i, j in zip(*np.nonzero(truth["box_mask"]), strict=True):
        x0, y0, x1, y1 = truth["boxes"][i, j].tolist()
        annotations.append(
            {
                "id": len(annotations) + 1,
                "image_id": int(i) + 1,
                "category_id": int(truth["labels"][i, j]) + 1,
                "bbox": [x0, y0, x1 - x0, y1 - y0],
                "area": (x1 - x0) * (y1 - y0),
                "iscrowd": int(truth["crowd"][i, j]),
            }
        )
    results = []
    for i, j in zip(*np.nonzero(detections["valid"]), strict=True):
        x0, y0, x1, y1 = detections["boxes"][i, j].tolist()
        results.append(
            {
                "image_id": int(i) + 1,
                "category_id": int(detections["classes"][i, j]) + 1,
                "bbox": [x0, y0, x1 - x0, y1 - y0],
                "score": float(detections["scores"][i, j]),
            }
        )
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO()
        gt.dataset = {
            "images": [{"id": i + 1} for i in range(n)],
            "annotations": annotations,
            "categories": [{"id": c + 1} for c in range(NUM_CLASSES)],
        }
        gt.createIndex()
        dt = gt.loadRes(results) if results else COCO()
        coco = COCOeval(gt, dt, "bbox")
        coco.params.imgIds = list(range(1, n + 1))
        coco.evaluate()
        coco.accumulate()
        coco.summarize()
    precision = coco.eval["precision"][:, :, :, 0, -1]  # area "all", 100 detections
    per_class = [
        precision[..., c][precision[..., c] > -1].mean()
        if np.any(precision[..., c] > -1)
        else np.nan
        for c in range(NUM_CLASSES)
    ]
    return coco.stats[0], per_class


@given(st.integers(0, 2**32 - 1), st.integers(1, 8), st.integers(1, 5), st.integers(0, 12))
def test_coco_ap_agrees_with_pycocotools(seed, n, m, d):
    detections, truth = random_case(np.random.default_rng(seed), n, m, max(d, 1))
    if d == 0:
        detections["valid"][:] = False
    ours = evaluate_detections(detections, truth, NUM_CLASSES)
    reference, per_class = pycocotools_ap(detections, truth)
    if reference == -1:  # no class has (non-crowd) ground truth
        assert np.isnan(ours["map"])
    else:
        assert abs(ours["map"] - reference) <= 1e-6
    np.testing.assert_allclose(ours["ap"], per_class, atol=1e-6)


def _one_image(boxes, labels, det_boxes, scores, det_classes, **flags):
    truth = {
        "boxes": np.asarray([boxes], float),
        "labels": np.asarray([labels]),
        "box_mask": np.ones((1, len(labels))),
        **{key: np.asarray([value]) for key, value in flags.items()},
    }
    detections = {
        "boxes": np.asarray([det_boxes], float),
        "scores": np.asarray([scores], float),
        "classes": np.asarray([det_classes]),
        "valid": np.ones((1, len(scores)), bool),
    }
    return detections, truth


def test_perfect_detections_score_one():
    boxes = [[0, 0, 10, 10], [20, 20, 30, 35]]
    detections, truth = _one_image(boxes, [0, 1], boxes, [0.9, 0.8], [0, 1])
    result = evaluate_detections(detections, truth, 2)
    assert result["map50"] == pytest.approx(1.0) and result["map"] == pytest.approx(1.0)


def test_voc_ap_by_hand_and_difficult_boxes_are_ignored():
    # Two boxes of class 0; detections: hit (0.9), miss (0.8), duplicate of the hit (0.7),
    # hit on the second box (0.6). Precision 1, 1/2, 1/3, 1/2 at recall 1/2, 1/2, 1/2, 1:
    # the envelope is 1 up to recall 1/2 and 1/2 after, so AP = 0.5 * 1 + 0.5 * 0.5.
    truth_boxes = [[0, 0, 10, 10], [20, 20, 30, 30]]
    det_boxes = [[0, 0, 10, 10], [40, 40, 50, 50], [0, 0, 10, 10], [20, 20, 30, 30]]
    detections, truth = _one_image(truth_boxes, [0, 0], det_boxes, [0.9, 0.8, 0.7, 0.6], [0] * 4)
    assert evaluate_detections(detections, truth, 1)["map50"] == pytest.approx(0.75)
    # Marking the second box difficult: its hit is ignored and one box remains, found first.
    detections, truth = _one_image(
        truth_boxes, [0, 0], det_boxes, [0.9, 0.8, 0.7, 0.6], [0] * 4, difficult=[False, True]
    )
    result = evaluate_detections(detections, truth, 1)
    assert result["map50"] == pytest.approx(1.0)


def test_classes_without_ground_truth_are_left_out_of_the_mean():
    detections, truth = _one_image([[0, 0, 10, 10]], [0], [[0, 0, 10, 10]], [0.9], [2])
    result = evaluate_detections(detections, truth, 3)
    assert result["ap50"][0] == 0.0 and np.isnan(result["ap50"][1]) and np.isnan(result["ap"][2])
    assert result["map50"] == 0.0


def test_bad_shapes_raise_naming_the_array():
    detections, truth = _one_image([[0, 0, 10, 10]], [0], [[0, 0, 10, 10]], [0.9], [0])
    truth["labels"] = truth["labels"][:, None]
    with pytest.raises(ValueError, match=r"`truth\['labels'\]` must have shape \(1, 1\)"):
        evaluate_detections(detections, truth, 1)
