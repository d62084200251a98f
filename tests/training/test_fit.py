"""The ``fit`` loop: history, evaluation, early stopping, cadence, resume, errors."""

import dataclasses
import json
import shutil
from typing import ClassVar

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adljax.data import SourceDataset, from_arrays, load
from adljax.inference import evaluate, predict
from adljax.models import MLP, LinearRegression, SimpleCNN
from adljax.tasks import Classification, get_task
from adljax.training import (
    CheckpointError,
    CheckpointManager,
    CheckpointOptions,
    EarlyStopping,
    NonFiniteLossError,
    create_ensemble,
    create_optimizer,
    create_train_state,
    fit,
    make_train_step,
)
from adljax.training.callbacks import callback
from adljax.training.loop import STEPS_PER_CALL, _slow_inside_scan


@pytest.fixture(scope="module")
def digits():
    return load("digits", "train"), load("digits", "test")


def _state(data, key, *, learning_rate=1e-3, tx=None, **config):
    model = MLP(hidden_sizes=(32,), num_outputs=10, **config)
    tx = tx or create_optimizer("adam", learning_rate)
    return create_train_state(model, tx, data.arrays["x"][:1], key)


def _leaves_equal(a, b):
    chex.assert_trees_all_equal(a.params, b.params)
    chex.assert_trees_all_equal(a.model_state, b.model_state)
    chex.assert_trees_all_equal(a.opt_state, b.opt_state)


def test_fit_learns_and_records_history(digits, tmp_path, key):
    train, test = digits
    result = fit(
        _state(train, key, learning_rate=1e-2),
        train,
        task="classification",
        epochs=4,
        batch_size=64,
        eval_data=test,
        checkpoint_dir=tmp_path,
        progress=False,
    )
    assert [r["epoch"] for r in result.history] == [1, 2, 3, 4]
    assert result.history[-1]["eval"]["accuracy"] > 0.85
    assert result.history[-1]["train"]["loss"] < result.history[0]["train"]["loss"]
    assert set(result.history[0]["train"]) == {"learning_rate", "accuracy", "loss"}
    assert result.history[0]["examples_per_sec"] > 0
    lines = (tmp_path / "history.jsonl").read_text().splitlines()
    assert [json.loads(line) for line in lines] == result.history
    assert int(result.state.step) == 4 * (len(train) // 64)


def test_whole_epoch_and_per_step_paths_agree(digits, key):
    train, _ = digits
    common = {"task": "classification", "epochs": 2, "batch_size": 50, "progress": False}
    scanned = fit(_state(train, key, dropout_rate=0.2), train, whole_epoch=True, **common)
    stepped = fit(_state(train, key, dropout_rate=0.2), train, whole_epoch=False, **common)
    chex.assert_trees_all_close(scanned.state.params, stepped.state.params, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(
        scanned.history[-1]["train"]["loss"], stepped.history[-1]["train"]["loss"], rtol=1e-4
    )


def test_debug_mode_runs_eagerly_with_the_same_result(digits, key):
    small = load("digits", "train").take(128)
    common = {"task": "classification", "epochs": 1, "batch_size": 64, "progress": False}
    compiled = fit(_state(small, key), small, **common)
    eager = fit(_state(small, key), small, debug=True, **common)
    chex.assert_trees_all_close(compiled.state.params, eager.state.params, rtol=1e-4, atol=1e-5)


def test_resuming_from_a_mid_epoch_checkpoint_matches_training_straight(digits, tmp_path, key):
    train, _ = digits
    options = CheckpointOptions(every_epochs=None, every_steps=7, keep_last=50)
    common = {
        "task": "classification",
        "batch_size": 64,
        "progress": False,
        "checkpoint_options": options,
    }
    straight = fit(
        _state(train, key, dropout_rate=0.1),
        train,
        epochs=2,
        checkpoint_dir=tmp_path / "a",
        **common,
    )
    with CheckpointManager(tmp_path / "a", create=False) as manager:
        steps = manager.all_steps()
    assert 7 in steps
    assert 14 in steps
    # A run stopped after step 28 (in epoch 2) left just that checkpoint behind.
    resumed_dir = tmp_path / "b"
    with (
        CheckpointManager(tmp_path / "a", create=False) as source,
        CheckpointManager(resumed_dir, CheckpointOptions(async_save=False)) as target,
    ):
        state, meta = source.restore(_state(train, key, dropout_rate=0.1), step=28)
        target.save(28, state, meta)
    resumed = fit(
        _state(train, key, dropout_rate=0.1),
        train,
        epochs=2,
        resume=True,
        checkpoint_dir=resumed_dir,
        **common,
    )
    _leaves_equal(resumed.state, straight.state)
    # The resumed epoch's metrics cover its steps before the stop too.
    assert [r["train"] for r in resumed.history] == [r["train"] for r in straight.history]


def test_early_stopping_stops_when_the_monitor_stalls(digits, key):
    train, test = digits
    frozen = _state(train, key, tx=optax.sgd(0.0))
    result = fit(
        frozen,
        train,
        task="classification",
        epochs=50,
        batch_size=128,
        eval_data=test,
        progress=False,
        early_stopping=EarlyStopping(monitor="eval/loss", patience=2),
    )
    assert result.stopped_early
    assert len(result.history) == 3


def test_non_finite_loss_stops_with_the_last_good_checkpoint_intact(tmp_path, key):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 3)).astype(np.float32)
    data = from_arrays(x, x @ np.array([1.0, 2.0, 3.0], np.float32), task="regression")
    schedule = optax.piecewise_constant_schedule(1e-3, {8: 1e12})  # explodes in epoch 3
    state = create_train_state(LinearRegression(), optax.sgd(schedule), x[:1], key)
    with pytest.raises(NonFiniteLossError, match=r"step \d+ \(epoch 3\).*step 8.*intact"):
        fit(
            state,
            data,
            task="regression",
            epochs=10,
            batch_size=16,
            checkpoint_dir=tmp_path,
            progress=False,
        )
    with CheckpointManager(tmp_path, create=False) as manager:
        assert manager.latest_step() == 8
        variables, meta = manager.restore_variables()
    assert np.isfinite(np.asarray(variables["params"]["dense"]["kernel"])).all()
    assert meta["data_position"]["epoch"] == 2


