"""Day 2: object detection, an FCOS-style detector trained end to end on ``shapes``."""

import numpy as np

from adljax.detection import detect, plot_detections, plot_map_curve, run_detection_experiment
from adljax.recipes import recipe_for
from adljax.tour import LessonContext, Result, lesson


@lesson("Day 2", "object detection: a single-stage detector on generated scenes, with mAP")
def object_detection(ctx: LessonContext) -> list[Result]:
    recipe = recipe_for("detector", "shapes")
    epochs = ctx.epochs(recipe.epochs, 4)
    # Quick mode: fewer scenes and a one-layer head tower (a smaller program to compile).
    quick = {
        "dataset_options": {"num_train": 640, "num_test": 160},
        "model_config_overrides": {"tower_depth": 1},
    }
    experiment = run_detection_experiment(
        "detector",
        "shapes",
        **recipe.arguments(epochs=epochs, **(quick if ctx.quick else {})),
        progress=False,
        callbacks=ctx.callbacks,
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
    note = f"{epochs} epochs, {seconds:.0f} s of training"
    final = experiment.summary["eval"]
    return [
        Result(
            "detection",
            "detector (FCOS-style)",
            "shapes",
            "test VOC mAP@0.5 (voc_map50)",
            final["voc_map50"],
            note,
        ),
        Result("detection", "detector (FCOS-style)", "shapes", "test COCO AP (ap)", final["ap"]),
    ]
