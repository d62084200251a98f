"""``fit``: the host loop around the compiled steps.

The loop owns epochs, evaluation, progress display, history, early stopping and the
checkpoint cadence; every number is computed inside compiled steps. Small in-memory training
sets run a whole epoch (or the part of it up to the next checkpoint) in one compiled call;
streamed data runs ``steps_per_call`` host batches per compiled call.
"""

import contextlib
import dataclasses
import itertools
import json
import math
import os
import sys
import time
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from tqdm.auto import tqdm

from adljax._validate import check_choice, check_positive_float, check_positive_int
from adljax.data import ArrayDataset, Dataset, epoch_permutation
from adljax.models import model_config, registered_name
from adljax.tasks import Task, get_task
from adljax.training import sharding
from adljax.training.callbacks import (
    Callback,
    EpochLog,
    Event,
    Stop,
    check_callbacks,
    summary_fields,
)
from adljax.training.checkpoint import CheckpointError, CheckpointManager, CheckpointOptions
from adljax.training.compilation import jit
from adljax.training.diagnostics import (
    DiagnosticsStep,
    PackedReports,
    make_diagnostics_step,
    report_record,
)
from adljax.training.ensemble import summarize_members
from adljax.training.epoch import make_epoch_fn, make_epoch_range_fn, make_row_fn
from adljax.training.prefetch import prefetch_to_device
from adljax.training.preflight import check_fit_arguments
from adljax.training.state import TrainState, ensemble_size
from adljax.training.steps import Augment, TrainStep, make_eval_step, make_train_step
from adljax.typing import Batch, Metrics

HISTORY_FILE = "history.jsonl"
# In-memory training sets up to this size are placed on the device for whole-epoch compilation.
WHOLE_EPOCH_MAX_BYTES = 2 * 1024**3
# Steps per compiled call where batches come from the host (streamed data, or
# ``whole_epoch=False``) and scans win: one dispatch per 8 steps instead of per step (digits
# MLP on 2 CPU cores: 222 -> 45 µs/step from memory, 345 -> 124 streamed; NOTES.md).
STEPS_PER_CALL = 8
# tqdm.auto draws a widget in a notebook, whose stderr is no terminal either.
_NOTEBOOK_BAR = any(cls.__module__ == "tqdm.notebook" for cls in tqdm.__mro__)
# The stages of a compilation that jax.monitoring times (tracing, lowering, XLA).
_COMPILE_EVENTS = frozenset(
    {
        "/jax/core/compile/jaxpr_trace_duration",
        "/jax/core/compile/jaxpr_to_mlir_module_duration",
        "/jax/core/compile/backend_compile_duration",
    }
)


class _CompileClock:
    """Counts the seconds JAX spends tracing and compiling while the context is open."""

    def __init__(self):
        self.seconds = 0.0

    def __call__(self, event: str, duration: float, **_: Any) -> None:
        if event in _COMPILE_EVENTS:
            self.seconds += duration

    def __enter__(self) -> "_CompileClock":
        jax.monitoring.register_event_duration_secs_listener(self)
        return self

    def __exit__(self, *_: Any) -> None:
        jax.monitoring.unregister_event_duration_listener(self)


class ResumeWarning(UserWarning):
    """``resume=True`` found no checkpoint to resume from, so training starts from scratch."""


class NonFiniteLossError(FloatingPointError):
    """Training produced a NaN or infinite loss; nothing after the last good save was kept."""


@dataclasses.dataclass(frozen=True)
class EarlyStopping:
    """Stop when ``monitor`` has not improved by ``min_delta`` for ``patience`` epochs.

    ``monitor`` names a history metric such as ``"eval/loss"`` or ``"train/accuracy"``;
    None (the default) watches the task's monitored metric, as the best checkpoints do
    (``eval/<task.monitor>``, or ``train/...`` without evaluation), with the task's ``mode``
    unless ``mode`` is given.
    """

    monitor: str | None = None
    mode: str | None = None
    patience: int = 5
    min_delta: float = 0.0

    def __post_init__(self):
        if self.mode is not None:
            check_choice(self.mode, "mode", ("min", "max"))
        check_positive_int(self.patience, "patience")
        check_positive_float(self.min_delta, "min_delta", allow_zero=True)

    def improved(self, value: float, best: float | None) -> bool:
        """Whether ``value`` beats ``best`` by more than ``min_delta`` (any value beats None)."""
        if best is None:
            return True
        if self.mode == "min":
            return value < best - self.min_delta
        return value > best + self.min_delta


@dataclasses.dataclass
class FitResult:
    """What ``fit`` returns.

    Attributes:
      state: the final train state.
      history: one record per epoch: ``{"epoch", "step", "time_s", "examples_per_sec",
        "train": {metric: value}, "eval": {metric: value}}`` (ensembles add ``<metric>_std``,
        the spread over members). ``time_s`` is the wall time of the epoch's training,
        compilation and step checkpoints included; ``examples_per_sec`` is measured over
        the epoch's compiled train calls that compiled nothing (``jax.monitoring``'s
        compile events); in an epoch where every call compiled (the first epoch of a
        whole-epoch run), over those calls less the time JAX spent tracing and compiling.
        Evaluation and checkpoint saves are never counted.
      stopped_early: whether training ended before ``epochs``: early stopping, or a
        callback's `Stop`.
      checkpoint_dir: where checkpoints and ``history.jsonl`` were written, if anywhere.
      stop_reason: why training stopped before ``epochs`` (early stopping, or the
        ``reason`` of a callback's ``Stop``), else None.
    """

    state: TrainState
    history: list[dict[str, Any]]
    stopped_early: bool = False
    checkpoint_dir: Path | None = None
    stop_reason: str | None = None


