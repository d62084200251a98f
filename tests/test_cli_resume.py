"""``adljax train --resume``: changed settings refused by name, an empty directory said so,
and a refused or failed run leaves no directory it created behind."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adljax.cli import main

_RUN = ("mlp", "--dataset", "xor", "--batch-size", "16", "--no-progress", "--seed", "1")


@pytest.fixture(scope="module")
def saved_run(tmp_path_factory):
    """A 1-epoch xor MLP run, trained once for the whole module."""
    directory = tmp_path_factory.mktemp("run") / "ck"
    assert main(["train", *_RUN, "--epochs", "1", "--checkpoint-dir", str(directory)]) == 0
    return directory


def _listing(directory):
    return sorted((p.relative_to(directory), p.stat().st_size) for p in directory.rglob("*"))


# (extra arguments of the resumed command, the setting named, its saved and its new value);
# the saved run has the recipe of mlp on xor, its batch size and seed from _RUN.
CHANGES = [
    (("--learning-rate", "0.01"), "optimizer.learning_rate", "0.05", "0.01"),
    (("--optimizer", "sgd"), "optimizer.name", "'adam'", "'sgd'"),
    (("--clip-norm", "1.0"), "optimizer.clip_norm", "null", "1.0"),
    (("--seed", "2"), "data_position.seed", "1", "2"),
    (("--batch-size", "8"), "data_position.batch_size", "16", "8"),
    (("--set", "hidden_sizes=[3]"), "model.config.hidden_sizes", "[8]", "[3]"),
    (("--set", "activation=relu"), "model.config.activation", "'tanh'", "'relu'"),
]


@settings(max_examples=len(CHANGES), deadline=None)
@given(change=st.sampled_from(CHANGES))
def test_a_changed_setting_is_refused_naming_it(saved_run, capsys, change):
    extra, name, saved, now = change
    before = _listing(saved_run)
    argv = ["train", *_RUN, *extra, "--epochs", "2", "--checkpoint-dir", str(saved_run)]
    assert main([*argv, "--resume"]) == 2
    err = capsys.readouterr().err
    assert f"{name}: saved {saved}, now {now}" in err
    assert "Traceback" not in err
    assert _listing(saved_run) == before


def test_another_architecture_names_both_models(saved_run, capsys):
    argv = ["train", "linear", *_RUN[1:], "--epochs", "2", "--checkpoint-dir", str(saved_run)]
    assert main([*argv, "--resume"]) == 2
    assert "model.name: saved 'mlp', now 'linear'" in capsys.readouterr().err


def test_resume_on_an_empty_directory_warns_and_trains_from_scratch(tmp_path, capsys):
    for directory in (tmp_path / "missing", tmp_path / "empty"):
        if directory.name == "empty":
            directory.mkdir()
        argv = ["train", *_RUN, "--epochs", "1", "--checkpoint-dir", str(directory), "--resume"]
        assert main(argv) == 0
        err = capsys.readouterr().err.strip().splitlines()
        warning = f"adljax train: warning: nothing to resume in {str(directory)!r}"
        assert [line for line in err if line.startswith("adljax train: warning")] == [
            f"{warning} (no checkpoint); training from scratch"
        ]
        assert any(p.name.isdigit() for p in directory.iterdir())


def test_a_failed_run_removes_only_the_directory_it_created(tmp_path, capsys):
    # A learning rate of 3e38 passes the checks and overflows in `fit`, after the manager is made.
    fresh, existing = tmp_path / "fresh", tmp_path / "existing"
    existing.mkdir()
    for directory in (fresh, existing):
        argv = ["train", *_RUN, "--epochs", "1", "--checkpoint-dir", str(directory)]
        assert main([*argv, "--learning-rate", "3e38"]) == 2
        assert "non-finite" in capsys.readouterr().err
    assert not fresh.exists()
    assert existing.is_dir()
