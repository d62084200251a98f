"""Embedded sequence datasets: generated long-range tasks and a real character corpus.

* ``adding``: the adding problem (regression). Each step holds a value ``U(0, 1)`` and a
  marker; exactly two steps are marked, one in each half, and the target is the sum of the
  two marked values. Predicting the mean (1.0) scores ``MSE = Var(u1 + u2) = 2/12 = 1/6``.
* ``copy``: copy/recall (tagging). ``num_symbols`` symbols, a run of blanks, a delimiter,
  then the network must output the symbols in order at the last ``num_symbols`` steps.
  Tagging rather than classification because the answer is itself a sequence, one symbol
  per step; ``step_mask`` scores only the recall steps, so predicting blanks everywhere
  (trivially right elsewhere) earns no accuracy. Chance is ``1 / num_symbols_alphabet``.
* ``sines``: one-step forecasting (regression): a noisy sine of random frequency, phase and
  amplitude; the target is the next value.
* ``waveforms``: sequence classification: is a noisy periodic signal of random period,
  phase and amplitude a sine, square, triangle or sawtooth wave?
* ``pydoc_chars``: the Python reference topics that ship with every Python
  (``pydoc_data.topics``) as one character stream; split ``"train"`` is its first 90%,
  ``"test"`` the last 10% (validation); windows of ``seq_len`` characters predict the next
  character at every step (language modeling).

Generated datasets are a pure function of ``seed``; the train and test splits use
independent streams of it.
"""

import numpy as np

from adljax._validate import check_positive_int
from adljax.data.dataset import ArrayDataset
from adljax.data.info import DatasetInfo

Splits = dict[str, ArrayDataset]
"""A builder's result: ``{"train": ..., "test": ...}``."""

_TRAIN_SIZE = {"adding": 10_000, "copy": 10_000, "sines": 4_000}
_TEST_SIZE = {"adding": 1_000, "copy": 1_000, "sines": 500}


def _streams(seed: int) -> dict[str, np.random.Generator]:
    """Independent generators for the two splits, from ``seed``."""
    train, test = np.random.SeedSequence(seed).spawn(2)
    return {"train": np.random.default_rng(train), "test": np.random.default_rng(test)}


def _check_sizes(num_train: int, num_test: int) -> None:
    check_positive_int(num_train, "num_train")
    check_positive_int(num_test, "num_test")


def _check_noise(noise: object) -> None:
    if isinstance(noise, bool) or not isinstance(noise, int | float) or noise < 0:
        raise ValueError(f"`noise` must be a non-negative number, got {noise!r}")


def adding_examples(
    rng: np.random.Generator, num_examples: int, seq_len: int
) -> tuple[np.ndarray, np.ndarray]:
    """``num_examples`` adding-problem sequences.

    Returns:
        ``x`` float32 ``(N, seq_len, 2)`` (value, marker) and ``y`` float32 ``(N, 1)``, the
        sum of the two marked values.
    """
    half = seq_len // 2
    values = rng.uniform(0.0, 1.0, (num_examples, seq_len))
    first = rng.integers(0, half, num_examples)
    second = rng.integers(half, seq_len, num_examples)
    markers = np.zeros((num_examples, seq_len))
    rows = np.arange(num_examples)
    markers[rows, first] = 1.0
    markers[rows, second] = 1.0
    x = np.stack([values, markers], axis=-1).astype(np.float32)
    y = (values[rows, first] + values[rows, second])[:, None].astype(np.float32)
    return x, y


def adding_splits(
    *,
    seed: int,
    data_dir: str | None,
    download: bool,
    seq_len: int = 100,
    num_train: int = _TRAIN_SIZE["adding"],
    num_test: int = _TEST_SIZE["adding"],
) -> Splits:
    """The adding problem at length ``seq_len`` >= 2 (see the module docstring)."""
    del data_dir, download
    check_positive_int(seq_len, "seq_len")
    if seq_len < 2:
        raise ValueError(f"`seq_len` must be >= 2 for the adding problem, got {seq_len}")
    _check_sizes(num_train, num_test)
    info = DatasetInfo(
        name="adding",
        task="regression",
        input_shape=(seq_len, 2),
        num_outputs=1,
        feature_names=("value", "marker"),
        description=f"adding problem: sum of the 2 marked values in {seq_len} steps",
        extras={"seq_len": seq_len, "baseline_mse": 1.0 / 6.0},
    )
    sizes = {"train": num_train, "test": num_test}
    splits = {}
    for split, rng in _streams(seed).items():
        x, y = adding_examples(rng, sizes[split], seq_len)
        splits[split] = ArrayDataset(info, {"x": x, "y": y}, split)
    return splits


COPY_ALPHABET = 8
"""Symbols of the copy task are ids 1..8; 0 is the blank, 9 the delimiter."""


