"""Runs the adljax benchmarks, prints a table and writes every number as JSON.

Usage::

    python -m benchmarks.run                  # full run, several minutes on 2 vCPUs
    python -m benchmarks.run --quick          # short smoke run (seconds)
    python -m benchmarks.run --only mlp --only epoch --out /tmp/bench.json

Sections (``--only``, repeatable): ``peak``, ``mlp``, ``mlp_bn_dropout``, ``donation``,
``ablation``, ``epoch``, ``diagnostics``, ``precision``, ``compile``. The MLP sections
measure the peak too, for their "% of peak" column.
"""

import argparse
import dataclasses
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as `python benchmarks/run.py`
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import bench_precision
from benchmarks.bench_ablation import run_ablation
from benchmarks.bench_compile import run_compile
from benchmarks.bench_epoch import EpochConfig, run_diagnostics_cost, run_epoch
from benchmarks.bench_mlp import run_donation, run_mlp
from benchmarks.bench_precision import PrecisionConfig, run_precision
from benchmarks.flops import matmul_peak
from benchmarks.implementations import MLPConfig
from benchmarks.report import finish_machine_info, machine_info, report, summary
from benchmarks.timing import TimingConfig

DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "latest.json"


# The defaults of a full run (all frozen, so sharing them is safe).
MLP = MLPConfig()
MLP_BN_DROPOUT = MLPConfig(batch_norm=True, dropout_rate=0.1)
STEP_TIMING = TimingConfig(rounds=15, block=100, warmup=50)
EPOCH = EpochConfig()
EPOCH_TIMING = TimingConfig(rounds=7, block=10, warmup=1)
PRECISION = bench_precision.CPU
PRECISION_TIMING = bench_precision.CPU_TIMING


@dataclasses.dataclass(frozen=True)
class Settings:
    """Sizes and durations of every section.

    Attributes:
      mlp, mlp_bn_dropout: the two MLP step benchmarks.
      step_timing: rounds / steps per block / warm-up steps of the MLP and donation sections.
      epoch: the ``fit`` benchmark; ``epoch_timing.block`` is the timed epochs per ``fit``.
      precision, precision_timing: the mixed-precision train-step benchmark (epochs per block).
      compile_repeats: compilations per function (median reported).
      peak_size, peak_repeats: the matrix product that measures the machine's peak.
      torch_threads: ``torch.set_num_threads``.
    """

    mlp: MLPConfig = MLP
    mlp_bn_dropout: MLPConfig = MLP_BN_DROPOUT
    step_timing: TimingConfig = STEP_TIMING
    epoch: EpochConfig = EPOCH
    epoch_timing: TimingConfig = EPOCH_TIMING
    precision: PrecisionConfig = PRECISION
    precision_timing: TimingConfig = PRECISION_TIMING
    compile_repeats: int = 5
    peak_size: int = 2048
    peak_repeats: int = 30
    torch_threads: int = 2


FULL = Settings()
QUICK = dataclasses.replace(
    FULL,
    step_timing=TimingConfig(rounds=3, block=10, warmup=3, max_rounds=3),
    epoch_timing=TimingConfig(rounds=2, block=2, warmup=0, max_rounds=2),
    precision_timing=TimingConfig(rounds=2, block=1, warmup=1, max_rounds=2),
    compile_repeats=1,
    peak_repeats=3,
)


def _peak(settings: Settings, sections: dict[str, Any]) -> dict[str, Any]:
    return matmul_peak(settings.peak_size, settings.peak_repeats)


def _peak_gflops(settings: Settings, sections: dict[str, Any]) -> float:
    """The measured peak, measuring it first if this run has not yet."""
    if "peak" not in sections:
        sections["peak"] = _peak(settings, sections)
    return sections["peak"]["gflops"]


def _mlp(settings: Settings, sections: dict[str, Any]) -> dict[str, Any]:
    peak = _peak_gflops(settings, sections)
    return run_mlp(settings.mlp, settings.step_timing, peak, settings.torch_threads)


def _mlp_bn_dropout(settings: Settings, sections: dict[str, Any]) -> dict[str, Any]:
    peak = _peak_gflops(settings, sections)
    return run_mlp(settings.mlp_bn_dropout, settings.step_timing, peak, settings.torch_threads)


def _donation(settings: Settings, sections: dict[str, Any]) -> dict[str, Any]:
    return run_donation(settings.mlp, settings.step_timing)


def _ablation(settings: Settings, sections: dict[str, Any]) -> dict[str, Any]:
    return run_ablation(settings.mlp, settings.step_timing)


def _epoch(settings: Settings, sections: dict[str, Any]) -> dict[str, Any]:
    return run_epoch(settings.epoch, settings.epoch_timing)


def _diagnostics(settings: Settings, sections: dict[str, Any]) -> dict[str, Any]:
    return run_diagnostics_cost(settings.epoch, settings.epoch_timing)


def _precision(settings: Settings, sections: dict[str, Any]) -> dict[str, Any]:
    return run_precision(settings.precision, settings.precision_timing)


def _compile(settings: Settings, sections: dict[str, Any]) -> dict[str, Any]:
    return run_compile(settings.mlp, settings.epoch, settings.compile_repeats)


Section = Callable[[Settings, dict[str, Any]], dict[str, Any]]
SECTIONS: dict[str, Section] = {
    "peak": _peak,
    "mlp": _mlp,
    "mlp_bn_dropout": _mlp_bn_dropout,
    "donation": _donation,
    "ablation": _ablation,
    "epoch": _epoch,
    "diagnostics": _diagnostics,
    "precision": _precision,
    "compile": _compile,
}


def run_benchmarks(
    settings: Settings, names: Sequence[str] | None = None, *, quick: bool = False
) -> dict[str, Any]:
    """Runs the named sections (all by default, always in ``SECTIONS`` order).

    Returns:
      ``{"machine": ..., "settings": ..., "quick": ..., "sections": {name: results}}``.
    """
    chosen = [name for name in SECTIONS if names is None or name in names]
    results: dict[str, Any] = {
        "machine": machine_info(),
        "quick": quick,
        "settings": dataclasses.asdict(settings),
        "sections": {},
        "section_seconds": {},
    }
    for name in chosen:
        print(f"[benchmarks] {name} ...", flush=True)
        start = time.perf_counter()
        results["sections"][name] = SECTIONS[name](settings, results["sections"])
        results["section_seconds"][name] = time.perf_counter() - start
    finish_machine_info(results)
    return results


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The command line: ``--quick``, ``--out PATH``, ``--only NAME`` (repeatable)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--quick", action="store_true", help="short smoke run")
    parser.add_argument(
        "--out", type=Path, default=DEFAULT_OUT, help=f"JSON results (default {DEFAULT_OUT})"
    )
    parser.add_argument(
        "--only",
        action="append",
        choices=list(SECTIONS),
        metavar="NAME",
        help=f"run only this section (repeatable): {', '.join(SECTIONS)}",
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the benchmarks, prints the tables and writes the JSON; returns the exit status."""
    args = parse_args(argv)
    results = run_benchmarks(QUICK if args.quick else FULL, args.only, quick=args.quick)
    return report(results, "\n" + summary(results), args.out)


if __name__ == "__main__":
    sys.exit(main())
