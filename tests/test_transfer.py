"""Tests for adljax.transfer: parameter transfer, freezing with Optax, frozen batch statistics."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from adljax.models import MLP
from adljax.tasks import Classification
from adljax.training import (
    CheckpointError,
    CheckpointManager,
    CheckpointOptions,
    create_ensemble,
    create_optimizer,
    create_train_state,
    make_epoch_fn,
    make_train_step,
)
from adljax.transfer import (
    TransferReport,
    discriminative,
    few_label_transfer_lesson,
    freeze,
    freeze_batch_stats,
    load_backbone,
    replace_optimizer,
    restore_frozen_batch_stats,
    transfer_parameters,
)

FROZEN = ("dense_0/*", "bn_0/*")


def _variables(hidden_sizes, num_outputs, key):
    model = MLP(hidden_sizes=hidden_sizes, num_outputs=num_outputs, batch_norm=True)
    return model.init(key, jnp.zeros((1, 6)), train=False)


def _batch(seed, size=16):
    rng = np.random.default_rng(seed)
    return {
        "x": rng.normal(size=(size, 6)).astype(np.float32),
        "y": rng.integers(0, 3, size=size).astype(np.int32),
    }


def _frozen_state(key, frozen=FROZEN):
    model = MLP(hidden_sizes=(16, 16), num_outputs=3, batch_norm=True)
    state = create_train_state(model, create_optimizer("adam", 1e-2), jnp.zeros((1, 6)), key)
    return replace_optimizer(state, freeze(create_optimizer("adam", 1e-2), state.params, frozen))


def _flat(state):
    """``{path: NumPy copy}`` of a state's variables, e.g. ``params/dense_0/kernel``."""
    variables = {"params": state.params, **state.model_state}
    return {
        jax.tree_util.keystr(path, simple=True, separator="/"): np.array(leaf)
        for path, leaf in jax.tree_util.tree_leaves_with_path(variables)
    }


# ----- transfer_parameters ---------------------------------------------------------------


def test_transfer_reports_every_leaf(key):
    source = _variables((16, 8, 8), 3, key)
    target = _variables((16, 4), 5, jax.random.key(1))
    variables, report = transfer_parameters(source, target)
    assert set(report.copied) == {
        "params/dense_0/kernel",
        "params/bn_0/scale",
        "params/bn_0/bias",
        "batch_stats/bn_0/mean",
        "batch_stats/bn_0/var",
    }
    assert report.new == ()
    assert ("params/dense_1/kernel", (16, 8), (16, 4)) in report.mismatched
    assert ("params/head/bias", (3,), (5,)) in report.mismatched
    assert len(report.mismatched) == 7  # dense_1 kernel, bn_1 x4, head x2
    assert set(report.unused) == {
        "params/dense_2/kernel",
        "params/bn_2/scale",
        "params/bn_2/bias",
        "batch_stats/bn_2/mean",
        "batch_stats/bn_2/var",
    }
    np.testing.assert_array_equal(
        variables["params"]["dense_0"]["kernel"], source["params"]["dense_0"]["kernel"]
    )
    np.testing.assert_array_equal(
        variables["params"]["head"]["kernel"], target["params"]["head"]["kernel"]
    )
    assert jax.tree.map(np.shape, variables) == jax.tree.map(np.shape, dict(target))


def test_include_and_exclude_patterns(key):
    source = _variables((16,), 3, key)
    target = _variables((16,), 3, jax.random.key(1))
    _, report = transfer_parameters(source, target, exclude=("params/head/*",))
    assert set(report.new) == {"params/head/kernel", "params/head/bias"}
    _, report = transfer_parameters(source, target, include=("params/*",))
    assert set(report.new) == {"batch_stats/bn_0/mean", "batch_stats/bn_0/var"}
    assert len(report.copied) == 5 and not report.mismatched and not report.unused
    with pytest.raises(ValueError, match="`exclude` must be a sequence of path patterns"):
        transfer_parameters(source, target, exclude="params/head/*")


def test_transfer_neither_changes_nor_shares_its_inputs(key):
    source = jax.tree.map(lambda a: np.asarray(a, np.float64), _variables((16,), 3, key))
    target = _variables((16,), 3, jax.random.key(1))
    before = jax.tree.map(np.array, (source, target))
    variables, _ = transfer_parameters(source, target)
    jax.tree.map(np.testing.assert_array_equal, (source, target), before)
    out = jax.tree.leaves(variables)
    assert all(leaf.dtype == jnp.float32 for leaf in out)  # the target's dtype
    inputs = {id(leaf) for leaf in jax.tree.leaves((source, target))}
    assert not any(id(leaf) in inputs for leaf in out)


