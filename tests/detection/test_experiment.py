"""Detection end to end: train with COCO and VOC AP in the history, resume, and the
evaluate/predict commands on the checkpoint (a tiny run); the full command line in a slow
test."""

import json

import numpy as np
import pytest

from adljax.cli import main
from adljax.detection import evaluate_dataset, run_detection_experiment
from adljax.detection.evaluation import SUMMARY_METRICS
from adljax.inference import load_checkpoint

# The fast tests compile with most XLA optimisations off; the slow ones train for real.
fast_compiles = pytest.mark.usefixtures("fast_compiles")
TINY = {"width": 4, "head_width": 8, "tower_depth": 1}
DATA = {"num_train": 32, "num_test": 8}


def _cli_json(capsys, *argv):
    status = main([str(a) for a in argv] + ["--json"])
    captured = capsys.readouterr()
    assert status == 0, captured.err
    return json.loads(captured.out.strip().splitlines()[-1])


def _cli_text(capsys, *argv):
    status = main([str(a) for a in argv])
    captured = capsys.readouterr()
    assert status == 0, captured.err
    return captured.out


@fast_compiles
def test_train_resume_evaluate_and_predict(capsys, tmp_path):
    run = tmp_path / "run"
    common = {
        "batch_size": 16,
        "model_config_overrides": TINY,
        "dataset_options": DATA,
        "checkpoint_dir": run,
        "progress": False,
        "augment": True,
    }
    first = run_detection_experiment("detector", "shapes", epochs=1, **common)
    resumed = run_detection_experiment("detector", "shapes", epochs=2, resume=True, **common)
    assert first.summary["epochs"] == 1 and resumed.summary["epochs"] == 2
    history = resumed.result.history
    assert [r["epoch"] for r in history] == [1, 2]
    for record in history:
        assert {"loss", *SUMMARY_METRICS} <= set(record["eval"])
        assert 0 <= record["eval"]["ap"] <= record["eval"]["ap50"] + 1e-9 <= 1 + 1e-9

    state, _ = load_checkpoint(run)
    direct = evaluate_dataset(state, resumed.eval_data)
    evaluated = _cli_json(capsys, "evaluate", "--checkpoint-dir", run)
    assert set(evaluated["eval"]) == set(SUMMARY_METRICS)
    assert evaluated["eval"]["voc_map50"] == pytest.approx(resumed.summary["eval"]["voc_map50"])
    assert evaluated["eval"]["ap"] == pytest.approx(direct["ap"])
    assert set(evaluated["per_class"]) == {"ellipse", "rectangle", "triangle"}
    assert all(set(ap) == {"ap", "voc_ap50"} for ap in evaluated["per_class"].values())
    shown = _cli_text(capsys, "evaluate", "--checkpoint-dir", run)
    assert "COCO (as pycocotools' summarize" in shown and "ar_large=" in shown
    assert "VOC (2010+ devkit" in shown and "voc_map50=" in shown

    predicted = _cli_json(capsys, "predict", "--checkpoint-dir", run, "--limit", "3")
    assert predicted["count"] == 3 and len(predicted["predictions"]) == 3
    assert predicted["output"] == str(run / "predictions.png")
    again = _cli_json(capsys, "predict", "--checkpoint-dir", run, "--limit", "2")
    assert again["output"] == str(run / "predictions-1.png")  # never overwritten

    images = tmp_path / "images.npy"
    np.save(images, resumed.eval_data.arrays["x"][:2])
    output = tmp_path / "mine.png"
    from_file = _cli_json(
        capsys, "predict", "--checkpoint-dir", run, "--input", images, "--output", output
    )
    assert from_file["count"] == 2 and output.read_bytes().startswith(b"\x89PNG")
    status = main(["predict", "--checkpoint-dir", str(run), "--output", str(output)])
    assert status == 2 and "exists; not overwriting it" in capsys.readouterr().err
    np.save(images, (resumed.eval_data.arrays["x"][:2] * 255).astype(np.uint8))
    status = main(["predict", "--checkpoint-dir", str(run), "--input", str(images)])
    assert status == 2 and "float images scaled to [0, 1]" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"ensemble": 2}, "detection training does not support 'ensemble'"),
        ({"devices": 2, "freeze": ["stem_*"]}, "does not support 'devices', 'freeze'"),
    ],
)
def test_unsupported_options_raise_before_any_work(kwargs, match):
    with pytest.raises(ValueError, match=match):
        run_detection_experiment("detector", "shapes", **kwargs)


def test_a_non_detection_dataset_is_refused():
    with pytest.raises(ValueError, match="needs a detection dataset, but 'xor' is 'binary'"):
        run_detection_experiment("detector", "xor")


@pytest.mark.slow
def test_command_line_trains_the_detector_and_reports_map(capsys, tmp_path):
    summary = _cli_json(
        capsys,
        "train",
        "detector",
        "--dataset",
        "shapes",
        "--epochs",
        "2",
        "--batch-size",
        "32",
        "--checkpoint-dir",
        tmp_path / "run",
        "--no-progress",
    )
    assert {"voc_map50", "ap", "ap50", "loss"} <= set(summary["eval"])
    assert summary["eval"]["voc_map50"] > 0.1


@pytest.mark.slow
def test_a_longer_run_reaches_voc_map50_of_0_9():
    experiment = run_detection_experiment(
        "detector",
        "shapes",
        epochs=40,
        batch_size=32,
        learning_rate=3e-3,
        augment=True,
        progress=False,
    )
    assert experiment.summary["eval"]["voc_map50"] >= 0.9