def test_an_existing_run_is_never_overwritten(digits, tmp_path, key):
    train, _ = digits
    common = {"task": "classification", "epochs": 1, "batch_size": 256, "progress": False}
    fit(_state(train, key), train, checkpoint_dir=tmp_path, **common)
    before = sorted(p.name for p in tmp_path.iterdir())
    with pytest.raises(CheckpointError, match=r"already holds a run.*resume=True"):
        fit(_state(train, key), train, checkpoint_dir=tmp_path, **common)
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_resume_with_another_batch_size_is_refused(digits, tmp_path, key):
    train, _ = digits
    fit(
        _state(train, key),
        train,
        task="classification",
        epochs=1,
        batch_size=256,
        checkpoint_dir=tmp_path,
        progress=False,
    )
    with pytest.raises(ValueError, match=r"data_position\.batch_size: saved 256, now 128"):
        fit(
            _state(train, key),
            train,
            task="classification",
            epochs=2,
            batch_size=128,
            checkpoint_dir=tmp_path,
            resume=True,
            progress=False,
        )


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"epochs": 0}, "`epochs` must be a positive integer"),
        ({"batch_size": -1}, "`batch_size` must be a positive integer"),
        ({"batch_size": 100_000}, r"`batch_size` \(100000\) is larger than the training set"),
        ({"task": "regression"}, "'classification' dataset but the task is 'regression'"),
        ({"task": "ranking"}, "unknown task 'ranking'"),
        ({"resume": True}, "needs a `checkpoint_dir`"),
        ({"seed": -3}, "`seed` must be a non-negative integer"),
        ({"steps_per_call": 0}, "`steps_per_call` must be a positive integer, got 0"),
        (
            {"early_stopping": EarlyStopping(monitor="eval/loss")},
            r"early_stopping.monitor is 'eval/loss', which this run does not produce",
        ),
        (
            {"early_stopping": EarlyStopping(monitor="train/f1")},
            r"choose one of \['train/accuracy', 'train/learning_rate'",
        ),
    ],
)
def test_bad_arguments_raise_before_any_compute(digits, key, overrides, message):
    train, _ = digits
    arguments = {"task": "classification", "epochs": 1, "batch_size": 32, "progress": False}
    state = _state(train, key)
    with pytest.raises(ValueError, match=message):
        fit(state, train, **{**arguments, **overrides})
    assert int(state.step) == 0