def fit(
    state: TrainState,
    train_data: Dataset,
    *,
    task: Task | str,
    epochs: int,
    batch_size: int,
    eval_data: Dataset | None = None,
    eval_batch_size: int = 512,
    seed: int = 0,
    checkpoint_dir: str | os.PathLike | None = None,
    checkpoint_options: CheckpointOptions | None = None,
    resume: bool = False,
    early_stopping: EarlyStopping | None = None,
    whole_epoch: bool | None = None,
    steps_per_call: int | None = None,
    devices: int | None = None,
    debug: bool = False,
    progress: bool = True,
    run_info: Mapping[str, Any] | None = None,
    augment: Augment | None = None,
    train_step: TrainStep | None = None,
    evaluate_fn: Callable[[TrainState], Mapping[str, float]] | None = None,
    diagnostics_every: int | None = None,
    diagnostics_step: DiagnosticsStep | None = None,
    callbacks: Sequence[Callback] = (),
) -> FitResult:
    """Trains ``state`` on ``train_data`` for ``epochs`` epochs in total.

    Args:
      state: a ``TrainState``, or an ensemble state from ``create_ensemble`` (leading member
        axis): every member then trains in the same compiled step.
      train_data: batches ``{"x": (B, ...), "y": (B, ...)}``; shuffled each epoch by
        ``epoch_permutation(len, seed, epoch)``; the last partial batch is dropped.
      task: a ``Task`` or its name; pairs the model's outputs with the labels.
      epochs: total number of epochs, counting those of a resumed run.
      batch_size: examples per step (per step over all devices).
      eval_data: evaluated after every epoch (metrics under ``eval``), if given.
      seed: the shuffling seed.
      checkpoint_dir: save checkpoints and ``history.jsonl`` here. A directory that already
        holds checkpoints is only used with ``resume=True``; nothing saved is overwritten.
      checkpoint_options: cadence and retention (default: every epoch, keep the last 2 and
        the best by the task's monitored metric).
      resume: continue the run saved in ``checkpoint_dir`` up to ``epochs``, with the same
        settings: a ``seed``, ``batch_size`` or ``run_info`` entry (model, configuration,
        dataset, optimizer...) that differs from the saved one raises ``ValueError`` naming
        it. When the directory holds no checkpoint, warns (``ResumeWarning``) and starts fresh.
      early_stopping: stop when a monitored metric stops improving.
      whole_epoch: run each epoch as one compiled ``lax.scan`` with the data on the device.
        ``None`` chooses it for in-memory data up to ``WHOLE_EPOCH_MAX_BYTES``, except for
        steps with convolutions on a CPU (XLA:CPU runs their gradients far slower inside
        a scan), which run one compiled call per step. Otherwise batches are read on the
        host (streamed data's reader) and run ``steps_per_call`` per compiled call.
      steps_per_call: host batches per compiled call (a loop over them) when the epoch is
        not one scan. ``None``: ``STEPS_PER_CALL`` (8), or 1 for steps that convolve on a
        CPU and with ``devices``. ``1`` computes exactly what a hand-written loop calling
        the jitted step per batch computes; more steps per call round differently in the
        last bit (XLA compiles the loop body as a different program), never depending on
        where callbacks, checkpoints or diagnostics split the calls.
      devices: shard each batch over this many devices (data parallel), parameters
        replicated. ``None`` uses the state's current placement.
      debug: run eagerly, without ``jax.jit``, to step through with a debugger.
      progress: show a progress bar on stderr with the loss, metrics and examples/s; when
        stderr is not a terminal (redirected to a file), one line per epoch instead
        (`adljax.training.callbacks.EpochLog`).
      run_info: extra JSON saved in each checkpoint's metadata (e.g. the model's registry
        name and configuration, the optimizer); ``predict`` rebuilds models from it.
      augment: ``augment(key, batch) -> batch``, a pure data augmentation run inside the
        compiled train step (see ``make_train_step``).
      train_step: a pure ``(state, batch) -> (state, metrics)`` step to use instead of
        ``make_train_step(task, augment)``, e.g. one wrapped by
        ``adljax.transfer.freeze_batch_stats``; its metrics must include ``loss``.
      evaluate_fn: ``evaluate_fn(state) -> {metric: float}``, run on the host after every
        epoch; its metrics join the epoch's ``eval`` group (e.g. detection mAP, a GAN's
        Fréchet distance), so they can be monitored. Single models only. Monitors naming
        its metrics are checked after the first epoch, the others before any compute.
      diagnostics_every: record ``adljax.diagnostics`` reports (per-layer gradient norms,
        update-to-weight ratios, activation statistics, batch-norm drift) before every step
        ``s`` of the run (counted as the history's ``step``, from 0) that is a multiple of
        this, in the epoch's history record under ``"diagnostics"``: ``[{"step": s,
        "grad_norm": {layer: x}, ...}]``. Each report describes the update step ``s`` makes
        (same batch, keys and state). ``None`` (the default) compiles and runs exactly what
        runs without diagnostics.
      diagnostics_step: the ``diagnose(state, batch)`` to record (default
        ``make_diagnostics_step(task, augment)``); needed with a custom ``train_step``.
      callbacks: `adljax.training.callbacks.Callback` s, called on the host when training
        begins, every ``every_steps`` steps, at every epoch's end (after evaluation, before
        the checkpoint) and when training ends; a hook that returns a ``Stop`` ends
        training. They never change what is computed, and add no host synchronisation on
        steps where none is due. E.g. `adljax.training.metric_logs.metric_loggers`.

    Returns:
      A ``FitResult``.

    Raises:
      ValueError: for bad arguments, before any compute and before ``checkpoint_dir`` is
        created (`adljax.training.preflight.check_fit_arguments`): among them a model that
        does not take ``train_data``'s or ``eval_data``'s inputs, or whose output width does
        not fit the task and the labels (the dataset's classes, the regression targets).
      CheckpointError: if ``checkpoint_dir`` holds another run (or a damaged one).
      NonFiniteLossError: when the loss becomes NaN or infinite; the last good checkpoint is
        left intact and complete.
    """
    task = get_task(task) if isinstance(task, str) else task
    callbacks = check_callbacks(callbacks)
    check_fit_arguments(
        state,
        train_data,
        task=task,
        epochs=epochs,
        batch_size=batch_size,
        eval_data=eval_data,
        eval_batch_size=eval_batch_size,
        seed=seed,
        checkpoint_dir=checkpoint_dir,
        resume=resume,
        whole_epoch=whole_epoch,
        steps_per_call=steps_per_call,
        devices=devices,
        augment=augment,
        train_step=train_step,
        evaluate_fn=evaluate_fn,
        diagnostics_every=diagnostics_every,
        diagnostics_step=diagnostics_step,
    )
    members = ensemble_size(state)
    if diagnostics_every is not None and diagnostics_step is None:
        diagnostics_step = make_diagnostics_step(task, augment)
    mesh = sharding.data_mesh(devices) if devices is not None else None
    train_step = train_step or make_train_step(task, augment)
    # Traced only where it decides something: fit's choice of whole-epoch or steps per call.
    scan_wins = False
    if whole_epoch is None or (not whole_epoch and steps_per_call is None):
        scan_wins = not debug and not _slow_inside_scan(
            train_step, state, train_data, batch_size, members
        )
    if whole_epoch is None:
        whole_epoch = (
            scan_wins
            and isinstance(train_data, ArrayDataset)
            and train_data.nbytes <= WHOLE_EPOCH_MAX_BYTES
        )
    if steps_per_call is None:
        steps_per_call = STEPS_PER_CALL if not whole_epoch and scan_wins and mesh is None else 1
    has_eval = eval_data is not None or evaluate_fn is not None
    monitor = f"{'eval' if has_eval else 'train'}/{task.monitor}"
    if early_stopping is not None:
        early_stopping = dataclasses.replace(
            early_stopping,
            monitor=early_stopping.monitor or monitor,
            mode=early_stopping.mode
            or (task.monitor_mode if not early_stopping.monitor else "min"),
        )

    manager, created, finished = None, False, False
    if checkpoint_dir is not None:
        created = not Path(checkpoint_dir).exists()
        manager = CheckpointManager(
            checkpoint_dir, checkpoint_options, monitor=monitor, mode=task.monitor_mode
        )
    try:
        run = _Run(
            task=task,
            state=state,
            train_data=train_data,
            eval_data=eval_data,
            batch_size=batch_size,
            eval_batch_size=eval_batch_size,
            seed=seed,
            members=members,
            mesh=mesh,
            whole_epoch=whole_epoch,
            steps_per_call=1 if whole_epoch else steps_per_call,
            debug=debug,
            manager=manager,
            run_info=_describe_run(state, train_data, run_info),
            early_stopping=early_stopping,
            train_step=train_step,
            evaluate_fn=evaluate_fn,
            diagnostics=(diagnostics_step, diagnostics_every) if diagnostics_every else None,
            callbacks=callbacks,
        )
        if manager is not None:
            run.restore_or_check_empty(resume)
        with jax.disable_jit(debug):
            run.train(epochs, progress)
        finished = True
    finally:
        if manager is not None:
            manager.close()
            if created and not finished:
                _remove_if_empty(manager.directory)
    return FitResult(
        state=run.state,
        history=run.history,
        stopped_early=run.stopped_early or run.stop_reason is not None,
        checkpoint_dir=manager.directory if manager is not None else None,
        stop_reason=run.stop_reason,
    )


