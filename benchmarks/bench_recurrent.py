"""Recurrent train steps: adljax vs a minimal hand-written Flax ``nn.RNN`` step vs PyTorch.

For each cell (LSTM, GRU): token ids ``(batch, length)`` -> embedding -> one recurrent layer
-> dense classifier on the final hidden state, softmax cross-entropy, Adam(1e-3), float32,
random data cycled from ``NUM_BATCHES`` batches. Implementations, timed in one process with
``benchmarks.timing.time_interleaved`` (alternating blocks, medians, paired ratios):

- ``adljax``: ``SequenceModel(cell=...)`` with ``adljax.make_train_step``, jitted with donation
  (``projection="auto"``: input projections inside the ``lax.scan`` on CPUs).
- ``flax``: ``nn.Embed -> nn.RNN(nn.OptimizedLSTMCell | nn.GRUCell, return_carry=True) ->
  nn.Dense``, the step written out as a user would.
- ``torch``: ``nn.Embedding -> nn.LSTM | nn.GRU (batch_first) -> nn.Linear`` on ``h_n``, eager,
  ``torch.set_num_threads(2)``.

Then the adljax step's compile time against the sequence length (a scan: flat).

Usage::

    python -m benchmarks.bench_recurrent [--quick] [--out PATH]
"""

import argparse
import dataclasses
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as `python benchmarks/bench_recurrent.py`
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import flax.linen as nn
import jax
import numpy as np
import optax

import adljax
from adljax.models.recurrent import SequenceModel
from benchmarks.flops import achieved, matmul_peak
from benchmarks.implementations import JaxRunner, TorchTrainLoop, flax_plain_step, torch_available
from benchmarks.report import (
    benchmark_arguments,
    finish_machine_info,
    format_table,
    machine_info,
    report,
)
from benchmarks.timing import TimingConfig, time_interleaved

DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "recurrent.json"
NUM_BATCHES = 4
LEARNING_RATE = 1e-3
NUM_CLASSES = 2
CELLS = ("lstm", "gru")
# An LSTM step at the full sizes takes about 50-90 ms here: 5 steps per block.
STEP_TIMING = TimingConfig(rounds=7, block=5, warmup=2, max_rounds=12)


@dataclasses.dataclass(frozen=True)
class RecurrentSettings:
    """Sizes and durations of a run.

    Attributes:
      batch, length, embedding, hidden, vocab: the step's shapes.
      timing: interleaved timing (``block`` = steps per implementation per round).
      compile_lengths: sequence lengths whose adljax compile time is measured.
      torch_threads: ``torch.set_num_threads``.
    """

    batch: int = 64
    length: int = 100
    embedding: int = 64
    hidden: int = 256
    vocab: int = 1000
    timing: TimingConfig = STEP_TIMING
    compile_lengths: tuple[int, ...] = (25, 50, 100, 200, 400)
    torch_threads: int = 2
    peak_size: int = 2048
    peak_repeats: int = 20


FULL = RecurrentSettings()
QUICK = dataclasses.replace(
    FULL,
    timing=TimingConfig(rounds=2, block=2, warmup=1, max_rounds=2),
    compile_lengths=(25, 100),
    peak_size=256,
    peak_repeats=3,
)


class FlaxRecurrentClassifier(nn.Module):
    """The hand-written baseline: embedding, ``nn.RNN`` over a Flax cell, dense head."""

    cell: str
    vocab: int
    embedding: int
    hidden: int

    @nn.compact
    def __call__(self, x: jax.Array, train: bool) -> jax.Array:
        """Token ids ``(B, T)`` to logits ``(B, NUM_CLASSES)`` (``train`` is unused)."""
        cell = nn.OptimizedLSTMCell(self.hidden) if self.cell == "lstm" else nn.GRUCell(self.hidden)
        carry, _ = nn.RNN(cell, return_carry=True)(nn.Embed(self.vocab, self.embedding)(x))
        hidden = carry[1] if self.cell == "lstm" else carry  # the LSTM carry is (c, h)
        return nn.Dense(NUM_CLASSES)(hidden)