def test_an_unknown_checkpoint_monitor_is_refused_before_training(digits, tmp_path, key):
    train, _ = digits
    options = CheckpointOptions(monitor="eval/accuracy", mode="max")
    with pytest.raises(ValueError, match="checkpoint monitor is 'eval/accuracy'"):
        fit(
            _state(train, key),
            train,
            task="classification",
            epochs=1,
            batch_size=64,
            checkpoint_dir=tmp_path,
            checkpoint_options=options,
            progress=False,
        )
    assert not any(p.name.isdigit() for p in tmp_path.iterdir())


def test_gradient_clipping_bounds_the_update(key):
    rng = np.random.default_rng(1)
    x = rng.normal(size=(32, 3)).astype(np.float32) * 100
    data = from_arrays(x, x.sum(axis=1), task="regression")
    tx = create_optimizer("sgd", 1.0, clip_norm=0.5)
    state = create_train_state(LinearRegression(), tx, x[:1], key)
    step = make_train_step(get_task("regression"), grad_norm=True)
    result = fit(
        state, data, task="regression", epochs=1, batch_size=32, train_step=step, progress=False
    )
    moved = jax.tree.map(lambda a, b: a - b, result.state.params, state.params)
    assert float(optax.tree.norm(moved)) == pytest.approx(0.5, rel=1e-5)
    assert result.history[0]["train"]["grad_norm"] > 0.5
    assert jnp.isfinite(result.history[0]["train"]["loss"])


def test_a_fit_checkpoint_is_enough_to_predict(digits, tmp_path, key):
    train, test = digits
    result = fit(
        _state(train, key),
        train,
        task="classification",
        epochs=1,
        batch_size=128,
        checkpoint_dir=tmp_path,
        progress=False,
    )
    expected = np.asarray(
        result.state.model.apply(result.state.variables, test.arrays["x"], train=False)
    )
    np.testing.assert_allclose(predict(tmp_path, test.arrays["x"]), expected, rtol=1e-6)
    metrics = evaluate(tmp_path, test)
    assert metrics["accuracy"] == pytest.approx(np.mean(expected.argmax(1) == test.arrays["y"]))


def test_evaluate_fn_metrics_join_the_eval_group_and_can_be_monitored(digits, key):
    seen_steps = []

    def evaluate_fn(state):
        seen_steps.append(int(state.step))
        return {"custom": -float(state.step)}  # improves every epoch

    train, _ = digits
    stopping = EarlyStopping(monitor="eval/custom", mode="min", patience=1)
    result = fit(
        _state(train, key),
        train,
        task="classification",
        epochs=3,
        batch_size=128,
        evaluate_fn=evaluate_fn,
        early_stopping=stopping,
        progress=False,
    )
    steps_per_epoch = len(train) // 128
    assert seen_steps == [steps_per_epoch, 2 * steps_per_epoch, 3 * steps_per_epoch]
    assert [r["eval"]["custom"] for r in result.history] == [-s for s in seen_steps]
    assert not result.stopped_early


def test_a_monitor_that_evaluate_fn_does_not_make_is_refused_after_the_first_epoch(digits, key):
    train, _ = digits
    with pytest.raises(ValueError, match="'eval/missing' is not among this run's metrics"):
        fit(
            _state(train, key),
            train,
            task="classification",
            epochs=3,
            batch_size=128,
            evaluate_fn=lambda state: {"custom": 1.0},
            early_stopping=EarlyStopping(monitor="eval/missing"),
            progress=False,
        )


