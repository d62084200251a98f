"""How long the device sits idle while ``fit`` trains, from a profiler trace of one epoch.

A callback starts ``jax.profiler`` when the first epoch (which compiles) ends and stops it
when the second ends, so the trace holds exactly one compiled epoch: every step, the host
work between steps and the epoch's bookkeeping. The device's busy time is the union of its
execution intervals in the trace: on a GPU or TPU every event of the ``/device:...``
processes (kernels, copies); on a CPU the XLA runtime's ``ThunkExecutor::Execute`` spans
(the CPU is its own device, so its idle time is the host's dispatch and Python work).
Idle fraction = 1 - busy / the epoch's wall time. Runs:

- the digits MLP (64 hidden, batch 32, a dispatch-bound step), whole-epoch and from host batches;
- the course's CNN on digits (one step per call on a CPU, where ``fit`` keeps convolutions out of
  the scan);
- the digits MLP fed from a streamed ``SourceDataset`` (grain's reader, host batches).

``python -m benchmarks.bench_idle [--quick] [--out PATH]``
"""

import dataclasses
import glob
import gzip
import json
import sys
import tempfile
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import jax
import numpy as np

import adljax
from adljax.data import SourceDataset
from adljax.training.callbacks import Callback
from benchmarks.report import benchmark_arguments, format_table, machine_info, report

DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "idle.json"
CPU_EXECUTION = "ThunkExecutor::Execute"


@dataclasses.dataclass(frozen=True)
class Run:
    """One traced ``fit``: model name, whether the data is streamed, ``whole_epoch``."""

    model: str
    streamed: bool = False
    whole_epoch: bool | None = None

    @property
    def label(self) -> str:
        """E.g. ``mlp, streamed, host batches``."""
        mode = {True: "whole-epoch", False: "host batches", None: "fit's choice"}[self.whole_epoch]
        return f"{self.model}, {'streamed' if self.streamed else 'in memory'}, {mode}"


RUNS = (
    Run("mlp", whole_epoch=True),
    Run("mlp", whole_epoch=False),
    Run("cnn"),
    Run("mlp", streamed=True),
)
BATCH_SIZE = 32


class _TraceSecondEpoch(Callback):
    """Traces the run's second epoch into ``directory``; ``seconds`` is its wall time."""

    def __init__(self, directory: str):
        self.directory, self.started, self.seconds = directory, None, None

    def on_epoch_end(self, event) -> None:
        if event.epoch == 1:
            jax.profiler.start_trace(self.directory, create_perfetto_trace=True)
            self.started = time.perf_counter()
        elif event.epoch == 2:
            self.seconds = time.perf_counter() - self.started
            jax.profiler.stop_trace()


def _union_seconds(intervals: Iterable[tuple[float, float]]) -> float:
    """Total length of the union of ``(start, end)`` intervals."""
    total, end = 0.0, -np.inf
    for start, stop in sorted(intervals):
        if stop > end:
            total += stop - max(start, end)
            end = stop
    return total


def device_busy_seconds(trace: dict[str, Any]) -> tuple[float, str]:
    """Seconds the device executed in a perfetto JSON ``trace``, and what was counted."""
    events = [e for e in trace["traceEvents"] if e.get("ph") == "X" and "dur" in e]
    processes = {
        e["pid"]: e["args"]["name"]
        for e in trace["traceEvents"]
        if e.get("ph") == "M" and e.get("name") == "process_name"
    }
    devices = {pid for pid, name in processes.items() if name.startswith("/device:")}
    if devices:
        chosen, what = [e for e in events if e["pid"] in devices], "device events"
    else:
        chosen, what = [e for e in events if e["name"] == CPU_EXECUTION], CPU_EXECUTION
    # Perfetto JSON times are microseconds.
    return 1e-6 * _union_seconds((e["ts"], e["ts"] + e["dur"]) for e in chosen), what


def _read_trace(directory: str) -> dict[str, Any]:
    paths = glob.glob(f"{directory}/**/*.trace.json.gz", recursive=True)
    if len(paths) != 1:
        raise RuntimeError(f"expected one perfetto trace under {directory}, found {paths}")
    with gzip.open(paths[0]) as file:
        return json.load(file)


def _streamed(data: Any) -> SourceDataset:
    """``data`` (in memory) as a streamed dataset of its rows."""
    x, y = data.arrays["x"], data.arrays["y"]
    examples = [{"x": x[i], "y": y[i]} for i in range(len(data))]
    return SourceDataset(examples, data.info, convert=dict)


def trace_run(run: Run) -> dict[str, Any]:
    """``fit`` for two epochs with the second traced: busy and wall seconds, idle fraction."""
    digits = adljax.data.load("digits", "train")
    data = _streamed(digits) if run.streamed else digits
    model = adljax.models.create_model(run.model, num_outputs=10)
    tx = adljax.create_optimizer("adam", 1e-3)
    sample = digits.arrays["x"][:1]
    state = adljax.create_train_state(model, tx, sample, jax.random.key(0))
    with tempfile.TemporaryDirectory() as directory:
        tracer = _TraceSecondEpoch(directory)
        adljax.fit(
            state,
            data,
            task="classification",
            epochs=2,
            batch_size=BATCH_SIZE,
            whole_epoch=run.whole_epoch,
            callbacks=[tracer],
            progress=False,
        )
        busy, counted = device_busy_seconds(_read_trace(directory))
    steps = len(data) // BATCH_SIZE
    return {
        "run": dataclasses.asdict(run),
        "label": run.label,
        "steps": steps,
        "epoch_ms": 1e3 * tracer.seconds,
        "busy_ms": 1e3 * busy,
        "idle_fraction": max(0.0, 1.0 - busy / tracer.seconds),
        "counted": counted,
    }


def run_idle(runs: Sequence[Run] = RUNS) -> dict[str, Any]:
    """Every run's traced epoch."""
    return {
        "device": jax.devices()[0].device_kind,
        "batch_size": BATCH_SIZE,
        "runs": [trace_run(run) for run in runs],
    }


def idle_table(section: dict[str, Any]) -> str:
    """One row per run: epoch and busy time, idle fraction."""
    rows = [
        (
            entry["label"],
            f"{entry['epoch_ms']:.1f}",
            f"{1e3 * entry['epoch_ms'] / entry['steps']:.0f}",
            f"{entry['busy_ms']:.1f}",
            f"{100 * entry['idle_fraction']:.0f}%",
        )
        for entry in section["runs"]
    ]
    headers = ("fit on digits", "epoch ms", "µs/step", "device busy ms", "idle")
    return (
        f"Device idle time over one traced epoch (batch {section['batch_size']}, "
        f"{section['device']}; busy = {section['runs'][0]['counted']})\n"
        f"{format_table(headers, rows)}"
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Traces every run, prints the table and writes the JSON; returns 0."""
    args = benchmark_arguments(__doc__, DEFAULT_OUT, argv)
    section = run_idle(RUNS[:2] if args.quick else RUNS)
    results = {"machine": machine_info(), "idle": section}
    return report(results, idle_table(section), args.out)


if __name__ == "__main__":
    sys.exit(main())
