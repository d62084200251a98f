"""Smoke test of ``examples/recurrent.py`` with small settings."""

import importlib.util
from pathlib import Path

import pytest

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "recurrent.py"


@pytest.mark.slow  # about 30 s of CPU: three adding runs and a character-model epoch
def test_recurrent_example_shows_its_lessons():
    spec = importlib.util.spec_from_file_location("adljax_example_recurrent", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    out = module.main(seq_len=20, epochs=2, charlm_epochs=1, hidden_size=32)
    assert out["layer"]["padding_gap"] < 1e-5 and out["layer"]["chunk_gap"] < 1e-5
    mse = out["adding_mse"]
    assert set(mse) == {"rnn", "gru", "lstm", "mean"}
    assert 0.1 < mse["mean"] < 0.25  # 1/6 in expectation
    assert min(mse["gru"], mse["lstm"]) < 0.5 * mse["mean"]  # short sequences: gates learn fast
    charlm = out["charlm"]
    assert charlm["perplexity"] < charlm["unigram_perplexity"]
    assert set(charlm["samples"]) == {0.5, 1.0}
    assert all(text.startswith("The ") and len(text) == 124 for text in charlm["samples"].values())
