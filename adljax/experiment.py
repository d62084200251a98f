"""One training run from names: the code path shared by the command line and the tour.

``run_experiment("mlp", "digits", epochs=20)`` loads the data, builds the registered model
for the dataset's task, trains it with ``fit`` and returns the result with a JSON-ready
summary. Checkpoints made here carry everything ``adljax.predict`` needs.
"""

import dataclasses
import importlib
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import jax

from adljax import transfer
from adljax._validate import check_positive_float
from adljax.data import Dataset, DatasetInfo, augmentation_for, load
from adljax.models import create_model, model_config, model_parameters, torch_weights
from adljax.tasks import get_task
from adljax.training import (
    CheckpointOptions,
    EarlyStopping,
    FitResult,
    create_ensemble,
    create_optimizer,
    create_train_state,
    fit,
    make_diagnostics_step,
    make_train_step,
)
from adljax.training.callbacks import Callback
from adljax.training.optimizers import OPTIMIZER_NAMES, check_schedule, run_schedule
from adljax.training.precision import get_policy


@dataclasses.dataclass
class Experiment:
    """A finished run: the ``fit`` result, the data it used and a JSON-ready summary."""

    result: FitResult
    train_data: Dataset
    eval_data: Dataset
    summary: dict[str, Any]


# Model families that train with their own runner (same arguments as `run_experiment`, same
# `Experiment` result): registry model name -> "module:function", imported on first use.
FAMILY_RUNNERS = {
    "detector": "adljax.detection.experiment:run_detection_experiment",
    "gan": "adljax.gan.experiment:run_gan_experiment",
    "dcgan": "adljax.gan.experiment:run_gan_experiment",
}


# Images with a side below this get a ResNet's CIFAR stem (one 3x3/1 conv), unless ``stem``
# is set: the ImageNet stem's 4x downsampling leaves too little of a small image.
IMAGENET_STEM_MIN_SIDE = 64

# Dataset tasks that only some registered models can learn: task -> those models.
TASK_MODELS = {
    "detection": ("detector",),
    "generation": ("gan", "dcgan"),
    "tagging": ("rnn", "gru", "lstm"),
    "language_modeling": ("charlm",),
}


def check_model_fits_task(model: str, dataset: str, task: str) -> None:
    """Raises ValueError when ``model`` cannot learn ``dataset``'s ``task`` (`TASK_MODELS`), or
    when ``charlm`` meets anything but language modelling."""
    models = TASK_MODELS.get(task)
    if models is not None and model not in models:
        raise ValueError(
            f"dataset {dataset!r} is a {task} dataset: train {' or '.join(models)} on it, "
            f"not {model!r}"
        )
    if model == "charlm" and task != "language_modeling":
        raise ValueError(
            f"model 'charlm' needs a language_modeling dataset, but {dataset!r} is {task!r}"
        )


def runner_for(model: str) -> Callable[..., Experiment]:
    """The function that trains registered ``model``: `run_experiment` or its family's."""
    target = FAMILY_RUNNERS.get(model)
    if target is None:
        return run_experiment
    module, _, function = target.partition(":")
    return getattr(importlib.import_module(module), function)


DATASET_SIZED_CONFIG = ("num_outputs", "input_shape", "task", "vocab_size", "padding_token")
"""The configuration keys that `model_for_dataset` takes from the dataset, not the user."""


def model_for_dataset(name: str, data: Dataset | DatasetInfo, **config: Any):
    """The registered model ``name`` sized for ``data`` (a dataset or its `DatasetInfo`):
    input shape and output width.

    ``linear`` on a regression dataset is least squares; on classification data it is
    softmax (or logistic) regression, the task deciding the loss. Models that take a
    ``task``, ``vocab_size`` or ``padding_token`` parameter (the recurrent sequence models)
    also get the dataset's task and those ``info.extras`` of token datasets; a ResNet gets
    the CIFAR stem for images with a side under `IMAGENET_STEM_MIN_SIDE`.
    """
    info = data if isinstance(data, DatasetInfo) else data.info
    extras = info.extras
    facts = {
        "task": info.task,
        "vocab_size": extras.get("vocab_size"),
        "padding_token": extras.get("padding_token"),
    }
    taken = model_parameters(name)
    shape = info.input_shape
    if "stem" in taken and shape is not None and len(shape) == 3:
        facts["stem"] = "cifar" if min(shape[:2]) < IMAGENET_STEM_MIN_SIDE else "imagenet"
    config = {
        "num_outputs": info.num_outputs,
        "input_shape": shape,
        **{key: value for key, value in facts.items() if key in taken and value is not None},
        **config,
    }
    return create_model(name, **config)


