"""Exact resume across processes: E epochs straight == E1 epochs, new process, resume to E."""

import os
import subprocess
import sys

import chex
import jax.numpy as jnp

from adljax.inference import load_checkpoint
from adljax.training import CheckpointManager

_TRAIN = [
    sys.executable,
    "-m",
    "adljax.cli",
    "train",
    "mlp",
    "--dataset",
    "digits",
    "--batch-size",
    "64",
    "--seed",
    "3",
    "--no-progress",
    "--set",
    "hidden_sizes=[32]",
    "--set",
    "batch_norm=true",
    "--set",
    "dropout_rate=0.2",
]


def _train(directory, epochs, *extra):
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    command = [*_TRAIN, "--epochs", str(epochs), "--checkpoint-dir", str(directory), *extra]
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]


def _final_state(directory):
    with CheckpointManager(directory, create=False) as manager:
        return manager.latest_step(), manager.restore_tree()[0]


def test_stop_and_resume_in_a_new_process_is_bitwise_identical(tmp_path):
    _train(tmp_path / "straight", 4)
    _train(tmp_path / "resumed", 2)
    _train(tmp_path / "resumed", 4, "--resume")
    straight_model, straight_meta = load_checkpoint(tmp_path / "straight")
    resumed_model, resumed_meta = load_checkpoint(tmp_path / "resumed")
    assert straight_meta["data_position"] == resumed_meta["data_position"]
    assert straight_meta["data_position"]["epoch"] == 4
    chex.assert_trees_all_equal(straight_model.params, resumed_model.params)
    chex.assert_trees_all_equal(straight_model.model_state, resumed_model.model_state)
    (step_a, straight), (step_b, resumed) = (
        _final_state(tmp_path / "straight"),
        _final_state(tmp_path / "resumed"),
    )
    assert step_a == step_b
    chex.assert_trees_all_equal(straight["opt_state"], resumed["opt_state"])
    assert jnp.array_equal(straight["step"], resumed["step"])
    assert [r["epoch"] for r in resumed_meta["history"]] == [1, 2, 3, 4]