def copy_examples(
    rng: np.random.Generator, num_examples: int, seq_len: int, num_symbols: int
) -> dict[str, np.ndarray]:
    """``num_examples`` copy-task sequences of total length ``seq_len``.

    Layout per sequence: ``num_symbols`` symbols (ids 1..8), blanks (0), the delimiter (9)
    at step ``seq_len - num_symbols - 1``, blanks. Targets: blank everywhere except the last
    ``num_symbols`` steps, which hold the symbols.

    Returns:
        ``{"x": int32 (N, T), "y": int32 (N, T), "step_mask": float32 (N, T)}``.
    """
    symbols = rng.integers(1, COPY_ALPHABET + 1, (num_examples, num_symbols))
    x = np.zeros((num_examples, seq_len), np.int32)
    y = np.zeros((num_examples, seq_len), np.int32)
    x[:, :num_symbols] = symbols
    x[:, seq_len - num_symbols - 1] = COPY_ALPHABET + 1
    y[:, seq_len - num_symbols :] = symbols
    step_mask = np.zeros((num_examples, seq_len), np.float32)
    step_mask[:, seq_len - num_symbols :] = 1.0
    return {"x": x, "y": y, "step_mask": step_mask}


def copy_splits(
    *,
    seed: int,
    data_dir: str | None,
    download: bool,
    seq_len: int = 50,
    num_symbols: int = 5,
    num_train: int = _TRAIN_SIZE["copy"],
    num_test: int = _TEST_SIZE["copy"],
) -> Splits:
    """Copy/recall over ``seq_len`` steps of ``num_symbols`` symbols (module docstring)."""
    del data_dir, download
    check_positive_int(seq_len, "seq_len")
    check_positive_int(num_symbols, "num_symbols")
    if seq_len < 2 * num_symbols + 1:
        raise ValueError(
            f"`seq_len` must be >= 2 * num_symbols + 1 = {2 * num_symbols + 1}, got {seq_len}"
        )
    _check_sizes(num_train, num_test)
    vocab = COPY_ALPHABET + 2
    info = DatasetInfo(
        name="copy",
        task="tagging",
        input_shape=(seq_len,),
        num_outputs=vocab,
        num_classes=vocab,
        class_names=("blank", *(f"s{i}" for i in range(1, COPY_ALPHABET + 1)), "delimiter"),
        description=f"copy {num_symbols} symbols after a {seq_len}-step sequence (tagging)",
        extras={"seq_len": seq_len, "num_symbols": num_symbols, "vocab_size": vocab},
    )
    sizes = {"train": num_train, "test": num_test}
    return {
        split: ArrayDataset(info, copy_examples(rng, sizes[split], seq_len, num_symbols), split)
        for split, rng in _streams(seed).items()
    }


def sine_examples(
    rng: np.random.Generator, num_examples: int, seq_len: int, noise: float
) -> tuple[np.ndarray, np.ndarray]:
    """Noisy sines ``a sin(w t + phi)``: ``x`` float32 ``(N, seq_len, 1)``, ``y`` ``(N, 1)``
    the next (noise-free) value; ``w`` in [0.1, 0.5] rad/step, ``a`` in [0.5, 1.5]."""
    omega = rng.uniform(0.1, 0.5, (num_examples, 1))
    phase = rng.uniform(0.0, 2 * np.pi, (num_examples, 1))
    amplitude = rng.uniform(0.5, 1.5, (num_examples, 1))
    steps = np.arange(seq_len + 1)[None, :]
    wave = amplitude * np.sin(omega * steps + phase)
    x = wave[:, :seq_len] + noise * rng.standard_normal((num_examples, seq_len))
    return x[..., None].astype(np.float32), wave[:, seq_len:].astype(np.float32)


def sines_splits(
    *,
    seed: int,
    data_dir: str | None,
    download: bool,
    seq_len: int = 50,
    noise: float = 0.05,
    num_train: int = _TRAIN_SIZE["sines"],
    num_test: int = _TEST_SIZE["sines"],
) -> Splits:
    """One-step sine forecasting from ``seq_len`` noisy observations (module docstring)."""
    del data_dir, download
    check_positive_int(seq_len, "seq_len")
    _check_noise(noise)
    _check_sizes(num_train, num_test)
    info = DatasetInfo(
        name="sines",
        task="regression",
        input_shape=(seq_len, 1),
        num_outputs=1,
        description=f"forecast the next value of a noisy sine from {seq_len} steps",
        extras={"seq_len": seq_len, "noise": noise},
    )
    sizes = {"train": num_train, "test": num_test}
    splits = {}
    for split, rng in _streams(seed).items():
        x, y = sine_examples(rng, sizes[split], seq_len, noise)
        splits[split] = ArrayDataset(info, {"x": x, "y": y}, split)
    return splits


WAVEFORMS = ("sine", "square", "triangle", "sawtooth")
"""The classes of ``waveforms``, in label order."""


