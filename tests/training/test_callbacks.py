"""``fit``'s callbacks: when hooks run, what they see, stop requests, and that they change
nothing that is computed; the progress display without a terminal; honest examples/s."""

import time

import chex
import jax
import jax.numpy as jnp
import pytest

from adljax.data import load
from adljax.models import MLP
from adljax.tasks import get_task
from adljax.training import (
    Callback,
    CheckpointManager,
    CheckpointOptions,
    Stop,
    callback,
    create_optimizer,
    create_train_state,
    fit,
    make_train_step,
)
from adljax.training.loop import _CompileClock

pytestmark = pytest.mark.usefixtures("fast_compiles")

BATCH = 128


@pytest.fixture(scope="module")
def digits():
    return load("digits", "train"), load("digits", "test")


def _state(data):
    model = MLP(hidden_sizes=(16,), num_outputs=10, dropout_rate=0.1)
    tx = create_optimizer("adam", 1e-2)
    return create_train_state(model, tx, data.arrays["x"][:1], jax.random.key(0))


class Recorder(Callback):
    """Records every hook call as ``(hook, epoch, step)``, its event and the state's step."""

    def __init__(self, every_steps=None):
        self.every_steps, self.calls, self.events, self.state_steps = every_steps, [], [], []

    def _record(self, hook, event):
        self.calls.append((hook, event.epoch, event.step))
        self.events.append(event)
        self.state_steps.append(int(event.state.step))  # steps donate it: read it now

    def on_train_begin(self, event):
        self._record("begin", event)

    def on_step(self, event):
        self._record("step", event)

    def on_epoch_end(self, event):
        self._record("epoch", event)

    def on_train_end(self, event):
        self._record("end", event)


def _run(train, *, epochs=3, **kwargs):
    return fit(
        _state(train),
        train,
        task="classification",
        epochs=epochs,
        batch_size=BATCH,
        progress=False,
        **kwargs,
    )


