"""Checkpoint integrity: every file's checksum recorded, damage named, fallback, metadata."""

import hashlib
import json
import shutil

import chex
import jax
import jax.numpy as jnp
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adljax.inference import load_checkpoint
from adljax.models import MLP
from adljax.models.registry import model_config
from adljax.training import (
    CheckpointError,
    CheckpointManager,
    CheckpointOptions,
    checkpoint,
    create_optimizer,
    create_train_state,
)
from adljax.training.checkpoint import CHECKSUMS_FILE, CheckpointWarning

pytestmark = pytest.mark.usefixtures("fast_compiles")

STEPS = (1, 2, 3)


def _state(seed=0, hidden=8):
    model = MLP(hidden_sizes=(hidden,), num_outputs=3, batch_norm=True, input_shape=(5,))
    tx = create_optimizer("adam", 1e-2)
    return create_train_state(model, tx, jnp.zeros((1, 5)), jax.random.key(seed))


def _meta(state, **config):
    """Metadata like ``fit``'s: enough for ``load_checkpoint`` to rebuild the model."""
    return {
        "model": {"name": "mlp", "config": {**model_config(state.model), **config}},
        "dataset": {"name": "toy", "info": {"input_shape": [5]}},
    }


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """Steps 1, 2, 3 (asynchronous saves), step s holding the state of seed s."""
    directory = tmp_path_factory.mktemp("saved")
    with CheckpointManager(directory, CheckpointOptions(keep_last=3, keep_best=0)) as manager:
        for step in STEPS:
            state = _state(seed=step)
            manager.save(step, state, _meta(state), {"eval/loss": 1.0 / step})
    return directory


@pytest.fixture
def run(saved, tmp_path):
    """A copy of ``saved`` to damage."""
    return shutil.copytree(saved, tmp_path / "run")


def _files(step_dir):
    return sorted(
        p.relative_to(step_dir).as_posix()
        for p in step_dir.rglob("*")
        if p.is_file() and p.name != CHECKSUMS_FILE
    )


def _largest_array_file(step_dir):
    return max((step_dir / "state").rglob("d/*"), key=lambda p: p.stat().st_size)


def _flip(path, offset, bit=0):
    data = bytearray(path.read_bytes())
    data[offset] ^= 1 << bit
    path.write_bytes(bytes(data))


def test_every_file_of_a_finalized_step_gets_a_checksum(saved):
    for step in STEPS:
        step_dir = saved / str(step)
        record = json.loads((step_dir / CHECKSUMS_FILE).read_text())
        assert record["step"] == step
        assert sorted(record["files"]) == _files(step_dir)
        assert any(name.startswith("state/") and "/d/" in name for name in record["files"])
        for name, entry in record["files"].items():
            content = (step_dir / name).read_bytes()
            assert entry == {"size": len(content), "sha256": hashlib.sha256(content).hexdigest()}
    assert not list(saved.rglob("*.tmp"))


@settings(max_examples=8, deadline=None)
@given(data=st.data())
def test_any_flipped_byte_in_any_file_is_detected(saved, tmp_path_factory, data):
    files = [name for name in _files(saved / "3") if (saved / "3" / name).stat().st_size]
    name = data.draw(st.sampled_from(files), label="file")
    run = shutil.copytree(saved, tmp_path_factory.mktemp("flipped") / "run")
    path = run / "3" / name
    _flip(path, data.draw(st.integers(0, path.stat().st_size - 1)), data.draw(st.integers(0, 7)))
    with CheckpointManager(run, create=False) as manager:
        with pytest.raises(CheckpointError, match="step 3") as caught:
            manager.verify(3)
        assert f"{name}: contents changed" in str(caught.value)
        assert manager.newest_intact_step() == 2