class TorchRecurrentClassifier(TorchTrainLoop):
    """PyTorch eager: embedding, ``nn.LSTM`` / ``nn.GRU``, linear head on ``h_n``."""

    def __init__(self, cell: str, settings: RecurrentSettings, x: np.ndarray, y: np.ndarray):
        import torch
        from torch import nn as tnn

        torch.set_num_threads(settings.torch_threads)
        torch.manual_seed(0)
        recurrent = (tnn.LSTM if cell == "lstm" else tnn.GRU)(
            settings.embedding, settings.hidden, batch_first=True
        )

        class Classifier(tnn.Module):
            def __init__(self):
                super().__init__()
                self.embed = tnn.Embedding(settings.vocab, settings.embedding)
                self.recurrent = recurrent
                self.head = tnn.Linear(settings.hidden, NUM_CLASSES)

            def forward(self, tokens: torch.Tensor) -> torch.Tensor:
                _, state = self.recurrent(self.embed(tokens))
                h = state[0] if cell == "lstm" else state
                return self.head(h[-1])

        self.torch = torch
        self.model = Classifier().train()
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=LEARNING_RATE)
        self.batches = [
            (torch.from_numpy(x[i]).long(), torch.from_numpy(y[i]).long()) for i in range(len(x))
        ]
        self.position = 0


def make_batches(settings: RecurrentSettings, length: int | None = None, seed: int = 0):
    """``NUM_BATCHES`` batches of int32 token ids ``x`` and labels ``y``."""
    rng = np.random.default_rng(seed)
    shape = (NUM_BATCHES, settings.batch)
    x = rng.integers(0, settings.vocab, (*shape, length or settings.length), dtype=np.int32)
    return x, rng.integers(0, NUM_CLASSES, shape, dtype=np.int32)


def adljax_model(cell: str, settings: RecurrentSettings) -> SequenceModel:
    return SequenceModel(
        cell=cell,
        hidden_size=settings.hidden,
        num_outputs=NUM_CLASSES,
        vocab_size=settings.vocab,
        embedding_size=settings.embedding,
    )


def _adljax_runner(cell: str, settings: RecurrentSettings, xs, ys) -> tuple[JaxRunner, float]:
    """The adljax step as a runner, and its compile seconds."""
    tx = adljax.create_optimizer("adam", LEARNING_RATE)
    state = adljax.create_train_state(adljax_model(cell, settings), tx, xs[0], jax.random.key(0))
    step = adljax.jit(adljax.make_train_step(adljax.tasks.Classification()), donate_argnums=0)
    batches = [({"x": xs[i], "y": ys[i]},) for i in range(len(xs))]
    start = time.perf_counter()
    step.lower(state, *batches[0]).compile()
    return JaxRunner(step, (state,), batches), time.perf_counter() - start


def _flax_runner(cell: str, settings: RecurrentSettings, xs, ys) -> tuple[JaxRunner, float]:
    model = FlaxRecurrentClassifier(cell, settings.vocab, settings.embedding, settings.hidden)
    params = model.init(jax.random.key(0), xs[0], train=False)["params"]
    tx = optax.adam(LEARNING_RATE)
    opt_state = tx.init(params)
    step = jax.jit(flax_plain_step(model, tx), donate_argnums=(0, 1))
    start = time.perf_counter()
    step.lower(params, opt_state, xs[0], ys[0]).compile()
    batches = [(xs[i], ys[i]) for i in range(len(xs))]
    return JaxRunner(step, (params, opt_state), batches), time.perf_counter() - start


def train_flops(cell: str, settings: RecurrentSettings) -> float:
    """Analytic FLOPs of one train step: the recurrent layer's products, forward (2 per
    multiply-add) and backward (twice that), ``6 * T * B * (E + H) * G * H``; the gate
    arithmetic, embedding, head and optimizer are left out. (XLA's ``cost_analysis`` counts a
    ``scan`` body once, whatever its length, so it cannot be used here.)"""
    gates = {"lstm": 4, "gru": 3}[cell]
    width = settings.embedding + settings.hidden
    return 6.0 * settings.length * settings.batch * width * gates * settings.hidden


