"""Detection end to end: detect on a batch, measure mAP every epoch, train from names.

``run_detection_experiment`` is what ``adljax train detector`` runs: it takes exactly the
arguments of `adljax.experiment.run_experiment` and trains with the engine's ``fit``, so
checkpointing and exact resume work as for every other model; each epoch's history has
the test split's COCO summary (``ap``, ``ap50``, ..., ``ar_large``) and VOC ``voc_map50``
under ``eval`` (`make_map_evaluator`).
"""

import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jax
import numpy as np

from adljax._validate import check_positive_float, check_positive_int
from adljax.data import Dataset
from adljax.detection.augment import detection_augmentation
from adljax.detection.decode import Detections, decode_detections
from adljax.detection.evaluation import SUMMARY_METRICS, evaluate_detections
from adljax.detection.task import DETECTION
from adljax.experiment import (
    Experiment,
    check_unsupported,
    load_splits,
    model_for_dataset,
    optimizer_record,
    planned_steps,
    summarize,
)
from adljax.models import model_config
from adljax.training import (
    CheckpointOptions,
    EarlyStopping,
    create_optimizer,
    create_train_state,
    fit,
    make_diagnostics_step,
    make_train_step,
)
from adljax.training.callbacks import Callback
from adljax.training.compilation import jit
from adljax.training.optimizers import OPTIMIZER_NAMES, check_schedule, run_schedule
from adljax.training.steps import predict_step

TRUTH_KEYS = ("boxes", "labels", "box_mask", "crowd", "difficult")
"""Ground-truth arrays of a detection dataset that evaluation reads (those present)."""


def detect_batch(state, x: jax.Array) -> Detections:
    """Detections ``(B, 100)`` of a detector ``state`` (``TrainState`` or ``InferenceState``)
    on images ``x`` ``(B, H, W, C)``: the model in eval mode, then `decode_detections` with
    its defaults. Pure: `detect` runs it under ``jax.jit``."""
    return decode_detections(predict_step(state, x), x.shape[1:3])


_compiled_detect_batch = jit(detect_batch)


def detect(state, images: np.ndarray, *, batch_size: int = 256) -> dict[str, np.ndarray]:
    """Compiled `detect_batch` over images ``(N, H, W, C)`` in batches (the last padded):
    ``{"boxes": (N, D, 4), "scores", "classes", "valid": (N, D)}`` as NumPy arrays."""
    check_positive_int(batch_size, "batch_size")
    images = np.asarray(images, np.float32)
    if images.ndim != 4 or len(images) == 0:
        raise ValueError(f"`images` must be a non-empty batch (N, H, W, C), got {images.shape}")
    size = min(batch_size, len(images))
    parts = []
    for start in range(0, len(images), size):
        chunk = images[start : start + size]
        padded = np.concatenate(
            [chunk, np.zeros((size - len(chunk), *chunk.shape[1:]), chunk.dtype)]
        )
        found = jax.device_get(_compiled_detect_batch(state, padded))
        parts.append({name: value[: len(chunk)] for name, value in found._asdict().items()})
    return {name: np.concatenate([p[name] for p in parts]) for name in parts[0]}


def evaluate_dataset(state, data: Dataset, *, batch_size: int = 256) -> dict[str, Any]:
    """COCO's summary and VOC's mAP of ``state`` on every image of ``data``
    (`evaluate_detections`); a streamed dataset is read into memory first."""
    data = data.to_arrays()
    arrays = data.arrays
    detections = detect(state, arrays["x"], batch_size=batch_size)
    truth = {key: arrays[key] for key in TRUTH_KEYS if key in arrays}
    return evaluate_detections(detections, truth, data.info.num_classes)


def make_map_evaluator(data: Dataset) -> Callable[[Any], dict[str, float]]:
    """``evaluate(state) -> {metric: float}`` for the `SUMMARY_METRICS` (COCO ``ap`` ...
    ``ar_large``, VOC ``voc_map50``) on ``data``: `fit`'s ``evaluate_fn``. A streamed
    dataset is read into memory once, not every epoch."""
    data = data.to_arrays()

    def evaluate(state) -> dict[str, float]:
        values = evaluate_dataset(state, data)
        return {name: values[name] for name in SUMMARY_METRICS}

    return evaluate


