"""Smoke test of ``benchmarks/``: every section runs on tiny sizes and writes the expected JSON.

PyTorch is optional: without it the MLP sections skip its row and say so in their notes.
"""

import dataclasses
import importlib
import json
import math
from pathlib import Path

import pytest

# Slow (the default suite stays under 10 minutes): run by `.ci/run` with `-m slow`.
pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def bench(monkeypatch):
    """The ``benchmarks`` package (it lives beside ``tests/``, not inside the installed one)."""
    monkeypatch.syspath_prepend(str(ROOT))
    return importlib.import_module("benchmarks.run")


def _tiny_settings(bench):
    from benchmarks.implementations import MLPConfig
    from benchmarks.timing import TimingConfig

    mlp = MLPConfig(in_features=12, hidden=(8, 8), num_classes=3, batch_size=4)
    return dataclasses.replace(
        bench.QUICK,
        mlp=mlp,
        mlp_bn_dropout=dataclasses.replace(mlp, batch_norm=True, dropout_rate=0.1),
        step_timing=TimingConfig(rounds=2, block=2, warmup=1, max_rounds=2),
        epoch_timing=TimingConfig(rounds=1, block=1, warmup=0, max_rounds=1),
        compile_repeats=1,
        peak_size=32,
        peak_repeats=2,
    )


def _positive(value) -> bool:
    return isinstance(value, int | float) and math.isfinite(value) and value > 0


def test_every_section_runs_and_writes_positive_numbers(bench, tmp_path):
    from benchmarks.implementations import torch_available
    from benchmarks.report import summary, write_json

    results = bench.run_benchmarks(_tiny_settings(bench), quick=True)
    path = write_json(results, tmp_path / "out" / "results.json")
    loaded = json.loads(path.read_text())
    assert "MLP 12-8-8-3" in summary(loaded)

    assert set(loaded) >= {"machine", "quick", "settings", "sections"}
    assert loaded["machine"]["cpu_count"] >= 1
    assert {"jax", "flax", "optax", "torch"} <= set(loaded["machine"]["versions"])
    sections = loaded["sections"]
    assert list(sections) == list(bench.SECTIONS)
    assert _positive(sections["peak"]["gflops"])

    expected = {"adljax", "flax", "torch"} if torch_available() else {"adljax", "flax"}
    for name in ("mlp", "mlp_bn_dropout"):
        section = sections[name]
        assert set(section["implementations"]) == expected
        for row in section["implementations"].values():
            assert _positive(row["median_ms"])
            assert _positive(row["gflops"])
            assert _positive(row["percent_of_peak"])
        assert _positive(section["ratios"]["adljax/flax"])
        if torch_available():
            assert _positive(section["ratios"]["torch/adljax"])
        else:
            assert section["notes"]

    assert _positive(sections["donation"]["ratio_not_donated/donated"])
    assert all(_positive(v["median_ms"]) for v in sections["ablation"]["variants"].values())
    epoch = sections["epoch"]
    assert set(epoch["modes"]) == {"whole_epoch", "host_batches", "flax_scan", "flax_loop"}
    assert all(_positive(mode["examples_per_sec"]) for mode in epoch["modes"].values())
    assert _positive(epoch["speedup_whole_epoch"])
    assert set(epoch["ratio_to_hand_written"]) == {"whole_epoch", "host_batches"}
    assert all(_positive(ratio) for ratio in epoch["ratio_to_hand_written"].values())
    compiled = sections["compile"]["functions"]
    assert set(compiled) == {
        "adljax_step",
        "flax_step",
        "adljax_step_digits",
        "adljax_epoch_digits",
    }
    assert all(_positive(entry["median_s"]) for entry in compiled.values())


def test_command_line_writes_the_chosen_section(bench, tmp_path, capsys):
    out = tmp_path / "peak.json"
    assert bench.main(["--quick", "--only", "peak", "--out", str(out)]) == 0
    loaded = json.loads(out.read_text())
    assert loaded["quick"] is True
    assert list(loaded["sections"]) == ["peak"]
    assert "GFLOP/s" in capsys.readouterr().out