def run_cell(
    cell: str, settings: RecurrentSettings, with_torch: bool, peak_gflops: float
) -> dict[str, Any]:
    """Times every implementation of ``cell``; returns medians, compile times, ratios."""
    x, y = make_batches(settings)
    xs, ys = jax.device_put(x), jax.device_put(y)
    adljax_run, adljax_compile = _adljax_runner(cell, settings, xs, ys)
    flax_run, flax_compile = _flax_runner(cell, settings, xs, ys)
    runners = {"adljax": adljax_run, "flax": flax_run}
    if with_torch:
        runners["torch"] = TorchRecurrentClassifier(cell, settings, x, y)
    timing = time_interleaved(runners, settings.timing)
    flops = train_flops(cell, settings)
    rows = {
        name: {
            "median_ms": timing.median_ms(name),
            "spread": timing.spread(name),
            "time_ratio_to_adljax": timing.paired_ratio(name, "adljax"),
            **achieved(flops, timing.median_ms(name), peak_gflops),
        }
        for name in runners
    }
    rows["adljax"]["compile_s"] = adljax_compile
    rows["flax"]["compile_s"] = flax_compile
    ratios = {"adljax/flax": timing.paired_ratio("adljax", "flax")}
    if with_torch:
        ratios["torch/adljax"] = timing.paired_ratio("torch", "adljax")
    return {"flops": flops, "implementations": rows, "ratios": ratios, "timing": timing.to_json()}


def compile_times(settings: RecurrentSettings) -> dict[str, dict[str, float]]:
    """adljax LSTM step compile seconds per sequence length (fresh jit each time)."""
    seconds = {}
    for length in settings.compile_lengths:
        x, y = make_batches(settings, length)
        _, seconds[str(length)] = _adljax_runner("lstm", settings, jax.device_put(x), y)
    return {"lstm": seconds}


def run_recurrent(
    settings: RecurrentSettings = FULL, *, quick: bool = False, with_torch: bool = True
) -> dict[str, Any]:
    """The whole benchmark as a JSON-ready dict."""
    peak = matmul_peak(settings.peak_size, settings.peak_repeats)
    results: dict[str, Any] = {
        "machine": machine_info(),
        "quick": quick,
        "settings": dataclasses.asdict(settings),
        "peak": peak,
        "cells": {cell: run_cell(cell, settings, with_torch, peak["gflops"]) for cell in CELLS},
        "compile_s_by_length": compile_times(settings),
    }
    finish_machine_info(results)
    return results


def summary(results: dict[str, Any]) -> str:
    """The results as a text table (ms per step, compile s, paired ratios)."""
    settings = results["settings"]
    rows = []
    for cell, section in results["cells"].items():
        for name, row in section["implementations"].items():
            compile_s = f"{row['compile_s']:.2f}" if "compile_s" in row else "-"
            ratio = f"{row['time_ratio_to_adljax']:.2f}"
            peak = f"{row['percent_of_peak']:.0f}%"
            rows.append([cell, name, f"{row['median_ms']:.1f}", compile_s, ratio, peak])
    title = (
        f"Recurrent train step: batch {settings['batch']}, length {settings['length']}, "
        f"embedding {settings['embedding']}, hidden {settings['hidden']} "
        "(time / adljax's time: paired per round, one interleaved run)"
    )
    headers = ["cell", "implementation", "ms/step", "compile s", "x adljax", "% peak"]
    table = format_table(headers, rows)
    lengths = results["compile_s_by_length"]["lstm"]
    compile_line = "adljax LSTM step compile s by length: " + ", ".join(
        f"T={length}: {seconds:.2f}" for length, seconds in lengths.items()
    )
    peak_line = (
        "% peak: analytic FLOPs of the layer's products (6 T B (E + H) G H) / time, against the "
        f"{results['peak']['gflops']:.0f} GFLOP/s float32 matrix-product peak"
    )
    return "\n".join([title, table, peak_line, compile_line])


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The command line: ``--quick`` (few rounds, two compile lengths), ``--out PATH``."""
    return benchmark_arguments(__doc__, DEFAULT_OUT, argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the recurrent benchmarks, prints the table and writes the JSON; returns 0."""
    args = parse_args(argv)
    results = run_recurrent(
        QUICK if args.quick else FULL, quick=args.quick, with_torch=torch_available()
    )
    return report(results, summary(results), args.out)


if __name__ == "__main__":
    sys.exit(main())
