"""Smoke test of ``examples/jax_intro.py``: a short run, and each concept shows its point."""

import importlib.util
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.usefixtures("fast_compiles")

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "jax_intro.py"


@pytest.fixture(scope="module")
def jax_intro():
    spec = importlib.util.spec_from_file_location("adljax_example_jax_intro", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_jax_intro_example_shows_each_concept(jax_intro, tmp_path, capsys):
    out = jax_intro.main(gd_steps=100, mlp_epochs=4, checkpoint_dir=str(tmp_path))
    printed = capsys.readouterr().out
    for tf1, *_ in jax_intro.TF1_TO_JAX:
        assert tf1 in printed
    assert "contracting dimensions to have the same shape" in out["shape_error"]
    np.testing.assert_array_equal(out["matmul"], [[70.0, 100.0], [150.0, 220.0]])
    assert out["eval_shape"] == (32, 1)
    assert "stablehlo.dot_general" in out["stablehlo"] and out["flops"] > 0
    # Full-batch gradient descent by hand is least squares.
    np.testing.assert_allclose(out["hand_coefficients"], out["lstsq_coefficients"], atol=1e-6)
    assert 0.5 < out["r2"] < 0.7  # 11 features explain about 58% of the test price variance
    assert out["dense_gap"] == 0.0 and out["mlp_gap"] == 0.0
    # One step per compiled call is the hand loop's very computation.
    assert out["library_gap"] == 0.0 and out["library_scan_gap"] <= 1e-5
    assert out["hand_sgd_losses"][-1] < out["hand_sgd_losses"][0]
    assert out["resume_gap"] == 0.0 and out["predict_gap"] == 0.0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["epoch_2"]
    assert np.all((out["predicted_prices"] > 10_000) & (out["predicted_prices"] < 300_000))
