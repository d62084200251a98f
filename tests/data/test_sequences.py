"""Tests for the embedded sequence datasets: adding, copy, sines, pydoc_chars."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from adljax.data import load
from adljax.data.sequences import (
    WAVEFORMS,
    adding_examples,
    char_windows,
    copy_examples,
    pydoc_text,
    waveform_examples,
)


@given(seq_len=st.integers(2, 40), seed=st.integers(0, 1000))
def test_adding_targets_are_the_sum_of_the_two_marked_values(seq_len, seed):
    x, y = adding_examples(np.random.default_rng(seed), 16, seq_len)
    assert x.shape == (16, seq_len, 2) and y.shape == (16, 1)
    markers = x[..., 1]
    np.testing.assert_array_equal(markers.sum(1), 2.0)
    first, second = np.argsort(-markers, axis=1, kind="stable")[:, :2].T
    assert np.all(np.minimum(first, second) < seq_len // 2)
    assert np.all(np.maximum(first, second) >= seq_len // 2)
    np.testing.assert_allclose(y[:, 0], (x[..., 0] * markers).sum(1), rtol=1e-6)


def test_adding_mean_predictor_scores_one_sixth():
    data = load("adding", "train", seq_len=20)
    y = data.arrays["y"]
    np.testing.assert_allclose(np.mean((y - 1.0) ** 2), 1 / 6, atol=0.01)
    assert data.info.extras["baseline_mse"] == pytest.approx(1 / 6)
    assert data.info.input_shape == (20, 2) and data.info.task == "regression"


@given(seq_len=st.integers(11, 40), num_symbols=st.integers(1, 5))
def test_copy_targets_repeat_the_symbols_after_the_delimiter(seq_len, num_symbols):
    arrays = copy_examples(np.random.default_rng(0), 8, seq_len, num_symbols)
    x, y, step_mask = arrays["x"], arrays["y"], arrays["step_mask"]
    np.testing.assert_array_equal(y[:, -num_symbols:], x[:, :num_symbols])
    np.testing.assert_array_equal(x[:, seq_len - num_symbols - 1], 9)
    assert np.all((x[:, :num_symbols] >= 1) & (x[:, :num_symbols] <= 8))
    np.testing.assert_array_equal(step_mask.sum(1), num_symbols)
    np.testing.assert_array_equal(y * (1 - step_mask), 0)


def test_copy_info_and_bad_length():
    data = load("copy", "test", seq_len=30)
    assert data.info.task == "tagging" and data.info.extras["vocab_size"] == 10
    assert data.arrays["x"].dtype == np.int32 and data.arrays["x"].shape[1] == 30
    with pytest.raises(ValueError, match="seq_len"):
        load("copy", "train", seq_len=8)


@pytest.mark.parametrize("name", ["adding", "copy", "sines"])
def test_generated_sets_are_deterministic_in_the_seed(name):
    a, b = load(name, "train", seed=3, seq_len=24), load(name, "train", seed=3, seq_len=24)
    c, test = load(name, "train", seed=4, seq_len=24), load(name, "test", seed=3, seq_len=24)
    np.testing.assert_array_equal(a.arrays["x"], b.arrays["x"])
    assert not np.array_equal(a.arrays["x"], c.arrays["x"])
    assert not np.array_equal(a.arrays["x"][: len(test)], test.arrays["x"])


def test_sines_target_continues_the_wave():
    data = load("sines", "train", seq_len=30, noise=0.0)
    s, y = data.arrays["x"][..., 0].astype(np.float64), data.arrays["y"][:, 0]
    # a sine obeys s[t+1] = a s[t] - s[t-1] with a = 2 cos(w): fit a per wave, extrapolate
    a = (s[:, 1:-1] * (s[:, 2:] + s[:, :-2])).sum(1) / (s[:, 1:-1] ** 2).sum(1)
    np.testing.assert_allclose(y, a * s[:, -1] - s[:, -2], atol=1e-4)


def test_pydoc_chars_windows_predict_the_next_character():
    train, test = load("pydoc_chars", "train", seq_len=64), load("pydoc_chars", "test", seq_len=64)
    vocabulary = train.info.extras["vocabulary"]
    assert train.info.num_outputs == len(vocabulary) == train.info.num_classes
    assert train.info.task == "language_modeling" and len(test) < len(train) / 5
    x, y = train.arrays["x"], train.arrays["y"]
    np.testing.assert_array_equal(x[:, 1:], y[:, :-1])
    np.testing.assert_array_equal(x[1:, 0], y[:-1, -1])
    text = "".join(vocabulary[i] for i in x[:3].ravel())
    assert text == pydoc_text()[: 3 * 64]


def test_char_windows_refuses_a_too_long_window():
    with pytest.raises(ValueError, match="seq_len"):
        char_windows(np.arange(5), 5)


def test_unknown_option_is_refused():
    with pytest.raises(ValueError, match="no option"):
        load("pydoc_chars", "train", noise=0.1)


def test_waveforms_classes_have_their_shapes():
    x, y = waveform_examples(np.random.default_rng(0), 64, 40, noise=0.0)
    assert x.shape == (64, 40, 1) and y.shape == (64,) and set(np.unique(y)) == {0, 1, 2, 3}
    amplitude = np.abs(x[..., 0]).max(1)
    square = x[y == WAVEFORMS.index("square"), :, 0]
    np.testing.assert_allclose(
        np.abs(square), np.broadcast_to(amplitude[y == 1, None], square.shape), rtol=1e-6
    )
    others = x[y != 1, :, 0]
    assert np.all(np.mean(np.abs(others) < 0.9 * amplitude[y != 1, None], axis=1) > 0.1)
    data = load("waveforms", "train", seq_len=30)
    assert data.info.task == "classification" and data.info.class_names == WAVEFORMS
