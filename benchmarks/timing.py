"""Interleaved median timing: the one copy of the measuring logic that every section uses.

Implementations are timed in alternating blocks inside one process: round ``r`` runs a block of
every implementation (in forward order on even rounds, reversed on odd ones), so slow drifts of
a shared machine hit them all alike. Each implementation gets one time per round; we report
the median over rounds, and compare implementations by the median of *per-round* ratios
(paired), which cancels load that lasts a whole round.

Rounds disturbed by outside load are left out, in two ways:

- *measured*: on Linux, each block also records the CPU time that *other* processes used
  meanwhile (machine-wide busy time from ``/proc/stat`` minus this process's CPU time), as a
  fraction of the machine. A round where some block saw more than ``max_outside_load`` is not
  clean, and rounds go on (up to ``max_rounds``) until ``rounds`` clean ones are collected.
- *inferred*: among the clean rounds, a round where some implementation took more than
  ``disturbance`` times its own median is dropped too (load that ``/proc/stat`` cannot see,
  such as other virtual machines on the host), unless that would leave fewer than half.
"""

import dataclasses
import os
import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

# ``run(n)`` performs ``n`` units of work (steps, epochs) and returns when they are finished
# (after ``block_until_ready``). It returns ``None`` to be timed by the wall clock, or the
# seconds the ``n`` units took when it measures itself (e.g. ``fit``'s per-epoch times, which
# leave out the compiling first epoch).
Runner = Callable[[int], float | None]


@dataclasses.dataclass(frozen=True)
class TimingConfig:
    """How long to measure.

    Attributes:
      rounds: number of clean interleaved rounds wanted.
      block: units (steps, epochs) per implementation per round.
      warmup: units run once per implementation before the first round (compilation, caches).
      disturbance: a round where an implementation took more than this multiple of its median
        is dropped as disturbed.
      max_outside_load: a round is clean when, in each of its blocks, other processes used at
        most this fraction of the machine's CPUs.
      max_rounds: stop after this many rounds even without ``rounds`` clean ones (``None``:
        three times ``rounds``).
    """

    rounds: int = 7
    block: int = 200
    warmup: int = 30
    disturbance: float = 1.25
    max_outside_load: float = 0.15
    max_rounds: int | None = None


@dataclasses.dataclass(frozen=True)
class InterleavedResult:
    """Per-round times (milliseconds per unit) of several implementations timed together.

    Attributes:
      per_round_ms: every round's time of each implementation, kept or not.
      kept_rounds: the rounds that the medians and ratios use.
      outside_load: per round, the largest fraction of the machine other processes used during
        one of its blocks (``None`` where it cannot be measured).
    """

    per_round_ms: dict[str, list[float]]
    kept_rounds: list[int]
    outside_load: list[float | None]

    @property
    def names(self) -> list[str]:
        """The implementations, in the order they were given."""
        return list(self.per_round_ms)

    def kept(self, name: str) -> list[float]:
        """``name``'s times in the rounds that were not dropped as disturbed."""
        return [self.per_round_ms[name][r] for r in self.kept_rounds]

    def median_ms(self, name: str) -> float:
        """Median milliseconds per unit of ``name`` over the kept rounds."""
        return statistics.median(self.kept(name))

    def paired_ratio(self, numerator: str, denominator: str) -> float:
        """Median over kept rounds of ``time(numerator) / time(denominator)`` in that round."""
        ratios = [a / b for a, b in zip(self.kept(numerator), self.kept(denominator), strict=True)]
        return statistics.median(ratios)

    def spread(self, name: str) -> float:
        """(max - min) / median of ``name``'s kept times: how steady the measurement was."""
        times = self.kept(name)
        return (max(times) - min(times)) / statistics.median(times)

    def to_json(self) -> dict[str, Any]:
        """Every number, for the results file."""
        return {
            "median_ms": {name: self.median_ms(name) for name in self.names},
            "spread": {name: self.spread(name) for name in self.names},
            "per_round_ms": self.per_round_ms,
            "kept_rounds": self.kept_rounds,
            "outside_load": self.outside_load,
            "rounds": len(self.outside_load),
        }


