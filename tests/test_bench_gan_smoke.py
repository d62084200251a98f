"""Smoke test of ``benchmarks/bench_gan.py`` on tiny sizes: the JSON and the table."""

import importlib
import json
import math
from pathlib import Path

import pytest

pytestmark = pytest.mark.usefixtures("fast_compiles")

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow  # compiles three DCGAN steps: about 30 s
def test_quick_run_times_every_implementation(monkeypatch, tmp_path, capsys):
    monkeypatch.syspath_prepend(str(ROOT))
    bench = importlib.import_module("benchmarks.bench_gan")
    from benchmarks.implementations import torch_available

    out = tmp_path / "gan.json"
    assert bench.main(["--quick", "--out", str(out)]) == 0
    results = json.loads(out.read_text())
    expected = {"adljax", "adljax_matmul", "adljax_xla", "flax"}
    expected |= {"torch"} if torch_available() else set()
    medians = results["timing"]["median_ms"]
    assert set(medians) == expected
    assert all(math.isfinite(v) and v > 0 for v in medians.values())
    assert set(results["ratio_to_adljax"]) == expected - {"adljax"}
    assert set(results["percent_of_peak"]) == expected and results["flops"] > 0
    assert all(0 < v < 1000 for v in results["percent_of_peak"].values())
    table = capsys.readouterr().out
    assert all(name in table for name in expected)
