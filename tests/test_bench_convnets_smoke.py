"""Smoke test of ``benchmarks/bench_convnets.py`` on tiny sizes: the JSON it writes and its table.

Batch 4, one timed step per implementation, a width-8 ResNet with one block per stage. The
PyTorch rows are checked only when torch is importable.
"""

import dataclasses
import importlib
import json
import math
from pathlib import Path

import pytest

# Tiny models compile 2-5x faster with most XLA optimisations off (see conftest.py).
# Slow (the default suite stays under 10 minutes): run by `.ci/run` with `-m slow`.
pytestmark = [pytest.mark.usefixtures("fast_compiles"), pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[1]
JAX_ROWS = {"adljax", "adljax_xla_defaults", "flax"}
TORCH_ROWS = {"torch", "torch_channels_last"}


@pytest.fixture
def bench(monkeypatch):
    """``benchmarks.bench_convnets`` (``benchmarks/`` lives beside ``tests/``)."""
    monkeypatch.syspath_prepend(str(ROOT))
    return importlib.import_module("benchmarks.bench_convnets")


def _positive(value) -> bool:
    return isinstance(value, int | float) and math.isfinite(value) and value > 0


def test_tiny_run_writes_positive_numbers(bench, tmp_path):
    from benchmarks.implementations import torch_available
    from benchmarks.report import write_json
    from benchmarks.timing import TimingConfig

    timing = TimingConfig(rounds=1, block=1, warmup=1, max_rounds=1)
    settings = dataclasses.replace(
        bench.QUICK,
        cnn_batch=4,
        resnet_batch=4,
        resnet_width=8,
        resnet_stage_sizes=(1, 1, 1, 1),  # a shorter ResNet: half the compile time
        cnn_timing=timing,
        resnet_timing=timing,
        peak_size=32,
        peak_repeats=2,
    )
    with_torch = torch_available()
    results = bench.run_convnets(settings, quick=True, with_torch=with_torch)
    path = write_json(results, tmp_path / "convnets.json")
    loaded = json.loads(path.read_text())

    assert set(loaded) >= {
        "machine",
        "quick",
        "settings",
        "peak",
        "models",
        "adljax_compiler_options",
    }
    assert loaded["machine"]["cpu_count"] >= 1
    assert "load_average_end" in loaded["machine"]
    assert _positive(loaded["peak"]["gflops"])
    assert list(loaded["models"]) == ["cnn", "resnet18"]
    expected = JAX_ROWS | TORCH_ROWS if with_torch else JAX_ROWS
    for section in loaded["models"].values():
        assert _positive(section["flops"])
        assert set(section["implementations"]) == expected
        for name, row in section["implementations"].items():
            assert _positive(row["median_ms"])
            assert _positive(row["gflops"])
            assert _positive(row["percent_of_peak"])
            assert _positive(row["time_ratio_to_adljax"])
            if name in JAX_ROWS:
                assert _positive(row["compile_s"])
        ratios = section["ratios"]
        assert _positive(ratios["adljax/flax"])
        assert _positive(ratios["adljax_xla_defaults/adljax"])
        if with_torch:
            assert _positive(ratios["torch/adljax"])
            assert _positive(ratios["torch_channels_last/adljax"])
        else:
            assert section["notes"]
        check = section["path_numerics"]
        assert math.isfinite(check["loss_adljax"])
        assert check["loss_abs_diff"] < 1e-4
        # Adam's first update is about lr * sign(grad): a tiny gradient whose sign differs
        # between the two paths moves a parameter by at most 2 * lr.
        assert check["params_max_abs_diff"] <= 2.5e-3
        assert check["grads_max_abs_diff"] <= 1e-3 * check["grads_max_abs"]
    assert "model_state_max_abs_diff" in loaded["models"]["resnet18"]["path_numerics"]
    table = bench.summary(loaded)
    assert "ResNet-18" in table
    assert "adljax_xla_defaults" in table


def test_command_line_arguments(bench, tmp_path):
    args = bench.parse_args(["--quick", "--out", str(tmp_path / "x.json")])
    assert args.quick
    assert args.out == tmp_path / "x.json"
    assert bench.parse_args([]).out == bench.DEFAULT_OUT


def test_models_option_selects_and_validates(bench, capsys):
    assert bench.parse_args([]).models == ["cnn", "resnet18"]
    assert bench.parse_args(["--models", "cnn"]).models == ["cnn"]
    assert bench.parse_args(["--models", "resnet18", "cnn", "resnet18"]).models == [
        "resnet18",
        "cnn",
    ]
    with pytest.raises(SystemExit):
        bench.parse_args(["--models", "resnet50"])
    assert "invalid choice: 'resnet50'" in capsys.readouterr().err