def _remove_if_empty(directory: Path) -> None:
    """Removes the checkpoint directory a failed ``fit`` created, if nothing was saved in it."""
    with contextlib.suppress(OSError):  # not empty (a checkpoint was written): kept
        directory.rmdir()


def _step_rows(values: np.ndarray, steps: int | None) -> np.ndarray:
    """``(steps, ...)`` rows of one metric from `_Run._run_batches` (one step's own value,
    given a leading axis, when ``steps`` is None)."""
    return values[None] if steps is None else values[:steps]


def _slow_inside_scan(
    train_step: TrainStep,
    state: TrainState,
    train_data: Dataset,
    batch_size: int,
    members: int | None,
) -> bool:
    """Whether the step computes convolution gradients on a CPU, which XLA:CPU runs one to two
    orders of magnitude slower inside a ``lax.scan`` (a kernel-gradient convolution measured
    4.3 s in a scan of 22 steps against 39 ms called step by step; see benchmarks/NOTES.md)."""
    platforms = {device.platform for leaf in jax.tree.leaves(state) for device in leaf.devices()}
    if platforms != {"cpu"}:
        return False
    batch = next(iter(train_data.batches(batch_size, shuffle=False)))
    step = jax.vmap(train_step, in_axes=(0, None)) if members is not None else train_step
    return _has_convolution(jax.make_jaxpr(step)(state, batch).jaxpr)


