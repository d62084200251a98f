"""``adljax train --dtype``: the policy reaches the run, the checkpoint and a resume."""

import json

import numpy as np

from adljax.cli import main
from adljax.inference import load_checkpoint, predict

QUIET = ("--no-progress",)


def _run(capsys, *argv):
    status = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def _train(capsys, run, *extra):
    argv = ("train", "mlp", "--dataset", "digits", "--checkpoint-dir", run, "--json")
    status, out, err = _run(capsys, *argv, "--set", "hidden_sizes=[32]", *QUIET, *extra)
    assert status == 0, err
    return json.loads(out.strip().splitlines()[-1]), err


def test_dtype_trains_records_and_resumes(capsys, tmp_path):
    run = tmp_path / "run"
    first, err = _train(capsys, run, "--epochs", "1", "--dtype", "float16")
    assert "dtype=float16" in err
    assert "loss_scale" in first["train"]
    state, meta = load_checkpoint(run)
    assert meta["dtype"] == "float16" and state.policy.name == "float16"
    # --resume without --dtype continues in the saved dtype.
    resumed, err = _train(capsys, run, "--epochs", "2", "--resume")
    assert resumed["epochs"] == 2 and "dtype=float16" in err
    status, _, err = _run(capsys, "evaluate", "--checkpoint-dir", run, "--json")
    assert status == 0, err
    x = np.zeros((3, 8, 8, 1), np.float32)
    assert predict(run, x).dtype == np.float32


def test_a_resume_in_another_dtype_is_refused(capsys, tmp_path):
    run = tmp_path / "run"
    _train(capsys, run, "--epochs", "1", "--dtype", "bfloat16")
    argv = ("train", "mlp", "--dataset", "digits", "--checkpoint-dir", run, "--resume")
    status, _, err = _run(capsys, *argv, "--epochs", "2", "--dtype", "float32", *QUIET)
    assert status == 2
    assert "dtype: saved 'bfloat16', now 'float32'" in err


def test_an_unknown_dtype_is_named(capsys):
    argv = ("train", "mlp", "--dataset", "xor", "--dtype", "float64", *QUIET)
    status, _, err = _run(capsys, *argv)
    assert status == 2 and "dtype" in err and "float64" in err
