"""Interleaved median timing: the one copy of the measuring logic that every section uses.

Implementations are timed in alternating blocks inside one process: round ``r`` runs a block of
every implementation (in forward order on even rounds, reversed on odd ones), so slow drifts of
a shared machine hit them all alike. Each implementation reports one time per round; we keep
the median over rounds, and compare implementations by the median of *per-round* ratios
(paired), which cancels load that lasts a whole round. A round in which some implementation
took more than ``disturbance`` times its own median is taken as disturbed by outside load and
left out of the medians and ratios (unless that would leave fewer than half the rounds).
"""

import dataclasses
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
      rounds: number of interleaved rounds.
      block: units (steps, epochs) per implementation per round.
      warmup: units run once per implementation before the first round (compilation, caches).
      disturbance: a round where an implementation took more than this multiple of its median
        is dropped as disturbed.
    """

    rounds: int = 7
    block: int = 200
    warmup: int = 30
    disturbance: float = 1.25


@dataclasses.dataclass(frozen=True)
class InterleavedResult:
    """Per-round times (milliseconds per unit) of several implementations timed together."""

    per_round_ms: dict[str, list[float]]
    kept_rounds: list[int]

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
            "rounds": len(next(iter(self.per_round_ms.values()))),
        }


def _time_block(run: Runner, units: int) -> float:
    """Seconds that ``units`` units of ``run`` took (its own figure when it reports one)."""
    start = time.perf_counter()
    reported = run(units)
    elapsed = time.perf_counter() - start
    return elapsed if reported is None else reported


def time_interleaved(runners: Mapping[str, Runner], config: TimingConfig) -> InterleavedResult:
    """Times ``runners`` in alternating blocks over ``config.rounds`` rounds.

    Returns:
      Milliseconds per unit of each runner in each round, and the rounds kept.
    """
    names = list(runners)
    if config.warmup > 0:
        for name in names:
            runners[name](config.warmup)
    per_round_ms: dict[str, list[float]] = {name: [] for name in names}
    for r in range(config.rounds):
        for name in names if r % 2 == 0 else reversed(names):
            seconds = _time_block(runners[name], config.block)
            per_round_ms[name].append(1e3 * seconds / config.block)
    kept = undisturbed_rounds(per_round_ms, config.disturbance)
    return InterleavedResult(per_round_ms=per_round_ms, kept_rounds=kept)


def undisturbed_rounds(per_round: Mapping[str, Sequence[float]], disturbance: float) -> list[int]:
    """Indices of rounds where every implementation stayed within ``disturbance`` x its median.

    Falls back to every round when fewer than half would be kept: then the load was not an
    outlier but the normal state of the machine, and dropping rounds would only bias the result.
    """
    rounds = len(next(iter(per_round.values())))
    medians = {name: statistics.median(times) for name, times in per_round.items()}
    kept = [
        r
        for r in range(rounds)
        if all(times[r] <= disturbance * medians[name] for name, times in per_round.items())
    ]
    return kept if 2 * len(kept) >= rounds else list(range(rounds))


def median_seconds(fn: Callable[[], Any], repeats: int) -> tuple[float, list[float]]:
    """Calls ``fn`` ``repeats`` times; returns the median wall seconds and every sample."""
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples), samples
