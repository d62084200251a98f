"""Section 2: ``fit`` with whole-epoch compilation (one ``lax.scan`` per epoch) vs per-step calls.

Each measurement is one ``fit`` call of ``1 + n`` epochs from the same initial state (``fit``
trains a copy, so the state is reused): the first epoch compiles and is left out; the time of
the other ``n`` comes from ``fit``'s own history (``examples_per_sec`` of each epoch, which
covers everything ``fit`` does per epoch: shuffling, batching, copies, steps, metrics).
"""

import dataclasses
from typing import Any

import jax

import adljax
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


def run_epoch(config: EpochConfig, timing: TimingConfig) -> dict[str, Any]:
    """Examples/s of whole-epoch and per-step ``fit`` on ``config.dataset``, and the speed-up.

    ``timing.block`` is the number of timed epochs per ``fit`` call (one call per round).
    """
    data = adljax.data.load(config.dataset, "train")
    runners = {
        "whole_epoch": FitRunner(config, data, whole_epoch=True),
        "per_step": FitRunner(config, data, whole_epoch=False),
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
        "speedup_whole_epoch": result.paired_ratio("per_step", "whole_epoch"),
        "timing": result.to_json(),
    }


DIAGNOSTICS_EVERY = (100, 10, 1)


def run_diagnostics_cost(config: EpochConfig, timing: TimingConfig) -> dict[str, Any]:
    """What ``fit(diagnostics_every=N)`` costs: epoch times with diagnostics off and every
    ``N`` steps, whole-epoch and per-step, as ratios to off (paired by round)."""
    data = adljax.data.load(config.dataset, "train")
    modes = {}
    for whole_epoch in (True, False):
        runners = {"off": FitRunner(config, data, whole_epoch)}
        for every in DIAGNOSTICS_EVERY:
            runners[f"every_{every}"] = FitRunner(config, data, whole_epoch, every)
        result = time_interleaved(runners, timing)
        modes["whole_epoch" if whole_epoch else "per_step"] = {
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
