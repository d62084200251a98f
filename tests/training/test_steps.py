"""Train and eval step factories: purity, compile-once, metrics, masks, whole-epoch scans."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from hypothesis import given
from hypothesis import strategies as st

from adljax.models import MLP
from adljax.tasks import Classification, Regression, sum_statistics
from adljax.training import create_optimizer, create_train_state, make_epoch_fn
from adljax.training.steps import make_eval_step, make_train_step


def _classification_batch(seed: int, size: int = 16, features: int = 6, classes: int = 3):
    rng = np.random.default_rng(seed)
    return {
        "x": rng.normal(size=(size, features)).astype(np.float32),
        "y": rng.integers(0, classes, size=size).astype(np.int32),
    }


def _state(key, *, batch_norm=True, dropout_rate=0.2, learning_rate=1e-2):
    model = MLP(hidden_sizes=(16,), num_outputs=3, batch_norm=batch_norm, dropout_rate=dropout_rate)
    tx = create_optimizer("adam", learning_rate)
    return create_train_state(model, tx, jnp.zeros((1, 6)), key)


def test_train_step_compiles_once_and_lowers_the_loss(key):
    step = jax.jit(chex.assert_max_traces(make_train_step(Classification()), n=1))
    state, batch = _state(key), _classification_batch(0)
    losses = []
    for _ in range(30):
        state, metrics = step(state, batch)
        losses.append(float(metrics["loss"]))
    assert losses[-1] < 0.5 * losses[0]
    assert int(state.step) == 30


def test_metrics_report_learning_rate_and_gradient_norm_on_request(key):
    state, batch = _state(key, batch_norm=False, dropout_rate=0.0), _classification_batch(1)
    stepped, default = jax.jit(make_train_step(Classification()))(state, batch)
    assert set(default) == {"loss", "accuracy", "learning_rate"}
    with_norm, metrics = jax.jit(make_train_step(Classification(), grad_norm=True))(state, batch)
    assert set(metrics) == {"loss", "accuracy", "learning_rate", "grad_norm"}
    # Reporting the norm changes nothing that is computed.
    jax.tree.map(np.testing.assert_array_equal, with_norm.params, stepped.params)
    np.testing.assert_array_equal(metrics["loss"], default["loss"])
    np.testing.assert_allclose(metrics["learning_rate"], 1e-2, rtol=1e-6)

    def loss_fn(params):
        logits = state.model.apply({"params": params}, batch["x"], train=True)
        return optax.softmax_cross_entropy_with_integer_labels(logits, batch["y"]).mean()

    loss, grads = jax.value_and_grad(loss_fn)(state.params)
    np.testing.assert_allclose(metrics["loss"], loss, rtol=1e-6)
    np.testing.assert_allclose(metrics["grad_norm"], optax.tree.norm(grads), rtol=1e-5)


def test_scheduled_learning_rate_is_the_one_each_update_used(key):
    schedule = optax.linear_schedule(1.0, 0.0, transition_steps=10)
    model = MLP(hidden_sizes=(4,), num_outputs=3)
    state = create_train_state(model, create_optimizer("sgd", schedule), jnp.zeros((1, 6)), key)
    step = jax.jit(make_train_step(Classification()))
    rates = []
    for _ in range(4):
        state, metrics = step(state, _classification_batch(2))
        rates.append(float(metrics["learning_rate"]))
    np.testing.assert_allclose(rates, [schedule(i) for i in range(4)], rtol=1e-6)


@pytest.mark.parametrize("transform", [jax.jit, lambda f: f], ids=["jit", "eager"])
def test_step_is_pure_and_agrees_with_and_without_jit(key, transform):
    step = make_train_step(Classification())
    state, batch = _state(key), _classification_batch(3)
    reference_state, reference = jax.jit(step)(state, batch)
    new_state, metrics = transform(step)(state, batch)
    chex.assert_trees_all_close(metrics, reference, rtol=1e-5, atol=1e-6)
    chex.assert_trees_all_close(new_state.params, reference_state.params, rtol=1e-5, atol=1e-6)
    chex.assert_trees_all_close(
        new_state.model_state, reference_state.model_state, rtol=1e-5, atol=1e-6
    )


def test_batch_norm_statistics_update_only_in_training(key):
    state, batch = _state(key), _classification_batch(4)
    new_state, _ = jax.jit(make_train_step(Classification()))(state, batch)
    before = state.model_state["batch_stats"]
    after = new_state.model_state["batch_stats"]
    assert not np.allclose(before["bn_0"]["mean"], after["bn_0"]["mean"])
    statistics = jax.jit(make_eval_step(Classification()))(new_state, batch)
    assert float(statistics["count"]) == 16  # eval never returns new batch statistics


def test_dropout_masks_differ_between_steps_but_repeat_for_the_same_step(key):
    model = MLP(hidden_sizes=(64,), num_outputs=3, dropout_rate=0.5)
    state = create_train_state(model, create_optimizer("sgd", 0.0), jnp.zeros((1, 6)), key)
    step = jax.jit(make_train_step(Classification()))
    batch = _classification_batch(5)
    _, first = step(state, batch)
    _, again = step(state, batch)
    _, later = step(state.replace(step=state.step + 1), batch)
    assert float(first["loss"]) == float(again["loss"])
    assert float(first["loss"]) != float(later["loss"])


@given(real=st.integers(1, 12), padding=st.integers(0, 8), seed=st.integers(0, 1000))
def test_eval_statistics_ignore_masked_padding(real, padding, seed):
    rng = np.random.default_rng(seed)
    model = MLP(hidden_sizes=(8,), num_outputs=2)
    state = create_train_state(model, optax.sgd(0.1), jnp.zeros((1, 3)), jax.random.key(seed))
    x = rng.normal(size=(real + padding, 3)).astype(np.float32)
    y = rng.normal(size=(real + padding, 2)).astype(np.float32)
    mask = np.concatenate([np.ones(real), np.zeros(padding)]).astype(np.float32)
    eval_step = make_eval_step(Regression())
    padded = eval_step(state, {"x": x, "y": y, "mask": mask})
    unpadded = eval_step(state, {"x": x[:real], "y": y[:real]})
    chex.assert_trees_all_close(padded, unpadded, rtol=1e-5, atol=1e-5)


def test_whole_epoch_scan_matches_the_step_by_step_loop(key):
    rng = np.random.default_rng(6)
    data = {
        "x": rng.normal(size=(64, 6)).astype(np.float32),
        "y": rng.integers(0, 3, size=64).astype(np.int32),
    }
    indices = rng.permutation(64).reshape(4, 16).astype(np.int32)
    step = make_train_step(Classification())
    scanned_state, scanned = jax.jit(make_epoch_fn(step))(_state(key), data, indices)
    state, jitted = _state(key), jax.jit(step)
    losses = []
    for row in indices:
        state, metrics = jitted(state, {k: v[row] for k, v in data.items()})
        losses.append(metrics["loss"])
    np.testing.assert_allclose(scanned["loss"], np.stack(losses), rtol=1e-5)
    chex.assert_trees_all_close(scanned_state.params, state.params, rtol=1e-5, atol=1e-6)
    assert scanned["loss"].shape == (4,)


def test_sum_statistics_adds_over_batches():
    stacked = {"count": jnp.array([2.0, 3.0]), "loss_sum": jnp.array([1.0, 0.5])}
    assert sum_statistics(stacked) == {"count": 5.0, "loss_sum": 1.5}


def test_augmentation_runs_inside_the_step_with_a_per_step_key(key):
    seen = []

    def augment(augment_key, batch):
        seen.append(augment_key)
        noise = jax.random.normal(augment_key, batch["x"].shape)
        return {**batch, "x": batch["x"] + noise}

    model = MLP(hidden_sizes=(8,), num_outputs=3)
    state = create_train_state(model, create_optimizer("sgd", 0.1), jnp.zeros((1, 6)), key)
    batch = _classification_batch(7)
    step = jax.jit(make_train_step(Classification(), augment=augment))
    plain = jax.jit(make_train_step(Classification()))
    _, first = step(state, batch)
    _, again = step(state, batch)
    _, later = step(state.replace(step=state.step + 1), batch)
    _, unaugmented = plain(state, batch)
    assert len(seen) == 1  # traced once, runs compiled
    assert float(first["loss"]) == float(again["loss"])
    assert float(first["loss"]) != float(later["loss"])
    assert float(first["loss"]) != float(unaugmented["loss"])
