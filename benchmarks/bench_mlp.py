"""Section 1: MLP train steps, adljax vs hand-written Flax + Optax vs PyTorch eager.

Also the donation lever: the same adljax step jitted with and without ``donate_argnums=0``.
"""

import dataclasses
from typing import Any

from benchmarks.flops import achieved, dense_train_flops
from benchmarks.implementations import (
    MLPConfig,
    TorchRunner,
    adljax_runner,
    flax_runner,
    make_batches,
    torch_available,
)
from benchmarks.timing import InterleavedResult, Runner, TimingConfig, time_interleaved

# XLA's count of the hand-written step stands for the model's FLOPs in PyTorch's row: the same
# layers, loss and optimizer, computed by another framework.
TORCH_FLOPS_SOURCE = "flax step's XLA cost_analysis (same computation)"
XLA_FLOPS_SOURCE = "XLA cost_analysis of the compiled step"


def run_mlp(
    config: MLPConfig, timing: TimingConfig, peak_gflops: float, torch_threads: int = 2
) -> dict[str, Any]:
    """Times adljax, hand-written Flax and (if installed) PyTorch on ``config``, interleaved.

    Returns:
      The model, every implementation's median ms/step, FLOPs, GFLOP/s and % of peak, the
      paired ratios ``adljax/flax``, ``torch/adljax`` and ``torch/flax``, and the raw timings.
    """
    x, y = make_batches(config)
    adljax, flax = adljax_runner(config, x, y), flax_runner(config, x, y)
    runners: dict[str, Runner] = {"adljax": adljax, "flax": flax}
    notes = []
    if torch_available():
        runners["torch"] = TorchRunner(config, x, y, threads=torch_threads)
    else:
        notes.append("PyTorch not run (not importable, or JAX not on the CPU)")
    result = time_interleaved(runners, timing)
    flops = {"adljax": (adljax.flops(), XLA_FLOPS_SOURCE), "flax": (flax.flops(), XLA_FLOPS_SOURCE)}
    flops["torch"] = (flops["flax"][0], TORCH_FLOPS_SOURCE)
    return {
        "model": config.label,
        "config": dataclasses.asdict(config),
        "implementations": {
            name: _implementation_row(result, name, *flops[name], peak_gflops)
            for name in result.names
        },
        "ratios": _ratios(result),
        "analytic_flops_6NB": dense_train_flops(config.layer_sizes, config.batch_size),
        "timing": result.to_json(),
        "notes": notes,
    }


def _implementation_row(
    result: InterleavedResult, name: str, flops: float | None, source: str, peak_gflops: float
) -> dict[str, Any]:
    """One implementation's median time, FLOPs, achieved GFLOP/s and fraction of the peak."""
    median_ms = result.median_ms(name)
    return {
        "median_ms": median_ms,
        "flops": flops,
        "flops_source": source,
        **achieved(flops, median_ms, peak_gflops),
        "time_ratio_to_flax": result.paired_ratio(name, "flax"),
        "time_ratio_to_adljax": result.paired_ratio(name, "adljax"),
    }


def _ratios(result: InterleavedResult) -> dict[str, float]:
    """The paired (per-round) time ratios of interest, among those implementations timed."""
    pairs = [("adljax", "flax"), ("torch", "adljax"), ("torch", "flax")]
    return {
        f"{a}/{b}": result.paired_ratio(a, b)
        for a, b in pairs
        if a in result.names and b in result.names
    }


def run_donation(config: MLPConfig, timing: TimingConfig) -> dict[str, Any]:
    """The donation lever: the adljax step with and without ``donate_argnums=0``, interleaved."""
    x, y = make_batches(config)
    runners = {
        "donated": adljax_runner(config, x, y, donate=True),
        "not_donated": adljax_runner(config, x, y, donate=False),
    }
    result = time_interleaved(runners, timing)
    return {
        "model": config.label,
        "median_ms": {name: result.median_ms(name) for name in result.names},
        "ratio_not_donated/donated": result.paired_ratio("not_donated", "donated"),
        "timing": result.to_json(),
    }
