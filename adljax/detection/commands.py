"""``adljax evaluate`` and ``adljax predict`` for detection checkpoints.

The command line hands a checkpoint whose task is ``"detection"`` to these functions.
``evaluate`` reports COCO's summary (`COCO_METRICS`, as pycocotools), VOC's ``voc_map50``
and both families' AP per class; ``predict`` draws the
images with their predicted boxes, class names and scores (those scoring at least
`MIN_SCORE`) into one PNG, the ground truth dashed when it comes from a dataset: ``--output PATH``
(which must not exist), by default a fresh ``predictions.png`` (``predictions-1.png``,
... when taken) in the checkpoint directory. Nothing existing is ever overwritten.
"""

import argparse
from pathlib import Path
from typing import Any

import numpy as np

from adljax._validate import check_positive_int
from adljax.detection.draw import MIN_SCORE, plot_detections
from adljax.detection.evaluation import COCO_METRICS, SUMMARY_METRICS
from adljax.detection.experiment import detect, evaluate_dataset
from adljax.inference import load_checkpoint


def evaluate(args: argparse.Namespace) -> dict[str, Any]:
    """COCO's summary and VOC's mAP of the checkpoint (``args.step``, default the latest) on
    ``args.split``."""
    from adljax.cli import checkpoint_dataset, path_text

    state, meta = load_checkpoint(args.checkpoint_dir, args.step)
    dataset, data = checkpoint_dataset(args, meta)
    values = evaluate_dataset(state, data)
    names = data.info.class_names or tuple(str(c) for c in range(data.info.num_classes))
    per_class = {
        name: {"ap": ap, "voc_ap50": voc_ap50}
        for name, ap, voc_ap50 in zip(
            names, values["ap_per_class"], values["voc_ap50_per_class"], strict=True
        )
    }
    metrics = {name: values[name] for name in SUMMARY_METRICS}
    if not args.json:
        print(f"{meta['model']['name']} on {dataset} ({args.split}, {len(data)} images)")
        print("  COCO (as pycocotools' summarize; nan: no box in that area range)")
        for start in (0, 6):
            shown = COCO_METRICS[start : start + 6]
            print("    " + "  ".join(f"{name}={metrics[name]:.4f}" for name in shown))
        print("  VOC (2010+ devkit: all-point AP at IoU > 0.5)")
        print(f"    voc_map50={metrics['voc_map50']:.4f}")
        print("  per class      COCO ap  VOC ap50")
        for name, ap in per_class.items():
            print(f"    {name:12s} {ap['ap']:7.4f}  {ap['voc_ap50']:8.4f}")
    return {
        "model": meta["model"]["name"],
        "dataset": dataset,
        "split": args.split,
        "eval": metrics,
        "per_class": per_class,
        "checkpoint_dir": path_text(args.checkpoint_dir),
    }


def _fresh_path(directory: Path) -> Path:
    """``directory/predictions.png``, or the first ``predictions-<k>.png`` not taken."""
    path, k = directory / "predictions.png", 0
    while path.exists():
        k += 1
        path = directory / f"predictions-{k}.png"
    return path


def predict(args: argparse.Namespace) -> dict[str, Any]:
    """Detects on the first ``args.limit`` images (``--input`` .npy ``(N, H, W, C)`` or the
    dataset split) and draws them with their detections into one PNG."""
    from adljax.cli import checkpoint_dataset, path_text

    check_positive_int(args.limit, "limit")
    output = Path(args.output) if args.output is not None else None
    if output is not None and output.exists():
        raise ValueError(f"--output {str(output)!r} exists; not overwriting it")
    if output is not None and output.suffix.lower() != ".png":
        raise ValueError(f"--output must be a .png path for detection, got {str(output)!r}")
    state, meta = load_checkpoint(args.checkpoint_dir)
    info = meta["dataset"]["info"]
    truth = None
    if args.input is not None:
        from adljax.cli import load_input_array

        images = load_input_array(Path(args.input))[: args.limit]
        expected = tuple(info["input_shape"])
        if images.ndim != 4 or images.shape[1:] != expected:
            raise ValueError(
                f"--input must hold images (N, {', '.join(map(str, expected))}), "
                f"got shape {images.shape}"
            )
        if not np.issubdtype(images.dtype, np.floating) or images.min() < 0 or images.max() > 1:
            raise ValueError(
                "--input must hold float images scaled to [0, 1] (as the training data), got "
                f"{images.dtype} values in [{images.min()}, {images.max()}]"
            )
    else:
        _, data = checkpoint_dataset(args, meta)
        arrays = data.to_arrays().arrays
        images = arrays["x"][: args.limit]
        truth = {key: arrays[key][: args.limit] for key in ("boxes", "box_mask")}
    detections = detect(state, images)
    names = info.get("class_names") or [str(c) for c in range(info["num_classes"])]
    path = plot_detections(
        images, detections, output or _fresh_path(Path(args.checkpoint_dir)), names, truth=truth
    )
    predictions = [
        [
            {
                "class": names[int(c)],
                "score": round(float(s), 4),
                "box": [round(float(v), 2) for v in b],
            }
            for b, s, c in zip(boxes[valid], scores[valid], classes[valid], strict=True)
        ]
        for boxes, scores, classes, valid in zip(
            detections["boxes"],
            detections["scores"],
            detections["classes"],
            detections["valid"] & (detections["scores"] >= MIN_SCORE),
            strict=True,
        )
    ]
    if not args.json:
        for i, found in enumerate(predictions):
            shown = ", ".join(f"{d['class']} {d['score']:.2f}" for d in found) or "nothing"
            print(f"  {i}: {shown}")
        print(f"  drawn to {path}")
    return {
        "model": meta["model"]["name"],
        "count": len(images),
        "predictions": predictions,
        "output": path_text(path),
    }