@pytest.mark.parametrize(
    ("model", "has_convolution"),
    [(MLP(hidden_sizes=(8,), num_outputs=10), False), (SimpleCNN(num_outputs=10), True)],
)
def test_convolution_steps_on_the_cpu_skip_whole_epoch_scans(digits, key, model, has_convolution):
    train, _ = digits
    state = create_train_state(model, create_optimizer("adam", 1e-3), train.arrays["x"][:1], key)
    step = make_train_step(get_task("classification"))
    assert _slow_inside_scan(step, state, train, 32, None) is has_convolution
    members = create_ensemble(model, create_optimizer("adam", 1e-3), train.arrays["x"][:1], key, 2)
    assert _slow_inside_scan(step, members, train, 32, 2) is has_convolution


def test_early_stopping_watches_the_task_monitor_by_default(digits, key):
    @dataclasses.dataclass(frozen=True)
    class HigherIsBetter(Classification):
        monitor: ClassVar[str] = "custom"
        monitor_mode: ClassVar[str] = "max"

    train, _ = digits
    result = fit(
        _state(train, key),
        train,
        task=HigherIsBetter(),
        epochs=5,
        batch_size=128,
        evaluate_fn=lambda state: {"custom": -float(state.step)},  # worse every epoch
        early_stopping=EarlyStopping(patience=1),
        progress=False,
    )
    assert result.stopped_early
    assert len(result.history) == 2


def _streamed(data, read_threads):
    """``data`` as a `SourceDataset` read by ``read_threads`` of grain's threads."""
    arrays = data.arrays
    records = [{k: arrays[k][i] for k in arrays} for i in range(len(data))]
    return SourceDataset(records, data.info, dict, data.split, read_threads=read_threads)


@pytest.mark.parametrize("read_threads", [0, 3])
def test_a_streamed_dataset_trains_bitwise_like_its_in_memory_copy(
    digits, key, tmp_path, read_threads
):
    train, _ = digits
    train = train.take(640)
    streamed = _streamed(train, read_threads)
    common = {"task": "classification", "batch_size": 64, "progress": False}
    in_memory = fit(_state(train, key), train, epochs=2, whole_epoch=False, **common)
    # Streamed, stopped at step 15 (mid-epoch 2) by a checkpoint boundary, then resumed.
    options = CheckpointOptions(every_steps=5, keep_last=5)
    run = {"checkpoint_dir": tmp_path / "run", "checkpoint_options": options, **common}
    fit(_state(train, key), streamed, epochs=2, **run)
    with CheckpointManager(tmp_path / "run", create=False) as manager:
        for step in manager.all_steps():
            if step > 15:
                shutil.rmtree(tmp_path / "run" / str(step))
    resumed = fit(_state(train, key), streamed, epochs=2, resume=True, **run)
    _leaves_equal(in_memory.state, resumed.state)
    assert [r["train"] for r in resumed.history] == [r["train"] for r in in_memory.history]


@settings(
    max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(every=st.integers(1, 2 * STEPS_PER_CALL + 1), diagnose=st.sampled_from([None, 3]))
def test_host_batches_run_in_calls_of_several_steps_that_any_split_leaves_bitwise(
    digits, key, every, diagnose
):
    # Streamed data runs up to STEPS_PER_CALL steps per compiled call; step callbacks and
    # diagnosed steps split those calls anywhere, and the run computes the same bits.
    train = digits[0].take(13 * 32)  # 13 steps per epoch: full calls and a remainder
    streamed = _streamed(train, 0)
    common = {"task": "classification", "epochs": 2, "batch_size": 32, "progress": False}
    plain = fit(_state(train, key), streamed, **common)
    steps = []
    split = fit(
        _state(train, key),
        streamed,
        callbacks=[callback(on_step=lambda event: steps.append(event.step), every_steps=every)],
        diagnostics_every=diagnose,
        **common,
    )
    _leaves_equal(plain.state, split.state)
    assert [r["train"] for r in split.history] == [r["train"] for r in plain.history]
    assert steps == [s for s in range(1, 27) if s % every == 0]
