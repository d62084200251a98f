"""Learning-rate schedules: their values, the steps that use them, their record and resume."""

import json
import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adljax.cli import main
from adljax.experiment import run_experiment
from adljax.models import create_model
from adljax.tasks import get_task
from adljax.training import create_optimizer, create_train_state, make_train_step
from adljax.training.optimizers import (
    EXPONENTIAL_END_FACTOR,
    SCHEDULE_NAMES,
    learning_rate_schedule,
    run_schedule,
)

CLASSIFICATION = get_task("classification")


def _expected(schedule, lr, warmup, decay, t):
    """The schedules' definitions, written out."""
    if t < warmup:
        return lr * t / warmup
    u = min(t - warmup, decay) / decay if decay else 0.0
    if schedule == "constant":
        return lr
    if schedule == "cosine":
        return lr * 0.5 * (1 + math.cos(math.pi * u))
    if schedule == "linear":
        return lr * (1 - u)
    return lr * EXPONENTIAL_END_FACTOR**u


@settings(max_examples=60, deadline=None)
@given(
    schedule=st.sampled_from(SCHEDULE_NAMES),
    lr=st.floats(1e-5, 1.0),
    warmup=st.integers(0, 50),
    decay=st.integers(1, 200),
    t=st.integers(0, 400),
)
def test_schedules_follow_their_definitions(schedule, lr, warmup, decay, t):
    decay_steps = None if schedule == "constant" else decay
    rate = learning_rate_schedule(lr, schedule, warmup_steps=warmup, decay_steps=decay_steps)
    value = float(rate(t)) if callable(rate) else rate
    expected = _expected(schedule, lr, warmup, decay if decay_steps else 0, t)
    assert value == pytest.approx(expected, rel=1e-4, abs=1e-9)
    if callable(rate):  # compiled, as the train step runs it: never a negative step size
        compiled = float(jax.jit(rate)(jnp.int32(t)))
        assert compiled >= 0 and compiled == pytest.approx(expected, rel=1e-4, abs=1e-9)


@pytest.mark.parametrize("decay", [1, 3, 67, 1000])
def test_linear_and_cosine_end_exactly_at_zero(decay):
    for schedule in ("linear", "cosine"):
        rate = learning_rate_schedule(1.0, schedule, decay_steps=decay)
        assert float(rate(decay)) == 0.0 and float(jax.jit(rate)(jnp.int32(decay))) == 0.0


@settings(max_examples=25, deadline=None)
@given(warmup=st.integers(1, 40), decay=st.integers(1, 100), t=st.integers(0, 200))
def test_warmup_cosine_equals_optax_own(warmup, decay, t):
    ours = learning_rate_schedule(0.3, "cosine", warmup_steps=warmup, decay_steps=decay)
    theirs = optax.warmup_cosine_decay_schedule(0.0, 0.3, warmup, warmup + decay, end_value=0.0)
    assert float(ours(t)) == pytest.approx(float(theirs(t)), rel=1e-5, abs=1e-7)


def test_constant_without_warmup_is_the_float_and_records_nothing():
    assert learning_rate_schedule(0.01) == 0.01
    assert run_schedule(0.01, "constant", 0, None, 100) == (0.01, None)
    rate, record = run_schedule(0.01, "linear", 10, None, 100)
    assert record == {"name": "linear", "warmup_steps": 10, "decay_steps": 90}
    assert float(rate(100)) == pytest.approx(0.0) and float(rate(55)) == pytest.approx(0.005)


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"schedule": "step"}, "unknown schedule 'step'"),
        ({"warmup_steps": -1}, "`warmup_steps` must be an integer >= 0"),
        ({"warmup_steps": 1.5}, "`warmup_steps` must be an integer >= 0"),
        ({"schedule": "cosine", "decay_steps": 0}, "`decay_steps` must be a positive integer"),
        ({"decay_steps": 10}, "`decay_steps` needs a decaying schedule"),
        ({"schedule": "cosine"}, "the 'cosine' schedule needs `decay_steps`"),
    ],
)
def test_bad_schedules_are_named(arguments, message):
    with pytest.raises(ValueError, match=message):
        learning_rate_schedule(0.1, **arguments)


def test_each_step_reports_the_learning_rate_it_used(key):
    rate = learning_rate_schedule(0.1, "cosine", warmup_steps=2, decay_steps=5)
    model = create_model("mlp", num_outputs=3, hidden_sizes=(4,))
    state = create_train_state(model, create_optimizer("sgd", rate), jnp.ones((1, 2)), key)
    batch = {"x": jax.random.normal(key, (6, 2)), "y": jnp.arange(6) % 3}
    step = jax.jit(make_train_step(CLASSIFICATION))
    for t in range(9):
        before = state.params["head"]["kernel"]
        state, metrics = step(state, batch)
        assert float(metrics["learning_rate"]) == pytest.approx(float(rate(t)), abs=1e-7)
        # Plain SGD moves the weights by exactly lr * gradient: none at t = 0 or after decay.
        moved = not np.array_equal(before, state.params["head"]["kernel"])
        assert moved == (float(rate(t)) > 0)


def test_the_run_records_its_schedule_and_a_resume_must_keep_it(tmp_path):
    common = {"epochs": 2, "batch_size": 16, "progress": False, "checkpoint_dir": tmp_path}
    first = run_experiment("mlp", "xor", schedule="linear", warmup_steps=3, **common)
    meta = json.loads((tmp_path / "history.jsonl").read_text().splitlines()[-1])
    steps = meta["step"]
    rates = [record["train"]["learning_rate"] for record in first.result.history]
    assert rates[0] > rates[-1] > 0  # the epoch means of a decaying rate
    with pytest.raises(
        ValueError, match=r"optimizer\.schedule\.name: saved 'linear', now 'cosine'"
    ):
        run_experiment("mlp", "xor", schedule="cosine", warmup_steps=3, resume=True, **common)
    # The command line resumes with the saved schedule when no flag changes it.
    argv = ["train", "mlp", "--dataset", "xor", "--epochs", "3", "--batch-size", "16"]
    assert main([*argv, "--checkpoint-dir", str(tmp_path), "--resume", "--no-progress"]) == 0
    last = json.loads((tmp_path / "history.jsonl").read_text().splitlines()[-1])
    assert last["step"] == steps * 3 // 2
    # Planned over two epochs, the linear decay has reached 0 in the third.
    assert last["train"]["learning_rate"] == 0.0


def test_ensemble_learning_rates_need_a_constant_schedule():
    with pytest.raises(ValueError, match="need a constant schedule"):
        run_experiment(
            "mlp", "xor", ensemble=2, learning_rates=[0.1, 0.2], schedule="cosine", epochs=1
        )
