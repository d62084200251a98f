"""Bad input to the ``adljax`` command: status 2, a message naming what was wrong, nothing made."""

import re

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from adljax.cli import main

pytestmark = pytest.mark.usefixtures("fast_compiles")

QUIET = ("--no-progress", "--epochs", "1")


def _run(capsys, *argv):
    status = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["mlp", "--dataset", "xor", "--learning-rate", "inf"], "`learning_rate` must be a"),
        (["mlp", "--dataset", "xor", "--learning-rate", "nan"], "got nan"),
        (["mlp", "--dataset", "xor", "--learning-rate", "0"], "positive finite number, got 0.0"),
        (["mlp", "--dataset", "xor", "--clip-norm", "inf"], "`clip_norm` must be a positive"),
        (
            ["mlp", "--dataset", "xor", "--ensemble", "2", "--learning-rates", "1e-3,-inf"],
            "`learning_rates[1]` must be a positive finite number, got -inf",
        ),
        (["detector", "--dataset", "shapes", "--learning-rate", "-1"], "got -1.0"),
        (["gan", "--dataset", "ring8", "--set", "gradient_penalty=Infinity"], "`gradient_pen"),
        (["gan", "--dataset", "ring8", "--set", "ema_decay=NaN"], "`ema_decay` must be a number"),
        (["gan", "--dataset", "ring8", "--set", 'ema_decay="0.9"'], "got '0.9'"),
        (["gan", "--dataset", "ring8", "--set", "beta2=1"], "`beta2` must be a number in [0, 1)"),
        (["mlp", "--dataset", "xor", "--set", "num_outputs=3"], "one logit per example"),
        (["mlp", "--dataset", "digits", "--set", "num_outputs=3"], "labels in [0, 9] (10 classes"),
        (["mlp", "--dataset", "digits", "--set", "num_outputs=12"], "but `train_data` has 10"),
        (["linear", "--dataset", "diabetes", "--set", "num_outputs=2"], "regression needs one"),
        (["mlp", "--dataset", "xor", "--seed", "-1"], "`seed` must be a non-negative"),
        # fit's checks run before the GAN trains its feature classifier into the directory.
        (
            ["dcgan", "--dataset", "digits", "--set", "features=8", "--batch-size", "5000"],
            "larger than the training",
        ),
    ],
)
def test_a_refused_train_command_leaves_no_directory(capsys, tmp_path, argv, message):
    run = tmp_path / "run"
    status, _, err = _run(capsys, "train", *argv, "--checkpoint-dir", run, *QUIET)
    assert status == 2, err
    assert message in err
    assert not run.exists()


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """A checkpoint of an MLP trained on ``xor`` (inputs ``(N, 2)``)."""
    run = tmp_path_factory.mktemp("bad_input") / "run"
    argv = ["train", "mlp", "--dataset", "xor", "--batch-size", "16", "--checkpoint-dir", run]
    assert main([str(a) for a in (*argv, *QUIET)]) == 0
    return run


def _predict(capsys, checkpoint, path):
    status, out, err = _run(capsys, "predict", "--checkpoint-dir", checkpoint, "--input", path)
    assert "pickle" not in err
    return status, out, err


def _refused(capsys, checkpoint, path, *messages):
    status, _, err = _predict(capsys, checkpoint, path)
    assert status == 2, err
    for message in messages:
        assert re.search(message, err), err


@pytest.mark.parametrize(
    "array",
    [
        np.array([["a", "b"]]),
        np.array([[b"a", b"b"]]),
        np.array([[1 + 2j, 3]]),
        np.array([[{}, 1]], dtype=object),
        np.array([["2024-01-01", "2024-01-02"]], dtype="datetime64[D]"),
    ],
    ids=lambda a: str(a.dtype),
)
def test_predict_names_an_input_dtype_it_cannot_take(capsys, tmp_path, checkpoint, array):
    path = tmp_path / "inputs.npy"
    np.save(path, array, allow_pickle=True)
    dtype = re.escape(str(array.dtype))
    _refused(capsys, checkpoint, path, rf"`--input {path}` must hold numbers, got dtype {dtype}")


@pytest.mark.parametrize(
    "content",
    [b"1,2\n3,4\n", b"\x80\x04K\x01.", b"", b"\x93NUMPY\x01\x00garbage"],
    ids=["text", "pickle", "empty", "damaged"],
)
def test_predict_names_a_file_that_is_no_npy_array(capsys, tmp_path, checkpoint, content):
    path = tmp_path / "inputs.npy"
    path.write_bytes(content)
    _refused(capsys, checkpoint, path, r"--input .* (is neither a NumPy|is not a valid NumPy)")


@given(trailing=st.lists(st.integers(1, 4), min_size=0, max_size=2))
def test_predict_names_the_shape_the_checkpoints_model_takes(
    capsys, tmp_path, checkpoint, trailing
):
    assume(trailing != [2])
    path = tmp_path / "inputs.npy"
    np.save(path, np.zeros((3, *trailing), np.float32))
    shape = re.escape(str((3, *trailing)))
    _refused(capsys, checkpoint, path, rf"--input .*must have shape \(batch, 2\), got {shape}")


def test_predict_reads_an_npz_archive_of_one_array_or_of_x(capsys, tmp_path, checkpoint):
    one, named, two = (tmp_path / f"{name}.npz" for name in ("one", "named", "two"))
    np.savez(one, inputs=np.zeros((3, 2)))
    np.savez(named, x=np.zeros((4, 2)), y=np.zeros(4))
    np.savez(two, a=np.zeros((4, 2)), b=np.zeros(4))
    for path, count in ((one, 3), (named, 4)):
        status, out, err = _predict(capsys, checkpoint, path)
        assert status == 0, err
        assert len(out.strip().splitlines()) == count
    _refused(capsys, checkpoint, two, r"an \.npz archive of 2 arrays \['a', 'b'\]")
    np.savez(one, x=np.array([["a", "b"]]))
    _refused(
        capsys, checkpoint, one, r"`--input .*one\.npz array x` must hold numbers, got dtype <U1"
    )