def run_experiment(
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
    """Trains registered ``model`` on dataset ``dataset`` (train split; evaluates on test).

    Every argument is checked before any data is loaded or compiled (learning rates must be
    positive and finite), and ``fit`` checks that the model fits the data (input shape,
    output width, labels) before it creates ``checkpoint_dir``. ``ensemble=K`` trains
    K members (seeds ``seed``'s splits; ``learning_rates`` optionally one per member) in one
    compiled step; ``devices=N`` shards each batch over N devices. ``augment=True`` applies
    the dataset's standard augmentation (``augmentation_for``) inside the compiled step.

    ``pretrained`` starts from other weights: an adljax checkpoint directory (every
    parameter and batch statistic whose path and shape match, except the head) or a
    torchvision ResNet ``.pth`` / ``.safetensors`` file. ``freeze`` lists path patterns
    (e.g. ``stem_*``, ``stage0_*``) whose parameters and batch statistics stay fixed.
    ``dataset_options`` go to ``adljax.data.load`` (e.g. ``{"seq_len": 100}``).
    ``diagnostics_every=N`` records ``adljax.diagnostics`` reports every N steps in the
    history (``fit``'s argument). ``dtype`` is the mixed-precision policy
    (``"float32"``, ``"bfloat16"`` or ``"float16"``, see `adljax.training.precision`):
    parameters stay float32, the model computes in ``dtype``; the checkpoint records it.
    ``callbacks`` go to ``fit`` (`adljax.training.callbacks`; e.g.
    `adljax.training.metric_logs.metric_loggers` for TensorBoard and CSV logs).
    ``schedule``, ``warmup_steps`` and ``decay_steps`` shape the learning rate
    (`adljax.training.optimizers.run_schedule`; by default a decaying schedule decays over the
    rest of the run); the checkpoint records them and a resume must keep them.
    """
    if optimizer not in OPTIMIZER_NAMES:
        raise ValueError(f"unknown optimizer {optimizer!r}; choose one of {OPTIMIZER_NAMES}")
    check_positive_float(learning_rate, "learning_rate")
    check_schedule(schedule, warmup_steps, decay_steps)
    if clip_norm is not None:
        check_positive_float(clip_norm, "clip_norm")
    get_policy(dtype)
    for i, rate in enumerate(learning_rates or ()):
        check_positive_float(rate, f"learning_rates[{i}]")
    if ensemble is not None and ensemble < 1:
        raise ValueError(f"`ensemble` must be a positive integer, got {ensemble!r}")
    if learning_rates is not None and ensemble is None:
        raise ValueError("`learning_rates` needs `ensemble`")
    if learning_rates is not None and (schedule != "constant" or warmup_steps):
        raise ValueError("`learning_rates` (one per member) need a constant schedule")
    if ensemble is not None and (pretrained is not None or freeze):
        raise ValueError("`pretrained` and `freeze` work on a single model, not an ensemble")
    if pretrained is not None and not Path(pretrained).exists():
        raise ValueError(f"`pretrained` {str(pretrained)!r} does not exist")
    train_data, eval_data = load_splits(
        dataset, data_dir=data_dir, download=download, seed=seed, **dict(dataset_options or {})
    )
    rate, schedule_record = run_schedule(
        learning_rate,
        schedule,
        warmup_steps,
        decay_steps,
        planned_steps(train_data, epochs, batch_size),
    )
    tx = create_optimizer(optimizer, rate, clip_norm=clip_norm)
    check_model_fits_task(model, dataset, train_data.info.task)
    augmentation = augmentation_for(train_data.info) if augment else None
    if augment and augmentation is None:
        raise ValueError(f"dataset {dataset!r} has no standard augmentation; drop `augment`")
    task = get_task(train_data.info.task)
    net = model_for_dataset(model, train_data, **dict(model_config_overrides or {}))
    sample = next(iter(train_data.batches(1, shuffle=False)))["x"]
    key = jax.random.key(seed)
    if ensemble is None:
        state = create_train_state(net, tx, sample, key, dtype=dtype)
    else:
        state = create_ensemble(
            net, tx, sample, key, ensemble, learning_rates=learning_rates, dtype=dtype
        )
    report = None
    if pretrained is not None:
        state, report = _start_from(pretrained, state)
    train_step = make_train_step(task, augmentation)
    if freeze:
        state = transfer.replace_optimizer(state, transfer.freeze(state.tx, state.params, freeze))
        train_step = transfer.freeze_batch_stats(train_step, freeze)
    run_info = {
        "model": {"name": model, "config": model_config(net)},
        "dataset": {
            "name": dataset,
            "data_dir": data_dir,
            "options": dict(dataset_options or {}),
            "info": train_data.info.to_dict(),
        },
        "optimizer": optimizer_record(
            optimizer,
            learning_rate,
            clip_norm,
            schedule_record,
            learning_rates=list(learning_rates) if learning_rates is not None else None,
        ),
        "ensemble": ensemble,
        "augment": augment,
        "pretrained": str(pretrained) if pretrained is not None else None,
        "freeze": list(freeze),
    }
    result = fit(
        state,
        train_data,
        task=task,
        epochs=epochs,
        batch_size=batch_size,
        eval_data=eval_data,
        seed=seed,
        checkpoint_dir=checkpoint_dir,
        checkpoint_options=checkpoint_options,
        resume=resume,
        early_stopping=early_stopping,
        whole_epoch=whole_epoch,
        devices=devices,
        debug=debug,
        progress=progress,
        run_info=run_info,
        train_step=train_step,
        diagnostics_every=diagnostics_every,
        diagnostics_step=make_diagnostics_step(task, augmentation) if diagnostics_every else None,
        callbacks=callbacks,
    )
    summary = summarize(model, dataset, result)
    if report is not None:
        summary["transfer"] = {
            "copied": len(report.copied),
            "new": len(report.new),
            "mismatched": len(report.mismatched),
            "unused": len(report.unused),
        }
    return Experiment(result, train_data, eval_data, summary)


def check_unsupported(family: str, **options: Any) -> None:
    """Raises ValueError naming every option set (not None/False/empty) that ``family``'s
    runner does not support, e.g. ``check_unsupported("detection", ensemble=4)``."""
    named = [name for name, value in options.items() if value not in (None, False, (), [])]
    if named:
        raise ValueError(f"{family} training does not support {', '.join(map(repr, named))}")


def summarize(model: str, dataset: str, result: FitResult) -> dict[str, Any]:
    """The JSON summary of a run (``adljax train --json``): the last epoch's metrics."""
    last = result.history[-1] if result.history else {}
    return {
        "model": model,
        "dataset": dataset,
        "epochs": last.get("epoch", 0),
        "train": last.get("train", {}),
        "eval": last.get("eval", {}),
        "checkpoint_dir": (
            str(Path(result.checkpoint_dir).resolve()) if result.checkpoint_dir else None
        ),
    }


def optimizer_record(
    name: str,
    learning_rate: float,
    clip_norm: float | None,
    schedule: Mapping[str, Any] | None,
    **more: Any,
) -> dict[str, Any]:
    """The ``optimizer`` group of a run's metadata (compared on resume); ``schedule`` (from
    `adljax.training.optimizers.run_schedule`) only when there is one, so runs from before
    schedules resume unchanged."""
    record = {"name": name, "learning_rate": learning_rate, "clip_norm": clip_norm, **more}
    return record | ({"schedule": dict(schedule)} if schedule is not None else {})


def planned_steps(train_data: Dataset, epochs: int, batch_size: int) -> int:
    """The optimizer updates of ``epochs`` epochs of ``train_data`` in batches of
    ``batch_size`` (``fit`` drops the last partial batch); 0 when a batch is too big."""
    return max(epochs, 0) * (len(train_data) // max(batch_size, 1))


def load_splits(dataset: str, **load_options: Any) -> tuple[Dataset, Dataset]:
    """The ``"train"`` and ``"test"`` splits of ``dataset`` (``load_options`` as `load`'s)."""
    return load(dataset, "train", **load_options), load(dataset, "test", **load_options)


def _start_from(pretrained: str | os.PathLike, state):
    """``state`` with the weights of ``pretrained`` copied in, and the transfer report."""
    path = Path(pretrained)
    if path.is_dir():
        return transfer.load_backbone(path, state)
    variables = torch_weights.load_pretrained_resnet(path, state.model)
    merged, report = transfer.transfer_parameters(variables, state.variables)
    params = merged.pop("params")
    state = state.replace(params=params, model_state=merged)
    return transfer.replace_optimizer(state, state.tx), report
