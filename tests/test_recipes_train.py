"""With the model and the dataset alone, each family trains to the tour's figures (slow: these
are the tour's full recipes)."""

import json

import pytest

from adljax.cli import main

# (model, dataset, extra flags, metric, lowest acceptable value)
FAMILIES = [
    ("linear", "housing_synthetic", (), "r2", 0.95),
    ("mlp", "xor", (), "accuracy", 1.0),
    ("mlp", "digits", (), "accuracy", 0.97),
    ("mlp", "digits", ("--ensemble", "4"), "accuracy", 0.97),
    ("cnn", "digits", (), "accuracy", 0.98),
    # At width 8: the default 64 trains the same way but takes 14 minutes here on 2 cores.
    ("resnet18", "digits", ("--set", "width=8"), "accuracy", 0.9),
    ("lstm", "adding", (), "mse", -0.02),  # an mse of at most 0.02 (the mean predicts 0.167)
    ("charlm", "pydoc_chars", (), "perplexity", -9.0),
    ("detector", "shapes", (), "voc_map50", 0.8),  # VOC's mAP@0.5, as the tour reports
    ("gan", "ring8", (), "modes", 8.0),
]


@pytest.mark.slow
@pytest.mark.parametrize(("model", "dataset", "extra", "metric", "floor"), FAMILIES)
def test_defaults_alone_reach_the_tours_figures(capsys, model, dataset, extra, metric, floor):
    status = main(["train", model, "--dataset", dataset, *extra, "--no-progress", "--json"])
    captured = capsys.readouterr()
    assert status == 0, captured.err
    assert f"adljax train: {model} on {dataset} with " in captured.err
    value = json.loads(captured.out.strip().splitlines()[-1])["eval"][metric]
    print(f"{model} on {dataset} {' '.join(extra)}: eval {metric} {value:.4f}")
    assert (value if floor >= 0 else -value) >= floor, (model, dataset, metric, value)
