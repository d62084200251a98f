"""``adljax tour``: trains each course architecture on embedded data and prints a table.

Lessons register themselves with ``@lesson(...)`` in ``adljax.lessons``; each returns rows
of ``Result``. Everything runs offline on the embedded datasets.
"""

import dataclasses
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np


@dataclasses.dataclass(frozen=True)
class Result:
    """One line of the tour's table; ``value`` is an ``int`` for a count, else a float."""

    lesson: str
    model: str
    dataset: str
    metric: str
    value: float
    note: str = ""


@dataclasses.dataclass(frozen=True)
class LessonContext:
    """What a lesson gets: ``quick`` mode, a fresh directory for every file it writes, and
    ``callbacks`` to pass to each of its training calls (``fit``, ``run_experiment``, ...):
    the tour's progress line and a training-curve PNG per run."""

    quick: bool
    output_dir: Path
    callbacks: tuple = ()

    def epochs(self, full: int, quick: int) -> int:
        return quick if self.quick else full


LessonFn = Callable[[LessonContext], list[Result]]
_LESSONS: list[tuple[str, str, LessonFn]] = []


def lesson(day: str, title: str) -> Callable[[LessonFn], LessonFn]:
    """Registers a tour lesson (run in registration order)."""

    def register(fn: LessonFn) -> LessonFn:
        _LESSONS.append((day, title, fn))
        return fn

    return register


def lesson_days() -> list[int]:
    """The course days that have lessons, e.g. ``[1, 2, 3, 4]``."""
    import adljax.lessons  # noqa: F401  (registers the lessons)

    return sorted({_day_number(day) for day, _, _ in _LESSONS})


def _day_number(day: str) -> int:
    return int(day.split()[-1])


def run_tour(
    *,
    quick: bool = False,
    output_dir: Path = Path("tour_output"),
    days: Sequence[int] | None = None,
) -> dict[str, Any]:
    """Runs the lessons (of ``days``, default all), prints the results table, returns
    ``{"results": [...], "seconds": ..., "output_dir": ...}``.

    Raises:
        ValueError: ``days`` names a day without lessons (before anything runs).
    """
    available = lesson_days()
    if days is not None:
        unknown = sorted(set(days) - set(available))
        if unknown or not days:
            raise ValueError(f"`days` must be among {available}, got {list(days)}")
    selected = [entry for entry in _LESSONS if days is None or _day_number(entry[0]) in days]
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    run_dir = Path(tempfile.mkdtemp(prefix="run-", dir=output_dir))
    results: list[Result] = []
    progress = Progress(len(selected))
    for k, (day, title, fn) in enumerate(selected):
        lesson_dir = run_dir / fn.__name__
        lesson_dir.mkdir()
        progress.start_lesson(k, f"{day}: {title}")
        callbacks = (progress.callback(), _curve_writer(lesson_dir))
        results.extend(fn(LessonContext(quick=quick, output_dir=lesson_dir, callbacks=callbacks)))
        progress.end_lesson()
    elapsed = progress.elapsed()
    files = written_files(run_dir)
    print(format_table(results))
    print(f"\n{len(results)} results in {elapsed:.0f} s; files in {run_dir}:")
    print(format_files(run_dir, files))
    return {
        "results": [dataclasses.asdict(r) for r in results],
        "seconds": round(elapsed, 1),
        "output_dir": str(run_dir),
        "files": files,
    }


class Progress:
    """The tour's progress on stderr: lesson ``k/N``, its title, the epoch of the current
    training run, the time elapsed and an estimate of the time left.

    On a terminal one line per lesson, rewritten at every epoch; otherwise one line per
    epoch. The estimate of the time left assumes each lesson not yet finished takes the
    mean time of those finished (the lessons weigh the same: their times differ by 10x,
    so it is rough until a few have run): ``mean * not_finished - time into the current
    lesson``; nothing is shown before the first lesson ends.
    """

    def __init__(self, lessons: int, stream: Any = None) -> None:
        self.lessons, self.stream = lessons, stream or sys.stderr
        self.started = time.perf_counter()
        self.done, self.title, self.finished_at = 0, "", 0.0

    def elapsed(self) -> float:
        return time.perf_counter() - self.started

    def start_lesson(self, k: int, title: str) -> None:
        self.done, self.title = k, title
        self._show("", final=not self._terminal())

    def end_lesson(self) -> None:
        self.done += 1
        self.finished_at = self.elapsed()
        self._show("done", final=True)

    def callback(self) -> Any:
        from adljax.training import callback

        def on_epoch_end(event: Any) -> None:
            self._show(f"epoch {event.epoch}/{event.epochs}", final=not self._terminal())

        return callback(on_epoch_end=on_epoch_end)

    def line(self, status: str) -> str:
        """One progress line, e.g. ``[3/17] Day 1: XOR ... | epoch 5/200 | 12 s, ~3 min
        left``."""
        elapsed = self.elapsed()
        left = ""
        if 0 < self.done < self.lessons:
            mean = self.finished_at / self.done
            remaining = mean * (self.lessons - self.done) - (elapsed - self.finished_at)
            left = f", ~{_duration(max(remaining, 0.0))} left"
        lesson = min(self.done + (status != "done"), self.lessons)
        tail = "".join(f" | {p}" for p in (status, f"{_duration(elapsed)}{left}") if p)
        head = f"[{lesson}/{self.lessons}] "
        room = max(WIDTH - len(head) - len(tail), 12)  # the title gives way, the numbers stay
        return head + textwrap.shorten(self.title, width=room, placeholder="...") + tail

    def _terminal(self) -> bool:
        return bool(getattr(self.stream, "isatty", lambda: False)())

    def _show(self, status: str, *, final: bool) -> None:
        text = self.line(status)
        if self._terminal():
            text = "\r\033[K" + text
        print(text, file=self.stream, end="\n" if final else "", flush=True)