def waveform_examples(
    rng: np.random.Generator, num_examples: int, seq_len: int, noise: float
) -> tuple[np.ndarray, np.ndarray]:
    """Noisy periodic signals of the 4 `WAVEFORMS` with random period (8 to 25 steps), phase
    and amplitude (0.5 to 1.5): ``x`` float32 ``(N, seq_len, 1)``, ``y`` int32 ``(N,)``."""
    y = rng.integers(0, len(WAVEFORMS), num_examples)
    period = rng.uniform(8.0, 25.0, (num_examples, 1))
    phase = rng.uniform(0.0, 1.0, (num_examples, 1))
    amplitude = rng.uniform(0.5, 1.5, (num_examples, 1))
    cycle = (np.arange(seq_len)[None, :] / period + phase) % 1.0  # position in the period
    shapes = np.stack(
        [
            np.sin(2 * np.pi * cycle),
            np.where(cycle < 0.5, 1.0, -1.0),
            4 * np.abs(cycle - 0.5) - 1,
            2 * cycle - 1,
        ]
    )
    wave = amplitude * shapes[y, np.arange(num_examples)]
    x = wave + noise * rng.standard_normal((num_examples, seq_len))
    return x[..., None].astype(np.float32), y.astype(np.int32)


def waveforms_splits(
    *,
    seed: int,
    data_dir: str | None,
    download: bool,
    seq_len: int = 50,
    noise: float = 0.1,
    num_train: int = 4_000,
    num_test: int = 800,
) -> Splits:
    """Which of the 4 `WAVEFORMS` a noisy signal is (classification; `waveform_examples`)."""
    del data_dir, download
    check_positive_int(seq_len, "seq_len")
    _check_noise(noise)
    _check_sizes(num_train, num_test)
    info = DatasetInfo(
        name="waveforms",
        task="classification",
        input_shape=(seq_len, 1),
        num_outputs=len(WAVEFORMS),
        num_classes=len(WAVEFORMS),
        class_names=WAVEFORMS,
        description=f"sine, square, triangle or sawtooth from {seq_len} noisy steps",
        extras={"seq_len": seq_len, "noise": noise},
    )
    sizes = {"train": num_train, "test": num_test}
    splits = {}
    for split, rng in _streams(seed).items():
        x, y = waveform_examples(rng, sizes[split], seq_len, noise)
        splits[split] = ArrayDataset(info, {"x": x, "y": y}, split)
    return splits


_VALIDATION_FRACTION = 0.1


def pydoc_text() -> str:
    """The Python reference topics shipped with Python (``pydoc_data.topics``), sorted by
    topic name and joined by blank lines."""
    from pydoc_data.topics import topics

    return "\n\n".join(topics[name] for name in sorted(topics))


def char_windows(ids: np.ndarray, seq_len: int) -> dict[str, np.ndarray]:
    """Non-overlapping windows of a token stream ``ids (L,)``: ``x`` the window, ``y`` the
    window shifted by one (the next token at each step), both int32 ``(N, seq_len)``."""
    count = (len(ids) - 1) // seq_len
    if count == 0:
        raise ValueError(f"`seq_len`={seq_len} leaves no window in a stream of {len(ids)} ids")
    x = ids[: count * seq_len].reshape(count, seq_len)
    y = ids[1 : count * seq_len + 1].reshape(count, seq_len)
    return {"x": x.astype(np.int32), "y": y.astype(np.int32)}


def pydoc_chars_splits(
    *, seed: int, data_dir: str | None, download: bool, seq_len: int = 100
) -> Splits:
    """Character language modeling on `pydoc_text` (module docstring). The vocabulary (the
    sorted set of characters) is ``info.extras["vocabulary"]``; ``seed`` is unused."""
    del seed, data_dir, download
    check_positive_int(seq_len, "seq_len")
    text = pydoc_text()
    vocabulary = sorted(set(text))
    lookup = np.zeros(max(map(ord, vocabulary)) + 1, np.int32)
    lookup[[ord(c) for c in vocabulary]] = np.arange(len(vocabulary))
    ids = lookup[np.frombuffer(text.encode("utf-32-le"), np.uint32)]
    boundary = round(len(ids) * (1 - _VALIDATION_FRACTION))
    streams = {"train": ids[:boundary], "test": ids[boundary:]}
    info = DatasetInfo(
        name="pydoc_chars",
        task="language_modeling",
        input_shape=(seq_len,),
        num_outputs=len(vocabulary),
        num_classes=len(vocabulary),
        description="Python reference topics (pydoc_data), next-character prediction",
        extras={"seq_len": seq_len, "vocabulary": "".join(vocabulary)},
    )
    return {
        split: ArrayDataset(info, char_windows(stream, seq_len), split)
        for split, stream in streams.items()
    }