def test_truncated_and_missing_files_are_named_with_the_newest_intact_step(run):
    array = _largest_array_file(run / "3")
    size = array.stat().st_size
    array.write_bytes(array.read_bytes()[: size // 2])
    (run / "3" / "state" / "_METADATA").unlink()
    with CheckpointManager(run, create=False) as manager, pytest.raises(CheckpointError) as caught:
        manager.restore(_state(), 3)  # what fit's resume does
    message = str(caught.value)
    assert "\n" not in message
    assert "step 3 in" in message and "is damaged" in message
    assert f"{array.relative_to(run / '3').as_posix()}: truncated ({size // 2} of {size}" in message
    assert "state/_METADATA: missing" in message
    assert "the newest intact step is 2" in message
    assert f"move {str(run / '3')!r} out of {str(run)!r}" in message
    assert "nothing was deleted" in message and (run / "3").is_dir()


def test_the_default_step_falls_back_to_the_newest_intact_one_with_a_warning(run):
    _flip(_largest_array_file(run / "3"), 0)
    with pytest.warns(CheckpointWarning, match=r"step 3 in .* is damaged .*; using step 2"):
        inference, _ = load_checkpoint(run)
    chex.assert_trees_all_equal(inference.params, _state(seed=2).params)
    with pytest.raises(CheckpointError, match=r"step 3 .* damaged .* newest intact step is 2"):
        load_checkpoint(run, step=3)
    with CheckpointManager(run, create=False) as manager:
        with pytest.raises(CheckpointError, match="step 3"):  # other reads take the latest
            manager.restore_variables()
        assert manager.intact_step(2) == 2


def test_no_intact_step_is_an_error_naming_each_damaged_step(run):
    for step in STEPS:
        _flip(_largest_array_file(run / str(step)), 0)
    with CheckpointManager(run, create=False) as manager:
        assert manager.newest_intact_step() is None
        with pytest.raises(CheckpointError, match="no intact checkpoint") as caught:
            manager.intact_step()
        with pytest.raises(CheckpointError, match="no other step is intact"):
            manager.verify(2)
    assert all(f"step {step} in" in str(caught.value) for step in STEPS)


def test_steps_saved_without_a_checksum_record_restore_unverified(run):
    for step in STEPS:
        (run / str(step) / CHECKSUMS_FILE).unlink()
    with CheckpointManager(run, create=False) as manager:
        manager.verify(3)
        assert manager.newest_intact_step() == 3
        restored, _ = manager.restore(_state())
    chex.assert_trees_all_equal(restored.params, _state(seed=3).params)


def test_a_damaged_checksum_record_makes_its_step_damaged(run):
    (run / "3" / CHECKSUMS_FILE).write_text('{"files": ')
    with CheckpointManager(run, create=False) as manager:
        with pytest.raises(CheckpointError, match=f"{CHECKSUMS_FILE}: unreadable checksum record"):
            manager.verify(3)
        assert manager.newest_intact_step() == 2


# What Orbax raised for a truncated array file (its TensorStore spec dump goes on for ~60
# lines). Damaging real array files of unverified steps is not done here: TensorStore then
# reports stray "Event loop is closed" errors from its other reads, after the raise.
_TENSORSTORE_ERROR = (
    "Encountered error while reading array index: (slice(0, 64, 1), slice(0, 10, 1)). See "
    "full TensorStore details: <bound method spec of TensorStore({\n  'base': {\n    'driver':"
    " 'zarr',\n" + "    'dtype': 'float32',\n" * 60 + "})>."
)


def test_orbax_errors_are_shortened_to_their_first_line(run, monkeypatch):
    (run / "3" / CHECKSUMS_FILE).unlink()  # unverified: Orbax itself meets the damage
    with CheckpointManager(run, create=False) as manager:

        def restore(step, args):
            if "state" in args:
                raise ValueError(_TENSORSTORE_ERROR)
            return original(step, args=args)

        original = manager._manager.restore
        monkeypatch.setattr(manager._manager, "restore", restore)
        with pytest.raises(CheckpointError) as caught:
            manager.restore_variables(3)
    assert str(caught.value) == (
        f"cannot restore step 3 from {str(run)!r} (damaged or incompatible checkpoint): "
        "Encountered error while reading array index: (slice(0, 64, 1), slice(0, 10, 1))."
    )
    assert caught.value.__cause__.args == (_TENSORSTORE_ERROR,)  # the details stay reachable


def test_retention_removes_old_steps_with_their_records(tmp_path):
    options = CheckpointOptions(keep_last=1, keep_best=0, async_save=False)
    with CheckpointManager(tmp_path, options) as manager:
        for step in STEPS:
            manager.save(step, _state(), {})
        assert manager.all_steps() == [3]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["3"]
    assert (tmp_path / "3" / CHECKSUMS_FILE).is_file()
    assert not list(tmp_path.rglob("*.tmp"))


@pytest.mark.parametrize(
    ("meta", "require", "message"),
    [
        (
            {"data_position": {"epoch": "2", "batch_in_epoch": 0, "seed": 0, "batch_size": 4}},
            (),
            "'data_position.epoch' is a string, expected an integer",
        ),
        ({"model": {"name": 3, "config": {}}}, (), "'model.name' is an integer, expected a"),
        ({"early_stopping": {"stopped": 1}}, (), "'early_stopping.stopped' is an integer"),
        ({}, ("data_position",), "'data_position' is missing (expected an object)"),
    ],
)
def test_metadata_is_checked_against_what_fit_writes(tmp_path, meta, require, message):
    with CheckpointManager(tmp_path, CheckpointOptions(async_save=False)) as manager:
        manager.save(1, _state(), meta)
        with pytest.raises(CheckpointError, match="metadata of step 1") as caught:
            manager.read_meta(1, require=require)
    assert message in str(caught.value)


def test_metadata_replaced_by_an_empty_object_names_the_missing_keys(run):
    (run / "3" / CHECKSUMS_FILE).unlink()  # as if saved by an older adljax, then edited
    (run / "3" / "meta" / "metadata").write_text("{}")
    with CheckpointManager(run, create=False) as manager:
        with pytest.raises(CheckpointError, match="'format_version' is missing"):
            manager.restore(_state())
        assert manager.read_meta(2)["model"]["name"] == "mlp"


def test_a_model_config_that_does_not_match_the_weights_is_refused(tmp_path):
    state = _state(hidden=8)
    with CheckpointManager(tmp_path) as manager:
        manager.save(1, state, _meta(state, hidden_sizes=[3]))
    with pytest.raises(
        CheckpointError,
        match=r"model config in the metadata of step 1 .* does not match the saved weights:"
        r"[\s\S]*shape of params/dense_0/kernel: model \(5, 3\), checkpoint \(5, 8\)",
    ):
        load_checkpoint(tmp_path)


def test_a_damaged_metrics_file_still_lets_reads_fall_back_but_refuses_to_save(run):
    (run / "3" / "metrics" / "metrics").write_text("{not json")  # Orbax reads it on opening
    with CheckpointManager(run, create=False) as manager:
        with pytest.warns(CheckpointWarning, match="metrics/metrics: truncated"):
            assert manager.intact_step() == 2
        with pytest.raises(CheckpointError, match=r"cannot save step 4 .* step 3 in .* damaged"):
            manager.save(4, _state(), {})
        with pytest.raises(CheckpointError, match="cannot rank the checkpoints"):
            manager.best_step()
    assert sorted(p.name for p in run.iterdir()) == ["1", "2", "3"]


def test_a_failed_checksum_record_is_raised_by_the_next_wait(tmp_path, monkeypatch):
    def fail(step_dir, step):
        raise OSError("disk full")

    monkeypatch.setattr(checkpoint, "_write_checksums", fail)
    with CheckpointManager(tmp_path) as manager:
        manager.save(1, _state(), {})
        with pytest.raises(CheckpointError, match=r"cannot record the checksums .* disk full"):
            manager.wait()
        assert manager.all_steps() == [1]  # the step itself was saved (unverified)