def _duration(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 90 else f"{seconds / 60:.1f} min"


def _curve_writer(lesson_dir: Path) -> Any:
    """A callback writing each training run's loss curve (``adljax.plots.plot_history``) to
    ``training_curve.png``, ``training_curve-2.png``, ... in ``lesson_dir``."""
    from adljax import plots
    from adljax.training import callback

    def on_train_end(event: Any) -> None:
        history = list(event.history)
        names = sorted({m for r in history for s in ("train", "eval") for m in r.get(s) or {}})
        if not names:
            return
        metric = "loss" if "loss" in names else names[0]
        runs = len(list(lesson_dir.glob("training_curve*.png")))
        name = "training_curve.png" if runs == 0 else f"training_curve-{runs + 1}.png"
        plots.plot_history(history, lesson_dir / name, (metric,))

    return callback(on_train_end=on_train_end)


def written_files(run_dir: Path) -> list[str]:
    """Every file under ``run_dir``, as sorted POSIX paths relative to it."""
    return sorted(p.relative_to(run_dir).as_posix() for p in run_dir.rglob("*") if p.is_file())


def format_files(run_dir: Path, files: Sequence[str]) -> str:
    """The files, one a line; a folder inside a lesson's folder (a checkpoint, an export) as
    one line ``lesson/folder/ (N files)``."""
    counts: dict[str, int] = {}
    for name in files:
        parts = name.split("/")
        key = "/".join(parts[:2]) + ("/" if len(parts) > 2 else "")
        counts[key] = counts.get(key, 0) + 1
    return "\n".join(
        f"  {key} ({n} files)" if key.endswith("/") else f"  {key}" for key, n in counts.items()
    )


def format_value(value: float) -> str:
    """A table cell: an ``int`` (a count) as it is, tiny magnitudes in scientific notation,
    else 4 decimals (``8``, ``3.20e-07``, ``0.9415``)."""
    if isinstance(value, int | np.integer):
        return str(int(value))
    if value != 0 and abs(value) < 1e-3:
        return f"{value:.2e}"
    return f"{value:.4f}"


_COLUMNS = (("lesson", 16), ("model", 24), ("dataset", 14), ("metric", 26), ("value", 10))
"""The table's columns and their widest cells: with two spaces between, 98 characters."""
WIDTH = 100
"""No line of `format_table` is longer."""


def format_table(results: list[Result]) -> str:
    """A plain-text table of the results, no line over `WIDTH` characters: long cells are
    cut short with ``…``, a row's note goes on the lines below it, indented and wrapped."""
    rows = [
        [_cell(c) for c in (r.lesson, r.model, r.dataset, r.metric)] + [_value_cell(r.value)]
        for r in results
    ]
    header = [name for name, _ in _COLUMNS]
    widths = [
        min(cap, max(len(row[i]) for row in [header, *rows])) for i, (_, cap) in enumerate(_COLUMNS)
    ]
    lines = [_row(header, widths), "  ".join("-" * w for w in widths)]
    for row, result in zip(rows, results, strict=True):
        lines.append(_row(row, widths))
        note = _cell(result.note)
        if note:
            lines += textwrap.wrap(note, WIDTH, initial_indent="    ", subsequent_indent="    ")
    return "\n".join(lines)


def _cell(text: str) -> str:
    return " ".join(str(text).split())


def _value_cell(value: float) -> str:
    text = format_value(value)
    return text if len(text) <= _COLUMNS[-1][1] else f"{float(value):.2e}"


def _row(cells: Sequence[str], widths: Sequence[int]) -> str:
    return "  ".join(
        (c if len(c) <= w else c[: w - 1] + "…").ljust(w)
        for c, w in zip(cells, widths, strict=True)
    ).rstrip()
