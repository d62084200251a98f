"""Day 2: object detection, an FCOS-style detector trained end to end on ``shapes``."""

import numpy as np

from adljax.detection import detect, plot_detections, plot_map_curve, run_detection_experiment
from adljax.tour import LessonContext, Result, lesson


@lesson("Day 2", "object detection: a single-stage detector on generated scenes, with mAP")
def object_detection(ctx: LessonContext) -> list[Result]:
    epochs = ctx.epochs(20, 4)
    options = {"num_train": 640, "num_test": 160} if ctx.quick else {}
    # Quick mode: a one-layer head tower (a smaller program to compile).
    model = {"tower_depth": 1} if ctx.quick else {}
    experiment = run_detection_experiment(
        "detector",
        "shapes",
        epochs=epochs,
        batch_size=32,
        learning_rate=3e-3,
        augment=True,
        progress=False,
        dataset_options=options,
        model_config_overrides=model,
    )
    history, test = experiment.result.history, experiment.eval_data
    images = test.arrays["x"][:8]
    found = detect(experiment.result.state, images)
    truth = {key: test.arrays[key][:8] for key in ("boxes", "box_mask")}
    plot_detections(
        images, found, ctx.output_dir / "predictions.png", test.info.class_names, truth=truth
    )
    plot_map_curve(history, ctx.output_dir / "map_vs_time.png")
    seconds = float(np.sum([r["time_s"] for r in history]))
    note = f"{epochs} epochs, {seconds:.0f} s of training; PNGs in {ctx.output_dir.name}/"
    final = experiment.summary["eval"]
    return [
        Result(
            "detection", "detector (FCOS-style)", "shapes", "test mAP@0.5", final["map50"], note
        ),
        Result("detection", "detector (FCOS-style)", "shapes", "test mAP@[.5:.95]", final["map"]),
    ]
