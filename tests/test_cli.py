"""The ``adljax`` command line: JSON output, checkpoints, resume, errors."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from adljax.cli import main


def _run(capsys, *argv):
    status = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def _json(capsys, *argv):
    status, out, err = _run(capsys, *argv, "--json")
    assert status == 0, err
    return json.loads(out.strip().splitlines()[-1])


QUIET = ("--no-progress",)


def test_models_and_datasets_are_listed(capsys):
    _, models, _ = _run(capsys, "models")
    _, datasets, _ = _run(capsys, "datasets")
    assert {"linear", "mlp"} <= {line.split()[0] for line in models.splitlines()}
    names = {line.split()[0] for line in datasets.splitlines()}
    assert {"xor", "spirals", "digits", "diabetes", "housing_synthetic", "mnist"} <= names


def test_train_prints_one_json_object_last(capsys):
    summary = _json(
        capsys, "train", "mlp", "--dataset", "xor", "--epochs", "3", "--batch-size", "16", *QUIET
    )
    assert set(summary) == {"model", "dataset", "epochs", "train", "eval", "checkpoint_dir"}
    assert summary["model"] == "mlp" and summary["dataset"] == "xor" and summary["epochs"] == 3
    assert {"loss", "accuracy"} <= set(summary["eval"])
    assert summary["checkpoint_dir"] is None


def test_linear_on_regression_data_reports_regression_metrics(capsys):
    summary = _json(
        capsys,
        "train",
        "linear",
        "--dataset",
        "housing_synthetic",
        "--epochs",
        "20",
        "--optimizer",
        "sgd",
        "--learning-rate",
        "0.05",
        *QUIET,
    )
    assert set(summary["eval"]) == {"loss", "mse", "rmse", "mae", "r2"}
    assert summary["eval"]["r2"] > 0.9


def test_train_resume_evaluate_and_predict_from_a_checkpoint(capsys, tmp_path):
    run = tmp_path / "run"
    common = (
        "train",
        "mlp",
        "--dataset",
        "digits",
        "--checkpoint-dir",
        run,
        "--set",
        "hidden_sizes=[32]",
        *QUIET,
    )
    first = _json(capsys, *common, "--epochs", "2")
    resumed = _json(capsys, *common, "--epochs", "3", "--resume")
    assert first["epochs"] == 2 and resumed["epochs"] == 3
    assert len((run / "history.jsonl").read_text().splitlines()) == 3

    evaluated = _json(capsys, "evaluate", "--checkpoint-dir", run)
    for name, value in resumed["eval"].items():
        assert evaluated["eval"][name] == pytest.approx(value, rel=1e-5, abs=1e-6)

    output = tmp_path / "outputs.npy"
    predicted = _json(
        capsys, "predict", "--checkpoint-dir", run, "--output", output, "--limit", "3"
    )
    assert predicted["count"] == 3 and predicted["total"] == 359
    assert len(predicted["predictions"]) == 3 and predicted["output"] == str(output)
    outputs = np.load(output)
    assert outputs.shape == (359, 10)
    assert predicted["predictions"][0]["class"] == int(outputs[0].argmax())
    from adljax.data import load

    labels = load("digits", "test").to_arrays().arrays["y"][:3]
    assert [row["label"] for row in predicted["predictions"]] == labels.tolist()

    inputs = tmp_path / "inputs.npy"
    np.save(inputs, np.zeros((2, 8, 8, 1), np.float32))
    from_file = _json(capsys, "predict", "--checkpoint-dir", run, "--input", inputs)
    assert from_file["count"] == 2


def test_ensemble_reports_the_members_spread(capsys):
    summary = _json(
        capsys,
        "train",
        "mlp",
        "--dataset",
        "digits",
        "--epochs",
        "1",
        "--ensemble",
        "3",
        "--learning-rates",
        "1e-3,3e-3,1e-2",
        *QUIET,
    )
    assert {"accuracy", "accuracy_std", "loss_std"} <= set(summary["eval"])


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["train", "cnn9", "--dataset", "xor"], "unknown model 'cnn9'"),
        (["train", "mlp", "--dataset", "nope"], "unknown dataset 'nope'"),
        (["train", "mlp", "--dataset", "xor", "--epochs", "0"], "`epochs` must be a positive"),
        (["train", "mlp", "--dataset", "xor", "--batch-size", "0"], "`batch_size` must be a"),
        (["train", "mlp", "--dataset", "xor", "--batch-size", "999"], "larger than the training"),
        (["train", "mlp", "--dataset", "xor", "--optimizer", "adamx"], "unknown optimizer"),
        (["train", "mlp", "--dataset", "xor", "--set", "width=3"], "unknown config key"),
        (["train", "mlp", "--dataset", "xor", "--set", "activation=swishy"], "swishy"),
        (["evaluate", "--checkpoint-dir", "/nonexistent/run"], "does not exist"),
    ],
)
def test_bad_input_exits_with_a_clear_message(capsys, argv, message):
    status, _, err = _run(capsys, *argv, *([] if argv[0] == "evaluate" else QUIET))
    assert status == 2
    assert message in err


def test_an_existing_run_is_not_overwritten_without_resume(capsys, tmp_path):
    argv = (
        "train",
        "mlp",
        "--dataset",
        "xor",
        "--epochs",
        "1",
        "--batch-size",
        "16",
        "--checkpoint-dir",
        tmp_path,
        *QUIET,
    )
    assert _run(capsys, *argv)[0] == 0
    listing = sorted(p.name for p in tmp_path.iterdir())
    status, _, err = _run(capsys, *argv)
    assert status == 2 and "already holds a run" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == listing


def test_paths_are_absolute_in_every_commands_output(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    argv = ["train", "mlp", "--dataset", "xor", "--epochs", "1", "--batch-size", "16"]
    trained = _json(capsys, *argv, "--checkpoint-dir", "run", *QUIET)
    evaluated = _json(capsys, "evaluate", "--checkpoint-dir", "run")
    assert trained["checkpoint_dir"] == evaluated["checkpoint_dir"] == str(tmp_path / "run")
    assert trained["curves"] == str(tmp_path / "run" / "curves.png")
    status, out, err = _run(
        capsys, "predict", "--checkpoint-dir", "run", "--limit", "2", "--output", "y.npy"
    )
    assert status == 0, err
    assert f"all 4 outputs (4, 1) written to {tmp_path / 'y.npy'}" in out
    assert "(2 of 4 shown; --limit shows more)" in out and "(label " in out


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--output", "y.txt"], "--output must end in .npy, got 'y.txt'"),
        (["--output", "missing/y.npy"], "its directory does not exist"),
        (["--limit", "0"], "--limit must be at least 1, got 0"),
    ],
)
def test_predict_checks_its_options_before_loading(capsys, tmp_path, monkeypatch, extra, message):
    monkeypatch.chdir(tmp_path)
    argv = ["train", "mlp", "--dataset", "xor", "--epochs", "1", "--batch-size", "16"]
    _json(capsys, *argv, "--checkpoint-dir", "run", *QUIET)
    status, _, err = _run(capsys, "predict", "--checkpoint-dir", "run", *extra)
    assert status == 2 and message in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]


def test_predict_refuses_to_overwrite_an_output_file(capsys, tmp_path):
    run = tmp_path / "run"
    _json(
        capsys,
        "train",
        "mlp",
        "--dataset",
        "xor",
        "--epochs",
        "1",
        "--batch-size",
        "16",
        "--checkpoint-dir",
        run,
        *QUIET,
    )
    output = tmp_path / "kept.npy"
    output.write_bytes(b"precious")
    status, _, err = _run(capsys, "predict", "--checkpoint-dir", run, "--output", output)
    assert status == 2 and "not overwriting" in err
    assert output.read_bytes() == b"precious"


def test_devices_flag_shards_over_simulated_cpu_devices():
    env = {key: value for key, value in os.environ.items() if key != "XLA_FLAGS"}
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "adljax.cli",
            "train",
            "mlp",
            "--dataset",
            "xor",
            "--epochs",
            "2",
            "--batch-size",
            "16",
            "--devices",
            "4",
            "--json",
            "--no-progress",
        ],
        capture_output=True,
        text=True,
        env={**env, "JAX_PLATFORMS": "cpu"},
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert json.loads(result.stdout.strip().splitlines()[-1])["epochs"] == 2


@pytest.mark.slow
def test_quick_tour_runs_offline_and_prints_the_table(capsys, tmp_path):
    summary = _json(capsys, "tour", "--quick", "--output-dir", tmp_path)
    lessons = {row["lesson"] for row in summary["results"]}
    assert {"line of best fit", "XOR", "checkpoints", "ensemble"} <= lessons
    rows = {
        (row["lesson"], row["model"], row["metric"]): row["value"] for row in summary["results"]
    }
    assert (
        rows[("ConvNets", "cnn", "eval accuracy")]
        > rows[("ConvNets", "mlp (128, 128)", "eval accuracy")]
    )
    assert rows[("representations", "cnn features", "ARI")] > (
        rows[("representations", "raw pixels", "ARI")] + 0.2
    )
    pngs = {p.name for p in tmp_path.rglob("*.png")}
    assert {"filters.png", "feature_maps.png", "embedding_pca.png", "xor_warp.png"} <= pngs
    xor = {row["model"]: row["value"] for row in summary["results"] if row["lesson"] == "XOR"}
    assert xor["mlp"] == 1.0 and xor["linear"] <= 0.75
    served = {row["metric"]: row for row in summary["results"] if row["lesson"] == "Application"}
    assert served["accuracy"]["value"] > 0.8  # the exported CNN, answered over HTTP
    for level in (1, 8, 32):
        row = served[f"requests/s at concurrency {level}"]
        assert row["value"] > 0 and "0 errors" in row["note"]
    assert list(tmp_path.rglob("digits_cnn.export/manifest.json"))


def test_fine_tune_from_a_checkpoint_with_frozen_layers(capsys, tmp_path):
    source = tmp_path / "source"
    common = ("--dataset", "digits", "--epochs", "1", "--set", "batch_norm=true", *QUIET)
    _json(capsys, "train", "cnn", *common, "--checkpoint-dir", source)
    tuned = _json(
        capsys,
        "train",
        "cnn",
        *common,
        "--augment",
        "--pretrained",
        source,
        "--freeze",
        "conv_0",
        "--freeze",
        "bn_0",
        "--checkpoint-dir",
        tmp_path / "t",
    )
    # 8 parameters + 4 batch statistics; the head (2) is left new.
    assert tuned["transfer"] == {"copied": 12, "new": 2, "mismatched": 0, "unused": 0}
    from adljax.inference import load_checkpoint

    before, _ = load_checkpoint(source)
    after, meta = load_checkpoint(tmp_path / "t")
    assert meta["freeze"] == ["conv_0", "bn_0"] and meta["augment"] is True
    np.testing.assert_array_equal(
        after.params["conv_0"]["kernel"], before.params["conv_0"]["kernel"]
    )
    np.testing.assert_array_equal(
        after.model_state["batch_stats"]["bn_0"]["mean"],
        before.model_state["batch_stats"]["bn_0"]["mean"],
    )
    assert not np.array_equal(after.params["conv_1"]["kernel"], before.params["conv_1"]["kernel"])


def test_pretrained_path_must_exist(capsys):
    status, _, err = _run(
        capsys,
        "train",
        "cnn",
        "--dataset",
        "digits",
        "--pretrained",
        "/nonexistent/weights.pth",
        *QUIET,
    )
    assert status == 2
    assert "does not exist" in err


@pytest.mark.parametrize(
    ("model", "dataset"),
    [("cnn", "mnist"), pytest.param("resnet18", "cifar10", marks=pytest.mark.slow)],
)
def test_tfds_datasets_train_through_the_command_line(capsys, tmp_path, model, dataset):
    tfds = pytest.importorskip("tensorflow_datasets")
    settings = ("--set", "width=8", "--set", "stem=cifar") if model == "resnet18" else ()
    with tfds.testing.mock_data(num_examples=24):
        summary = _json(
            capsys,
            "train",
            model,
            "--dataset",
            dataset,
            "--epochs",
            "1",
            "--batch-size",
            "8",
            "--augment",
            "--checkpoint-dir",
            tmp_path,
            *settings,
            *QUIET,
        )
        evaluated = _json(capsys, "evaluate", "--checkpoint-dir", tmp_path)
    assert summary["epochs"] == 1
    assert 0.0 <= summary["eval"]["accuracy"] <= 1.0
    assert evaluated["eval"]["accuracy"] == pytest.approx(summary["eval"]["accuracy"])


def test_sequence_predictions_are_described_per_step():
    from adljax.cli import _describe_predictions

    logits = np.zeros((2, 3, 4), np.float32)
    logits[0, [0, 1, 2], [3, 0, 1]] = 1.0
    logits[1, [0, 1, 2], [2, 2, 0]] = 1.0
    tagged = _describe_predictions("tagging", logits)
    assert tagged == [{"classes": [3, 0, 1]}, {"classes": [2, 2, 0]}]
    text = _describe_predictions("language_modeling", logits, vocabulary="ab c")
    assert text == [{"next_characters": "cab"}, {"next_characters": "  a"}]


@pytest.mark.parametrize(
    ("model", "dataset", "message"),
    [
        ("mlp", "shapes", "dataset 'shapes' is a detection dataset: train detector on it"),
        ("cnn", "ring8", "dataset 'ring8' is a generation dataset: train gan or dcgan on it"),
        ("mlp", "copy", "dataset 'copy' is a tagging dataset: train rnn or gru or lstm on it"),
        ("lstm", "pydoc_chars", "train charlm on it, not 'lstm'"),
        ("charlm", "digits", "'charlm' needs a language_modeling dataset, but 'digits'"),
    ],
)
def test_a_model_that_cannot_learn_the_dataset_is_refused(capsys, model, dataset, message):
    status, _, err = _run(capsys, "train", model, "--dataset", dataset, *QUIET)
    assert status == 2
    assert message in err


def test_cell_is_refused_for_models_that_name_their_cell(capsys):
    status, _, err = _run(capsys, "train", "lstm", "--dataset", "adding", "--cell", "gru")
    assert status == 2
    assert "--cell chooses the cell of charlm; 'lstm' names its model itself" in err


def test_train_with_diagnostics_prints_the_layers_and_writes_the_figure(capsys, tmp_path):
    run = tmp_path / "run"
    status, out, err = _run(
        capsys,
        "train",
        "mlp",
        "--dataset",
        "xor",
        "--epochs",
        "2",
        "--diagnostics",
        "8",
        "--checkpoint-dir",
        run,
        *QUIET,
    )
    assert status == 0, err
    assert "diagnostics: 4 reports, every 8 steps; at step 24:" in out  # 16 steps an epoch
    assert "dense_0" in out and "activations hidden_0" in out
    assert (run / "diagnostics.png").stat().st_size > 5_000
    history = [json.loads(line) for line in (run / "history.jsonl").read_text().splitlines()]
    assert [r["step"] for record in history for r in record["diagnostics"]] == [0, 8, 16, 24]
