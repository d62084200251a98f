"""Average precision of detections: VOC AP at IoU 0.5 and COCO AP over IoU 0.50:0.95.

Inputs are padded NumPy arrays, one row per image. Ground truth: ``boxes`` ``(N, M, 4)``
corner boxes, ``labels`` ``(N, M)``, ``box_mask`` ``(N, M)``, and optionally ``crowd``
``(N, M)`` (COCO's ``iscrowd``: a region of many objects) and ``difficult`` ``(N, M)``
(VOC's flag). Detections: ``boxes`` ``(N, D, 4)``, ``scores`` ``(N, D)``, ``classes``
``(N, D)`` and ``valid`` ``(N, D)`` (a `Detections` from `decode_detections` works).

- COCO (``map``, ``ap`` per class) follows ``pycocotools.cocoeval.COCOeval`` for boxes
  with area range "all" and at most ``max_detections`` (100) per image and class: IoU
  thresholds 0.50, 0.55, ..., 0.95; each detection, by decreasing score, matches the
  unmatched box of highest IoU (non-ignored boxes first); ignored boxes (crowd or
  difficult) neither count as misses nor make their matches false positives; a crowd box
  can match any number of detections, with IoU measured as intersection over the
  detection's area; precision interpolated at 101 recall points. A class without
  (non-ignored) ground truth is left out of the mean.
- VOC (``map50``, ``ap50`` per class) follows the VOC 2010+ devkit: by decreasing score
  each detection takes the box of highest IoU; IoU above 0.5 is a true positive the first
  time a box is taken, a false positive after; difficult (and crowd) boxes are ignored;
  AP is the area under the interpolated precision-recall curve (all points).

Per-class values are NaN for classes without ground truth.
"""

from collections.abc import Mapping

import numpy as np

from adljax._validate import check_positive_int

COCO_IOU_THRESHOLDS = np.linspace(0.5, 0.95, 10)
"""IoU thresholds of COCO AP: 0.50, 0.55, ..., 0.95."""
COCO_RECALL_POINTS = np.linspace(0.0, 1.0, 101)
"""The 101 recall points at which COCO interpolates precision."""
VOC_IOU_THRESHOLD = 0.5


def _pairwise_iou(detections: np.ndarray, truth: np.ndarray, crowd: np.ndarray) -> np.ndarray:
    """IoU ``(d, g)`` (float64); for crowd boxes, intersection over the detection's area."""
    d, g = detections[:, None, :], truth[None, :, :]
    size = np.maximum(np.minimum(d[..., 2:], g[..., 2:]) - np.maximum(d[..., :2], g[..., :2]), 0)
    intersection = size[..., 0] * size[..., 1]
    area_d = np.prod(np.maximum(detections[:, 2:] - detections[:, :2], 0), axis=-1)[:, None]
    area_g = np.prod(np.maximum(truth[:, 2:] - truth[:, :2], 0), axis=-1)[None, :]
    union = np.where(crowd[None, :], area_d, area_d + area_g - intersection)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(union > 0, intersection / union, 0.0)