def run_detection_experiment(
    model: str,
    dataset: str,
    *,
    epochs: int = 10,
    batch_size: int = 64,
    optimizer: str = "adam",
    learning_rate: float = 1e-3,
    clip_norm: float | None = None,
    seed: int = 0,
    model_config_overrides: Mapping[str, Any] | None = None,
    checkpoint_dir: str | os.PathLike | None = None,
    checkpoint_options: CheckpointOptions | None = None,
    resume: bool = False,
    ensemble: int | None = None,
    learning_rates: Sequence[float] | None = None,
    devices: int | None = None,
    early_stopping: EarlyStopping | None = None,
    whole_epoch: bool | None = None,
    debug: bool = False,
    progress: bool = True,
    data_dir: str | None = None,
    download: bool = False,
    augment: bool = False,
    pretrained: str | os.PathLike | None = None,
    freeze: Sequence[str] = (),
    dataset_options: Mapping[str, Any] | None = None,
    diagnostics_every: int | None = None,
    callbacks: Sequence[Callback] = (),
    dtype: str = "float32",
    schedule: str = "constant",
    warmup_steps: int = 0,
    decay_steps: int | None = None,
) -> Experiment:
    """Trains detector ``model`` on detection dataset ``dataset`` (train split), with the
    test split's loss and `SUMMARY_METRICS` (COCO ``ap`` ... ``ar_large``, VOC
    ``voc_map50``) in every epoch's ``eval`` history.

    Arguments as `adljax.experiment.run_experiment`; ``augment=True`` applies
    `detection_augmentation` (scale-crop and flip, boxes kept right) inside the compiled
    step. ``ensemble``, ``learning_rates``, ``devices``, ``pretrained`` and ``freeze`` are
    not supported for detection and raise ``ValueError`` when set.
    """
    check_unsupported(
        "detection",
        ensemble=ensemble,
        learning_rates=learning_rates,
        devices=devices,
        pretrained=pretrained,
        freeze=tuple(freeze),
    )
    if optimizer not in OPTIMIZER_NAMES:
        raise ValueError(f"unknown optimizer {optimizer!r}; choose one of {OPTIMIZER_NAMES}")
    check_positive_float(learning_rate, "learning_rate")
    check_schedule(schedule, warmup_steps, decay_steps)
    if clip_norm is not None:
        check_positive_float(clip_norm, "clip_norm")
    options = dict(dataset_options or {})
    train_data, eval_data = load_splits(
        dataset, data_dir=data_dir, download=download, seed=seed, **options
    )
    rate, schedule_record = run_schedule(
        learning_rate,
        schedule,
        warmup_steps,
        decay_steps,
        planned_steps(train_data, epochs, batch_size),
    )
    tx = create_optimizer(optimizer, rate, clip_norm=clip_norm)
    if train_data.info.task != "detection":
        raise ValueError(
            f"model {model!r} needs a detection dataset, but {dataset!r} is "
            f"{train_data.info.task!r}"
        )
    net = model_for_dataset(model, train_data, **dict(model_config_overrides or {}))
    sample = next(iter(train_data.batches(1, shuffle=False)))["x"]
    state = create_train_state(net, tx, sample, jax.random.key(seed), dtype=dtype)
    augmentation = detection_augmentation if augment else None
    run_info = {
        "model": {"name": model, "config": model_config(net)},
        "dataset": {
            "name": dataset,
            "data_dir": data_dir,
            "options": options,
            "info": train_data.info.to_dict(),
        },
        "optimizer": optimizer_record(optimizer, learning_rate, clip_norm, schedule_record),
        "augment": augment,
    }
    result = fit(
        state,
        train_data,
        task=DETECTION,
        epochs=epochs,
        batch_size=batch_size,
        eval_data=eval_data,
        seed=seed,
        checkpoint_dir=checkpoint_dir,
        checkpoint_options=checkpoint_options,
        resume=resume,
        early_stopping=early_stopping,
        whole_epoch=whole_epoch,
        debug=debug,
        progress=progress,
        run_info=run_info,
        train_step=make_train_step(DETECTION, augmentation),
        evaluate_fn=make_map_evaluator(eval_data),
        diagnostics_every=diagnostics_every,
        diagnostics_step=(
            make_diagnostics_step(DETECTION, augmentation) if diagnostics_every else None
        ),
        callbacks=callbacks,
    )
    return Experiment(result, train_data, eval_data, summarize(model, dataset, result))
