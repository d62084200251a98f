"""Smoke test of ``benchmarks/bench_recurrent.py`` on tiny sizes: its JSON and its table."""

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
    """``benchmarks.bench_recurrent`` (``benchmarks/`` lives beside ``tests/``)."""
    monkeypatch.syspath_prepend(str(ROOT))
    return importlib.import_module("benchmarks.bench_recurrent")


def _positive(value) -> bool:
    return isinstance(value, int | float) and math.isfinite(value) and value > 0


def test_tiny_run_writes_positive_numbers(bench, tmp_path):
    from benchmarks.implementations import torch_available
    from benchmarks.report import write_json
    from benchmarks.timing import TimingConfig

    settings = dataclasses.replace(
        bench.QUICK,
        batch=4,
        length=6,
        embedding=4,
        hidden=8,
        vocab=20,
        timing=TimingConfig(rounds=1, block=1, warmup=1, max_rounds=1),
        compile_lengths=(3, 9),
    )
    with_torch = torch_available()
    results = bench.run_recurrent(settings, quick=True, with_torch=with_torch)
    loaded = json.loads(write_json(results, tmp_path / "recurrent.json").read_text())
    assert list(loaded["cells"]) == ["lstm", "gru"]
    expected = {"adljax", "flax", "torch"} if with_torch else {"adljax", "flax"}
    for section in loaded["cells"].values():
        assert set(section["implementations"]) == expected
        for name, row in section["implementations"].items():
            assert _positive(row["median_ms"]) and _positive(row["time_ratio_to_adljax"])
            assert _positive(row["percent_of_peak"]) and _positive(row["gflops"])
            assert name == "torch" or _positive(row["compile_s"])
        assert _positive(section["ratios"]["adljax/flax"])
    assert all(_positive(s) for s in loaded["compile_s_by_length"]["lstm"].values())
    assert list(loaded["compile_s_by_length"]["lstm"]) == ["3", "9"]
    table = bench.summary(loaded)
    assert "lstm" in table and "gru" in table and "T=9" in table


def test_models_agree_on_the_task(bench):
    """The adljax and hand-written Flax classifiers map the same batch to the same shape."""
    import jax

    settings = dataclasses.replace(bench.QUICK, batch=2, length=5, vocab=7, hidden=3, embedding=2)
    x, _ = bench.make_batches(settings)
    for cell in bench.CELLS:
        ours = bench.adljax_model(cell, settings)
        theirs = bench.FlaxRecurrentClassifier(cell, 7, 2, 3)
        outputs = [
            jax.eval_shape(lambda m=m: m.init_with_output(jax.random.key(0), x[0], train=False)[0])
            for m in (ours, theirs)
        ]
        assert outputs[0].shape == outputs[1].shape == (2, bench.NUM_CLASSES)


def test_command_line_arguments(bench, tmp_path):
    args = bench.parse_args(["--quick", "--out", str(tmp_path / "x.json")])
    assert args.quick and args.out == tmp_path / "x.json"
    assert bench.parse_args([]).out == bench.DEFAULT_OUT
