"""Damaged checkpoints on the command line: one line on stderr, fallback or refusal.

Each command runs in its own process, so that anything printed at exit (tracebacks of
background threads, "Exception ignored in" reports) would be counted too.
"""

import json
import os
import shutil
import subprocess
import sys

import pytest

from adljax.cli import main
from adljax.training.checkpoint import CHECKSUMS_FILE

OLDER, LATEST = STEPS = ("4", "8")  # xor, batch size 16: 4 steps an epoch


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    directory = tmp_path_factory.mktemp("cli") / "run"
    argv = ["train", "mlp", "--dataset", "xor", "--epochs", "2", "--batch-size", "16"]
    assert main([*argv, "--checkpoint-dir", str(directory), "--no-progress"]) == 0
    assert sorted(p.name for p in directory.iterdir() if p.is_dir()) == sorted(STEPS)
    return directory


@pytest.fixture
def run(trained, tmp_path):
    return shutil.copytree(trained, tmp_path / "run")


def _cli(*argv):
    """``(exit status, stdout, stderr lines)`` of ``python -m adljax.cli ARGV``."""
    result = subprocess.run(
        [sys.executable, "-m", "adljax.cli", *map(str, argv)],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "JAX_PLATFORMS": "cpu"},
    )
    return result.returncode, result.stdout, result.stderr.splitlines()


def _damage_latest(run):
    """Flips a byte of the latest step's largest array file; returns its relative name."""
    step_dir = run / LATEST
    path = max((step_dir / "state").rglob("d/*"), key=lambda p: p.stat().st_size)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 1
    path.write_bytes(bytes(data))
    return path.relative_to(step_dir).as_posix()


@pytest.mark.parametrize("command", ["evaluate", "predict"])
def test_a_damaged_latest_step_is_reported_in_one_line_and_the_intact_one_used(run, command):
    name = _damage_latest(run)
    status, out, err = _cli(command, "--checkpoint-dir", run, "--json")
    assert status == 0, err
    assert len(err) == 1, err
    assert err[0].startswith(f"adljax {command}: warning: step {LATEST} in ")
    assert f"{name}: contents changed" in err[0] and f"using step {OLDER}" in err[0]
    assert json.loads(out.splitlines()[-1])["model"] == "mlp"


def test_an_explicit_damaged_step_and_a_resume_from_it_are_refused_in_one_line(run):
    _damage_latest(run)
    (run / OLDER / "state" / "_METADATA").unlink()
    listing = sorted(str(p) for p in run.rglob("*"))
    status, _, err = _cli("evaluate", "--checkpoint-dir", run, "--step", LATEST)
    assert status == 2 and len(err) == 1, err
    assert err[0].startswith(f"adljax evaluate: error: step {LATEST} in ")
    assert "no other step is intact" in err[0]
    train = ["train", "mlp", "--dataset", "xor", "--epochs", "3", "--batch-size", "16"]
    status, _, err = _cli(*train, "--checkpoint-dir", run, "--resume", "--no-progress")
    assert status == 2 and len(err) == 1, err
    assert err[0].startswith(f"adljax train: error: step {LATEST} in ")
    assert sorted(str(p) for p in run.rglob("*")) == listing, "nothing may be deleted"


def test_resume_names_the_newest_intact_step_and_how_to_resume_from_it(run):
    _damage_latest(run)
    train = ["train", "mlp", "--dataset", "xor", "--epochs", "3", "--batch-size", "16"]
    status, _, err = _cli(*train, "--checkpoint-dir", run, "--resume", "--no-progress")
    assert status == 2 and len(err) == 1, err
    assert f"the newest intact step is {OLDER}" in err[0]
    assert f"move {str(run / LATEST)!r} out of {str(run)!r}" in err[0]


def test_metadata_problems_are_one_clear_message(run):
    for step in STEPS:  # as if saved by an older adljax: Orbax and the schema meet the damage
        (run / step / CHECKSUMS_FILE).unlink()
    (run / LATEST / "meta" / "metadata").unlink()
    status, _, err = _cli("evaluate", "--checkpoint-dir", run)
    assert status == 2 and len(err) == 1, err
    assert f"cannot read the metadata of step {LATEST}" in err[0]
    (run / LATEST / "meta" / "metadata").write_text("{}")
    status, _, err = _cli("evaluate", "--checkpoint-dir", run)
    assert status == 2 and len(err) == 1, err
    assert "'format_version' is missing" in err[0]


def test_a_model_config_edited_in_the_metadata_is_named_against_the_weights(run, capsys):
    (run / LATEST / CHECKSUMS_FILE).unlink()
    path = run / LATEST / "meta" / "metadata"
    meta = json.loads(path.read_text())
    meta["model"]["config"]["hidden_sizes"] = [3]
    path.write_text(json.dumps(meta))
    assert main(["evaluate", "--checkpoint-dir", str(run), "--step", LATEST]) == 2
    err = capsys.readouterr().err
    assert err.startswith(
        f"adljax evaluate: error: the model config in the metadata of step {LATEST}"
    )
    assert "does not match the saved weights:\n  " in err and "dense_0/kernel" in err
