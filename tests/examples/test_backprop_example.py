"""Smoke test of ``examples/backpropagation.py``: with small settings its numbers show the
lesson's point (hand-written gradients are jax.grad's; the learning rate decides convergence)."""

import importlib.util
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "backpropagation.py"


def test_backpropagation_by_hand_equals_jax_grad_and_the_learning_rate_decides(tmp_path):
    spec = importlib.util.spec_from_file_location("adljax_example_backpropagation", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    out = module.main(str(tmp_path), steps=1000)
    assert out["shapes"] == {
        "x": (320, 2),
        "z1": (320, 64),
        "h": (320, 64),
        "z2": (320, 2),
        "dz2": (320, 2),
        "dh": (320, 64),
        "dz1": (320, 64),
        "dw1": (2, 64),
        "db1": (64,),
        "dw2": (64, 2),
        "db2": (2,),
    }
    assert set(out["autodiff_difference"]) == {"sigmoid", "tanh", "relu"}
    assert max(out["autodiff_difference"].values()) < 1e-6  # float32 round-off
    assert out["finite_difference_error"] < 1e-7  # float64, central differences
    assert out["losses"][-1] < 0.25 * out["losses"][0]
    assert out["test_accuracy"] > 0.95

    loss = out["final_loss"]
    assert out["stability_limit"] == pytest.approx(0.744, abs=1e-3)
    assert loss[0.6] == pytest.approx(out["least_squares_loss"], rel=1e-5)
    assert out["least_squares_loss"] < loss[0.05] < 1.0  # too small: still on its way
    assert loss[0.76] > 100 * loss[0.05]  # above 2 / curvature: diverges
    paths = out["descent_paths"]
    np.testing.assert_allclose(paths[0.6][-1], out["least_squares"], atol=1e-4)
    assert all(path.shape == (31, 2) for path in paths.values())
    with Image.open(out["figure"]) as image:
        assert image.format == "PNG"
    assert out["figure"] == tmp_path / "descent_paths.png"
