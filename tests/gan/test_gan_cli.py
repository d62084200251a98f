"""``adljax train gan|dcgan``, ``evaluate`` and ``predict`` on GAN checkpoints."""

import json

import pytest

from adljax.cli import main

pytestmark = pytest.mark.usefixtures("fast_compiles")


def _json(capsys, *argv):
    status = main([str(a) for a in argv] + ["--json"])
    captured = capsys.readouterr()
    assert status == 0, captured.err
    return json.loads(captured.out.strip().splitlines()[-1])


@pytest.mark.parametrize(
    ("model", "dataset", "settings", "metrics"),
    [
        (
            "gan",
            "ring8",
            ["generator_sizes=[16]", "discriminator_sizes=[16]", "latent_dim=2"],
            {"modes", "high_quality"},
        ),
        pytest.param(
            "dcgan",
            "digits",
            ["features=4", "latent_dim=4"],
            {"frechet_distance", "classes_covered", "class_entropy"},
            marks=pytest.mark.slow,  # trains the feature classifier first: 20-50 s
        ),
    ],
)
def test_train_evaluate_predict(capsys, tmp_path, model, dataset, settings, metrics):
    run = tmp_path / "run"
    options = [arg for setting in settings for arg in ("--set", setting)]
    summary = _json(
        capsys, "train", model, "--dataset", dataset, "--epochs", 1, "--batch-size", 500,
        "--checkpoint-dir", run, "--no-progress", *options,
    )  # fmt: skip
    assert set(summary["eval"]) == metrics
    # evaluate scores the same latents against the same split: the numbers training reported.
    evaluated = _json(capsys, "evaluate", "--checkpoint-dir", run)
    assert evaluated["eval"] == pytest.approx(summary["eval"])

    predicted = _json(capsys, "predict", "--checkpoint-dir", run, "--limit", 16)
    assert predicted["count"] == 16
    for key in ("samples", "interpolation"):
        with open(predicted[key], "rb") as file:
            assert file.read(8) == b"\x89PNG\r\n\x1a\n"
    # A second predict would write the same files: refused, nothing replaced.
    assert main(["predict", "--checkpoint-dir", str(run)]) == 2
    assert "not overwriting" in capsys.readouterr().err


def test_training_into_an_existing_run_needs_resume(capsys, tmp_path):
    argv = ["train", "gan", "--dataset", "ring8", "--epochs", "1", "--batch-size", "1000",
            "--set", "generator_sizes=[8]", "--set", "discriminator_sizes=[8]",
            "--checkpoint-dir", str(tmp_path), "--no-progress"]  # fmt: skip
    assert main(argv) == 0
    capsys.readouterr()
    assert main(argv) == 2
    assert "resume" in capsys.readouterr().err
    assert main([*argv[:5], "2", *argv[6:], "--resume"]) == 0
