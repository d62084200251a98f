"""``benchmarks/bench_idle.py``: busy time from made traces (CPU and device layouts), and a
quick traced run's JSON and table."""

import importlib
import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

pytestmark = pytest.mark.usefixtures("fast_compiles")

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def bench(monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT))
    return importlib.import_module("benchmarks.bench_idle")


def _event(name, ts, dur, pid=1, tid=1):
    return {"ph": "X", "name": name, "ts": ts, "dur": dur, "pid": pid, "tid": tid}


def _process(pid, name):
    return {"ph": "M", "name": "process_name", "pid": pid, "args": {"name": name}}


@given(st.lists(st.tuples(st.integers(0, 50), st.integers(0, 20)), max_size=12))
def test_union_of_intervals_counts_every_covered_unit_once(bench, spans):
    intervals = [(start, start + length) for start, length in spans]
    covered = {t for start, stop in intervals for t in range(start, stop)}
    assert bench._union_seconds(intervals) == len(covered)


def test_cpu_busy_time_is_the_union_of_thunk_executions(bench):
    trace = {
        "traceEvents": [
            _process(1, "/host:CPU"),
            _event("ThunkExecutor::Execute", 0, 100),
            _event("ThunkExecutor::Execute", 50, 100, tid=2),  # overlaps: 0..150
            _event("ThunkExecutor::Execute", 300, 10),
            _event("PjitFunction(train_step)", 0, 1000),  # host work: not the device
        ]
    }
    busy, counted = bench.device_busy_seconds(trace)
    assert busy == pytest.approx(160e-6) and counted == "ThunkExecutor::Execute"


def test_gpu_busy_time_counts_every_event_on_the_device_processes(bench):
    trace = {
        "traceEvents": [
            _process(1, "/host:CPU"),
            _process(7, "/device:GPU:0"),
            _event("ThunkExecutor::Execute", 0, 5000),  # host: ignored once devices exist
            _event("fusion_3", 10, 20, pid=7),
            _event("MemcpyH2D", 25, 15, pid=7, tid=2),  # overlaps: 10..40
            _event("gemm", 100, 50, pid=7),
        ]
    }
    busy, counted = bench.device_busy_seconds(trace)
    assert busy == pytest.approx(80e-6) and counted == "device events"


def test_quick_run_traces_one_epoch_per_run(bench, tmp_path, capsys):
    out = tmp_path / "idle.json"
    assert bench.main(["--quick", "--out", str(out)]) == 0
    runs = json.loads(out.read_text())["idle"]["runs"]
    assert [run["label"] for run in runs] == [
        "mlp, in memory, whole-epoch",
        "mlp, in memory, host batches",
    ]
    for run in runs:
        assert 0 < run["busy_ms"] <= run["epoch_ms"] and 0 <= run["idle_fraction"] < 1
    # From host batches the host sits between calls: more idle than one scan per epoch.
    assert runs[1]["idle_fraction"] > runs[0]["idle_fraction"]
    assert "idle" in capsys.readouterr().out