def test_report_summary_is_readable():
    report = TransferReport(
        copied=tuple(f"params/layer{i}/kernel" for i in range(8)),
        new=("params/head/kernel",),
        mismatched=(("params/head/bias", (3,), (5,)),),
        unused=(),
    )
    text = str(report)
    assert text.splitlines()[0] == "transferred 8 of 10 target arrays"
    assert "copied: 8: params/layer0/kernel" in text and "... and 3 more" in text
    assert "params/head/bias (3,) -> (5,)" in text
    assert "unused: 0" in text


def test_load_backbone_from_a_checkpoint(tmp_path, key):
    model = MLP(hidden_sizes=(16,), num_outputs=3, batch_norm=True)
    trained = create_train_state(model, create_optimizer("adam"), jnp.zeros((1, 6)), key)
    trained = trained.replace(step=jnp.asarray(5, jnp.int32))
    with CheckpointManager(tmp_path, CheckpointOptions(async_save=False, keep_best=0)) as manager:
        manager.save(5, trained, {"note": "pretrained"})

    new_model = MLP(hidden_sizes=(16,), num_outputs=7, batch_norm=True)
    target = create_train_state(new_model, create_optimizer("adam"), jnp.zeros((1, 6)), key)
    state, report = load_backbone(tmp_path, target)
    assert set(report.new) == {"params/head/kernel", "params/head/bias"}
    assert not report.mismatched
    np.testing.assert_array_equal(
        state.params["dense_0"]["kernel"], trained.params["dense_0"]["kernel"]
    )
    np.testing.assert_array_equal(
        state.model_state["batch_stats"]["bn_0"]["var"],
        trained.model_state["batch_stats"]["bn_0"]["var"],
    )
    assert state.params["head"]["kernel"].shape == (16, 7)
    assert int(state.step) == 0
    jax.tree.map(np.testing.assert_array_equal, state.opt_state, state.tx.init(state.params))
    with pytest.raises(CheckpointError, match="does not exist"):
        load_backbone(tmp_path / "absent", target)


# ----- freezing --------------------------------------------------------------------------


def test_frozen_params_and_batch_stats_stay_bitwise_while_the_rest_trains(key):
    state = _frozen_state(key)
    before = _flat(state)
    step = jax.jit(freeze_batch_stats(make_train_step(Classification()), FROZEN))
    for i in range(5):
        state, metrics = step(state, _batch(i))
    np.testing.assert_allclose(metrics["learning_rate"], 1e-2, rtol=1e-6)
    after = _flat(state)
    frozen = sorted(p for p in after if p.split("/")[1] in ("dense_0", "bn_0"))
    assert frozen == [
        "batch_stats/bn_0/mean",
        "batch_stats/bn_0/var",
        "params/bn_0/bias",
        "params/bn_0/scale",
        "params/dense_0/kernel",
    ]
    for path in frozen:
        np.testing.assert_array_equal(after[path], before[path], err_msg=path)
    for path in set(after) - set(frozen):  # dense_1, bn_1 (with its statistics), head
        assert not np.array_equal(after[path], before[path]), path


def test_without_the_step_wrapper_frozen_batch_stats_move(key):
    state = _frozen_state(key)
    new_state, _ = jax.jit(make_train_step(Classification()))(state, _batch(0))
    before = state.model_state["batch_stats"]["bn_0"]["mean"]
    assert not np.array_equal(new_state.model_state["batch_stats"]["bn_0"]["mean"], before)
    np.testing.assert_array_equal(
        new_state.params["dense_0"]["kernel"], state.params["dense_0"]["kernel"]
    )


def test_adam_keeps_no_state_for_frozen_params(key):
    state = _frozen_state(key)
    step = jax.jit(freeze_batch_stats(make_train_step(Classification()), FROZEN))
    for i in range(3):
        state, _ = step(state, _batch(i))
    mu = optax.tree_utils.tree_get(state.opt_state, "mu")
    nu = optax.tree_utils.tree_get(state.opt_state, "nu")
    for moments in (mu, nu):
        assert isinstance(moments["dense_0"]["kernel"], optax.MaskedNode)
        assert isinstance(moments["bn_0"]["scale"], optax.MaskedNode)
        assert np.any(np.asarray(moments["dense_1"]["kernel"]) != 0)
    # set_to_zero's updates are exactly zero: optax.apply_updates leaves frozen leaves as they are
    updates, _ = state.tx.update(
        jax.tree.map(jnp.ones_like, state.params), state.opt_state, state.params
    )
    assert not np.any(np.asarray(updates["dense_0"]["kernel"]))


