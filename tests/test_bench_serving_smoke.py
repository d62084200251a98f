"""Smoke test of ``benchmarks/bench_serving.py`` in quick mode: the JSON and the table."""

import importlib
import json
import math
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow  # exports and serves the detector too: about a minute
def test_quick_run_reports_calls_and_service_levels(monkeypatch, tmp_path, capsys):
    monkeypatch.syspath_prepend(str(ROOT))
    bench = importlib.import_module("benchmarks.bench_serving")
    out = tmp_path / "serving.json"
    assert bench.main(["--quick", "--out", str(out), "--models", "cnn"]) == 0
    (section,) = json.loads(out.read_text())["models"]
    for batch in ("1", "256"):
        medians = section["calls"][batch]["median_ms"]
        assert set(medians) == {"artifact", "adljax", "hand_jit"}
        assert all(math.isfinite(v) and v > 0 for v in medians.values())
    levels = {(r["max_batch_size"], r["concurrency"]) for r in section["service"]}
    assert levels == {(b, c) for b in (64, 1) for c in (1, 8, 32)}
    assert all(r["errors"] == 0 and r["requests"] > 0 for r in section["service"])
    assert section["batching_speedup_at_32"] > 0
    assert "artifact/hand" in capsys.readouterr().out
