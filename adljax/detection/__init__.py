"""Object detection: the detection task, decoding with fixed-shape NMS, COCO/VOC AP,
box-aware augmentation, figures and the end-to-end runner.

Synopsis::

    from adljax import detection
    experiment = detection.run_detection_experiment("detector", "shapes", epochs=20)
    state, test = experiment.result.state, experiment.eval_data
    print(detection.evaluate_dataset(state, test))  # COCO "ap", "ap50", ...; "voc_map50"
    found = detection.detect(state, test.arrays["x"][:8])  # boxes, scores, classes, valid
    detection.plot_detections(test.arrays["x"][:8], found, "boxes.png",
                              test.info.class_names)
"""

from adljax.detection.augment import detection_augmentation as detection_augmentation
from adljax.detection.augment import random_flip_boxes as random_flip_boxes
from adljax.detection.augment import random_scale_crop as random_scale_crop
from adljax.detection.decode import Detections as Detections
from adljax.detection.decode import decode_detections as decode_detections
from adljax.detection.decode import point_scores as point_scores
from adljax.detection.draw import plot_detections as plot_detections
from adljax.detection.draw import plot_map_curve as plot_map_curve
from adljax.detection.evaluation import COCO_METRICS as COCO_METRICS
from adljax.detection.evaluation import SUMMARY_METRICS as SUMMARY_METRICS
from adljax.detection.evaluation import evaluate_detections as evaluate_detections
from adljax.detection.experiment import detect as detect
from adljax.detection.experiment import detect_batch as detect_batch
from adljax.detection.experiment import evaluate_dataset as evaluate_dataset
from adljax.detection.experiment import make_map_evaluator as make_map_evaluator
from adljax.detection.experiment import (
    run_detection_experiment as run_detection_experiment,
)
from adljax.detection.task import DETECTION as DETECTION
from adljax.detection.task import Detection as Detection
from adljax.detection.task import Targets as Targets
from adljax.detection.task import assign_targets as assign_targets
