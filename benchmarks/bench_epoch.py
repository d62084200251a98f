"""Section 2: ``fit`` with whole-epoch compilation (one ``lax.scan`` per epoch) vs batches
read on the host (``whole_epoch=False``: ``STEPS_PER_CALL`` steps per compiled call), each
against the hand-written Flax + Optax loop that does the same epoch (a scan; a jitted step
per batch).

Each ``fit`` measurement is one call of ``1 + n`` epochs from the same initial state (``fit``
trains a copy, so the state is reused): the first epoch compiles and is left out; the time of
the other ``n`` comes from ``fit``'s own history (``examples_per_sec`` of each epoch, which
covers everything ``fit`` does per epoch: shuffling, batching, copies, steps, metrics). The
hand-written loops shuffle, batch, step and read the epoch's mean loss back, timed by the
wall clock.
"""

import dataclasses
from typing import Any

import jax
import numpy as np

import adljax
from benchmarks.implementations import MLPConfig, flax_carry, flax_step
from benchmarks.timing import TimingConfig, time_interleaved


@dataclasses.dataclass(frozen=True)
class EpochConfig:
    """The ``fit`` benchmark: dataset, MLP hidden sizes and batch size."""

    dataset: str = "digits"
    hidden: tuple[int, ...] = (64,)
    batch_size: int = 32