def test_frozen_step_runs_under_scan_and_vmap(key):
    model = MLP(hidden_sizes=(16, 16), num_outputs=3, batch_norm=True)
    single = create_train_state(model, create_optimizer("adam", 1e-2), jnp.zeros((1, 6)), key)
    tx = freeze(create_optimizer("adam", 1e-2), single.params, FROZEN)
    ensemble = create_ensemble(model, tx, jnp.zeros((1, 6)), key, 2)
    step = freeze_batch_stats(make_train_step(Classification()), FROZEN)
    epoch = jax.jit(make_epoch_fn(jax.vmap(step, in_axes=(0, None))))
    data = _batch(0, size=32)
    indices = jnp.arange(32, dtype=jnp.int32).reshape(4, 8)
    trained, metrics = epoch(ensemble, data, indices)
    assert metrics["loss"].shape == (4, 2)
    np.testing.assert_array_equal(
        trained.model_state["batch_stats"]["bn_0"]["var"],
        ensemble.model_state["batch_stats"]["bn_0"]["var"],
    )
    np.testing.assert_array_equal(
        trained.params["dense_0"]["kernel"], ensemble.params["dense_0"]["kernel"]
    )
    assert not np.array_equal(
        trained.model_state["batch_stats"]["bn_1"]["var"],
        ensemble.model_state["batch_stats"]["bn_1"]["var"],
    )


def test_restore_frozen_batch_stats_matches_paths_inside_each_collection():
    old = {"batch_stats": {"stem_bn": {"mean": jnp.zeros(2)}, "stage0_bn": {"mean": jnp.zeros(2)}}}
    new = jax.tree.map(jnp.ones_like, old)
    merged = restore_frozen_batch_stats(new, old, ["stem_*"])
    np.testing.assert_array_equal(merged["batch_stats"]["stem_bn"]["mean"], 0.0)
    np.testing.assert_array_equal(merged["batch_stats"]["stage0_bn"]["mean"], 1.0)


def test_freeze_rejects_a_pattern_that_matches_nothing(key):
    params = _variables((16,), 3, key)["params"]
    with pytest.raises(
        ValueError, match=r"\['stage0_\*'\] match no parameter.*\['bn_0', 'dense_0', 'head'\]"
    ):
        freeze(optax.adam(1e-3), params, ["dense_*", "stage0_*"])


# ----- discriminative learning rates -----------------------------------------------------


def _toy_params():
    return {"backbone": {"w": jnp.ones(3)}, "head": {"w": jnp.ones(2)}}


def test_discriminative_factor_scales_the_default_updates():
    params, grads = _toy_params(), {"backbone": {"w": jnp.ones(3)}, "head": {"w": jnp.ones(2)}}
    tx = discriminative(params, {"backbone/*": 0.1}, optax.adam(1e-2))
    updates, _ = tx.update(grads, tx.init(params), params)
    reference, _ = optax.adam(1e-2).update(grads, optax.adam(1e-2).init(params), params)
    np.testing.assert_allclose(
        updates["backbone"]["w"], 0.1 * reference["backbone"]["w"], rtol=1e-6
    )
    np.testing.assert_allclose(updates["head"]["w"], reference["head"]["w"], rtol=1e-6)


def test_discriminative_with_a_group_optimizer():
    params = _toy_params()
    grads = jax.tree.map(jnp.ones_like, params)
    tx = discriminative(params, {"backbone/*": optax.sgd(0.5)}, optax.sgd(1.0))
    updates, _ = tx.update(grads, tx.init(params), params)
    np.testing.assert_allclose(updates["backbone"]["w"], -0.5)
    np.testing.assert_allclose(updates["head"]["w"], -1.0)


def test_discriminative_factors_keep_one_learning_rate_for_the_train_step(key):
    state = _frozen_state(key, frozen=())
    tx = discriminative(state.params, {"dense_*": 0.1, "bn_*": 0.1}, create_optimizer("adam", 1e-2))
    state = replace_optimizer(state, tx)
    new_state, metrics = jax.jit(make_train_step(Classification()))(state, _batch(0))
    np.testing.assert_allclose(metrics["learning_rate"], 1e-2, rtol=1e-6)
    assert not np.array_equal(
        new_state.params["dense_0"]["kernel"], state.params["dense_0"]["kernel"]
    )
    with pytest.raises(ValueError, match=r"`groups\['dense_\*'\]` must be a factor >= 0"):
        discriminative(state.params, {"dense_*": -1.0}, optax.adam(1e-3))


# ----- the tour's lesson -----------------------------------------------------------------


def test_few_label_transfer_lesson_trains_both_models():
    result = few_label_transfer_lesson(quick=True)
    # Measured: 0.983 pretrained, 0.966 from scratch (seed 0; see the lesson's docstring).
    assert result["pretrained"] > 0.9 and result["scratch"] > 0.9, result
    assert "new: 2: params/head/kernel, params/head/bias" in result["report"]
