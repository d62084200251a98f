"""TensorBoard and CSV metric logs: read back, they are the history; resume logs each epoch
once; another run's logs are never written over; ``import adljax`` does not load the writer."""

import csv
import math
import struct
import subprocess
import sys

import jax
import numpy as np
import pytest
from tensorboardX.crc32c import crc32c
from tensorboardX.proto import event_pb2

from adljax.data import load
from adljax.models import MLP
from adljax.training import (
    CheckpointOptions,
    callback,
    create_optimizer,
    create_train_state,
    fit,
    metric_loggers,
)
from adljax.training.metric_logs import CSV_FILE, record_scalars

pytestmark = pytest.mark.usefixtures("fast_compiles")

BATCH = 128


@pytest.fixture(scope="module")
def digits():
    return load("digits", "train"), load("digits", "test")


def _run(data, **kwargs):
    train, test = data
    model = MLP(hidden_sizes=(16,), num_outputs=10)
    state = create_train_state(
        model, create_optimizer("adam", 1e-2), train.arrays["x"][:1], jax.random.key(0)
    )
    common = {"task": "classification", "batch_size": BATCH, "eval_data": test, "progress": False}
    return fit(state, train, **common | kwargs)


def _masked_crc(data: bytes) -> int:
    value = crc32c(data)
    return ((((value >> 15) | (value << 17)) & 0xFFFFFFFF) + 0xA282EAD8) & 0xFFFFFFFF


def read_scalars(log_dir) -> dict[str, dict[int, float]]:
    """``{tag: {step: value}}`` as TensorBoard shows them: event files in name order, each
    record's framing and checksums checked; a run's START session log at step ``s`` purges
    the steps ``>= s`` read before it."""
    assert crc32c(b"123456789") == 0xE3069283  # the CRC-32C check value
    scalars: dict[str, dict[int, float]] = {}
    for path in sorted(log_dir.glob("events.out.tfevents.*")):
        data, offset = path.read_bytes(), 0
        while offset < len(data):
            header = data[offset : offset + 8]
            (length,) = struct.unpack("<Q", header)
            assert struct.unpack("<I", data[offset + 8 : offset + 12])[0] == _masked_crc(header)
            payload = data[offset + 12 : offset + 12 + length]
            (checksum,) = struct.unpack("<I", data[offset + 12 + length : offset + 16 + length])
            assert checksum == _masked_crc(payload)
            offset += 16 + length
            event = event_pb2.Event.FromString(payload)
            if event.session_log.status == event_pb2.SessionLog.START:
                for series in scalars.values():
                    for step in [s for s in series if s >= event.step]:
                        del series[step]
            for value in event.summary.value:
                scalars.setdefault(value.tag, {})[event.step] = value.simple_value
    return scalars


def read_csv(path) -> tuple[list[str], list[dict[str, str]]]:
    with path.open(newline="") as file:
        reader = csv.DictReader(file)
        return list(reader.fieldnames), list(reader)


def _check_csv_is_history(path, history) -> None:
    columns, rows = read_csv(path)
    assert columns[:2] == ["epoch", "step"]
    assert len(rows) == len(history)
    for row, record in zip(rows, history, strict=True):
        assert int(row["epoch"]) == record["epoch"] and int(row["step"]) == record["step"]
        for name, value in record_scalars(record).items():
            assert float(row[name]) == pytest.approx(value, rel=1e-12, nan_ok=True)


def _check_tensorboard_is_history(scalars, history) -> None:
    for record in history:
        for name, value in record_scalars(record).items():
            if math.isfinite(value):
                np.testing.assert_allclose(scalars[name][record["step"]], value, rtol=1e-6)
    epoch_tags = {tag for tag in scalars if not tag.startswith("train_step/")}
    for tag in epoch_tags:
        assert sorted(scalars[tag]) == [record["step"] for record in history], tag


def test_logs_read_back_are_the_history(digits, tmp_path):
    result = _run(digits, epochs=3, callbacks=metric_loggers(tmp_path, every_steps=4))
    _check_csv_is_history(tmp_path / CSV_FILE, result.history)
    scalars = read_scalars(tmp_path)
    assert {"train/loss", "train/learning_rate", "eval/accuracy", "examples_per_sec"} <= set(
        scalars
    )
    _check_tensorboard_is_history(scalars, result.history)
    total = 3 * (len(digits[0]) // BATCH)
    assert sorted(scalars["train_step/loss"]) == list(range(4, total + 1, 4))


def test_a_resumed_run_logs_each_epoch_once(digits, tmp_path):
    straight = _run(digits, epochs=4)
    logs, run = tmp_path / "logs", tmp_path / "run"

    def crash_at_three(event):  # after the loggers wrote epoch 3, before its checkpoint
        if event.epoch == 3:
            raise KeyboardInterrupt

    options = CheckpointOptions(every_epochs=2)
    with pytest.raises(KeyboardInterrupt):
        _run(
            digits,
            epochs=4,
            checkpoint_dir=run,
            checkpoint_options=options,
            callbacks=[
                *metric_loggers(logs, every_steps=4),
                callback(on_epoch_end=crash_at_three),
            ],
        )
    assert [row["epoch"] for row in read_csv(logs / CSV_FILE)[1]] == ["1", "2", "3"]
    resumed = _run(
        digits,
        epochs=4,
        checkpoint_dir=run,
        checkpoint_options=options,
        resume=True,
        callbacks=metric_loggers(logs),
    )
    assert [r["train"] for r in resumed.history] == [r["train"] for r in straight.history]
    _check_csv_is_history(logs / CSV_FILE, resumed.history)
    scalars = read_scalars(logs)
    _check_tensorboard_is_history(scalars, resumed.history)
    # The crashed run's step logs after the checkpoint it resumed from (step 22) are purged.
    checkpoint_step = 2 * (len(digits[0]) // BATCH)
    assert sorted(scalars["train_step/loss"]) == list(range(4, checkpoint_step + 1, 4))


def test_a_new_run_does_not_write_over_another_runs_logs(digits, tmp_path):
    _run(digits, epochs=1, callbacks=metric_loggers(tmp_path))
    before = (tmp_path / CSV_FILE).read_bytes()
    with pytest.raises(ValueError, match="already holds metric logs"):
        _run(digits, epochs=1, callbacks=metric_loggers(tmp_path))
    assert (tmp_path / CSV_FILE).read_bytes() == before


def test_a_new_metric_widens_the_csv_header(digits, tmp_path):
    calls = {"n": 0}

    def evaluate(state):  # a metric that appears from the second epoch on
        calls["n"] += 1
        return {"late": 1.0} if calls["n"] > 1 else {}

    result = _run(digits, epochs=3, evaluate_fn=evaluate, callbacks=metric_loggers(tmp_path))
    columns, rows = read_csv(tmp_path / CSV_FILE)
    assert "eval/late" in columns and rows[0]["eval/late"] == ""
    _check_csv_is_history(tmp_path / CSV_FILE, result.history)
    assert [float(row["eval/late"]) for row in rows[1:]] == [1.0, 1.0]


def test_importing_adljax_does_not_import_the_writer():
    code = (
        "import sys, adljax, adljax.training, adljax.training.metric_logs; "
        "assert 'tensorboardX' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
