"""Average precision of detections: COCO's summary (``COCOeval.summarize()``) and VOC AP.

Inputs are padded NumPy arrays, one row per image. Ground truth: ``boxes`` ``(N, M, 4)``
corner boxes, ``labels`` ``(N, M)``, ``box_mask`` ``(N, M)``, and optionally ``crowd``
``(N, M)`` (COCO's ``iscrowd``: a region of many objects) and ``difficult`` ``(N, M)``
(VOC's flag). Detections: ``boxes`` ``(N, D, 4)``, ``scores`` ``(N, D)``, ``classes``
``(N, D)`` and ``valid`` ``(N, D)`` (a `Detections` from `decode_detections` works).

- COCO: the 12 numbers of ``pycocotools.cocoeval.COCOeval.summarize()`` for boxes, under
  the names `COCO_METRICS` in the order of its ``stats``: ``ap`` (AP at IoU 0.50:0.95),
  ``ap50``, ``ap75``, ``ap_small``, ``ap_medium``, ``ap_large``, ``ar1``, ``ar10``,
  ``ar100`` (AR with at most 1, 10, 100 detections per image and class), ``ar_small``,
  ``ar_medium``, ``ar_large``. As COCOeval: IoU thresholds 0.50, 0.55, ..., 0.95; area
  ranges (`COCO_AREA_RANGES`) small up to 32², medium 32² to 96², large above 96², on the
  boxes' areas (pycocotools reads each annotation's ``area``: the same when it is the
  box's); at most 100 detections per image and class (highest scores first) but
  for ``ar1`` and ``ar10``; each detection, by decreasing score, matches the unmatched box
  of highest IoU (boxes not ignored first); ignored boxes (crowd, difficult, or outside the
  area range) neither count as misses nor make their matches false positives, and neither
  do unmatched detections outside the area range; a crowd box can match any number of
  detections, with IoU measured as intersection over the detection's area; precision is
  interpolated at 101 recall points. Each number is the mean over the classes with (not
  ignored) ground truth in its area range, and NaN where COCOeval reports -1: no class has
  any. ``ap_per_class`` holds each class's ``ap``.
- VOC (``voc_map50``, ``voc_ap50_per_class``) follows the VOC 2010+ devkit: by decreasing
  score each detection takes the box of highest IoU; IoU above 0.5 is a true positive the
  first time a box is taken, a false positive after; difficult (and crowd) boxes are
  ignored; AP is the area under the interpolated precision-recall curve (all points), and
  ``voc_map50`` its mean over the classes with ground truth. It is not COCO's ``ap50``
  (IoU at least 0.5, 101-point interpolation).

Per-class values are NaN for classes without ground truth.
"""

from collections.abc import Mapping

import numpy as np

from adljax._validate import check_positive_int

COCO_METRICS = (
    "ap",
    "ap50",
    "ap75",
    "ap_small",
    "ap_medium",
    "ap_large",
    "ar1",
    "ar10",
    "ar100",
    "ar_small",
    "ar_medium",
    "ar_large",
)
"""Names of the 12 numbers of ``COCOeval.summarize()``, in the order of its ``stats``:
AP at IoU 0.50:0.95, 0.50, 0.75, for small, medium, large boxes; AR with 1, 10, 100
detections, for small, medium, large boxes."""
COCO_IOU_THRESHOLDS = np.linspace(0.5, 0.95, 10)
"""IoU thresholds of COCO AP: 0.50, 0.55, ..., 0.95."""
COCO_RECALL_POINTS = np.linspace(0.0, 1.0, 101)
"""The 101 recall points at which COCO interpolates precision."""
COCO_AREA_RANGES = {
    "all": (0.0, 1e5**2),
    "small": (0.0, 32.0**2),
    "medium": (32.0**2, 96.0**2),
    "large": (96.0**2, 1e5**2),
}
"""COCO's area ranges (inclusive, in squared pixels) of boxes and detections."""
COCO_MAX_DETECTIONS = (1, 10, 100)
"""COCO's limits on detections per image and class (``ar1``, ``ar10``, the rest)."""
VOC_IOU_THRESHOLD = 0.5
SUMMARY_METRICS = (*COCO_METRICS, "voc_map50")
"""The single numbers of `evaluate_detections` (what each epoch's ``eval`` history holds)."""
_IOU_75 = 5  # COCO_IOU_THRESHOLDS[5] == 0.75


def _box_area(boxes: np.ndarray) -> np.ndarray:
    """Areas ``(...)`` of corner boxes ``(..., 4)``."""
    return np.prod(np.maximum(boxes[..., 2:] - boxes[..., :2], 0), axis=-1)


