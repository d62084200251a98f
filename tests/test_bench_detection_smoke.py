"""Smoke test of ``benchmarks/bench_detection.py`` on tiny sizes: the JSON and the table."""

import dataclasses
import importlib
import json
import math
from pathlib import Path

import pytest

# Slow (the default suite stays under 10 minutes): run by `.ci/run` with `-m slow`.
pytestmark = [pytest.mark.usefixtures("fast_compiles"), pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def bench(monkeypatch):
    """``benchmarks.bench_detection`` (``benchmarks/`` lives beside ``tests/``)."""
    monkeypatch.syspath_prepend(str(ROOT))
    return importlib.import_module("benchmarks.bench_detection")


def _positive(value) -> bool:
    return isinstance(value, int | float) and math.isfinite(value) and value > 0


def test_tiny_run_writes_positive_numbers_and_the_same_boxes(bench, tmp_path):
    from benchmarks.report import write_json
    from benchmarks.timing import TimingConfig

    timing = TimingConfig(rounds=1, block=1, warmup=1, max_rounds=1)
    settings = dataclasses.replace(
        bench.QUICK,
        train_batch=4,
        decode_batch=4,
        model={"width": 4, "head_width": 8, "tower_depth": 1},
        train_timing=timing,
        decode_timing=timing,
    )
    results = bench.run_detection(settings, quick=True)
    loaded = json.loads(write_json(results, tmp_path / "detection.json").read_text())
    train, nms = loaded["train_step"], loaded["decode_nms"]
    assert all(_positive(train[k]) for k in ("median_ms", "images_per_s", "compile_s"))
    assert all(_positive(nms[k]) for k in ("jax_ms", "numpy_ms", "numpy_over_jax"))
    assert nms["same_selection"] is True
    assert nms["candidates_per_image"] == 80 * 3 and 0 < nms["kept_per_image"] <= 100
    assert "same boxes: True" in bench.table(results)
