"""Orbax checkpoints: exact round trips, retention, clear errors, atomic saves."""

import os
import signal
import subprocess
import sys
import textwrap

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from adljax.models import MLP
from adljax.tasks import Classification
from adljax.training import (
    CheckpointError,
    CheckpointManager,
    CheckpointOptions,
    create_optimizer,
    create_train_state,
    make_train_step,
)


def _state(key, hidden=16):
    model = MLP(hidden_sizes=(hidden,), num_outputs=3, batch_norm=True, dropout_rate=0.1)
    return create_train_state(model, create_optimizer("adam", 1e-2), jnp.zeros((1, 5)), key)


def _trained(key, steps=3, hidden=16):
    state = _state(key, hidden)
    step = jax.jit(make_train_step(Classification()))
    rng = np.random.default_rng(0)
    for _ in range(steps):
        batch = {
            "x": rng.normal(size=(8, 5)).astype(np.float32),
            "y": rng.integers(0, 3, 8).astype(np.int32),
        }
        state, _ = step(state, batch)
    return state


def _listing(directory):
    return sorted(
        (str(p.relative_to(directory)), p.stat().st_mtime_ns) for p in directory.rglob("*")
    )


def test_round_trip_is_bitwise_including_typed_key_and_optimizer_state(tmp_path, key):
    state = _trained(key)
    with CheckpointManager(tmp_path / "run") as manager:
        manager.save(3, state, {"note": "hello"}, {"eval/loss": 0.5})
    with CheckpointManager(tmp_path / "run", create=False) as manager:
        abstract = jax.eval_shape(lambda: _state(jax.random.key(1)))
        restored, meta = manager.restore(_state(jax.random.key(1)))
        restored_abstract, _ = manager.restore(abstract)
    assert meta["note"] == "hello"
    assert meta["versions"]["jax"] == jax.__version__
    for candidate in (restored, restored_abstract):
        chex.assert_trees_all_equal(candidate.params, state.params)
        chex.assert_trees_all_equal(candidate.model_state, state.model_state)
        chex.assert_trees_all_equal(candidate.opt_state, state.opt_state)
        assert jnp.array_equal(jax.random.key_data(candidate.key), jax.random.key_data(state.key))
        assert candidate.step == 3
        assert candidate.model == state.model


def test_an_async_save_keeps_the_metadata_as_it_was_when_called(tmp_path, key):
    # fit appends to its history right after a step checkpoint starts saving.
    state, history = _state(key), [{"epoch": 1}]
    with CheckpointManager(tmp_path / "run", CheckpointOptions(async_save=True)) as manager:
        manager.save(1, state, {"history": history, "nested": {"list": history}})
        history.append({"epoch": 2})
        history[0]["epoch"] = -1
        manager.wait()
        meta = manager.read_meta(1)
    assert meta["history"] == [{"epoch": 1}]
    assert meta["nested"] == {"list": [{"epoch": 1}]}


def test_keeps_the_last_k_and_the_best(tmp_path, key):
    state = _state(key)
    options = CheckpointOptions(keep_last=2, keep_best=1, async_save=False)
    losses = {1: 0.9, 2: 0.2, 3: 0.5, 4: 0.7, 5: 0.6}
    with CheckpointManager(tmp_path, options, monitor="eval/loss", mode="min") as manager:
        for step, loss in losses.items():
            manager.save(step, state, {}, {"eval/loss": loss})
        manager.wait()
        assert manager.all_steps() == [2, 4, 5]
        assert manager.best_step() == 2


def test_restoring_into_another_architecture_names_the_differences(tmp_path, key):
    with CheckpointManager(tmp_path) as manager:
        manager.save(1, _state(key, hidden=16), {})
    before = _listing(tmp_path)
    with (
        CheckpointManager(tmp_path, create=False) as manager,
        pytest.raises(CheckpointError, match=r"different architecture[\s\S]*dense_0/kernel"),
    ):
        manager.restore(_state(key, hidden=32))
    assert _listing(tmp_path) == before


def test_missing_directory_and_missing_step_are_clear_errors(tmp_path, key):
    with pytest.raises(CheckpointError, match="does not exist"):
        CheckpointManager(tmp_path / "nowhere", create=False)
    assert not (tmp_path / "nowhere").exists()
    with CheckpointManager(tmp_path) as manager:
        with pytest.raises(CheckpointError, match="no complete checkpoint"):
            manager.restore(_state(key))
        manager.save(1, _state(key), {})
        manager.wait()
        with pytest.raises(CheckpointError, match="no checkpoint of step 7"):
            manager.restore(_state(key), step=7)


def test_a_damaged_checkpoint_raises_checkpoint_error(tmp_path, key):
    with CheckpointManager(tmp_path) as manager:
        manager.save(1, _state(key), {})
    for path in (tmp_path / "1" / "state").rglob("*"):
        if (path.is_file() and "ocdbt" in path.name) or path.name == "_METADATA":
            path.write_bytes(b"garbage")
    with (
        CheckpointManager(tmp_path, create=False) as manager,
        pytest.raises(CheckpointError, match="step 1"),
    ):
        manager.restore(_state(key))


_KILLED_SAVE = textwrap.dedent(
    """
    import os, signal, sys, time
    import jax, jax.numpy as jnp
    from adljax.training import CheckpointManager
    from adljax.training.state import TrainState
    import optax, flax.linen as nn

    big = {"w": jnp.ones((4096, 4096))}  # 64 MiB: the save takes a while
    state = TrainState(step=jnp.zeros((), jnp.int32), params=big, model_state={},
                       opt_state=(), key=jax.random.key(0), model=nn.Dense(1), tx=optax.sgd(1.0))
    manager = CheckpointManager(sys.argv[1])
    manager.save(1, state.replace(params={"w": big["w"] * 1}), {"n": 1})
    manager.wait()
    manager.save(2, state.replace(params={"w": big["w"] * 2}), {"n": 2})
    os.kill(os.getpid(), signal.SIGKILL)  # dies while step 2 is being written
    """
)


def test_a_save_killed_half_way_is_never_restored(tmp_path):
    result = subprocess.run(
        [sys.executable, "-c", _KILLED_SAVE, str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "JAX_PLATFORMS": "cpu"},
    )
    assert result.returncode == -signal.SIGKILL, result.stderr
    with CheckpointManager(tmp_path, create=False) as manager:
        assert manager.all_steps() == [1]
        variables, meta = manager.restore_variables()
    assert meta["n"] == 1
    assert float(np.asarray(variables["params"]["w"]).max()) == 1.0
