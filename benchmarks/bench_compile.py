"""Section 3: compile times, ``jax.jit(f).lower(*args).compile()`` wall time.

Every repeat jits a *fresh* step function (a new closure from its factory), so no in-process
cache of an earlier lowering or compilation can answer; the persistent compilation cache is
off unless ``jax_compilation_cache_dir`` is set (it is recorded in the results).
"""

from collections.abc import Callable
from typing import Any

import jax
import numpy as np

import adljax
from benchmarks.bench_epoch import EpochConfig
from benchmarks.implementations import (
    MLPConfig,
    adljax_state,
    adljax_step,
    flax_carry,
    flax_step,
    make_batches,
)
from benchmarks.timing import median_seconds


def compile_seconds(make_jitted: Callable[[], Any], args: tuple, repeats: int) -> dict[str, Any]:
    """Median wall seconds of ``make_jitted().lower(*args).compile()`` over ``repeats``."""
    return median_seconds(lambda: make_jitted().lower(*args).compile(), repeats)


def run_compile(mlp: MLPConfig, epoch: EpochConfig, repeats: int) -> dict[str, Any]:
    """Compile times of the adljax and hand-written MLP steps and adljax's whole-epoch function.

    Returns:
      ``{"functions": {name: {"what", "median_s", "samples_s"}}}`` and the cache setting.
    """
    x, y = make_batches(mlp)
    x0, y0 = jax.device_put(x[0]), jax.device_put(y[0])
    state = adljax_state(mlp, x0)
    flax_donated = flax_step(mlp)[1]
    carry = flax_carry(mlp, x0)

    data = adljax.data.load(epoch.dataset, "train")
    digits_state = adljax.create_train_state(
        adljax.models.MLP(hidden_sizes=epoch.hidden, num_outputs=data.info.num_classes),
        adljax.create_optimizer("adam", 1e-3),
        data.arrays["x"][:1],
        jax.random.key(0),
    )
    device_data = jax.device_put(dict(data.arrays))
    steps = len(data) // epoch.batch_size
    indices = np.zeros((steps, epoch.batch_size), np.int32)
    digits_batch = {name: array[: epoch.batch_size] for name, array in device_data.items()}

    cases = {
        "adljax_step": (
            f"adljax train step, {mlp.label}, batch {mlp.batch_size}",
            lambda: adljax.jit(adljax_step(), donate_argnums=0),
            (state, {"x": x0, "y": y0}),
        ),
        "flax_step": (
            f"hand-written Flax step, {mlp.label}, batch {mlp.batch_size}",
            lambda: jax.jit(flax_step(mlp)[0], donate_argnums=flax_donated),
            (*carry, x0, y0),
        ),
        "adljax_step_digits": (
            f"adljax train step, {epoch.dataset} MLP {epoch.hidden}, batch {epoch.batch_size}",
            lambda: adljax.jit(adljax_step(), donate_argnums=0),
            (digits_state, digits_batch),
        ),
        "adljax_epoch_digits": (
            f"adljax whole-epoch scan ({steps} steps), {epoch.dataset} MLP {epoch.hidden}",
            lambda: adljax.jit(adljax.training.make_epoch_fn(adljax_step()), donate_argnums=0),
            (digits_state, device_data, indices),
        ),
    }
    functions = {
        name: {"what": what, **compile_seconds(make, args, repeats)}
        for name, (what, make, args) in cases.items()
    }
    return {
        "functions": functions,
        "repeats": repeats,
        "persistent_cache_dir": jax.config.jax_compilation_cache_dir,
    }