@pytest.mark.parametrize("whole_epoch", [True, False])
def test_hooks_run_at_their_steps_and_change_nothing(digits, whole_epoch):
    train, test = digits
    steps_per_epoch = len(train) // BATCH  # 11
    plain = _run(train, eval_data=test, whole_epoch=whole_epoch)
    recorder = Recorder(every_steps=4)
    watched = _run(train, eval_data=test, whole_epoch=whole_epoch, callbacks=[recorder])
    chex.assert_trees_all_equal(plain.state.params, watched.state.params)
    chex.assert_trees_all_equal(plain.state.opt_state, watched.state.opt_state)
    assert [r["train"] for r in plain.history] == [r["train"] for r in watched.history]
    total = 3 * steps_per_epoch
    expected = [("begin", 0, 0)]
    for step in range(1, total + 1):
        if step % 4 == 0:
            expected.append(("step", (step - 1) // steps_per_epoch, step))
        if step % steps_per_epoch == 0:
            expected.append(("epoch", step // steps_per_epoch, step))
    expected.append(("end", 3, total))
    assert recorder.calls == expected
    for event in recorder.events:
        assert event.epochs == 3 and event.steps_per_epoch == steps_per_epoch
        assert event.elapsed_s >= 0 and event.checkpoint_dir is None
    epoch_events = [e for e in recorder.events if e.record is not None]
    assert [e.record for e in epoch_events] == watched.history
    assert [len(e.history) for e in epoch_events] == [1, 2, 3]
    assert epoch_events[0].metrics["eval/accuracy"] == watched.history[0]["eval"]["accuracy"]
    step_events = [
        e for e, call in zip(recorder.events, recorder.calls, strict=True) if call[0] == "step"
    ]
    assert set(step_events[0].metrics) >= {"train/loss", "train/accuracy"}
    assert recorder.state_steps == [call[2] for call in recorder.calls]


def test_a_stop_at_an_epoch_end_saves_and_a_resume_asks_again(digits, tmp_path):
    train, _ = digits
    straight = _run(train, epochs=4)

    def stop_after_two(event):
        return Stop("two are enough") if event.epoch == 2 and stop_after_two.armed else None

    stop_after_two.armed = True
    stopped = _run(
        train,
        epochs=4,
        checkpoint_dir=tmp_path,
        callbacks=[callback(on_epoch_end=stop_after_two)],
    )
    assert stopped.stopped_early and stopped.stop_reason == "two are enough"
    assert [r["epoch"] for r in stopped.history] == [1, 2]
    with CheckpointManager(tmp_path, create=False) as manager:
        assert manager.latest_step() == 2 * (len(train) // BATCH)
    stop_after_two.armed = False  # the request is not saved: this run's callbacks decide
    resumed = _run(
        train,
        epochs=4,
        checkpoint_dir=tmp_path,
        resume=True,
        callbacks=[callback(on_epoch_end=stop_after_two)],
    )
    assert not resumed.stopped_early and resumed.stop_reason is None
    chex.assert_trees_all_equal(straight.state.params, resumed.state.params)
    assert [r["train"] for r in resumed.history] == [r["train"] for r in straight.history]


@pytest.mark.parametrize("whole_epoch", [True, False])
def test_a_stop_at_a_step_saves_that_step_and_resumes_exactly(digits, tmp_path, whole_epoch):
    train, _ = digits
    straight = _run(train, epochs=2, whole_epoch=whole_epoch)
    stop = callback(on_step=lambda e: Stop() if e.step == 15 else None, every_steps=5)
    options = CheckpointOptions(keep_last=5)
    common = {"epochs": 2, "checkpoint_dir": tmp_path, "whole_epoch": whole_epoch}
    stopped = _run(train, checkpoint_options=options, callbacks=[stop], **common)
    assert stopped.stop_reason == Stop().reason and int(stopped.state.step) == 15
    assert [r["epoch"] for r in stopped.history] == [1]  # epoch 2 was not finished
    with CheckpointManager(tmp_path, create=False) as manager:
        assert manager.all_steps() == [11, 15]  # the epoch, then the stop; no other step
    resumed = _run(train, checkpoint_options=options, resume=True, **common)
    chex.assert_trees_all_equal(straight.state.params, resumed.state.params)
    assert [r["train"] for r in resumed.history] == [r["train"] for r in straight.history]


def test_on_train_end_runs_when_training_fails(digits):
    train, _ = digits
    recorder = Recorder()

    def fail(event):
        raise RuntimeError("callback failed")

    with pytest.raises(RuntimeError, match="callback failed"):
        _run(train, callbacks=[recorder, callback(on_epoch_end=fail)])
    assert [call[0] for call in recorder.calls] == ["begin", "epoch", "end"]


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: [object()], r"callbacks\[0\].*none of the hooks"),
        (lambda: "logs", "sequence of callbacks"),
        (lambda: [callback(on_epoch_end=print), Recorder(every_steps=0)], r"every_steps"),
        (lambda: [callback(on_step=print)], "give both or neither"),
        (lambda: [callback()], "at least one hook"),
    ],
)
def test_bad_callbacks_are_refused_before_any_compute(digits, tmp_path, make, message):
    train, _ = digits
    with pytest.raises(ValueError, match=message):
        _run(train, checkpoint_dir=tmp_path / "run", callbacks=make())
    assert not (tmp_path / "run").exists()


def test_without_a_terminal_progress_is_one_plain_line_per_epoch(digits, capsys):
    train, test = digits
    result = fit(
        _state(train),
        train,
        task="classification",
        epochs=3,
        batch_size=BATCH,
        eval_data=test,
        progress=True,
    )
    err = capsys.readouterr().err
    assert "\r" not in err
    lines = err.splitlines()
    assert [line.split(":")[0] for line in lines] == ["epoch 1/3", "epoch 2/3", "epoch 3/3"]
    loss = result.history[-1]["train"]["loss"]
    assert f"train_loss={loss:.4g}" in lines[-1] and "eval_accuracy=" in lines[-1]
    assert "ex/s=" in lines[-1] and "elapsed=" in lines[-1]


def test_the_compile_clock_counts_compilation_only():
    with _CompileClock() as clock:
        fresh = jax.jit(lambda x: jnp.tanh(x) * 3.0 + 1.25)
        fresh(jnp.ones(7)).block_until_ready()
        compiled = clock.seconds
        fresh(jnp.ones(7)).block_until_ready()
    assert compiled > 0 and clock.seconds == compiled
    fresh(jnp.ones(9))  # after the context: not counted
    assert clock.seconds == compiled


def test_examples_per_sec_leaves_compilation_out(digits):
    train, _ = digits
    step = make_train_step(get_task("classification"))

    def slow_to_trace(state, batch):
        time.sleep(1.0)  # inside tracing, which jax.monitoring counts as compilation
        return step(state, batch)

    result = _run(train, epochs=2, train_step=slow_to_trace, whole_epoch=True)
    first = result.history[0]
    examples = (len(train) // BATCH) * BATCH
    assert first["time_s"] > 1.0
    # The epoch's one call compiled: measured without the second spent tracing it.
    assert first["examples_per_sec"] > 4 * examples / first["time_s"]
