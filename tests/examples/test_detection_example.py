"""Smoke test of ``examples/detection.py`` on a tiny run."""

import importlib.util
from pathlib import Path

import pytest

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "detection.py"

pytestmark = pytest.mark.usefixtures("fast_compiles")


def load_example():
    spec = importlib.util.spec_from_file_location("adljax_example_detection", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow  # about 30-80 s of CPU: compiling the full-size detector dominates
def test_detection_example_trains_and_measures_map(tmp_path):
    out = load_example().main(epochs=2, num_train=64, num_test=16, output_dir=tmp_path)
    assert out["iou"] == pytest.approx(1 / 3) and out["giou"] == pytest.approx(1 / 3)
    assert out["num_points"] == 8 * 8 + 4 * 4 and out["point_strides"] == [8.0, 16.0]
    history = out["history"]
    assert len(history) == 2 and history[1]["train"]["loss"] < history[0]["train"]["loss"]
    assert all({"voc_map50", "ap", "ap50", "ar100"} <= set(r["eval"]) for r in history)
    assert all(0 <= out[name] <= 1 for name in ("voc_map50", "ap", "ap50"))
    assert out["kept"] <= 8 * 100 and out["kept"] < out["candidates"]
    assert set(out["ap_per_class"]) == {"ellipse", "rectangle", "triangle"}
    assert (tmp_path / "predictions.png").is_file() and (tmp_path / "map_vs_time.png").is_file()