def _has_convolution(jaxpr) -> bool:
    """Whether ``jaxpr`` or any jaxpr nested in it (scan, cond, custom_vjp...) convolves."""
    for equation in jaxpr.eqns:
        if equation.primitive.name == "conv_general_dilated":
            return True
        for value in equation.params.values():
            for inner in value if isinstance(value, tuple | list) else (value,):
                inner = getattr(inner, "jaxpr", inner)  # ClosedJaxpr -> Jaxpr
                if hasattr(inner, "eqns") and _has_convolution(inner):
                    return True
    return False


def _describe_run(
    state: TrainState, train_data: Dataset, run_info: Mapping[str, Any] | None
) -> dict[str, Any]:
    """``run_info`` completed with the model's and the dataset's description and the
    mixed-precision policy's name (``dtype``, which ``load_checkpoint`` restores)."""
    model = state.model
    described = {
        "model": {
            "name": registered_name(model),
            "class": f"{type(model).__module__}.{type(model).__qualname__}",
            "config": model_config(model),
        },
        "dtype": state.policy.name,
    }
    info = getattr(train_data, "info", None)
    if info is not None:
        described["dataset"] = {"name": info.name, "info": info.to_dict()}
    return described | dict(run_info or {})


# Metadata that describes a run without being one of its settings: may change on resume.
_NOT_SETTINGS = ("dataset.data_dir", "dataset.info", "pretrained")


def _changed_settings(
    saved: Mapping[str, Any], current: Mapping[str, Any]
) -> list[tuple[str, Any, Any]]:
    """``(dotted name, saved, current)`` for each setting that differs between the saved
    run's metadata and this run's; groups that older metadata lacks are not compared."""
    current = json.loads(json.dumps(current))  # tuples as lists, as they were saved
    changes = []
    for group in current.keys() & saved.keys():
        changes += _differences(saved[group], current[group], group)
    return [change for change in sorted(changes) if not change[0].startswith(_NOT_SETTINGS)]


_ABSENT = "(absent)"


def _differences(saved: Any, current: Any, name: str) -> list[tuple[str, Any, Any]]:
    if isinstance(saved, Mapping) and isinstance(current, Mapping):
        return [
            change
            for key in sorted(saved.keys() | current.keys())
            for change in _differences(
                saved.get(key, _ABSENT), current.get(key, _ABSENT), f"{name}.{key}"
            )
        ]
    return [] if saved == current else [(name, saved, current)]


def _shown(value: Any) -> str:
    if value is _ABSENT:
        return value
    return json.dumps(value) if not isinstance(value, str) else repr(value)


