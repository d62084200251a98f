"""Ensembles: K members in one vmapped step, each ending where it would alone."""

import chex
import jax
import numpy as np
import pytest

from adljax.data import load
from adljax.models import MLP
from adljax.training import create_ensemble, create_optimizer, create_train_state, fit, member
from adljax.training.ensemble import member_keys

RATES = (1e-3, 3e-3, 1e-2)


@pytest.fixture(scope="module")
def digits():
    return load("digits", "train").take(512), load("digits", "test")


def _model():
    return MLP(hidden_sizes=(32,), num_outputs=10, batch_norm=True, dropout_rate=0.2)


def test_each_member_ends_where_training_it_alone_ends(digits, key):
    train, test = digits
    sample = train.arrays["x"][:1]
    common = {"task": "classification", "epochs": 2, "batch_size": 64, "progress": False}
    ensemble = create_ensemble(
        _model(), create_optimizer("adam", 1e-3), sample, key, len(RATES), learning_rates=RATES
    )
    trained = fit(ensemble, train, eval_data=test, **common)
    keys = member_keys(key, len(RATES))
    for index, (member_key, rate) in enumerate(zip(keys, RATES, strict=True)):
        alone = create_train_state(_model(), create_optimizer("adam", rate), sample, member_key)
        alone = fit(alone, train, **common).state
        ours = member(trained.state, index)
        # Same trajectory up to float32 round-off: a vmapped matrix product may sum in another
        # order than the single one, and 2 epochs of Adam carry that last-bit noise along.
        for field in ("params", "model_state", "opt_state"):
            chex.assert_trees_all_close(
                getattr(ours, field), getattr(alone, field), rtol=1e-4, atol=2e-5
            )
        assert int(ours.step) == int(alone.step)


def test_history_reports_member_mean_and_spread(digits, key):
    train, test = digits
    ensemble = create_ensemble(
        _model(), create_optimizer("adam", 1e-3), train.arrays["x"][:1], key, 4
    )
    result = fit(
        ensemble,
        train,
        task="classification",
        epochs=1,
        batch_size=64,
        eval_data=test,
        progress=False,
    )
    record = result.history[-1]["eval"]
    assert 0.0 < record["accuracy"] <= 1.0
    assert record["accuracy_std"] >= 0.0
    per_member = [
        float(
            np.mean(
                np.asarray(
                    member(result.state, i).model.apply(
                        member(result.state, i).variables, test.arrays["x"], train=False
                    )
                ).argmax(-1)
                == test.arrays["y"]
            )
        )
        for i in range(4)
    ]
    np.testing.assert_allclose(record["accuracy"], np.mean(per_member), atol=1e-6)
    np.testing.assert_allclose(record["accuracy_std"], np.std(per_member), atol=1e-6)


def test_members_differ_and_learning_rates_are_checked(digits, key):
    train, _ = digits
    sample = train.arrays["x"][:1]
    ensemble = create_ensemble(_model(), create_optimizer("adam", 1e-3), sample, key, 2)
    kernels = ensemble.params["dense_0"]["kernel"]
    assert kernels.shape[0] == 2
    assert not np.allclose(kernels[0], kernels[1])
    for rates in ([1e-3], [1e-3, float("inf")], [1e-3, 0.0]):
        with pytest.raises(ValueError, match="`learning_rates` must hold 2 positive finite"):
            create_ensemble(
                _model(), create_optimizer("adam", 1e-3), sample, key, 2, learning_rates=rates
            )
    with pytest.raises(ValueError, match="`size` must be a positive integer"):
        create_ensemble(_model(), create_optimizer("adam", 1e-3), sample, key, 0)
    with pytest.raises(ValueError, match="ensembles run on one device"):
        fit(
            ensemble,
            train,
            task="classification",
            epochs=1,
            batch_size=64,
            devices=1,
            progress=False,
        )
    assert jax.tree.leaves(ensemble.params)[0].shape[0] == 2
