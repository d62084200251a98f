"""Callbacks: host functions that ``fit`` calls at the start, every N steps, at every epoch's
end and at the end of training, with the state and the metrics.

A callback is any object with some of the hooks of `Callback` (subclass it, or build one
from plain functions with `callback`). Each hook receives an `Event`. A hook asks ``fit``
to stop by returning a `Stop`; any other return value is ignored::

    def save_samples(event):                     # a GAN's samples every 500 steps
        images = adljax.gan.sampling.sample(event.state, jax.random.key(0), 64)
        adljax.gan.plots.plot_samples(images, f"samples/{event.step:06d}.png")

    def stop_when_perfect(event):
        if event.metrics["eval/accuracy"] == 1.0:
            return Stop("eval accuracy reached 1")

    fit(..., callbacks=[callback(on_step=save_samples, every_steps=500),
                        callback(on_epoch_end=stop_when_perfect)])

Callbacks run on the host between compiled calls and never change what is computed: a run
with callbacks trains exactly as one without. Steps where no callback is due run without
any extra host synchronisation (a whole-epoch ``lax.scan`` is only split where a step hook
needs the host). Metrics that should join the history (to be monitored, checkpointed and
logged) belong in ``fit``'s ``evaluate_fn``; callbacks observe.
"""

import dataclasses
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TextIO

from adljax._validate import check_positive_int


@dataclasses.dataclass(frozen=True)
class Event:
    """What a hook sees.

    Attributes:
      epoch: epochs completed (a resumed run counts those before it).
      epochs: the run's total number of epochs (``fit``'s ``epochs``).
      step: train steps completed over the whole run.
      steps_per_epoch: train steps per epoch.
      state: the current ``TrainState`` (an ensemble state for ensembles). Read it; steps
        donate their input, so keep no reference to its arrays past the hook.
      metrics: flat ``{"train/loss": x, "eval/accuracy": y, ...}``: at an epoch's end the
        epoch's history record; at a step, that step's train metrics; empty otherwise.
      record: the epoch's history record (``on_epoch_end`` only, else None).
      history: every epoch record so far, a resumed run's earlier ones included.
      elapsed_s: seconds since this ``fit`` call started training.
      checkpoint_dir: ``fit``'s checkpoint directory, or None.
    """

    epoch: int
    epochs: int
    step: int
    steps_per_epoch: int
    state: Any
    metrics: Mapping[str, float]
    record: Mapping[str, Any] | None
    history: Sequence[Mapping[str, Any]]
    elapsed_s: float
    checkpoint_dir: Path | None


@dataclasses.dataclass(frozen=True)
class Stop:
    """Returned by a hook to end training: at an epoch's end, after that epoch (saved as the
    last epoch is); at a step, right after that step (a checkpoint is saved there, so
    ``resume=True`` continues exactly). ``fit`` reports ``reason`` in
    ``FitResult.stop_reason``. Unlike early stopping, the request is not saved: a resumed
    run asks its callbacks again."""

    reason: str = "a callback asked to stop"


class Callback:
    """The hooks ``fit`` calls; each default does nothing. Override those you need.

    ``every_steps``: call ``on_step`` after every step whose count (``event.step``) is a
    multiple of it; None (the default) never calls it.
    """

    every_steps: int | None = None

    def on_train_begin(self, event: Event) -> Stop | None:
        """Once, before the first step (after a resumed run's state is restored)."""

    def on_step(self, event: Event) -> Stop | None:
        """After every ``every_steps``-th step."""

    def on_epoch_end(self, event: Event) -> Stop | None:
        """After each epoch's evaluation, before its checkpoint is saved."""

    def on_train_end(self, event: Event) -> None:
        """Once, when training ends, also when it fails (to close files)."""


Hook = Callable[[Event], Stop | None]


