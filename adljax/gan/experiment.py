"""``run_gan_experiment``: what ``adljax train gan`` / ``adljax train dcgan`` run.

The options of the adversarial game travel in ``model_config_overrides`` (``--set``) next
to the model's own configuration: ``loss`` (``non_saturating``, ``hinge``, ``wgan_gp``),
``n_critic``, ``gradient_penalty``, ``ema_decay``, and Adam's ``beta1`` and ``beta2``
(`GAN_OPTIONS`); every other key configures the model (``latent_dim``, ``features``, ...).
Both players get the optimizer named by ``optimizer`` and ``learning_rate``. The
checkpoint's metadata records both groups (``model.config`` and ``gan``).
"""

import dataclasses
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import jax
import numpy as np
import optax

from adljax._validate import check_fraction, check_positive_float
from adljax.data import ArrayDataset, Dataset
from adljax.experiment import (
    Experiment,
    check_unsupported,
    load_splits,
    optimizer_record,
    planned_steps,
    summarize,
)
from adljax.gan.evaluation import (
    CLASSIFIER_DIR,
    image_evaluator,
    mixture_evaluator,
    real_frechet_distance,
    train_feature_classifier,
)
from adljax.gan.task import Generation
from adljax.gan.training import AdversarialOptimizer, create_gan_state, make_gan_train_step
from adljax.inference import load_checkpoint
from adljax.models import create_model, model_config
from adljax.training import (
    CheckpointOptions,
    EarlyStopping,
    create_optimizer,
    fit,
)
from adljax.training.callbacks import Callback
from adljax.training.checkpoint import CheckpointError
from adljax.training.diagnostics import make_update_diagnostics_step
from adljax.training.optimizers import OPTIMIZER_NAMES, check_schedule, run_schedule
from adljax.training.preflight import check_fit_arguments

GAN_OPTIONS = {
    "loss": "non_saturating",
    "n_critic": 1,
    "gradient_penalty": 10.0,
    "ema_decay": 0.999,
    "beta1": 0.5,
    "beta2": 0.999,
}
"""The game's options (and defaults) accepted in ``model_config_overrides``; ``beta1`` and
``beta2`` are Adam's moment decays (the DCGAN paper's 0.5 and 0.999), for ``adam`` only."""


