"""Smoke test of ``examples/gan.py``: short runs, and the numbers move the right way."""

import importlib.util
from pathlib import Path

import pytest

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "gan.py"


@pytest.mark.slow  # trains two GANs and the feature classifier: about a minute
def test_gan_example_measures_its_samples(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the figures go to ./gan_figures
    spec = importlib.util.spec_from_file_location("adljax_example_gan", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    out = module.main(ring_epochs=12, digits_epochs=6)
    ring, digits = out["ring"], out["digits"]
    assert len(ring["modes"]) == 12 and all(0 <= hq <= 1 for hq in ring["hq"])
    assert all(0 <= modes <= 8 for modes in ring["modes"])
    # Six epochs take the DCGAN's Fréchet distance well down from its first-epoch value.
    assert digits["fd"][-1] < 0.7 * digits["fd"][0]
    assert 0 < digits["real_fd"] < digits["fd"][-1]
    assert sorted(p.name for p in (tmp_path / "gan_figures").iterdir()) == [
        "digits_6.png",
        "ring8_12.png",
    ]
