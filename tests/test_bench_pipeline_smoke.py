"""Smoke test of ``benchmarks/bench_pipeline.py`` and ``bench_precision.py``'s own command
on tiny sizes: the JSON and the table."""

import importlib
import json
import math
from pathlib import Path

import pytest

pytestmark = pytest.mark.usefixtures("fast_compiles")

ROOT = Path(__file__).resolve().parents[1]


def test_quick_pipeline_run_reports_every_reader_and_fit(monkeypatch, tmp_path, capsys):
    monkeypatch.syspath_prepend(str(ROOT))
    bench = importlib.import_module("benchmarks.bench_pipeline")
    out = tmp_path / "pipeline.json"
    assert bench.main(["--quick", "--out", str(out)]) == 0
    section = json.loads(out.read_text())["pipeline"]
    rates = [
        *section["reader_examples_per_sec"].values(),
        *section["fit_streamed_examples_per_sec"].values(),
        section["fit_in_memory_examples_per_sec"],
    ]
    assert set(section["reader_examples_per_sec"]) == {"0", "2"}
    assert all(math.isfinite(rate) and rate > 0 for rate in rates)
    assert "reader, 2 threads" in capsys.readouterr().out


def test_png_source_decodes_the_images_it_encoded(monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT))
    bench = importlib.import_module("benchmarks.bench_pipeline")
    source = bench.PNGSource(3)
    example = source[1]
    assert example["image"].shape == (32, 32, 3) and example["image"].dtype.name == "uint8"
    assert example["label"] == source.labels[1]


@pytest.mark.slow  # compiles ResNet-18 in three dtypes: about a minute
def test_quick_accelerator_precision_run(monkeypatch, tmp_path):
    monkeypatch.syspath_prepend(str(ROOT))
    bench = importlib.import_module("benchmarks.bench_precision")
    out = tmp_path / "precision.json"
    assert bench.main(["--quick", "--out", str(out)]) == 0
    models = json.loads(out.read_text())["precision"]["models"]
    assert set(models) == {"cnn", "resnet18"}
    for values in models.values():
        assert set(values["median_ms_per_epoch"]) == {"float32", "bfloat16", "float16"}
        assert all(ms > 0 for ms in values["median_ms_per_epoch"].values())
