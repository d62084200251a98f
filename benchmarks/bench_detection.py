"""Detection: the compiled train step, and the compiled decode + NMS step against NumPy NMS.

- ``train_step``: ``adljax.jit(make_train_step(DETECTION), donate_argnums=0)`` of the default
  ``Detector`` (64x64x3 ``shapes`` images, 3 classes, strides 8 and 16: 80 points) with
  Adam(1e-3) on ``shapes`` batches (target assignment on padded boxes inside the step):
  median ms per step and images per second, and the compile time.
- ``decode_nms``: ``detection.decode_detections`` (scores, boxes, per-class NMS under
  ``vmap``, 100 slots per image) jitted, against a plain NumPy greedy NMS, image by image, on
  the same candidate boxes and scores (every point and class, the top ``pre_nms_top_k`` by
  score, IoU 0.6, score above 0.05). The detector's untrained outputs are used: every
  candidate scores about 0.07, so all of them enter NMS, its most expensive case. Both are
  checked to keep the same boxes in the same order before timing.

Both sections are timed with ``benchmarks.timing.time_interleaved`` (alternating blocks,
medians over clean rounds, paired ratios).

Usage::

    python -m benchmarks.bench_detection [--quick] [--out PATH]
"""

import dataclasses
import functools
import sys
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as `python benchmarks/bench_detection.py`
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import jax
import numpy as np

import adljax
from adljax import detection, ops
from adljax.data.shapes import generate_shapes
from benchmarks.report import (
    benchmark_arguments,
    finish_machine_info,
    format_table,
    machine_info,
    report,
)
from benchmarks.timing import TimingConfig, time_interleaved

DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "detection.json"
IOU_THRESHOLD, SCORE_THRESHOLD, MAX_DETECTIONS, PRE_NMS_TOP_K = 0.6, 0.05, 100, 300
TRAIN_TIMING = TimingConfig(rounds=5, block=10, warmup=3, max_rounds=8)
DECODE_TIMING = TimingConfig(rounds=5, block=5, warmup=2, max_rounds=8)


@dataclasses.dataclass(frozen=True)
class Settings:
    """Sizes and timing of one run."""

    train_batch: int = 32
    decode_batch: int = 64
    model: dict = dataclasses.field(default_factory=dict)  # Detector overrides
    train_timing: TimingConfig = TRAIN_TIMING
    decode_timing: TimingConfig = DECODE_TIMING


QUICK = Settings(
    train_timing=TimingConfig(rounds=3, block=3, warmup=1, max_rounds=3),
    decode_timing=TimingConfig(rounds=3, block=2, warmup=1, max_rounds=3),
)


def numpy_nms(boxes: np.ndarray, scores: np.ndarray, classes: np.ndarray) -> np.ndarray:
    """Plain greedy per-class NMS of one image: indices kept, best first (at most
    ``MAX_DETECTIONS``), among the ``PRE_NMS_TOP_K`` best candidates above the threshold."""
    order = np.argsort(-scores, kind="stable")[:PRE_NMS_TOP_K]
    order = order[scores[order] > SCORE_THRESHOLD]
    area = np.prod(boxes[:, 2:] - boxes[:, :2], axis=1)
    keep = []
    while order.size and len(keep) < MAX_DETECTIONS:
        best, rest = order[0], order[1:]
        keep.append(best)
        top_left = np.maximum(boxes[best, :2], boxes[rest, :2])
        bottom_right = np.minimum(boxes[best, 2:], boxes[rest, 2:])
        inter = np.prod(np.clip(bottom_right - top_left, 0, None), axis=1)
        iou = inter / np.maximum(area[best] + area[rest] - inter, 1e-9)
        order = rest[(iou <= IOU_THRESHOLD) | (classes[rest] != classes[best])]
    return np.asarray(keep, np.int64)