def _coco_match(
    ious: np.ndarray, ignore: np.ndarray, crowd: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """COCOeval's greedy matching at every threshold, detections in score order and boxes
    sorted non-ignored first: each detection takes the eligible box of highest IoU (the
    last on ties, as COCOeval), a non-ignored one if it can.

    Returns:
        ``(T, d)`` bool arrays: the detection matched, and it matched an ignored box.
    """
    thresholds = np.minimum(COCO_IOU_THRESHOLDS, 1 - 1e-10)[:, None]
    num_det, num_gt = ious.shape
    matched = np.zeros((len(thresholds), num_det), bool)
    ignored = np.zeros((len(thresholds), num_det), bool)
    taken = np.zeros((len(thresholds), num_gt), bool)
    if num_gt == 0:
        return matched, ignored
    rows = np.arange(len(thresholds))
    for d in range(num_det):
        eligible = (~taken | crowd) & (ious[d] >= thresholds)
        preferred = np.where(np.any(eligible & ~ignore, axis=1, keepdims=True), ~ignore, ignore)
        score = np.where(eligible & preferred, ious[d], -1.0)
        best = num_gt - 1 - np.argmax(score[:, ::-1], axis=1)  # the last maximum
        found = score[rows, best] >= 0
        matched[:, d], ignored[:, d] = found, found & ignore[best]
        taken[rows[found], best[found]] = True
    return matched, ignored


def _interpolated_coco_precision(
    scores: np.ndarray, matched: np.ndarray, ignored: np.ndarray, num_truth: int
) -> np.ndarray:
    """Precision at the 101 recall points for each threshold: ``(T, 101)``."""
    order = np.argsort(-scores, kind="mergesort")
    matched, ignored = matched[:, order], ignored[:, order]
    true_pos = np.cumsum(matched & ~ignored, axis=1, dtype=np.float64)
    false_pos = np.cumsum(~matched & ~ignored, axis=1, dtype=np.float64)
    precision = np.zeros((len(matched), len(COCO_RECALL_POINTS)))
    for t in range(len(matched)):
        recall = true_pos[t] / num_truth
        curve = true_pos[t] / (false_pos[t] + true_pos[t] + np.spacing(1))
        curve = np.maximum.accumulate(curve[::-1])[::-1]  # precision envelope
        where = np.searchsorted(recall, COCO_RECALL_POINTS, side="left")
        inside = where < len(curve)
        precision[t, inside] = curve[where[inside]]
    return precision


def _voc_average_precision(
    scores: np.ndarray, true_pos: np.ndarray, false_pos: np.ndarray, num_truth: int
) -> float:
    """Area under the interpolated precision-recall curve (VOC 2010+ "all points")."""
    order = np.argsort(-scores, kind="mergesort")
    tp, fp = np.cumsum(true_pos[order]), np.cumsum(false_pos[order])
    recall = np.concatenate([[0.0], tp / num_truth, [1.0]])
    precision = np.concatenate([[0.0], tp / np.maximum(tp + fp, np.finfo(np.float64).eps), [0.0]])
    precision = np.maximum.accumulate(precision[::-1])[::-1]
    steps = np.flatnonzero(recall[1:] != recall[:-1])
    return float(np.sum((recall[steps + 1] - recall[steps]) * precision[steps + 1]))


def _voc_match(ious: np.ndarray, ignore: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """VOC's matching of one image's detections (in score order): (true_pos, false_pos)."""
    num_det = ious.shape[0]
    true_pos, false_pos = np.zeros(num_det, bool), np.zeros(num_det, bool)
    taken = np.zeros(ious.shape[1], bool)
    for d in range(num_det):
        if ious.shape[1] == 0 or ious[d].max() <= VOC_IOU_THRESHOLD:
            false_pos[d] = True
            continue
        g = int(np.argmax(ious[d]))
        if ignore[g]:
            continue
        if taken[g]:
            false_pos[d] = True
        else:
            true_pos[d] = taken[g] = True
    return true_pos, false_pos


def _array(mapping: Mapping[str, np.ndarray], key: str, name: str, shape: tuple) -> np.ndarray:
    if key not in mapping:
        raise ValueError(f"`{name}` must have the key {key!r}, got {sorted(mapping)}")
    array = np.asarray(mapping[key])
    fits = array.ndim == len(shape) and all(
        want is None or want == got for want, got in zip(shape, array.shape, strict=False)
    )
    if not fits:
        expected = tuple("?" if s is None else s for s in shape)
        raise ValueError(f"`{name}[{key!r}]` must have shape {expected}, got {array.shape}")
    return array


def evaluate_detections(
    detections: Mapping[str, np.ndarray],
    truth: Mapping[str, np.ndarray],
    num_classes: int,
    *,
    max_detections: int = 100,
) -> dict[str, float | list[float]]:
    """COCO and VOC average precision of ``detections`` against ``truth`` (see the module).

    Args:
        detections: ``{"boxes", "scores", "classes", "valid"}`` as above (a `Detections`'
            ``_asdict()`` works).
        truth: ``{"boxes", "labels", "box_mask"}`` and optionally ``"crowd"`` and
            ``"difficult"``.
        num_classes: C; classes are ``0 .. C - 1``.
        max_detections: COCO's per-image, per-class limit (highest scores first).

    Returns:
        ``{"map50", "map", "ap50": [C], "ap": [C]}``; the means skip classes without
        ground truth (NaN when no class has any).
    """
    check_positive_int(num_classes, "num_classes")
    check_positive_int(max_detections, "max_detections")
    gt_boxes = _array(truth, "boxes", "truth", (None, None, 4)).astype(np.float64)
    n, m = gt_boxes.shape[:2]
    gt_labels = _array(truth, "labels", "truth", (n, m)).astype(np.int64)
    gt_present = _array(truth, "box_mask", "truth", (n, m)) > 0
    crowd = np.asarray(truth.get("crowd", np.zeros((n, m))), bool)
    difficult = np.asarray(truth.get("difficult", np.zeros((n, m))), bool)
    det_boxes = _array(detections, "boxes", "detections", (n, None, 4)).astype(np.float64)
    d = det_boxes.shape[1]
    det_scores = _array(detections, "scores", "detections", (n, d)).astype(np.float64)
    det_classes = _array(detections, "classes", "detections", (n, d)).astype(np.int64)
    det_valid = _array(detections, "valid", "detections", (n, d)).astype(bool)

    ap, ap50 = np.full(num_classes, np.nan), np.full(num_classes, np.nan)
    for c in range(num_classes):
        coco_scores, coco_matched, coco_ignored = [], [], []
        voc_scores, voc_tp, voc_fp = [], [], []
        num_coco_truth = num_voc_truth = 0
        for i in range(n):
            g = np.flatnonzero(gt_present[i] & (gt_labels[i] == c))
            k = np.flatnonzero(det_valid[i] & (det_classes[i] == c))
            k = k[np.argsort(-det_scores[i, k], kind="mergesort")]
            ignore = crowd[i, g] | difficult[i, g]
            num_voc_truth += int(np.sum(~ignore))
            if len(k):
                ious = _pairwise_iou(det_boxes[i, k], gt_boxes[i, g], np.zeros(len(g), bool))
                tp, fp = _voc_match(ious, ignore)
                voc_scores.append(det_scores[i, k])
                voc_tp.append(tp)
                voc_fp.append(fp)
            # COCO: ground truth sorted non-ignored first, at most max_detections detections.
            g = g[np.argsort(ignore, kind="mergesort")]
            ignore = crowd[i, g] | difficult[i, g]
            num_coco_truth += int(np.sum(~ignore))
            k = k[:max_detections]
            if len(k) == 0:
                continue
            ious = _pairwise_iou(det_boxes[i, k], gt_boxes[i, g], crowd[i, g])
            matched, ignored = _coco_match(ious, ignore, crowd[i, g])
            coco_scores.append(det_scores[i, k])
            coco_matched.append(matched)
            coco_ignored.append(ignored)
        if num_coco_truth:
            if coco_scores:
                precision = _interpolated_coco_precision(
                    np.concatenate(coco_scores),
                    np.concatenate(coco_matched, axis=1),
                    np.concatenate(coco_ignored, axis=1),
                    num_coco_truth,
                )
                ap[c] = precision.mean()
            else:
                ap[c] = 0.0
        if num_voc_truth:
            ap50[c] = (
                _voc_average_precision(
                    np.concatenate(voc_scores),
                    np.concatenate(voc_tp),
                    np.concatenate(voc_fp),
                    num_voc_truth,
                )
                if voc_scores
                else 0.0
            )
    return {
        "map50": _nanmean(ap50),
        "map": _nanmean(ap),
        "ap50": ap50.tolist(),
        "ap": ap.tolist(),
    }


def _nanmean(values: np.ndarray) -> float:
    """Mean over the non-NaN entries; NaN when there are none."""
    finite = values[~np.isnan(values)]
    return float(finite.mean()) if len(finite) else float("nan")
