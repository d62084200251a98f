"""Training diagnostics: each statistic against a direct NumPy computation, the report against
the train step it describes, and ``fit(diagnostics_every=...)`` across step kinds."""

import json
import os
import shutil
import subprocess
import sys
import textwrap

import chex
import flax.linen as nn
import hypothesis.extra.numpy as hnp
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from adljax.data import load
from adljax.models import MLP, create_model
from adljax.tasks import get_task
from adljax.training import (
    CheckpointOptions,
    create_ensemble,
    create_optimizer,
    create_train_state,
    fit,
    make_train_step,
)
from adljax.training.diagnostics import (
    SATURATION_MARGIN,
    activation_statistics,
    batch_norm_drift,
    layer_norms,
    make_diagnostics_step,
    update_ratios,
)

pytestmark = pytest.mark.usefixtures("fast_compiles")

CLASSIFICATION = get_task("classification")
finite = st.floats(-4, 4, width=32)


@pytest.fixture(scope="module")
def digits():
    return load("digits", "train"), load("digits", "test")


def _batch(data, size=32):
    return {name: array[:size] for name, array in data.arrays.items()}


# ----- the statistics, against NumPy ----------------------------------------------------


@given(hnp.arrays(np.float32, st.tuples(st.integers(1, 4), st.integers(1, 5)), elements=finite))
def test_layer_norms_are_the_l2_norm_of_each_layers_leaves(kernel):
    bias = kernel[0] * 2
    tree = {"dense_0": {"kernel": kernel, "bias": bias}, "head": {"kernel": kernel.T}}
    norms = layer_norms(tree)
    assert set(norms) == {"dense_0", "head"}
    expected = np.sqrt(
        np.sum(kernel.astype(np.float64) ** 2) + np.sum(bias.astype(np.float64) ** 2)
    )
    np.testing.assert_allclose(norms["dense_0"], expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(norms["head"], np.linalg.norm(kernel), rtol=1e-5, atol=1e-6)


def test_layer_names_are_module_paths():
    tree = {
        "backbone": {"block_0": {"conv": {"kernel": jnp.ones(3)}}},
        "head": {"bias": jnp.ones(2)},
    }
    assert set(layer_norms(tree)) == {"backbone/block_0/conv", "head"}


def test_update_ratio_is_update_norm_over_weight_norm_and_nan_for_zero_weights():
    params = {"a": {"kernel": jnp.array([3.0, 4.0])}, "b": {"bias": jnp.zeros(2)}}
    updates = {"a": {"kernel": jnp.array([0.3, 0.0])}, "b": {"bias": jnp.ones(2)}}
    ratios = update_ratios(updates, params)
    np.testing.assert_allclose(ratios["a"], 0.3 / 5.0, rtol=1e-6)
    assert np.isnan(ratios["b"])


@given(
    hnp.arrays(
        np.float32,
        st.tuples(st.integers(1, 6), st.integers(1, 3), st.integers(1, 5)),
        elements=finite,
    ),
    st.sampled_from(["relu", "sigmoid", "tanh"]),
)
def test_activation_statistics_match_numpy(pre_activation, activation):
    h = np.asarray(getattr(jax.nn, activation)(pre_activation))
    statistics = activation_statistics(h, activation)
    np.testing.assert_allclose(statistics["mean"], h.mean(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(statistics["std"], h.std(), rtol=1e-4, atol=1e-5)
    units = h.reshape(-1, h.shape[-1])
    dead = np.mean([np.all(units[:, j] == 0) for j in range(units.shape[1])])
    np.testing.assert_allclose(statistics["dead_fraction"], dead, atol=1e-7)
    if activation == "relu":
        assert "saturated_fraction" not in statistics
    else:
        low, high = (0.0, 1.0) if activation == "sigmoid" else (-1.0, 1.0)
        margin = SATURATION_MARGIN * (high - low)
        saturated = np.mean((h <= low + margin) | (h >= high - margin))
        np.testing.assert_allclose(statistics["saturated_fraction"], saturated, atol=1e-7)


def test_dead_units_and_saturation_are_seen():
    h = np.array([[0.0, 1.0, 0.0], [0.0, 2.0, 3.0]], np.float32)  # unit 0 dead
    np.testing.assert_allclose(activation_statistics(h, "relu")["dead_fraction"], 1 / 3)
    s = np.array([[0.001, 0.5, 0.995, 0.2]], np.float32)
    np.testing.assert_allclose(activation_statistics(s, "sigmoid")["saturated_fraction"], 0.5)


@given(
    hnp.arrays(
        np.float32,
        st.tuples(st.integers(2, 6), st.integers(1, 3), st.integers(1, 4)),
        elements=finite,
    ),
    st.floats(-2, 2),
    st.floats(0.1, 4),
)
def test_batch_norm_drift_matches_numpy(x, running_mean, running_var):
    mean = np.full(x.shape[-1], running_mean, np.float32)
    var = np.full(x.shape[-1], running_var, np.float32)
    drift = batch_norm_drift(x, mean, var, 1e-5)
    flat = x.reshape(-1, x.shape[-1]).astype(np.float64)
    shift = np.mean(np.abs(flat.mean(0) - mean) / np.sqrt(var + 1e-5))
    ratio = np.mean((flat.var(0) + 1e-5) / (var + 1e-5))
    np.testing.assert_allclose(drift["mean_shift"], shift, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(drift["var_ratio"], ratio, rtol=1e-4, atol=1e-5)


# ----- the report describes the step ------------------------------------------------------


def test_report_describes_the_update_the_train_step_makes(digits, key):
    train, _ = digits
    model = MLP(hidden_sizes=(16, 16), activation="tanh", dropout_rate=0.2, batch_norm=True)
    state = create_train_state(model, create_optimizer("sgd", 0.1), train.arrays["x"][:1], key)
    batch = _batch(train)
    report = jax.jit(make_diagnostics_step(CLASSIFICATION))(state, batch)
    after, metrics = jax.jit(make_train_step(CLASSIFICATION, grad_norm=True))(state, batch)

    total = np.sqrt(sum(float(v) ** 2 for v in report["grad_norm"].values()))
    np.testing.assert_allclose(total, metrics["grad_norm"], rtol=1e-5)
    applied = jax.tree.map(lambda new, old: new - old, after.params, state.params)
    expected = {
        layer: norm / layer_norms(state.params)[layer]
        for layer, norm in layer_norms(applied).items()
    }
    for layer, ratio in report["update_ratio"].items():
        np.testing.assert_allclose(ratio, expected[layer], rtol=1e-4)

    # The activations are the train-mode hidden layers (same dropout key, batch statistics).
    variables = {"params": state.params, **state.model_state}
    dropout_key, _ = jax.random.split(jax.random.fold_in(state.key, state.step))
    _, sown = model.apply(
        variables,
        batch["x"],
        train=True,
        rngs={"dropout": dropout_key},
        mutable=["intermediates", "batch_stats"],
    )
    assert set(report["activations"]) == {"hidden_0", "hidden_1"}
    for name, (h,) in sown["intermediates"].items():
        chex.assert_trees_all_close(report["activations"][name], activation_statistics(h, "tanh"))
    # The first batch norm sees the first dense layer's output; running stats are the initial 0/1.
    z = batch["x"].reshape(len(batch["x"]), -1) @ state.params["dense_0"]["kernel"]
    np.testing.assert_allclose(
        report["batch_norm"]["bn_0"]["mean_shift"],
        np.mean(np.abs(np.asarray(z).mean(0)) / np.sqrt(1 + 1e-5)),
        rtol=1e-4,
    )
    assert set(report["batch_norm"]) == {"bn_0", "bn_1"}


def test_a_user_batch_norm_in_eval_mode_is_not_reported(key):
    class Frozen(nn.Module):
        @nn.compact
        def __call__(self, x, *, train):
            x = nn.Dense(4)(x)
            x = nn.BatchNorm(use_running_average=True)(x)
            return nn.Dense(3)(x)

    state = create_train_state(Frozen(), create_optimizer("sgd", 0.1), jnp.ones((1, 2)), key)
    batch = {"x": jnp.ones((4, 2)), "y": jnp.zeros(4, jnp.int32)}
    report = make_diagnostics_step(CLASSIFICATION)(state, batch)
    assert report["batch_norm"] == {}
    assert set(report["grad_norm"]) == {"Dense_0", "Dense_1", "BatchNorm_0"}


@pytest.mark.parametrize(
    ("name", "config", "shape"),
    [
        ("cnn", {"num_outputs": 10}, (8, 28, 28, 1)),
        (
            "lstm",
            {"num_outputs": 3, "vocab_size": 11, "hidden_size": 8, "embedding_size": 4},
            (8, 6),
        ),
    ],
)
def test_every_family_reports_its_layers(name, config, shape, key):
    model = create_model(name, **config)
    x = jnp.ones(shape, jnp.int32 if len(shape) == 2 else jnp.float32)
    state = create_train_state(model, create_optimizer("adam", 1e-3), x[:1], key)
    batch = {"x": x, "y": jnp.zeros(shape[0], jnp.int32)}
    report = jax.jit(make_diagnostics_step(CLASSIFICATION))(state, batch)
    params = {
        jax.tree_util.keystr(p[:-1], simple=True, separator="/")
        for p, _ in jax.tree_util.tree_flatten_with_path(state.params)[0]
    }
    assert set(report["grad_norm"]) == set(report["update_ratio"]) == params
    assert "features" in report["activations"]
    assert all(np.isfinite(v) for v in jax.tree.leaves(report["grad_norm"]))


# ----- fit ---------------------------------------------------------------------------------


def _reports(history):
    return [report for record in history for report in record["diagnostics"]]


@pytest.mark.parametrize("whole_epoch", [True, False])
def test_fit_records_a_report_every_n_steps_and_trains_the_same(digits, key, whole_epoch):
    train, test = digits
    state = create_train_state(
        MLP(hidden_sizes=(16,)), create_optimizer("adam", 1e-3), train.arrays["x"][:1], key
    )
    common = dict(
        task="classification",
        epochs=2,
        batch_size=128,
        eval_data=test,
        whole_epoch=whole_epoch,
        progress=False,
    )
    plain = fit(state, train, **common)
    watched = fit(state, train, diagnostics_every=4, **common)
    chex.assert_trees_all_equal(plain.state.params, watched.state.params)
    assert all("diagnostics" not in record for record in plain.history)
    steps = [report["step"] for report in _reports(watched.history)]
    assert steps == list(range(0, 2 * (len(train) // 128), 4))
    first = _reports(watched.history)[0]
    expected = jax.jit(make_diagnostics_step(CLASSIFICATION))(
        state,
        {n: a[np.asarray(_first_batch_rows(len(train), 128))] for n, a in train.arrays.items()},
    )
    np.testing.assert_allclose(
        first["grad_norm"]["dense_0"], expected["grad_norm"]["dense_0"], rtol=1e-5
    )
    json.dumps(watched.history)  # JSON-ready


def _first_batch_rows(size, batch_size):
    from adljax.data import epoch_permutation

    return epoch_permutation(size, 0, 0)[:batch_size]


def test_fit_diagnoses_each_ensemble_member(digits, key):
    train, _ = digits
    state = create_ensemble(
        MLP(hidden_sizes=(8,)), create_optimizer("adam", 1e-3), train.arrays["x"][:1], key, 3
    )
    result = fit(
        state,
        train,
        task="classification",
        epochs=1,
        batch_size=256,
        diagnostics_every=2,
        progress=False,
    )
    report = _reports(result.history)[0]
    norms = report["grad_norm"]["dense_0"]
    assert len(norms) == 3 and len(set(norms)) == 3  # one value per member, members differ


def test_resumed_run_has_the_same_diagnostics(digits, key, tmp_path):
    train, _ = digits
    state = create_train_state(
        MLP(hidden_sizes=(8,)), create_optimizer("adam", 1e-3), train.arrays["x"][:1], key
    )
    common = dict(
        task="classification",
        batch_size=128,
        diagnostics_every=3,
        progress=False,
        checkpoint_options=CheckpointOptions(every_steps=5, keep_last=3),
    )
    whole = fit(state, train, epochs=2, **common)
    fit(state, train, epochs=1, checkpoint_dir=tmp_path / "run", **common)
    # Resume from the middle of epoch 1 (step 10 of 11): its reports so far come from the save.
    shutil.rmtree(tmp_path / "run" / "11")
    resumed = fit(state, train, epochs=2, checkpoint_dir=tmp_path / "run", resume=True, **common)
    assert _reports(resumed.history) == _reports(whole.history)


def test_custom_train_step_needs_its_diagnostics_step(digits, key):
    train, _ = digits
    state = create_train_state(
        MLP(hidden_sizes=(8,)), create_optimizer("adam", 1e-3), train.arrays["x"][:1], key
    )
    with pytest.raises(ValueError, match="diagnostics_step"):
        fit(
            state,
            train,
            task="classification",
            epochs=1,
            batch_size=64,
            diagnostics_every=2,
            train_step=make_train_step(CLASSIFICATION),
            progress=False,
        )
    with pytest.raises(ValueError, match="diagnostics_every"):
        fit(state, train, task="classification", epochs=1, batch_size=64, diagnostics_every=0)


def test_data_parallel_reports_equal_one_device():
    script = textwrap.dedent("""
        import jax, numpy as np
        from adljax.data import load
        from adljax.models import SimpleCNN
        from adljax.training import create_optimizer, create_train_state, fit
        train = load("digits", "train").take(256)
        state = create_train_state(SimpleCNN(num_outputs=10), create_optimizer("adam", 1e-3),
                                   train.arrays["x"][:1], jax.random.key(0))
        run = lambda devices: fit(state, train, task="classification", epochs=1, batch_size=64,
                                  devices=devices, diagnostics_every=2, progress=False)
        one, two = run(None), run(2)
        for a, b in zip(one.history[0]["diagnostics"], two.history[0]["diagnostics"]):
            for key in ("grad_norm", "update_ratio"):
                for layer in a[key]:
                    np.testing.assert_allclose(a[key][layer], b[key][layer], rtol=2e-4)
        print("ok", len(one.history[0]["diagnostics"]))
    """)
    env = {
        **os.environ,
        "XLA_FLAGS": "--xla_force_host_platform_device_count=2",
        "JAX_PLATFORMS": "cpu",
    }
    result = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.split() == ["ok", "2"]


def test_any_step_gets_its_exact_update_ratios(key):
    from adljax import gan
    from adljax.training.diagnostics import make_update_diagnostics_step

    ring = load("ring8", "train")
    model = create_model("gan", input_shape=(2,), generator_sizes=(16,), discriminator_sizes=(16,))
    tx = gan.AdversarialOptimizer(create_optimizer("adam", 1e-3), create_optimizer("adam", 1e-3))
    state = gan.create_gan_state(model, tx, ring.arrays["x"][:1], key)
    task = gan.Generation(loss="hinge")
    step = gan.make_gan_train_step(task, n_critic=2)
    result = fit(
        state,
        ring,
        task=task,
        epochs=1,
        batch_size=256,
        train_step=step,
        whole_epoch=False,
        diagnostics_every=3,
        diagnostics_step=make_update_diagnostics_step(step),
        progress=False,
    )
    first = _reports(result.history)[0]
    from adljax.data import epoch_permutation

    rows = epoch_permutation(len(ring), 0, 0)[:256]
    after, _ = jax.jit(step)(state, {name: a[rows] for name, a in ring.arrays.items()})
    applied = jax.tree.map(jnp.subtract, after.params, state.params)
    expected = update_ratios(applied, state.params)
    assert set(first["update_ratio"]) == set(expected)
    assert {layer.split("/")[0] for layer in expected} == {"generator", "discriminator"}
    for layer, ratio in expected.items():
        np.testing.assert_allclose(first["update_ratio"][layer], ratio, rtol=1e-4)