def _candidates(outputs: dict[str, jax.Array]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every (point, class) candidate of each image: boxes (B, P*C, 4), scores, classes."""
    scores = np.asarray(detection.point_scores(outputs))
    batch, points, classes = scores.shape
    boxes = ops.decode_ltrb(outputs["points"], outputs["box_distances"], outputs["strides"])
    boxes = np.repeat(np.asarray(ops.clip_xyxy(boxes, 64, 64)), classes, axis=1)
    labels = np.tile(np.arange(classes), points)
    return boxes, scores.reshape(batch, -1), np.broadcast_to(labels, (batch, points * classes))


def bench_train_step(settings: Settings) -> dict[str, Any]:
    model = adljax.models.Detector(**settings.model)
    batch = generate_shapes(settings.train_batch, seed=0)
    state = adljax.create_train_state(
        model, adljax.create_optimizer("adam", 1e-3), batch["x"][:1], jax.random.key(0)
    )
    step = adljax.jit(adljax.make_train_step(detection.DETECTION), donate_argnums=0)
    start = time.perf_counter()
    compiled = step.lower(state, batch).compile()
    compile_s = time.perf_counter() - start
    holder = {"state": state}

    def run(steps: int) -> None:
        for _ in range(steps):
            holder["state"], metrics = compiled(holder["state"], batch)
        jax.block_until_ready(metrics)

    timing = time_interleaved({"adljax": run}, settings.train_timing)
    ms = timing.median_ms("adljax")
    return {
        "batch": settings.train_batch,
        "compile_s": compile_s,
        "median_ms": ms,
        "images_per_s": settings.train_batch / ms * 1e3,
        "timing": timing.to_json(),
    }


def bench_decode_nms(settings: Settings) -> dict[str, Any]:
    model = adljax.models.Detector(**settings.model)
    images = generate_shapes(settings.decode_batch, seed=1)["x"]
    variables = model.init(jax.random.key(0), images[:1], train=False)
    outputs = jax.jit(lambda x: model.apply(variables, x, train=False))(images)
    decode = jax.jit(
        functools.partial(
            detection.decode_detections,
            image_size=(64, 64),
            max_detections=MAX_DETECTIONS,
            pre_nms_top_k=PRE_NMS_TOP_K,
            score_threshold=SCORE_THRESHOLD,
            iou_threshold=IOU_THRESHOLD,
        )
    )
    boxes, scores, classes = _candidates(outputs)

    found = jax.device_get(decode(outputs))
    same = True
    for i in range(len(images)):
        keep = numpy_nms(boxes[i], scores[i], classes[i])
        valid = found.valid[i]
        same &= bool(
            valid.sum() == len(keep)
            and np.allclose(found.boxes[i][valid], boxes[i][keep], atol=1e-5)
            and np.array_equal(found.classes[i][valid], classes[i][keep])
        )

    def run_jax(calls: int) -> None:
        for _ in range(calls):
            result = decode(outputs)
        jax.block_until_ready(result)

    def run_numpy(calls: int) -> None:
        for _ in range(calls):
            for i in range(len(images)):
                numpy_nms(boxes[i], scores[i], classes[i])

    timing = time_interleaved({"jax": run_jax, "numpy": run_numpy}, settings.decode_timing)
    return {
        "batch": settings.decode_batch,
        "candidates_per_image": int(boxes.shape[1]),
        "kept_per_image": float(np.mean(found.valid.sum(axis=1))),
        "same_selection": same,
        "jax_ms": timing.median_ms("jax"),
        "numpy_ms": timing.median_ms("numpy"),
        "numpy_over_jax": timing.paired_ratio("numpy", "jax"),
        "timing": timing.to_json(),
    }


def run_detection(settings: Settings, *, quick: bool) -> dict[str, Any]:
    """Both sections; the JSON-ready results."""
    results = {"machine": machine_info(), "quick": quick, "settings": dataclasses.asdict(settings)}
    results["train_step"] = bench_train_step(settings)
    results["decode_nms"] = bench_decode_nms(settings)
    finish_machine_info(results)
    return results


def table(results: dict[str, Any]) -> str:
    train, nms = results["train_step"], results["decode_nms"]
    rows = [
        [
            "train step",
            f"{train['batch']}",
            f"{train['median_ms']:.1f}",
            f"{train['images_per_s']:.0f} images/s, compile {train['compile_s']:.1f} s",
        ],
        [
            "decode + NMS (jit)",
            f"{nms['batch']}",
            f"{nms['jax_ms']:.1f}",
            f"{nms['candidates_per_image']} candidates -> {nms['kept_per_image']:.0f} kept/image",
        ],
        [
            "NumPy NMS",
            f"{nms['batch']}",
            f"{nms['numpy_ms']:.1f}",
            f"{nms['numpy_over_jax']:.1f}x the compiled step; same boxes: {nms['same_selection']}",
        ],
    ]
    return format_table(["what", "batch", "ms", "note"], rows)


def main(argv: list[str] | None = None) -> int:
    """Runs the detection benchmarks, prints the table and writes the JSON; returns 0."""
    args = benchmark_arguments(__doc__, DEFAULT_OUT, argv)
    results = run_detection(QUICK if args.quick else Settings(), quick=args.quick)
    return report(results, table(results), args.out)


if __name__ == "__main__":
    sys.exit(main())
