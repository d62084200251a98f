"""``adljax train --log-dir``: TensorBoard files and metrics.csv; the training-curve PNG of
every run with a checkpoint directory; one progress line per epoch in a redirected stderr."""

import csv
import json
import os
import subprocess
import sys

from adljax.cli import main

TRAIN = ("train", "mlp", "--dataset", "xor", "--epochs", "3", "--batch-size", "16")


def test_log_dir_and_checkpoint_dir_write_logs_and_curves(capsys, tmp_path):
    logs, run = tmp_path / "logs", tmp_path / "run"
    argv = [*TRAIN, "--log-dir", logs, "--checkpoint-dir", run, "--no-progress", "--json"]
    assert main([str(a) for a in argv]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["log_dir"] == str(logs)
    assert summary["curves"] == str(run / "curves.png")
    assert (run / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    history = [json.loads(line) for line in (run / "history.jsonl").read_text().splitlines()]
    with (logs / "metrics.csv").open(newline="") as file:
        rows = list(csv.DictReader(file))
    assert [int(row["epoch"]) for row in rows] == [1, 2, 3]
    assert [float(row["eval/accuracy"]) for row in rows] == [
        record["eval"]["accuracy"] for record in history
    ]
    assert list(logs.glob("events.out.tfevents.*"))


def test_a_run_without_checkpoint_dir_writes_no_curves(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main([*TRAIN, "--no-progress", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert "curves" not in summary and "log_dir" not in summary
    assert list(tmp_path.iterdir()) == []


def test_redirected_progress_is_one_line_per_epoch(tmp_path):
    with (tmp_path / "err.txt").open("w") as err:
        subprocess.run(
            [sys.executable, "-m", "adljax.cli", *TRAIN],
            stderr=err,
            stdout=subprocess.DEVNULL,
            check=True,
            timeout=300,
            env={**os.environ, "JAX_PLATFORMS": "cpu"},
        )
    text = (tmp_path / "err.txt").read_text()
    assert "\r" not in text
    epochs = [line.split(":")[0] for line in text.splitlines() if line.startswith("epoch ")]
    assert epochs == ["epoch 1/3", "epoch 2/3", "epoch 3/3"]
