"""Section ``precision``: the train step of an MLP and a CNN in float32, bfloat16 and float16.

One unit is one epoch of ``digits`` (every full batch, already on the device) through the
jitted, state-donating ``make_train_step`` of a state built with ``create_train_state(...,
dtype=...)``; the dtypes of one model are timed interleaved, and compared to float32 by
the median of per-round ratios.
"""

import dataclasses
from typing import Any

import jax
import numpy as np

import adljax
from adljax.training.precision import DTYPE_NAMES
from benchmarks.report import format_table
from benchmarks.timing import TimingConfig, time_interleaved


@dataclasses.dataclass(frozen=True)
class PrecisionConfig:
    """The models (registry name -> configuration), dataset and batch size."""

    dataset: str = "digits"
    batch_size: int = 64
    models: tuple[tuple[str, tuple[tuple[str, Any], ...]], ...] = (
        ("mlp", (("hidden_sizes", (256, 256)),)),
        ("cnn", ()),
    )


class EpochRunner:
    """``run(n)`` trains ``n`` epochs of device-resident batches in ``dtype``."""

    def __init__(self, name: str, config: dict[str, Any], data, batch_size: int, dtype: str):
        info = data.info
        model = adljax.models.create_model(
            name, num_outputs=info.num_classes, input_shape=info.input_shape, **config
        )
        tx = adljax.create_optimizer("adam", 1e-3)
        self.state = adljax.create_train_state(
            model, tx, data.arrays["x"][:1], jax.random.key(0), dtype=dtype
        )
        steps = len(data) // batch_size
        self.batches = [
            jax.device_put({"x": data.arrays["x"][rows], "y": data.arrays["y"][rows]})
            for rows in np.split(np.arange(steps * batch_size), steps)
        ]
        task = adljax.tasks.get_task(info.task)
        self.step = adljax.jit(adljax.make_train_step(task), donate_argnums=0)

    def __call__(self, epochs: int) -> None:
        for _ in range(epochs):
            for batch in self.batches:
                self.state, metrics = self.step(self.state, batch)
        jax.block_until_ready((self.state, metrics))


def run_precision(config: PrecisionConfig, timing: TimingConfig) -> dict[str, Any]:
    """Milliseconds per epoch of each model in each dtype, and the ratio to float32."""
    data = adljax.data.load(config.dataset, "train")
    models = {}
    for name, options in config.models:
        runners = {
            dtype: EpochRunner(name, dict(options), data, config.batch_size, dtype)
            for dtype in ("float32", *[d for d in DTYPE_NAMES if d != "float32"])
        }
        result = time_interleaved(runners, timing)
        models[name] = {
            "median_ms_per_epoch": {dtype: result.median_ms(dtype) for dtype in result.names},
            "ratio_to_float32": {
                dtype: result.paired_ratio(dtype, "float32") for dtype in result.names
            },
            "timing": result.to_json(),
        }
    return {
        "dataset": config.dataset,
        "config": dataclasses.asdict(config),
        "steps_per_epoch": len(data) // config.batch_size,
        "device": jax.devices()[0].device_kind,
        "models": models,
    }


def precision_table(section: dict[str, Any]) -> str:
    """The section's table: model, dtype, ms/epoch, ratio to float32."""
    rows = [
        (name, dtype, f"{ms:.2f}", f"{values['ratio_to_float32'][dtype]:.2f}x")
        for name, values in section["models"].items()
        for dtype, ms in values["median_ms_per_epoch"].items()
    ]
    table = format_table(("model", "dtype", "ms/epoch", "vs float32 (paired)"), rows)
    return (
        f"mixed precision: train step on {section['dataset']} (batch "
        f"{section['config']['batch_size']}, {section['steps_per_epoch']} steps/epoch, "
        f"{section['device']})\n{table}"
    )