def split_overrides(overrides: Mapping[str, Any] | None) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(game options completed with GAN_OPTIONS' defaults, model configuration)``.

    Raises ValueError, naming the option and its value, for a ``gradient_penalty`` that is
    not a finite number >= 0 or an ``ema_decay`` outside ``[0, 1)``.
    """
    overrides = dict(overrides or {})
    options = {name: overrides.pop(name, default) for name, default in GAN_OPTIONS.items()}
    check_positive_float(options["gradient_penalty"], "gradient_penalty", allow_zero=True)
    check_fraction(options["ema_decay"], "ema_decay")
    return options, overrides


def generation_data(data: Dataset) -> ArrayDataset:
    """``data`` as a ``generation`` dataset: labelled images keep ``y`` for evaluation only."""
    info = data.info
    if info.task == "generation":
        return data
    if info.task != "classification" or len(info.input_shape) != 3:
        raise ValueError(
            f"a GAN trains on a generation dataset or on classification images (H, W, C); "
            f"{info.name!r} is a {info.task} dataset with inputs {info.input_shape}"
        )
    if not isinstance(data, ArrayDataset):
        data = data.to_arrays()
    return ArrayDataset(dataclasses.replace(info, task="generation"), data.arrays, data.split)


def player_optimizer(
    name: str,
    learning_rate: float | optax.Schedule,
    clip_norm: float | None,
    beta1: float,
    beta2: float,
) -> optax.GradientTransformation:
    """One player's optimizer: ``create_optimizer``'s, with Adam's ``beta1``/``beta2``.

    Raises ValueError for non-default betas with another optimizer than ``adam``.
    """
    tx = create_optimizer(name, learning_rate, clip_norm=clip_norm)  # validates the arguments
    if name != "adam":
        if (beta1, beta2) != (GAN_OPTIONS["beta1"], GAN_OPTIONS["beta2"]):
            raise ValueError(f"`beta1` and `beta2` apply to adam only, not to {name!r}")
        return tx
    check_fraction(beta1, "beta1")
    check_fraction(beta2, "beta2")
    adam = optax.inject_hyperparams(optax.adam)(learning_rate=learning_rate, b1=beta1, b2=beta2)
    return adam if clip_norm is None else optax.chain(optax.clip_by_global_norm(clip_norm), adam)


def run_gan_experiment(
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
    """Trains GAN ``model`` (``gan`` or ``dcgan``) on ``dataset``; the arguments of
    ``adljax.experiment.run_experiment``.

    ``dataset`` is a generation dataset (``ring8``, ``grid25``) or labelled images
    (``digits``, tfds ``mnist``), whose labels only serve evaluation. After every epoch the
    EMA generator is scored on the test split: ``modes`` and ``high_quality`` for the 2-D
    mixtures; ``frechet_distance``, ``classes_covered`` and ``class_entropy`` for images,
    in the features of a classifier trained first on the same images (saved in
    ``<checkpoint_dir>/feature_classifier``). Best checkpoints keep the highest
    ``high_quality`` or the lowest ``frechet_distance``. The summary adds
    ``real_frechet_distance`` (held-out vs training images) for images.
    ``diagnostics_every=N`` records both players' per-layer update ratios
    (``adljax.diagnostics.make_update_diagnostics_step``). A learning-rate ``schedule``
    counts train steps for both players: the discriminator, which updates ``n_critic``
    times a step, gets its warmup and decay steps multiplied by ``n_critic``.

    Raises:
        ValueError: for options GANs do not support (``ensemble``, ``learning_rates``,
            ``devices``, ``augment``, ``pretrained``, ``freeze``) or bad values, before any
            compute.
    """
    check_unsupported(
        "GAN",
        ensemble=ensemble,
        learning_rates=learning_rates,
        devices=devices,
        augment=augment,
        pretrained=pretrained,
        freeze=tuple(freeze),
    )
    if optimizer not in OPTIMIZER_NAMES:
        raise ValueError(f"unknown optimizer {optimizer!r}; choose one of {OPTIMIZER_NAMES}")
    check_positive_float(learning_rate, "learning_rate")
    check_schedule(schedule, warmup_steps, decay_steps)
    options, config = split_overrides(model_config_overrides)
    task = Generation(loss=options["loss"], gradient_penalty=options["gradient_penalty"])
    train_step = make_gan_train_step(
        task, n_critic=options["n_critic"], ema_decay=options["ema_decay"]
    )
    betas = (options["beta1"], options["beta2"])
    # Validates the optimizer's arguments now; the players' optimizers follow the data.
    player_optimizer(optimizer, learning_rate, clip_norm, *betas)
    run_dir = Path(checkpoint_dir) if checkpoint_dir is not None else None
    classifier_dir = run_dir / CLASSIFIER_DIR if run_dir is not None else None
    if classifier_dir is not None and classifier_dir.exists() and not resume:
        raise CheckpointError(
            f"{str(run_dir)!r} already holds a run; pass resume=True (--resume) to continue "
            f"it, or choose another checkpoint_dir"
        )
    raw_train, raw_test = load_splits(
        dataset, data_dir=data_dir, download=download, seed=seed, **dict(dataset_options or {})
    )
    train_data, eval_data = generation_data(raw_train), generation_data(raw_test)
    steps = planned_steps(train_data, epochs, batch_size)
    txs, schedule_record = [], None
    for updates in (1, options["n_critic"]):  # per train step: generator's, discriminator's
        rate, record = run_schedule(
            learning_rate,
            schedule,
            warmup_steps * updates,
            decay_steps * updates if decay_steps is not None else None,
            steps * updates,
        )
        txs.append(player_optimizer(optimizer, rate, clip_norm, *betas))
        schedule_record = schedule_record or record  # the generator's: in train steps
    net = create_model(model, input_shape=train_data.info.input_shape, **config)
    sample = train_data.arrays["x"][:1]
    state = create_gan_state(
        net, AdversarialOptimizer(*txs), sample, jax.random.key(seed), dtype=dtype
    )
    # fit's own checks, before the feature classifier is trained into the checkpoint_dir.
    check_fit_arguments(
        state,
        train_data,
        task=task,
        epochs=epochs,
        batch_size=batch_size,
        seed=seed,
        checkpoint_dir=checkpoint_dir,
        resume=resume,
        whole_epoch=whole_epoch,
        train_step=train_step,
    )

    evaluate_fn, reference = None, {}
    if raw_train.info.task == "classification":
        task = dataclasses.replace(task, monitor="frechet_distance", monitor_mode="min")
        if classifier_dir is not None and classifier_dir.exists():
            classifier, _ = load_checkpoint(classifier_dir)
        else:
            classifier = train_feature_classifier(
                raw_train, seed=seed, checkpoint_dir=classifier_dir
            )
        held_out = eval_data.arrays["x"]
        evaluate_fn = image_evaluator(classifier, held_out, raw_train.info.num_classes)
        reference["real_frechet_distance"] = real_frechet_distance(
            classifier, train_data.arrays["x"], held_out
        )
    elif "centres" in train_data.info.extras:
        task = dataclasses.replace(task, monitor="high_quality", monitor_mode="max")
        extras = train_data.info.extras
        evaluate_fn = mixture_evaluator(np.asarray(extras["centres"]), extras["std"])
    run_info = {
        "model": {"name": model, "config": model_config(net)},
        "dataset": {
            "name": dataset,
            "data_dir": data_dir,
            "options": dict(dataset_options or {}),
            "info": train_data.info.to_dict(),
        },
        "optimizer": optimizer_record(optimizer, learning_rate, clip_norm, schedule_record),
        "gan": options,
    }
    result = fit(
        state,
        train_data,
        task=task,
        epochs=epochs,
        batch_size=batch_size,
        seed=seed,
        checkpoint_dir=checkpoint_dir,
        checkpoint_options=checkpoint_options,
        resume=resume,
        early_stopping=early_stopping,
        whole_epoch=whole_epoch,
        debug=debug,
        progress=progress,
        run_info=run_info,
        train_step=train_step,
        evaluate_fn=evaluate_fn,
        diagnostics_every=diagnostics_every,
        diagnostics_step=(
            make_update_diagnostics_step(train_step) if diagnostics_every is not None else None
        ),
        callbacks=callbacks,
    )
    summary = summarize(model, dataset, result) | reference
    return Experiment(result, train_data, eval_data, summary)
