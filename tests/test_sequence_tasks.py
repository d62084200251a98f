"""Tests for the per-step tasks: Tagging and LanguageModeling, checked against NumPy."""

import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from adljax.tasks import TASKS, LanguageModeling, Tagging, get_task, sum_statistics


def _log_softmax(logits):
    shifted = logits - logits.max(-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(-1, keepdims=True))


def _batch(seed, batch=3, length=4, classes=5):
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(batch, length, classes)).astype(np.float32)
    y = rng.integers(0, classes, (batch, length)).astype(np.int32)
    step_mask = (rng.uniform(size=(batch, length)) < 0.7).astype(np.float32)
    step_mask[0, 0] = 1.0  # at least one scored step
    return logits, y, step_mask


def test_registered_by_name():
    assert isinstance(get_task("tagging"), Tagging)
    assert isinstance(TASKS["language_modeling"], LanguageModeling)


@given(seed=st.integers(0, 10_000), padded_example=st.booleans())
def test_tagging_matches_numpy_over_scored_steps(seed, padded_example):
    logits, y, step_mask = _batch(seed)
    mask = np.array([1.0, 1.0, 0.0 if padded_example else 1.0], np.float32)
    batch = {"y": y, "step_mask": step_mask, "mask": mask}
    loss, stats = Tagging().loss_and_statistics(jnp.asarray(logits), batch)
    weights = step_mask * mask[:, None]
    nll = -np.take_along_axis(_log_softmax(logits), y[..., None], -1)[..., 0]
    expected_loss = (nll * weights).sum() / weights.sum()
    expected_accuracy = ((logits.argmax(-1) == y) * weights).sum() / weights.sum()
    np.testing.assert_allclose(loss, expected_loss, rtol=1e-5)
    metrics = Tagging().metrics(stats)
    np.testing.assert_allclose(metrics["loss"], expected_loss, rtol=1e-5)
    np.testing.assert_allclose(metrics["accuracy"], expected_accuracy, rtol=1e-6)
    assert float(stats["count"]) == weights.sum()


def test_padding_never_leaks_nan_and_statistics_add_up_across_batches():
    logits, y, step_mask = _batch(1)
    logits[1, 2] = np.nan
    step_mask[1, 2] = 0.0
    task = Tagging()
    _, whole = task.loss_and_statistics(jnp.asarray(logits), {"y": y, "step_mask": step_mask})
    parts = [
        task.loss_and_statistics(
            jnp.asarray(logits[i : i + 1]), {"y": y[i : i + 1], "step_mask": step_mask[i : i + 1]}
        )[1]
        for i in range(3)
    ]
    summed = sum_statistics({k: jnp.stack([p[k] for p in parts]) for k in whole})
    for name in whole:
        np.testing.assert_allclose(summed[name], whole[name], rtol=1e-6)
    assert np.isfinite(float(task.metrics(whole)["loss"]))


def test_without_step_mask_every_step_counts():
    logits, y, _ = _batch(2)
    _, stats = Tagging().loss_and_statistics(jnp.asarray(logits), {"y": y})
    assert float(stats["count"]) == y.size


@given(seed=st.integers(0, 10_000))
def test_language_modeling_perplexity_and_bits(seed):
    logits, y, _ = _batch(seed, classes=7)
    _, stats = LanguageModeling().loss_and_statistics(jnp.asarray(logits), {"y": y})
    metrics = LanguageModeling().metrics(stats)
    nll = -np.take_along_axis(_log_softmax(logits), y[..., None], -1).mean()
    np.testing.assert_allclose(metrics["loss"], nll, rtol=1e-5)
    np.testing.assert_allclose(metrics["perplexity"], np.exp(nll), rtol=1e-5)
    np.testing.assert_allclose(metrics["bits_per_char"], nll / np.log(2), rtol=1e-5)
    np.testing.assert_allclose(metrics["accuracy"], (logits.argmax(-1) == y).mean(), rtol=1e-6)
    assert next(iter(metrics)) == "loss"


def test_uniform_logits_have_perplexity_equal_to_the_vocabulary():
    logits = jnp.zeros((2, 3, 11))
    _, stats = LanguageModeling().loss_and_statistics(logits, {"y": jnp.zeros((2, 3), jnp.int32)})
    np.testing.assert_allclose(LanguageModeling().metrics(stats)["perplexity"], 11.0, rtol=1e-5)


def test_shape_mismatch_is_refused():
    with pytest.raises(ValueError, match="logits"):
        Tagging().loss_and_statistics(jnp.zeros((2, 3, 4)), {"y": jnp.zeros((2, 4), jnp.int32)})
