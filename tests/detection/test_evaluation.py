"""COCO's summary against pycocotools on random cases; VOC AP by hand."""

import contextlib
import io

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from adljax.detection import evaluate_detections
from adljax.detection.evaluation import COCO_METRICS

NUM_CLASSES = 3


def random_boxes(rng: np.random.Generator, shape: tuple, integer: bool) -> np.ndarray:
    """Corner boxes ``(*shape, 4)`` with sides from 2 to 160 (every COCO area range);
    ``integer`` ones hit the ranges' bounds 32² and 96² too."""
    corner = rng.uniform(0, 100, (*shape, 2))
    side = np.exp(rng.uniform(np.log(2), np.log(160), (*shape, 2)))
    if integer:
        corner, side = np.round(corner), np.where(rng.random(shape)[..., None] < 0.3, 32, 96)
    return np.concatenate([corner, corner + side], -1)


def random_case(rng: np.random.Generator, n: int, m: int, d: int):
    """Ground truth with padding, crowd boxes in some cases, images without boxes;
    detections near the truth or anywhere, with tied scores, wrong classes and images
    without detections."""
    integer = rng.random() < 0.25
    truth = {
        "boxes": random_boxes(rng, (n, m), integer),
        "labels": rng.integers(0, NUM_CLASSES, (n, m)),
        "box_mask": (rng.random((n, m)) < 0.6) & (rng.random((n, 1)) < 0.8),
        "crowd": rng.random((n, m)) < rng.choice([0.0, 0.15]),
    }
    source = rng.integers(0, m, (n, d))
    boxes = np.take_along_axis(truth["boxes"], source[..., None], 1)
    sides = boxes[..., 2:] - boxes[..., :2]
    boxes = boxes + rng.normal(0, 0.1, (n, d, 4)) * np.concatenate([sides, sides], -1)
    if integer:
        boxes = np.where(rng.random((n, d, 1)) < 0.5, np.round(boxes), boxes)
    anywhere = rng.random((n, d)) < 0.3
    boxes[anywhere] = random_boxes(rng, (n, d), integer)[anywhere]
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


def pycocotools_summary(detections, truth):
    """``(COCOeval.stats, per-class AP@[.5:.95])`` from pycocotools on the same boxes."""
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
    return coco.stats, per_class


def assert_agrees_with_pycocotools(detections, truth):
    """Every `COCO_METRICS` number and the per-class AP within 1e-6 of pycocotools."""
    ours = evaluate_detections(detections, truth, NUM_CLASSES)
    stats, per_class = pycocotools_summary(detections, truth)
    expected = np.where(stats == -1, np.nan, stats)  # -1: no ground truth in the area range
    np.testing.assert_allclose([ours[name] for name in COCO_METRICS], expected, rtol=0, atol=1e-6)
    np.testing.assert_allclose(ours["ap_per_class"], per_class, rtol=0, atol=1e-6)


@settings(max_examples=200)
@given(st.integers(0, 2**32 - 1), st.integers(1, 8), st.integers(1, 5), st.integers(0, 12))
def test_the_coco_summary_agrees_with_pycocotools(seed, n, m, d):
    detections, truth = random_case(np.random.default_rng(seed), n, m, max(d, 1))
    if d == 0:
        detections["valid"][:] = False
    assert_agrees_with_pycocotools(detections, truth)


def test_the_limits_of_1_10_and_100_detections_agree_with_pycocotools():
    # About 130 detections per image and class: past every limit.
    assert_agrees_with_pycocotools(*random_case(np.random.default_rng(3), 2, 8, 400))


def test_coco_ap50_is_not_voc_ap50():
    # The case: one image, two boxes, three detections. VOC's all-point AP and
    # COCO's 101-point AP at IoU 0.5 differ.
    boxes = [[0, 0, 10, 10], [20, 20, 30, 30]]
    det_boxes = [[0, 0, 10, 10], [40, 40, 50, 50], [20, 20, 30, 30]]
    detections, truth = _one_image(boxes, [0, 0], det_boxes, [0.9, 0.8, 0.7], [0, 0, 0])
    ours = evaluate_detections(detections, truth, 1)
    truth["crowd"] = np.zeros((1, 2), bool)
    stats, _ = pycocotools_summary(detections, truth)
    assert ours["voc_map50"] == pytest.approx(1 / 2 + 1 / 2 * 2 / 3)  # 0.833333
    assert ours["ap50"] == pytest.approx((51 + 50 * 2 / 3) / 101)  # 0.834983: 101 points
    assert abs(ours["ap50"] - stats[1]) <= 1e-12


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
    boxes = [[0, 0, 10, 10], [20, 20, 70, 60]]  # small and medium
    detections, truth = _one_image(boxes, [0, 1], boxes, [0.9, 0.8], [0, 1])
    result = evaluate_detections(detections, truth, 2)
    assert result["voc_map50"] == pytest.approx(1.0)
    assert all(result[name] == pytest.approx(1.0) for name in COCO_METRICS if "large" not in name)
    assert np.isnan(result["ap_large"]) and np.isnan(result["ar_large"])  # no box above 96²


def test_voc_ap_by_hand_and_difficult_boxes_are_ignored():
    # Two boxes of class 0; detections: hit (0.9), miss (0.8), duplicate of the hit (0.7),
    # hit on the second box (0.6). Precision 1, 1/2, 1/3, 1/2 at recall 1/2, 1/2, 1/2, 1:
    # the envelope is 1 up to recall 1/2 and 1/2 after, so AP = 0.5 * 1 + 0.5 * 0.5.
    truth_boxes = [[0, 0, 10, 10], [20, 20, 30, 30]]
    det_boxes = [[0, 0, 10, 10], [40, 40, 50, 50], [0, 0, 10, 10], [20, 20, 30, 30]]
    detections, truth = _one_image(truth_boxes, [0, 0], det_boxes, [0.9, 0.8, 0.7, 0.6], [0] * 4)
    assert evaluate_detections(detections, truth, 1)["voc_map50"] == pytest.approx(0.75)
    # Marking the second box difficult: its hit is ignored and one box remains, found first.
    detections, truth = _one_image(
        truth_boxes, [0, 0], det_boxes, [0.9, 0.8, 0.7, 0.6], [0] * 4, difficult=[False, True]
    )
    result = evaluate_detections(detections, truth, 1)
    assert result["voc_map50"] == pytest.approx(1.0)


def test_classes_without_ground_truth_are_left_out_of_the_mean():
    detections, truth = _one_image([[0, 0, 10, 10]], [0], [[0, 0, 10, 10]], [0.9], [2])
    result = evaluate_detections(detections, truth, 3)
    voc, coco = result["voc_ap50_per_class"], result["ap_per_class"]
    assert voc[0] == 0.0 and np.isnan(voc[1]) and np.isnan(coco[2])
    assert result["voc_map50"] == 0.0 and result["ap"] == 0.0


def test_bad_shapes_raise_naming_the_array():
    detections, truth = _one_image([[0, 0, 10, 10]], [0], [[0, 0, 10, 10]], [0.9], [0])
    truth["labels"] = truth["labels"][:, None]
    with pytest.raises(ValueError, match=r"`truth\['labels'\]` must have shape \(1, 1\)"):
        evaluate_detections(detections, truth, 1)
