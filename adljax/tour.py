"""``adljax tour``: trains each course architecture on embedded data and prints a table.

Lessons register themselves with ``@lesson(...)`` in ``adljax.lessons``; each returns rows
of ``Result``. Everything runs offline on the embedded datasets.
"""

import dataclasses
import sys
import tempfile
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
    """What a lesson gets: ``quick`` mode and a fresh directory for its files."""

    quick: bool
    output_dir: Path

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
    started = time.perf_counter()
    for day, title, fn in selected:
        print(f"== {day}: {title}", file=sys.stderr, flush=True)
        lesson_dir = run_dir / fn.__name__
        lesson_dir.mkdir()
        lesson_start = time.perf_counter()
        rows = fn(LessonContext(quick=quick, output_dir=lesson_dir))
        print(f"   done in {time.perf_counter() - lesson_start:.1f} s", file=sys.stderr)
        results.extend(rows)
    elapsed = time.perf_counter() - started
    print(format_table(results))
    print(f"\n{len(results)} results in {elapsed:.0f} s; files in {run_dir}")
    return {
        "results": [dataclasses.asdict(r) for r in results],
        "seconds": round(elapsed, 1),
        "output_dir": str(run_dir),
    }


def format_value(value: float) -> str:
    """A table cell: an ``int`` (a count) as it is, tiny magnitudes in scientific notation,
    else 4 decimals (``8``, ``3.20e-07``, ``0.9415``)."""
    if isinstance(value, int | np.integer):
        return str(int(value))
    if value != 0 and abs(value) < 1e-3:
        return f"{value:.2e}"
    return f"{value:.4f}"


def format_table(results: list[Result]) -> str:
    """A plain-text table of the results."""
    header = ("lesson", "model", "dataset", "metric", "value", "note")
    rows = [
        (r.lesson, r.model, r.dataset, r.metric, format_value(r.value), r.note) for r in results
    ]
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]
    lines = [
        "  ".join(str(cell).ljust(w) for cell, w in zip(row, widths, strict=False)).rstrip()
        for row in [header, *rows]
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)