def _cpu_seconds() -> tuple[float, float] | None:
    """(CPU seconds the whole machine has been busy, CPU seconds of this process), on Linux."""
    try:
        with open("/proc/stat") as stat:
            ticks = [int(value) for value in stat.readline().split()[1:9]]
    except (OSError, ValueError):
        return None
    idle = ticks[3] + ticks[4]  # idle + iowait
    return (sum(ticks) - idle) / os.sysconf("SC_CLK_TCK"), time.process_time()


def _outside_load(before, after, wall: float) -> float | None:
    """The fraction of the machine's CPUs that other processes used between two snapshots."""
    if before is None or after is None or wall <= 0:
        return None
    others = (after[0] - before[0]) - (after[1] - before[1])
    return max(0.0, others / (wall * (os.cpu_count() or 1)))


def _time_block(run: Runner, units: int) -> tuple[float, float | None]:
    """Seconds that ``units`` units of ``run`` took (its own figure when it reports one), and
    the outside load meanwhile."""
    cpu_before, start = _cpu_seconds(), time.perf_counter()
    reported = run(units)
    elapsed = time.perf_counter() - start
    load = _outside_load(cpu_before, _cpu_seconds(), elapsed)
    return (elapsed if reported is None else reported), load


def time_interleaved(runners: Mapping[str, Runner], config: TimingConfig) -> InterleavedResult:
    """Times ``runners`` in alternating blocks until ``config.rounds`` clean rounds are done.

    Returns:
      Milliseconds per unit of each runner in each round, the rounds kept and the outside load.
    """
    names = list(runners)
    if config.warmup > 0:
        for name in names:
            runners[name](config.warmup)
    max_rounds = config.max_rounds or 3 * config.rounds
    per_round_ms: dict[str, list[float]] = {name: [] for name in names}
    outside: list[float | None] = []
    clean: list[int] = []
    while len(clean) < config.rounds and len(outside) < max_rounds:
        loads = []
        for name in names if len(outside) % 2 == 0 else reversed(names):
            seconds, load = _time_block(runners[name], config.block)
            per_round_ms[name].append(1e3 * seconds / config.block)
            loads.append(load)
        known = [load for load in loads if load is not None]
        if not known or max(known) <= config.max_outside_load:
            clean.append(len(outside))
        outside.append(max(known) if known else None)
    if 2 * len(clean) < config.rounds:  # a busy machine throughout: use every round
        clean = list(range(len(outside)))
    kept = undisturbed_rounds(per_round_ms, clean, config.disturbance)
    return InterleavedResult(per_round_ms=per_round_ms, kept_rounds=kept, outside_load=outside)


def undisturbed_rounds(
    per_round: Mapping[str, Sequence[float]], candidates: Sequence[int], disturbance: float
) -> list[int]:
    """The ``candidates`` rounds where every implementation stayed within ``disturbance`` x its
    median over the candidates.

    Falls back to every candidate when fewer than half would be kept: then the load was not an
    outlier but the normal state of the machine, and dropping rounds would only bias the result.
    """
    medians = {
        name: statistics.median(times[r] for r in candidates) for name, times in per_round.items()
    }
    kept = [
        r
        for r in candidates
        if all(times[r] <= disturbance * medians[name] for name, times in per_round.items())
    ]
    return kept if 2 * len(kept) >= len(candidates) else list(candidates)


def median_seconds(fn: Callable[[], Any], repeats: int) -> dict[str, Any]:
    """Calls ``fn`` ``repeats`` times (it must block until its work is done).

    Returns:
      ``{"median_s", "samples_s", "outside_load"}``: the median and every sample of the wall
      seconds, and the largest outside load during a call (``None`` where not measurable).
    """

    def run(_units: int) -> None:  # timed by the wall clock, whatever ``fn`` returns
        fn()

    samples, loads = [], []
    for _ in range(repeats):
        seconds, load = _time_block(run, 1)
        samples.append(seconds)
        loads.append(load)
    known = [load for load in loads if load is not None]
    return {
        "median_s": statistics.median(samples),
        "samples_s": samples,
        "outside_load": max(known) if known else None,
    }