class _Run:
    """The mutable bookkeeping of one ``fit`` call (kept out of the compiled steps)."""

    def __init__(
        self,
        *,
        task,
        state,
        train_data,
        eval_data,
        batch_size,
        eval_batch_size,
        seed,
        members,
        mesh,
        whole_epoch,
        steps_per_call,
        debug,
        manager,
        run_info,
        early_stopping,
        train_step,
        evaluate_fn,
        diagnostics,
        callbacks,
    ):
        self.task, self.train_data, self.eval_data = task, train_data, eval_data
        self.batch_size, self.seed, self.members, self.mesh = batch_size, seed, members, mesh
        self.whole_epoch, self.manager, self.run_info = whole_epoch, manager, run_info
        self.steps_per_call = steps_per_call
        self.early_stopping = early_stopping
        self.evaluate_fn = evaluate_fn
        self.num_batches = len(train_data) // batch_size
        self.epoch, self.batch_in_epoch = 0, 0
        # Per-step metrics of the current epoch, one ``{name: (steps, ...)}`` per segment.
        self.epoch_metrics: list[dict[str, np.ndarray]] = []
        # The diagnostics reports of the current epoch's steps (JSON-ready).
        self.epoch_diagnostics: list[dict[str, Any]] | None = None
        # The per-step path's batches of the current epoch (`_open_epoch_batches`).
        self.epoch_batches: Iterator[Any] | None = None
        self.history: list[dict[str, Any]] = []
        self.best: float | None = None
        self.epochs_without_improvement = 0
        self.stopped_early = False
        self.stop_reason: str | None = None
        self.last_saved_step: int | None = None
        self.callbacks = callbacks
        # Steps counts at which a compiled call must end: step checkpoints, step callbacks.
        options = manager.options if manager is not None else None
        self.checkpoint_every = options.every_steps if options is not None else None
        self.cadences = sorted(
            {every for every in (self.checkpoint_every,) if every is not None}
            | {cb.every_steps for cb in callbacks if getattr(cb, "every_steps", None)}
        )

        eval_step = make_eval_step(task)
        if members is not None:
            train_step = jax.vmap(train_step, in_axes=(0, None))
            eval_step = jax.vmap(eval_step, in_axes=(0, None))
        # Steps donate their input state: train on a copy so the caller's state stays usable.
        state = jax.tree.map(lambda leaf: leaf.copy(), state)
        self.batch_sharding = None
        if mesh is not None:
            state = jax.device_put(state, sharding.replicated(mesh))
            self.batch_sharding = sharding.batch_sharded(mesh)
        self.state = state
        compile_fn = (lambda f, **_: f) if debug else jit
        self.eval_step = compile_fn(eval_step)
        self.eval_batch_size = self._eval_batch_size(eval_batch_size)
        if early_stopping is not None or manager is not None:
            self._check_monitors(train_step, eval_step)
        diagnose, self.diagnostics_every = diagnostics or (None, None)
        if diagnose is not None:
            if members is not None:
                diagnose = jax.vmap(diagnose, in_axes=(0, None))
            self.epoch_diagnostics = []
        # An epoch split into several compiled calls (diagnosed steps, step checkpoints, step
        # callbacks) runs them with traced bounds: one compilation serves every range.
        self.segmented = diagnose is not None or bool(self.cadences)
        if whole_epoch:
            if not self.segmented:
                epoch_fn = make_epoch_fn(train_step, self.batch_sharding)
            else:
                epoch_fn = make_epoch_range_fn(train_step, self.batch_sharding)
            if diagnose is not None:
                diagnose = make_row_fn(diagnose, self.batch_sharding)
            self.run_steps = compile_fn(epoch_fn, donate_argnums=0)
            placement = sharding.replicated(mesh) if mesh is not None else None
            self.device_data = jax.device_put(dict(train_data.arrays), placement)
        elif steps_per_call > 1:
            # Up to `steps_per_call` host batches, concatenated, run as one compiled loop.
            range_fn = make_epoch_range_fn(train_step, self.batch_sharding)
            self.run_steps = compile_fn(range_fn, donate_argnums=0)
            rows = np.arange(steps_per_call * batch_size, dtype=np.int32)
            self.chunk_rows = rows.reshape(steps_per_call, batch_size)
        else:
            self.train_step = compile_fn(train_step, donate_argnums=0)
        self.packed = PackedReports(diagnose) if diagnose is not None else None
        self.diagnose = compile_fn(self.packed) if diagnose is not None else None

    def _check_monitors(self, train_step, eval_step) -> None:
        """Raises ``ValueError`` before any compute if a monitored metric will not exist."""
        batch = next(iter(self.train_data.batches(self.batch_size, shuffle=False)))
        _, train_metrics = jax.eval_shape(train_step, self.state, batch)
        names = {f"train/{name}" for name in train_metrics}
        if self.eval_data is not None:
            statistics = jax.eval_shape(eval_step, self.state, batch)
            names |= {f"eval/{name}" for name in jax.eval_shape(self.task.metrics, statistics)}
        if self.members is not None:
            names |= {f"{name}_std" for name in names}
        for what, monitor in self._monitors().items():
            if monitor.startswith("eval/") and self.evaluate_fn is not None:
                continue  # evaluate_fn's metrics are known only after the first epoch
            if monitor not in names:
                raise ValueError(
                    f"{what} is {monitor!r}, which this run does not produce; "
                    f"choose one of {sorted(names)}"
                )

    # ----- checkpoints -------------------------------------------------------------------

    def restore_or_check_empty(self, resume: bool) -> None:
        latest = self.manager.latest_step()
        if latest is None:
            if resume:
                warnings.warn(
                    f"nothing to resume in {str(self.manager.directory)!r} (no checkpoint); "
                    "training from scratch",
                    ResumeWarning,
                    stacklevel=4,
                )
            return
        if not resume:
            raise CheckpointError(
                f"{str(self.manager.directory)!r} already holds a run (latest step {latest}); "
                f"pass resume=True (--resume) to continue it, or choose another checkpoint_dir"
            )
        self._check_same_settings(self.manager.read_meta(latest, require=("data_position",)))
        self.state, meta = self.manager.restore(self.state, latest)
        if self.mesh is not None:
            self.state = jax.device_put(self.state, sharding.replicated(self.mesh))
        position = meta["data_position"]
        self.epoch, self.batch_in_epoch = position["epoch"], position["batch_in_epoch"]
        self.epoch_metrics = [
            {name: np.asarray(values, np.float32) for name, values in part.items()}
            for part in meta.get("epoch_metrics", [])
        ]
        self.history = list(meta.get("history", []))
        if self.epoch_diagnostics is not None:
            self.epoch_diagnostics = list(meta.get("epoch_diagnostics", []))
        stopping = meta.get("early_stopping", {})
        self.best = stopping.get("best")
        self.epochs_without_improvement = stopping.get("epochs_without_improvement", 0)
        self.stopped_early = stopping.get("stopped", False)
        if self.stopped_early:
            self.stop_reason = self._early_stopping_reason()
        self.last_saved_step = latest
        self._write_history()

    def _check_same_settings(self, saved: Mapping[str, Any]) -> None:
        """Raises ``ValueError`` naming each training setting that differs from the saved
        run's (model, its configuration, task, dataset, optimizer, seed, batch size...)."""
        position = saved.get("data_position") or {}
        ordering = {name: position[name] for name in ("seed", "batch_size") if name in position}
        current = {**self.run_info, "task": self.task.name}
        current["data_position"] = {"seed": self.seed, "batch_size": self.batch_size}
        changes = [
            f"{name}: saved {_shown(was)}, now {_shown(now)}"
            for name, was, now in _changed_settings(saved | {"data_position": ordering}, current)
        ]
        if changes:
            listed = "\n  ".join(changes)
            raise ValueError(
                f"the run in {str(self.manager.directory)!r} was trained with other settings; "
                f"resume it with the saved ones, or train in a new checkpoint_dir:\n  {listed}"
            )

    def _save(self, metrics: Mapping[str, float] | None) -> None:
        step = self.epoch * self.num_batches + self.batch_in_epoch
        meta = {
            **self.run_info,
            "task": self.task.name,
            "data_position": {
                "epoch": self.epoch,
                "batch_in_epoch": self.batch_in_epoch,
                "seed": self.seed,
                "batch_size": self.batch_size,
                "num_batches": self.num_batches,
            },
            # The metrics of this epoch's steps so far, so a resumed epoch averages them all.
            "epoch_metrics": [
                {name: values.tolist() for name, values in part.items()}
                for part in self.epoch_metrics
            ],
            "metrics": dict(metrics or {}),
            "history": self.history,
            **({"epoch_diagnostics": self.epoch_diagnostics} if self.epoch_diagnostics else {}),
            "early_stopping": {
                "best": self.best,
                "epochs_without_improvement": self.epochs_without_improvement,
                "stopped": self.stopped_early,
            },
        }
        self.manager.save(step, self.state, meta, metrics)
        self.last_saved_step = step

    def _write_history(self) -> None:
        path = self.manager.directory / HISTORY_FILE
        temporary = path.with_suffix(".jsonl.tmp")
        temporary.write_text("".join(json.dumps(record) + "\n" for record in self.history))
        temporary.replace(path)

    # ----- training ----------------------------------------------------------------------

    def train(self, epochs: int, progress: bool) -> None:
        total = epochs * self.num_batches
        done = self.epoch * self.num_batches + self.batch_in_epoch
        # A bar redraws one line with carriage returns: in a file, log one line per epoch.
        show_bar = progress and (sys.stderr.isatty() or _NOTEBOOK_BAR)
        if progress and not show_bar:
            self.callbacks = (*self.callbacks, EpochLog())
        bar = tqdm(
            total=total,
            initial=min(done, total),
            unit="step",
            disable=not show_bar,
            file=sys.stderr,
            dynamic_ncols=True,
        )
        self.epochs, self.start_time = epochs, time.perf_counter()
        try:
            with _CompileClock() as self.compile_clock:
                self._request_stop(self._notify("on_train_begin"))
                while self.epoch < epochs and not self.stopped_early and not self.stop_reason:
                    self._train_epoch(epochs, bar)
        finally:
            bar.close()
            self._notify("on_train_end")

    def _notify(
        self,
        hook: str,
        *,
        metrics: Mapping[str, float] | None = None,
        record: Mapping[str, Any] | None = None,
    ) -> str | None:
        """Calls ``hook`` of every callback that has it (``on_step``: those due at this step);
        returns the first stop request's reason."""
        step = self.epoch * self.num_batches + self.batch_in_epoch
        due = [
            cb
            for cb in self.callbacks
            if callable(getattr(cb, hook, None))
            and (hook != "on_step" or (cb.every_steps and step % cb.every_steps == 0))
        ]
        if not due:
            return None
        event = Event(
            epoch=self.epoch,
            epochs=self.epochs,
            step=step,
            steps_per_epoch=self.num_batches,
            state=self.state,
            metrics=dict(metrics or {}),
            record=record,
            history=tuple(self.history),
            elapsed_s=time.perf_counter() - self.start_time,
            checkpoint_dir=self.manager.directory if self.manager is not None else None,
        )
        requests = [getattr(cb, hook)(event) for cb in due]
        reasons = [request.reason for request in requests if isinstance(request, Stop)]
        return reasons[0] if reasons else None

    def _request_stop(self, reason: str | None) -> None:
        if reason is not None and self.stop_reason is None:
            self.stop_reason = reason

    def _train_epoch(self, epochs: int, bar) -> None:
        order = epoch_permutation(len(self.train_data), self.seed, self.epoch)
        indices = order[: self.num_batches * self.batch_size].reshape(self.num_batches, -1)
        bar.set_description(f"epoch {self.epoch + 1}/{epochs}")
        start_time = time.perf_counter()
        # (examples, seconds) of the calls that compiled nothing, and of those that did
        # (their compile time taken out): the speed is measured over the first if any.
        timings = {False: [0, 0.0], True: [0, 0.0]}
        if not self.whole_epoch:
            self._open_epoch_batches()
        try:
            self._run_segments(epochs, bar, indices, timings)
        finally:
            if self.epoch_batches is not None:
                self.epoch_batches.close()  # ends the epoch's reader threads
                self.epoch_batches = None
        if self.batch_in_epoch < self.num_batches:
            return  # stopped mid-epoch: the epoch's steps so far are in the checkpoint
        elapsed = time.perf_counter() - start_time
        examples, seconds = timings[False] if timings[False][0] else timings[True]
        record = self._epoch_record(self.epoch_metrics, elapsed, examples / max(seconds, 1e-9))
        if self.epoch_diagnostics is not None:
            record["diagnostics"], self.epoch_diagnostics = self.epoch_diagnostics, []
        bar.set_postfix(summary_fields(record), refresh=False)
        self.epoch, self.batch_in_epoch, self.epoch_metrics = self.epoch + 1, 0, []
        self.history.append(record)
        self._update_early_stopping(record)
        self._request_stop(self._notify("on_epoch_end", metrics=_flatten(record), record=record))
        if self.manager is not None:
            last = self.epoch == epochs or self.stopped_early or self.stop_reason
            every = self.manager.options.every_epochs
            if last or (every is not None and self.epoch % every == 0):
                self._save(metrics=_flatten(record))
            self._write_history()

    def _open_epoch_batches(self) -> None:
        """Starts reading this epoch's batches from ``batch_in_epoch`` on: the dataset's own
        reader (grain's for a streamed one), then `prefetch_to_device` onto the batch
        sharding or the train state's device, unless that is the one CPU device."""
        batches = self.train_data.batches(
            self.batch_size, seed=self.seed, epoch=self.epoch, start_batch=self.batch_in_epoch
        )
        placement = self.batch_sharding
        if placement is None:
            placement = jax.tree.leaves(self.state.params)[0].sharding
            if all(device.platform == "cpu" for device in placement.device_set):
                # One CPU device: the jitted step reads NumPy batches for less than the
                # ~55 µs of an explicit device_put (per-step digits epoch: 180 -> 272 µs/step).
                self.epoch_batches = iter(batches)
                return
        self.epoch_batches = prefetch_to_device(batches, placement)

    def _run_segments(self, epochs: int, bar, indices: np.ndarray, timings: dict) -> None:
        """Runs the epoch's compiled calls up to its end or a stop request, checkpointing
        and calling step callbacks between them."""
        for stop in self._segment_ends():
            started, compiling = time.perf_counter(), self.compile_clock.seconds
            metrics = self._run_segment(indices, stop)
            compiled = self.compile_clock.seconds - compiling
            timing = timings[compiled > 0]
            timing[0] += (stop - self.batch_in_epoch) * self.batch_size
            timing[1] += time.perf_counter() - started - compiled
            losses = np.asarray(metrics["loss"])
            if not np.all(np.isfinite(losses)):
                self._raise_non_finite(losses)
            self.epoch_metrics.append(metrics)
            bar.update(stop - self.batch_in_epoch)
            self.batch_in_epoch = stop
            last_step = {name: np.asarray(values)[-1] for name, values in metrics.items()}
            last_step = {f"train/{k}": v for k, v in self._summarize(last_step).items()}
            self._request_stop(self._notify("on_step", metrics=last_step))
            if stop < self.num_batches:
                step = self.epoch * self.num_batches + stop
                checkpoint_due = self.checkpoint_every and step % self.checkpoint_every == 0
                if self.manager is not None and (checkpoint_due or self.stop_reason):
                    self._save(metrics=None)
                if self.stop_reason:
                    return

    def _segment_ends(self) -> Iterator[int]:
        """Batch positions in this epoch where a compiled call ends: after each step whose
        count is a multiple of a cadence (step checkpoints, step callbacks), and at the end."""
        first = self.epoch * self.num_batches
        position = self.batch_in_epoch
        while position < self.num_batches:
            ends = [(first + position) // n * n + n - first for n in self.cadences]
            end = min([self.num_batches, *ends])
            yield end
            position = end

    def _run_segment(self, indices: np.ndarray, stop: int) -> dict[str, np.ndarray]:
        """Runs the steps of batches ``[batch_in_epoch, stop)``; metrics ``(steps, ...)``.
        The diagnostics reports of the steps due for one join ``epoch_diagnostics``."""
        rows = indices[self.batch_in_epoch : stop]
        first = self.epoch * self.num_batches + self.batch_in_epoch
        due = self._diagnosed(first, len(rows))
        if self.whole_epoch and not self.segmented:
            self.state, metrics = self.run_steps(self.state, self.device_data, rows)
            return jax.device_get(metrics)
        if self.whole_epoch:
            # Stop before each diagnosed step: diagnose it, then run up to the next one. The
            # whole epoch's rows go in every call, so one compilation serves every range.
            epoch_rows = np.asarray(indices, np.int32)
            diagnosed = set((self.batch_in_epoch + due).tolist())
            bounds = sorted({self.batch_in_epoch, *diagnosed, stop})
            reports, parts = [], []
            for begin, end in itertools.pairwise(bounds):
                if begin in diagnosed:
                    report = self.diagnose(self.state, self.device_data, epoch_rows[begin])
                    reports.append((first + begin - self.batch_in_epoch, report))
                self.state, metrics = self.run_steps(
                    self.state, self.device_data, epoch_rows, np.int32(begin), np.int32(end)
                )
                parts.append((begin, end, metrics))
            self._record_reports(reports)
            return {
                name: np.concatenate(
                    [np.asarray(m[name])[begin:end] for begin, end, m in jax.device_get(parts)]
                )
                for name in parts[0][2]
            }
        collected, reports, due, pending = [], [], set(due.tolist()), []
        for offset, batch in enumerate(itertools.islice(self.epoch_batches, len(rows))):
            if offset in due:
                collected += self._run_batches(pending)
                pending = []
                reports.append((first + offset, self.diagnose(self.state, batch)))
            pending.append(batch)
            if len(pending) == self.steps_per_call:
                collected += self._run_batches(pending)
                pending = []
        collected += self._run_batches(pending)
        self._record_reports(reports)
        collected = jax.device_get(collected)
        return {
            name: np.concatenate([_step_rows(m[name], count) for count, m in collected])
            for name in collected[0][1]
        }

    def _run_batches(self, batches: list[Batch]) -> list[tuple[int | None, Metrics]]:
        """Trains on ``batches``: ``[(steps, metrics)]`` on the device, metrics ``(>= steps,
        ...)``, or one step's own metrics with ``steps`` None (one step per call). Several
        host batches go in one compiled call when ``steps_per_call > 1``, padded to that many
        with copies of the last, which are not trained on."""
        if not batches:
            return []
        if self.steps_per_call == 1:
            (batch,) = batches
            self.state, metrics = self.train_step(self.state, batch)
            return [(None, metrics)]
        count = len(batches)
        padded = batches + batches[-1:] * (self.steps_per_call - count)
        concatenate = np.concatenate if isinstance(batches[0]["x"], np.ndarray) else jnp.concatenate
        data = jax.tree.map(lambda *parts: concatenate(parts), *padded)
        self.state, metrics = self.run_steps(
            self.state, data, self.chunk_rows, np.int32(0), np.int32(count)
        )
        return [(count, metrics)]

    def _record_reports(self, reports: list[tuple[int, Any]]) -> None:
        """Fetches ``(step, report)`` pairs and appends them to ``epoch_diagnostics``."""
        for step, report in jax.device_get(reports):
            self.epoch_diagnostics.append(report_record(step, self.packed.unpack(report)))

    def _diagnosed(self, first: int, count: int) -> np.ndarray:
        """Offsets in ``[0, count)`` of the steps ``first + offset`` due for diagnostics."""
        if self.diagnostics_every is None:
            return np.zeros(0, np.int64)
        return np.flatnonzero((first + np.arange(count)) % self.diagnostics_every == 0)

    def _raise_non_finite(self, losses: np.ndarray) -> None:
        bad = int(np.argmax(~np.isfinite(losses).reshape(losses.shape[0], -1).all(axis=1)))
        step = self.epoch * self.num_batches + self.batch_in_epoch + bad + 1
        saved = "no checkpoint was saved"
        if self.manager is not None:
            self.manager.wait()
            if self.last_saved_step is not None:
                saved = (
                    f"the last good checkpoint (step {self.last_saved_step}) in "
                    f"{str(self.manager.directory)!r} is intact"
                )
        raise NonFiniteLossError(
            f"the training loss became non-finite at step {step} (epoch {self.epoch + 1}); "
            f"{saved}. Try a smaller learning rate or gradient clipping."
        )

    # ----- metrics -----------------------------------------------------------------------

    def _epoch_record(self, step_metrics, elapsed: float, speed: float) -> dict[str, Any]:
        merged = {name: np.concatenate([m[name] for m in step_metrics]) for name in step_metrics[0]}
        # Mean over the epoch's steps: (steps,) -> scalar, or (steps, K) -> (K,) per member.
        record = {
            "epoch": self.epoch + 1,
            "step": (self.epoch + 1) * self.num_batches,
            "time_s": round(elapsed, 4),
            "examples_per_sec": round(speed, 1),
            "train": self._summarize({n: v.mean(axis=0) for n, v in merged.items()}),
        }
        if self.eval_data is not None:
            record["eval"] = self._summarize(self.evaluate(self.eval_data))
        if self.evaluate_fn is not None:
            extra = {name: float(value) for name, value in self.evaluate_fn(self.state).items()}
            record["eval"] = record.get("eval", {}) | extra
            self._check_monitors_present(record)
        return record

    def _monitors(self) -> dict[str, str]:
        """``{what watches: metric}`` for early stopping and the best checkpoints."""
        monitors = {}
        if self.early_stopping is not None:
            monitors["early_stopping.monitor"] = self.early_stopping.monitor
        if self.manager is not None and self.manager.options.keep_best:
            monitors["checkpoint monitor"] = self.manager.monitor
        return monitors

    def _check_monitors_present(self, record: Mapping[str, Any]) -> None:
        """Raises ``ValueError`` if a monitor names a metric this epoch's record lacks (the
        metrics of ``evaluate_fn`` are known only once it has run)."""
        names = set(_flatten(record))
        for what, monitor in self._monitors().items():
            if monitor not in names:
                raise ValueError(
                    f"{what} {monitor!r} is not among this run's metrics {sorted(names)}"
                )

    def _summarize(self, values: Mapping[str, np.ndarray]) -> dict[str, float]:
        if self.members is None:
            return {name: float(value) for name, value in values.items()}
        return summarize_members(values)

    def evaluate(self, data: Dataset) -> dict[str, np.ndarray]:
        """Exact metrics over ``data`` (per member for ensembles)."""
        return evaluate_statistics(
            self.eval_step,
            self.state,
            data,
            self.task,
            self.eval_batch_size,
            self.batch_sharding,
        )

    def _eval_batch_size(self, requested: int) -> int:
        size = requested
        if self.eval_data is not None:
            size = min(size, len(self.eval_data))
        if self.mesh is not None:
            devices = self.mesh.shape[sharding.DATA_AXIS]
            size = math.ceil(size / devices) * devices
        return size

    def _update_early_stopping(self, record: dict[str, Any]) -> None:
        if self.early_stopping is None:
            return
        value = _flatten(record)[self.early_stopping.monitor]
        if self.early_stopping.improved(value, self.best):
            self.best, self.epochs_without_improvement = value, 0
        else:
            self.epochs_without_improvement += 1
            self.stopped_early = self.epochs_without_improvement >= self.early_stopping.patience
            if self.stopped_early:
                self.stop_reason = self._early_stopping_reason()

    def _early_stopping_reason(self) -> str:
        stopping = self.early_stopping
        monitor = stopping.monitor if stopping is not None else "the monitored metric"
        return f"early stopping: {monitor} stopped improving"


def evaluate_statistics(
    eval_step: Callable,
    state: TrainState,
    data: Dataset,
    task: Task,
    batch_size: int,
    batch_sharding: jax.sharding.Sharding | None = None,
) -> dict[str, np.ndarray]:
    """Runs ``eval_step`` over every example of ``data`` once (last batch padded, masked)."""
    total = None
    for batch in data.batches(batch_size, shuffle=False, drop_remainder=False):
        if batch_sharding is not None:
            batch = jax.device_put(batch, batch_sharding)
        statistics = eval_step(state, batch)
        total = statistics if total is None else jax.tree.map(np.add, total, statistics)
    return {name: np.asarray(value) for name, value in task.metrics(total).items()}


def _flatten(record: Mapping[str, Any]) -> dict[str, float]:
    """``{"train": {"loss": x}}`` -> ``{"train/loss": x}``."""
    return {
        f"{group}/{name}": value
        for group in ("train", "eval")
        for name, value in record.get(group, {}).items()
    }
