"""FLOP counts and the machine's measured float32 matrix-product peak."""

import itertools
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp

from benchmarks.timing import median_seconds


def abstract(tree: Any) -> Any:
    """``tree`` with every array replaced by its ``jax.ShapeDtypeStruct`` (for ``lower``)."""
    return jax.tree.map(lambda leaf: jax.ShapeDtypeStruct(leaf.shape, leaf.dtype), tree)


def compiled_flops(jitted: Callable, *args: Any) -> float | None:
    """FLOPs of one call of ``jitted(*args)`` by XLA's ``cost_analysis`` of the compiled code.

    ``args`` may be arrays or ``ShapeDtypeStruct`` trees. ``None`` when XLA gives no count.
    """
    analysis = jitted.lower(*args).compile().cost_analysis()
    if isinstance(analysis, Sequence):  # older jax: one dict per computation
        analysis = analysis[0] if analysis else None
    if not analysis or "flops" not in analysis:
        return None
    flops = float(analysis["flops"])
    return flops if flops > 0 else None


def dense_train_flops(layer_sizes: Sequence[int], batch_size: int) -> float:
    """The analytic ``6 * parameters * batch`` estimate of a dense net's train-step FLOPs.

    Forward 2, backward 4 multiply-adds per weight and example; it ignores the activations,
    the loss and the optimizer, and counts the first layer's unused input gradient.
    """
    weights = sum(a * b + b for a, b in itertools.pairwise(layer_sizes))
    return 6.0 * weights * batch_size


def matmul_peak(size: int = 2048, repeats: int = 20) -> dict[str, Any]:
    """Median GFLOP/s of a jitted float32 ``size x size @ size x size`` matrix product."""
    a = jax.random.normal(jax.random.key(1), (size, size), jnp.float32)
    b = jax.random.normal(jax.random.key(2), (size, size), jnp.float32)
    matmul = jax.jit(jnp.matmul)
    matmul(a, b).block_until_ready()  # compile
    timing = median_seconds(lambda: matmul(a, b).block_until_ready(), repeats)
    flops = 2.0 * size**3
    return {"size": size, **timing, "gflops": flops / timing["median_s"] / 1e9}


def achieved(flops: float | None, median_ms: float, peak_gflops: float) -> dict[str, float | None]:
    """``{"gflops", "percent_of_peak"}`` of a step of ``flops`` FLOPs taking ``median_ms``
    (both None without a FLOP count)."""
    gflops = flops / (median_ms * 1e-3) / 1e9 if flops else None
    return {"gflops": gflops, "percent_of_peak": 100.0 * gflops / peak_gflops if gflops else None}