def _outside(areas: np.ndarray) -> np.ndarray:
    """``(A, ...)``: whether each of ``areas`` ``(...)`` lies outside each of the ``A``
    `COCO_AREA_RANGES`."""
    bounds = np.array(list(COCO_AREA_RANGES.values())).reshape(-1, 2, *(1,) * areas.ndim)
    return (areas < bounds[:, 0]) | (areas > bounds[:, 1])


def _pairwise_iou(detections: np.ndarray, truth: np.ndarray, crowd: np.ndarray) -> np.ndarray:
    """IoU ``(d, g)`` (float64); for crowd boxes, intersection over the detection's area."""
    d, g = detections[:, None, :], truth[None, :, :]
    size = np.maximum(np.minimum(d[..., 2:], g[..., 2:]) - np.maximum(d[..., :2], g[..., :2]), 0)
    intersection = size[..., 0] * size[..., 1]
    area_d, area_g = _box_area(detections)[:, None], _box_area(truth)[None, :]
    union = np.where(crowd[None, :], area_d, area_d + area_g - intersection)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(union > 0, intersection / union, 0.0)


def _coco_match(
    ious: np.ndarray, ignore: np.ndarray, crowd: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """COCOeval's greedy matching at every area range ``A`` and threshold ``T``, detections
    in score order: each detection takes the eligible box of highest IoU (the last on ties,
    as COCOeval), a box not ignored in that area range if it can.

    Args:
        ious: ``(d, g)``; ignore: ``(A, g)``; crowd: ``(g,)``.

    Returns:
        ``(A, T, d)`` bool arrays: the detection matched, and it matched an ignored box.
    """
    num_det, num_gt = ious.shape
    num_areas, num_thresholds = len(ignore), len(COCO_IOU_THRESHOLDS)
    shape = (num_areas, num_thresholds, num_det)
    matched, ignored = np.zeros(shape, bool), np.zeros(shape, bool)
    if num_gt == 0:
        return matched, ignored
    # One row per (area range, threshold). COCOeval sorts the boxes ignored last (stably):
    # the box it picks lies in one group, so the last maximum in the original order is it.
    thresholds = np.tile(np.minimum(COCO_IOU_THRESHOLDS, 1 - 1e-10), num_areas)[:, None]
    ignore = np.repeat(ignore, num_thresholds, axis=0)
    taken = np.zeros(ignore.shape, bool)
    rows = np.arange(len(ignore))
    for d in range(num_det):
        eligible = (~taken | crowd) & (ious[d] >= thresholds)
        preferred = np.where(np.any(eligible & ~ignore, axis=1, keepdims=True), ~ignore, ignore)
        score = np.where(eligible & preferred, ious[d], -1.0)
        best = num_gt - 1 - np.argmax(score[:, ::-1], axis=1)  # the last maximum
        found = score[rows, best] >= 0
        matched[..., d] = found.reshape(num_areas, num_thresholds)
        ignored[..., d] = (found & ignore[rows, best]).reshape(num_areas, num_thresholds)
        taken[rows[found], best[found]] = True
    return matched, ignored


def _coco_precision_recall(
    scores: np.ndarray, matched: np.ndarray, ignored: np.ndarray, num_truth: int
) -> tuple[np.ndarray, np.ndarray]:
    """COCOeval's accumulation for one class and area range, detections ``(K,)`` of all
    images: precision at the 101 recall points ``(T, 101)`` and the final recall ``(T,)``."""
    order = np.argsort(-scores, kind="mergesort")
    matched, ignored = matched[:, order], ignored[:, order]
    true_pos = np.cumsum(matched & ~ignored, axis=1, dtype=np.float64)
    false_pos = np.cumsum(~matched & ~ignored, axis=1, dtype=np.float64)
    precision = np.zeros((len(matched), len(COCO_RECALL_POINTS)))
    recall = true_pos[:, -1] / num_truth if len(scores) else np.zeros(len(matched))
    for t in range(len(matched)):
        curve_recall = true_pos[t] / num_truth
        curve = true_pos[t] / (false_pos[t] + true_pos[t] + np.spacing(1))
        curve = np.maximum.accumulate(curve[::-1])[::-1]  # precision envelope
        where = np.searchsorted(curve_recall, COCO_RECALL_POINTS, side="left")
        inside = where < len(curve)
        precision[t, inside] = curve[where[inside]]
    return precision, recall


def _coco_summary(
    scores: np.ndarray,
    ranks: np.ndarray,
    matched: np.ndarray,
    ignored: np.ndarray,
    num_truth: np.ndarray,
) -> np.ndarray:
    """`COCO_METRICS` of one class ``(12,)``, NaN where the area range has no ground truth.

    Args:
        scores, ranks: ``(K,)`` the detections of all images and their rank by score in
            their image (for the ``maxDets`` limits).
        matched, ignored: ``(A, T, K)`` from `_coco_match`, ``ignored`` also marking the
            unmatched detections outside the area range.
        num_truth: ``(A,)`` boxes not ignored in each area range.
    """
    values = dict.fromkeys(COCO_METRICS, np.nan)

    def precision_recall(area: int, max_detections: int) -> tuple[np.ndarray, np.ndarray]:
        keep = ranks < max_detections
        return _coco_precision_recall(
            scores[keep], matched[area][:, keep], ignored[area][:, keep], int(num_truth[area])
        )

    for area, name in enumerate(COCO_AREA_RANGES):
        if num_truth[area] == 0:
            continue
        precision, recall = precision_recall(area, COCO_MAX_DETECTIONS[-1])
        if name == "all":
            values["ap"], values["ar100"] = precision.mean(), recall.mean()
            values["ap50"], values["ap75"] = precision[0].mean(), precision[_IOU_75].mean()
            for limit in COCO_MAX_DETECTIONS[:-1]:
                values[f"ar{limit}"] = precision_recall(area, limit)[1].mean()
        else:
            values[f"ap_{name}"], values[f"ar_{name}"] = precision.mean(), recall.mean()
    return np.array([values[name] for name in COCO_METRICS])


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
) -> dict[str, float | list[float]]:
    """COCO's summary and VOC's AP of ``detections`` against ``truth`` (see the module).

    Args:
        detections: ``{"boxes", "scores", "classes", "valid"}`` as above (a `Detections`'
            ``_asdict()`` works).
        truth: ``{"boxes", "labels", "box_mask"}`` and optionally ``"crowd"`` and
            ``"difficult"``.
        num_classes: C; classes are ``0 .. C - 1``.

    Returns:
        `SUMMARY_METRICS`: the `COCO_METRICS` (floats equal to ``COCOeval.stats``, NaN for
        its -1) and ``"voc_map50"``; and ``"ap_per_class"`` (COCO ``ap``) and
        ``"voc_ap50_per_class"``, lists ``[C]``.
    """
    check_positive_int(num_classes, "num_classes")
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
    gt_outside, det_outside = _outside(_box_area(gt_boxes)), _outside(_box_area(det_boxes))

    num_areas, num_thresholds = len(COCO_AREA_RANGES), len(COCO_IOU_THRESHOLDS)
    coco = np.full((num_classes, len(COCO_METRICS)), np.nan)
    voc_ap50 = np.full(num_classes, np.nan)
    for c in range(num_classes):
        coco_scores, coco_ranks = [np.zeros(0)], [np.zeros(0, np.int64)]
        coco_matched = [np.zeros((num_areas, num_thresholds, 0), bool)]
        coco_ignored = [np.zeros((num_areas, num_thresholds, 0), bool)]
        voc_scores, voc_tp, voc_fp = [], [], []
        num_coco_truth, num_voc_truth = np.zeros(num_areas, np.int64), 0
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
            # COCO: per area range, boxes outside it are ignored too; at most 100 detections.
            area_ignore = ignore | gt_outside[:, i, g]
            num_coco_truth += np.sum(~area_ignore, axis=1)
            k = k[: COCO_MAX_DETECTIONS[-1]]
            if len(k) == 0:
                continue
            ious = _pairwise_iou(det_boxes[i, k], gt_boxes[i, g], crowd[i, g])
            matched, ignored = _coco_match(ious, area_ignore, crowd[i, g])
            coco_scores.append(det_scores[i, k])
            coco_ranks.append(np.arange(len(k)))
            coco_matched.append(matched)
            coco_ignored.append(ignored | (~matched & det_outside[:, i, k][:, None]))
        coco[c] = _coco_summary(
            np.concatenate(coco_scores),
            np.concatenate(coco_ranks),
            np.concatenate(coco_matched, axis=2),
            np.concatenate(coco_ignored, axis=2),
            num_coco_truth,
        )
        if num_voc_truth:
            voc_ap50[c] = (
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
        **{name: _nanmean(coco[:, j]) for j, name in enumerate(COCO_METRICS)},
        "voc_map50": _nanmean(voc_ap50),
        "ap_per_class": coco[:, 0].tolist(),
        "voc_ap50_per_class": voc_ap50.tolist(),
    }


def _nanmean(values: np.ndarray) -> float:
    """Mean over the non-NaN entries; NaN when there are none."""
    finite = values[~np.isnan(values)]
    return float(finite.mean()) if len(finite) else float("nan")
