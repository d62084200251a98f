"""Object detection: box operations, an anchor-free detector, fixed-shape NMS and mAP.

Synopsis::

    python examples/detection.py              # about 3 minutes on 2 CPU cores

Expected (20 epochs with augmentation): test VOC mAP@0.5 about 0.89, COCO AP@[.50:.95]
about 0.60 (40 epochs: 0.92 and 0.65). The figures go to ``detection_output/``.

``shapes`` scenes hold 1 to 6 ellipses, rectangles and triangles on a cluttered background,
with their boxes as padded arrays ``boxes (N, 6, 4)``, ``labels (N, 6)`` and ``box_mask
(N, 6)``. The detector (FCOS-style) predicts, at each point of a stride-8 and a stride-16
feature map, three class scores, the distances to the four sides of an object and a
"centerness". Training assigns each point the smallest box that contains it near its
centre (all inside the compiled step, on the padded arrays), with a focal loss for the
classes, a GIoU loss for the boxes and cross-entropy for the centerness. At test time
every (point, class) pair is a candidate box; non-maximum suppression keeps the best and
drops the overlapping duplicates, in fixed-shape slots so it runs inside ``jax.jit``.
Mean average precision compares the kept boxes with the truth (COCO's definition, which
pycocotools computes the same way, and VOC's at IoU 0.5).
"""

from pathlib import Path

import jax
import numpy as np

import adljax
from adljax import detection, ops


def main(
    epochs: int = 20,
    num_train: int = 2000,
    num_test: int = 500,
    output_dir: str | Path | None = "detection_output",
) -> dict:
    # Box operations: corners (x_min, y_min, x_max, y_max) in pixels.
    a = np.array([[0.0, 0.0, 10.0, 10.0]])
    b = np.array([[5.0, 0.0, 15.0, 10.0]])
    iou = float(ops.pairwise_iou_xyxy(a, b)[0, 0])  # 50 / 150
    giou = float(ops.pairwise_giou_xyxy(a, b)[0, 0])

    options = {"num_train": num_train, "num_test": num_test}
    train = adljax.data.load("shapes", "train", **options)
    test = adljax.data.load("shapes", "test", **options)
    model = adljax.models.Detector(num_outputs=3, input_shape=(64, 64, 3))
    points, strides = adljax.models.detector_points(model)

    state = adljax.create_train_state(
        model, adljax.create_optimizer("adam", 3e-3), train.arrays["x"][:1], jax.random.key(0)
    )
    result = adljax.fit(
        state,
        train,
        task=detection.DETECTION,
        epochs=epochs,
        batch_size=32,
        eval_data=test,
        train_step=adljax.make_train_step(detection.DETECTION, detection.detection_augmentation),
        evaluate_fn=detection.make_map_evaluator(test),
        progress=False,
    )
    state = result.state

    # Before NMS: every (point, class) pair with a score above 0.05; after: the kept boxes.
    outputs = model.apply(state.variables, test.arrays["x"][:8], train=False)
    candidates = int(np.sum(np.asarray(detection.point_scores(outputs)) > 0.05))
    found = detection.detect(state, test.arrays["x"][:8])
    kept = int(np.sum(found["valid"]))
    scores = detection.evaluate_dataset(state, test)

    if output_dir is not None:
        output = Path(output_dir)
        images = test.arrays["x"][:8]
        truth = {key: test.arrays[key][:8] for key in ("boxes", "box_mask")}
        names = test.info.class_names
        detection.plot_detections(images, found, output / "predictions.png", names, truth=truth)
        detection.plot_map_curve(result.history, output / "map_vs_time.png")
    for record in result.history:
        print(
            f"epoch {record['epoch']:2d}  loss {record['train']['loss']:.3f}  "
            f"VOC mAP@0.5 {record['eval']['voc_map50']:.3f}  "
            f"COCO AP {record['eval']['ap']:.3f}  AP50 {record['eval']['ap50']:.3f}"
        )
    print(f"8 test images: {candidates} candidates, {kept} boxes after NMS")
    return {
        "iou": iou,
        "giou": giou,
        "num_points": len(points),
        "point_strides": sorted(set(strides.tolist())),
        "history": result.history,
        "candidates": candidates,
        "kept": kept,
        "voc_map50": scores["voc_map50"],
        "ap": scores["ap"],
        "ap50": scores["ap50"],
        "ap_per_class": dict(zip(test.info.class_names, scores["ap_per_class"], strict=True)),
    }


if __name__ == "__main__":
    main()