class FitRunner:
    """``run(n)`` calls ``fit`` for ``1 + n`` epochs and returns the seconds of the last ``n``."""

    def __init__(
        self,
        config: EpochConfig,
        data: Any,
        whole_epoch: bool,
        diagnostics_every: int | None = None,
    ):
        self.config, self.data, self.whole_epoch = config, data, whole_epoch
        self.diagnostics_every = diagnostics_every
        model = adljax.models.MLP(hidden_sizes=config.hidden, num_outputs=data.info.num_classes)
        tx = adljax.create_optimizer("adam", 1e-3)
        sample = data.arrays["x"][:1]
        self.state = adljax.create_train_state(model, tx, sample, jax.random.key(0))

    def __call__(self, epochs: int) -> float:
        result = adljax.fit(
            self.state,
            self.data,
            task="classification",
            epochs=1 + epochs,
            batch_size=self.config.batch_size,
            whole_epoch=self.whole_epoch,
            diagnostics_every=self.diagnostics_every,
            progress=False,
        )
        examples = (len(self.data) // self.config.batch_size) * self.config.batch_size
        return sum(examples / record["examples_per_sec"] for record in result.history[1:])


class HandWrittenEpochRunner:
    """The minimal hand-written Flax + Optax training loop over the same data and model.

    Every epoch shuffles with its own permutation, drops the last partial batch, trains, and
    reads the epoch's mean loss back to the host. ``scan=True`` runs the epoch as one jitted
    ``lax.scan`` that gathers each batch from the arrays on the device; ``scan=False`` calls
    the jitted step once per batch on NumPy slices (the Flax examples' loop). The first epoch
    (compilation) runs at construction; ``run(n)`` then trains ``n`` epochs.
    """

    def __init__(self, config: EpochConfig, data: Any, scan: bool):
        x, y = data.arrays["x"].reshape(len(data), -1), data.arrays["y"]
        mlp = MLPConfig(x.shape[1], config.hidden, data.info.num_classes, config.batch_size)
        step, donate = flax_step(mlp)
        self.params, self.opt_state = flax_carry(mlp, jax.numpy.asarray(x))
        self.batch_size, self.scan = config.batch_size, scan
        self.steps = len(x) // config.batch_size
        self.epoch, self.last_loss = 0, float("nan")
        if scan:
            self.x, self.y = jax.device_put(x), jax.device_put(y)

            def epoch(params, opt_state, order):
                def body(carry, indices):
                    params, opt_state, loss = step(*carry, self.x[indices], self.y[indices])
                    return (params, opt_state), loss

                (params, opt_state), losses = jax.lax.scan(body, (params, opt_state), order)
                return params, opt_state, losses.mean()

            self.run_epoch = jax.jit(epoch, donate_argnums=donate)
        else:
            self.x, self.y, self.step = x, y, jax.jit(step, donate_argnums=donate)
        self(1)

    def _order(self) -> np.ndarray:
        permutation = np.random.default_rng(self.epoch).permutation(len(self.x))
        self.epoch += 1
        return permutation[: self.steps * self.batch_size].reshape(self.steps, self.batch_size)

    def __call__(self, epochs: int) -> None:
        for _ in range(epochs):
            order = self._order()
            if self.scan:
                self.params, self.opt_state, loss = self.run_epoch(
                    self.params, self.opt_state, order
                )
                self.last_loss = float(loss)
                continue
            losses = []
            for indices in order:
                self.params, self.opt_state, loss = self.step(
                    self.params, self.opt_state, self.x[indices], self.y[indices]
                )
                losses.append(loss)
            self.last_loss = float(np.mean(jax.device_get(losses)))


# Each ``fit`` mode and the hand-written loop it is compared with.
HAND_WRITTEN = {"whole_epoch": "flax_scan", "host_batches": "flax_loop"}


def run_epoch(config: EpochConfig, timing: TimingConfig) -> dict[str, Any]:
    """Examples/s of whole-epoch and host-batch ``fit`` on ``config.dataset``, the speed-up, and
    each mode's paired ratio to the hand-written loop that runs the same epoch.

    ``timing.block`` is the number of timed epochs per ``fit`` call (one call per round).
    """
    data = adljax.data.load(config.dataset, "train")
    runners = {
        "whole_epoch": FitRunner(config, data, whole_epoch=True),
        "host_batches": FitRunner(config, data, whole_epoch=False),
        "flax_scan": HandWrittenEpochRunner(config, data, scan=True),
        "flax_loop": HandWrittenEpochRunner(config, data, scan=False),
    }
    result = time_interleaved(runners, timing)
    steps = len(data) // config.batch_size
    examples = steps * config.batch_size
    modes = {
        name: {
            "median_ms_per_epoch": result.median_ms(name),
            "us_per_step": 1e3 * result.median_ms(name) / steps,
            "examples_per_sec": examples / (result.median_ms(name) * 1e-3),
        }
        for name in result.names
    }
    return {
        "dataset": config.dataset,
        "model": "MLP " + "-".join(str(h) for h in config.hidden),
        "config": dataclasses.asdict(config),
        "examples": len(data),
        "steps_per_epoch": steps,
        "modes": modes,
        "speedup_whole_epoch": result.paired_ratio("host_batches", "whole_epoch"),
        "ratio_to_hand_written": {
            mode: result.paired_ratio(mode, flax) for mode, flax in HAND_WRITTEN.items()
        },
        "timing": result.to_json(),
    }


DIAGNOSTICS_EVERY = (100, 10, 1)


def run_diagnostics_cost(config: EpochConfig, timing: TimingConfig) -> dict[str, Any]:
    """What ``fit(diagnostics_every=N)`` costs: epoch times with diagnostics off and every
    ``N`` steps, whole-epoch and host batches, as ratios to off (paired by round)."""
    data = adljax.data.load(config.dataset, "train")
    modes = {}
    for whole_epoch in (True, False):
        runners = {"off": FitRunner(config, data, whole_epoch)}
        for every in DIAGNOSTICS_EVERY:
            runners[f"every_{every}"] = FitRunner(config, data, whole_epoch, every)
        result = time_interleaved(runners, timing)
        modes["whole_epoch" if whole_epoch else "host_batches"] = {
            "median_ms_per_epoch": {name: result.median_ms(name) for name in result.names},
            "ratio_to_off": {
                name: result.paired_ratio(name, "off") for name in result.names if name != "off"
            },
        }
    return {
        "dataset": config.dataset,
        "model": "MLP " + "-".join(str(h) for h in config.hidden),
        "config": dataclasses.asdict(config),
        "steps_per_epoch": len(data) // config.batch_size,
        "modes": modes,
    }
