"""Section ``precision``: the train step of an MLP and a CNN in float32, bfloat16 and float16.

One unit is one epoch of ``digits`` (every full batch, already on the device) through the
jitted, state-donating ``make_train_step`` of a state built with ``create_train_state(...,
dtype=...)``; the dtypes of one model are timed interleaved, and compared to float32 by
the median of per-round ratios.

``python -m benchmarks.bench_precision --accelerator`` times the compute-bound sizes a GPU
needs instead: the CNN and ResNet-18 on random CIFAR-shaped images, batch 256.
"""

import dataclasses
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import jax
import numpy as np

import adljax
from adljax.training.precision import DTYPE_NAMES
from benchmarks.report import benchmark_arguments, format_table, machine_info, report
from benchmarks.timing import TimingConfig, time_interleaved

DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "precision.json"


@dataclasses.dataclass(frozen=True)
class PrecisionConfig:
    """The models (registry name -> configuration), data and batch size.

    ``random_images``: ``(steps, height, width, channels)``: train on ``steps`` batches of
    uniform random images with 10 random classes instead of ``dataset``."""

    dataset: str = "digits"
    batch_size: int = 64
    models: tuple[tuple[str, tuple[tuple[str, Any], ...]], ...] = (
        ("mlp", (("hidden_sizes", (256, 256)),)),
        ("cnn", ()),
    )
    random_images: tuple[int, int, int, int] | None = None


CPU = PrecisionConfig()
CPU_TIMING = TimingConfig(rounds=7, block=3, warmup=1)
ACCELERATOR = PrecisionConfig(
    dataset="random CIFAR-shaped images",
    batch_size=256,
    models=(("cnn", ()), ("resnet18", (("stem", "cifar"),))),
    random_images=(20, 32, 32, 3),
)
ACCELERATOR_TIMING = TimingConfig(rounds=7, block=2, warmup=1)
QUICK = dataclasses.replace(ACCELERATOR, batch_size=8, random_images=(2, 32, 32, 3))
QUICK_TIMING = TimingConfig(rounds=2, block=1, warmup=1, max_rounds=2)


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
    data = _data(config)
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


def _data(config: PrecisionConfig) -> adljax.data.ArrayDataset:
    if config.random_images is None:
        return adljax.data.load(config.dataset, "train")
    steps, *shape = config.random_images
    rng = np.random.default_rng(0)
    x = rng.uniform(size=(steps * config.batch_size, *shape)).astype(np.float32)
    y = rng.integers(0, 10, len(x)).astype(np.int32)
    return adljax.data.from_arrays(x, y, task="classification", num_classes=10)


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


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the section alone (``--accelerator``: the GPU sizes; ``--quick``: a smoke run of
    them), prints its table and writes the JSON; returns 0."""
    flags = {"accelerator": "the CNN and ResNet-18 on random 32x32x3 images, batch 256"}
    args = benchmark_arguments(__doc__, DEFAULT_OUT, argv, flags=flags)
    if args.quick:
        config, timing = QUICK, QUICK_TIMING
    elif args.accelerator:
        config, timing = ACCELERATOR, ACCELERATOR_TIMING
    else:
        config, timing = CPU, CPU_TIMING
    section = run_precision(config, timing)
    results = {"machine": machine_info(), "precision": section}
    return report(results, precision_table(section), args.out)


if __name__ == "__main__":
    sys.exit(main())
