"""Metric logs: ``fit``'s history as TensorBoard event files and as a CSV file, written by
callbacks while training runs.

Synopsis::

    fit(..., callbacks=metric_loggers("runs/mlp"))   # runs/mlp/metrics.csv + events.out.*
    # tensorboard --logdir runs

TensorBoard files are written with ``tensorboardX`` (imported when a logger starts, so
``import adljax`` does not pay for it): a small, maintained writer of TensorBoard's own
event format that needs neither TensorFlow nor PyTorch (clu's metric writers need
TensorFlow for the same files). Both loggers follow ``fit(resume=True)``: what a stopped run
logged after its last checkpoint is dropped (TensorBoard purges it; the CSV is rewritten
from the restored history), so each epoch appears exactly once.
"""

import csv
import math
import os
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from adljax._validate import check_positive_int
from adljax.training.callbacks import Callback, Event

CSV_FILE = "metrics.csv"
_RECORD_COLUMNS = ("epoch", "step", "time_s", "examples_per_sec")


def record_scalars(record: Mapping[str, Any]) -> dict[str, float]:
    """A history record's numbers by flat name: ``time_s``, ``examples_per_sec``, then
    ``train/<metric>`` and ``eval/<metric>`` (``train/learning_rate`` among them)."""
    scalars = {name: record[name] for name in _RECORD_COLUMNS[2:] if record.get(name) is not None}
    for group in ("train", "eval"):
        scalars |= {f"{group}/{name}": value for name, value in record.get(group, {}).items()}
    return scalars


def _refuse_old_logs(present: bool, path: Path, event: Event) -> None:
    """A fresh run (step 0) does not write over the logs of another run."""
    if present and event.step == 0:
        raise ValueError(
            f"{str(path)!r} already holds metric logs of another run; choose a new log "
            f"directory (or resume the run that wrote them)"
        )


class CSVLogger(Callback):
    """Writes one row per epoch to ``path`` (``epoch, step, time_s, examples_per_sec,
    train/..., eval/...``, the history's numbers), flushed after every epoch.

    The header is the first record's columns; a later record with new metrics rewrites the
    file with the wider header (older rows empty there). On resume the file is rewritten
    from the restored history, then appended to.
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.columns: list[str] | None = None

    def on_train_begin(self, event: Event) -> None:
        _refuse_old_logs(self.path.exists(), self.path, event)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.columns = None
        self._rewrite(event.history)

    def on_epoch_end(self, event: Event) -> None:
        row = self._row(event.record)
        if self.columns is None or not row.keys() <= set(self.columns):
            self._rewrite(event.history)
            return
        with self.path.open("a", newline="") as file:
            csv.DictWriter(file, self.columns).writerow(row)

    def _rewrite(self, history: Sequence[Mapping[str, Any]]) -> None:
        rows = [self._row(record) for record in history]
        if not rows:  # a resumed run's first epoch is not over: nothing logged stays
            self.path.unlink(missing_ok=True)
            self.columns = None
            return
        columns = list(_RECORD_COLUMNS[:2])
        for row in rows:
            columns += [name for name in row if name not in columns]
        temporary = self.path.with_name(self.path.name + ".tmp")
        with temporary.open("w", newline="") as file:
            writer = csv.DictWriter(file, columns)
            writer.writeheader()
            writer.writerows(rows)
        temporary.replace(self.path)
        self.columns = columns

    @staticmethod
    def _row(record: Mapping[str, Any]) -> dict[str, Any]:
        return {"epoch": record["epoch"], "step": record["step"], **record_scalars(record)}


class TensorBoardLogger(Callback):
    """Writes the history's scalars (`record_scalars`) to TensorBoard event files in
    ``log_dir`` at each epoch's end, at the run's step count; with ``every_steps``, also
    each ``every_steps``-th step's train metrics as ``train_step/<metric>``.

    A resumed run opens a new event file that purges, in TensorBoard, the steps after the
    checkpoint it resumed from.
    """

    def __init__(self, log_dir: str | os.PathLike, *, every_steps: int | None = None):
        if every_steps is not None:
            check_positive_int(every_steps, "every_steps")
        self.log_dir, self.every_steps = Path(log_dir), every_steps
        self.writer = None

    def on_train_begin(self, event: Event) -> None:
        from tensorboardX import SummaryWriter

        present = self.log_dir.is_dir() and any(self.log_dir.glob("events.out.tfevents.*"))
        _refuse_old_logs(present, self.log_dir, event)
        self.writer = SummaryWriter(
            str(self.log_dir),
            purge_step=event.step + 1 if event.step else None,
            # Two runs within one second would get the same file name: add the step.
            filename_suffix=f".step{event.step:012d}",
        )

    def on_step(self, event: Event) -> None:
        for name, value in _finite(event.metrics):
            self.writer.add_scalar(name.replace("train/", "train_step/", 1), value, event.step)

    def on_epoch_end(self, event: Event) -> None:
        for name, value in _finite(record_scalars(event.record)):
            self.writer.add_scalar(name, value, event.step)
        self.writer.flush()

    def on_train_end(self, event: Event) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None


def _finite(scalars: Mapping[str, float]) -> Iterator[tuple[str, float]]:
    """``(name, value)`` of the finite values (a learning rate fit cannot read is NaN)."""
    for name, value in scalars.items():
        if math.isfinite(value):
            yield name, float(value)


def metric_loggers(
    log_dir: str | os.PathLike, *, every_steps: int | None = None
) -> tuple[TensorBoardLogger, CSVLogger]:
    """The callbacks that log a run in ``log_dir``: TensorBoard event files and
    ``metrics.csv`` (`CSV_FILE`); ``every_steps`` adds per-step train metrics to
    TensorBoard. What ``adljax train --log-dir`` uses."""
    log_dir = Path(log_dir)
    return TensorBoardLogger(log_dir, every_steps=every_steps), CSVLogger(log_dir / CSV_FILE)