class _FunctionCallback(Callback):
    def __init__(self, hooks: Mapping[str, Hook | None], every_steps: int | None):
        self.every_steps = every_steps
        for name, hook in hooks.items():
            if hook is not None:
                setattr(self, name, hook)


def callback(
    *,
    on_step: Hook | None = None,
    every_steps: int | None = None,
    on_epoch_end: Hook | None = None,
    on_train_begin: Hook | None = None,
    on_train_end: Callable[[Event], None] | None = None,
) -> Callback:
    """A `Callback` made of plain functions ``hook(event) -> Stop | None``.

    Raises:
      ValueError: ``on_step`` without a positive ``every_steps`` (or the reverse), or no hook.
    """
    if (on_step is None) != (every_steps is None):
        raise ValueError("`on_step` and `every_steps` go together: give both or neither")
    if every_steps is not None:
        check_positive_int(every_steps, "every_steps")
    hooks = {
        "on_step": on_step,
        "on_epoch_end": on_epoch_end,
        "on_train_begin": on_train_begin,
        "on_train_end": on_train_end,
    }
    if all(hook is None for hook in hooks.values()):
        raise ValueError("`callback` needs at least one hook")
    return _FunctionCallback(hooks, every_steps)


HOOKS = ("on_train_begin", "on_step", "on_epoch_end", "on_train_end")


def check_callbacks(callbacks: Sequence[Any]) -> tuple[Any, ...]:
    """``callbacks`` as a tuple, each checked to have a hook and a valid ``every_steps``.

    Raises:
      ValueError: naming the bad entry ``callbacks[i]``.
    """
    if isinstance(callbacks, str) or not isinstance(callbacks, Sequence):
        raise ValueError(f"`callbacks` must be a sequence of callbacks, got {callbacks!r}")
    for i, each in enumerate(callbacks):
        if not any(callable(getattr(each, hook, None)) for hook in HOOKS):
            raise ValueError(
                f"callbacks[{i}] ({each!r}) has none of the hooks {HOOKS}; subclass "
                "adljax.training.Callback or build one with adljax.training.callback(...)"
            )
        every = getattr(each, "every_steps", None)
        if every is not None:
            check_positive_int(every, f"callbacks[{i}].every_steps")
            if not callable(getattr(each, "on_step", None)):
                raise ValueError(f"callbacks[{i}] sets `every_steps` but has no `on_step`")
    return tuple(callbacks)


def summary_fields(record: Mapping[str, Any]) -> dict[str, str]:
    """The few numbers of an epoch record worth showing: train loss and accuracy, eval
    loss, accuracy and r2, and examples/s, formatted (what the progress bar shows)."""
    train = {f"train_{k}": v for k, v in record["train"].items() if k in ("loss", "accuracy")}
    evaluation = {
        f"eval_{k}": v for k, v in record.get("eval", {}).items() if k in ("loss", "accuracy", "r2")
    }
    shown = {name: f"{value:.4g}" for name, value in (train | evaluation).items()}
    speed = record.get("examples_per_sec")
    shown["ex/s"] = f"{speed:.0f}" if speed is not None else "-"
    return shown


class EpochLog(Callback):
    """Writes one plain line per epoch, e.g. ``epoch 3/10: train_loss=0.21 eval_accuracy=0.95
    ex/s=52000 elapsed=4.2s``, to ``file`` (default: stderr), after ``prefix``.

    ``fit(progress=True)`` uses it in place of the progress bar when stderr is not a
    terminal (output redirected to a file), where a bar would be one long line.
    """

    def __init__(self, file: TextIO | None = None, prefix: str = ""):
        self.file, self.prefix = file, prefix

    def on_epoch_end(self, event: Event) -> None:
        shown = " ".join(f"{name}={value}" for name, value in summary_fields(event.record).items())
        print(
            f"{self.prefix}epoch {event.epoch}/{event.epochs}: {shown} "
            f"elapsed={event.elapsed_s:.1f}s",
            file=self.file or sys.stderr,
            flush=True,
        )
