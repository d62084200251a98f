"""The streamed input pipeline: examples/s of grain's readers alone and feeding a train step.

The source is what tfds's ArrayRecord image datasets hand out: ``source[i]`` returns a
PNG-encoded 32x32x3 image (CIFAR-10's shape), decoded with pillow on every read, and its
label; the conversion is the tfds loader's (float32 in [0, 1]). Measured:

- ``reader``: one epoch of ``SourceDataset.batches`` (batch 64) with 0 (in the caller),
  1, 2, 4 and 8 reader threads, examples/s.
- ``feeding``: ``fit`` of the course's CNN on that stream (per-step path: grain's readers,
  then two batches prefetched to the device), examples/s from ``fit``'s history, against
  the same ``fit`` on the in-memory copy of the data (the step's own consumption rate;
  ``fit`` chooses whole-epoch compilation where it wins).

``python -m benchmarks.bench_pipeline [--quick] [--out PATH]``
"""

import dataclasses
import io
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import jax
import numpy as np
from PIL import Image

import adljax
from adljax.data import DatasetInfo, SourceDataset
from adljax.data.tfds_source import image_label_example
from benchmarks.report import benchmark_arguments, format_table, machine_info, report

DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "pipeline.json"
INFO = DatasetInfo(
    name="png32", task="classification", input_shape=(32, 32, 3), num_outputs=10, num_classes=10
)


@dataclasses.dataclass(frozen=True)
class PipelineConfig:
    """Images in the source, batch size, reader thread counts, epochs timed per fit."""

    examples: int = 4096
    batch_size: int = 64
    threads: tuple[int, ...] = (0, 1, 2, 4, 8)
    feeding_threads: tuple[int, ...] = (0, 4)
    reader_repeats: int = 3
    fit_epochs: int = 2


FULL = PipelineConfig()
QUICK = PipelineConfig(
    examples=256, threads=(0, 2), feeding_threads=(2,), reader_repeats=1, fit_epochs=1
)


class PNGSource:
    """``n`` random smooth RGB images, PNG-encoded once; each read decodes one."""

    def __init__(self, n: int, seed: int = 0):
        rng = np.random.default_rng(seed)
        coarse = rng.integers(0, 256, (n, 8, 8, 3), dtype=np.uint8)
        self.encoded = []
        for image in coarse:
            buffer = io.BytesIO()
            Image.fromarray(image).resize((32, 32), Image.BILINEAR).save(buffer, format="PNG")
            self.encoded.append(buffer.getvalue())
        self.labels = rng.integers(0, 10, n)

    def __len__(self) -> int:
        return len(self.encoded)

    def __getitem__(self, i: int) -> dict[str, Any]:
        image = np.asarray(Image.open(io.BytesIO(self.encoded[i])))
        return {"image": image, "label": int(self.labels[i])}


def _stream(source: PNGSource, threads: int) -> SourceDataset:
    return SourceDataset(source, INFO, image_label_example, read_threads=threads)


def reader_rate(data: SourceDataset, batch_size: int, repeats: int) -> float:
    """Median examples/s of reading one epoch of batches."""
    rates = []
    for epoch in range(repeats):
        start = time.perf_counter()
        count = sum(len(batch["x"]) for batch in data.batches(batch_size, epoch=epoch))
        rates.append(count / (time.perf_counter() - start))
    return float(np.median(rates))


def fit_rate(data, batch_size: int, epochs: int) -> float:
    """Median examples/s of ``fit``'s epochs after the first (which compiles)."""
    model = adljax.models.create_model("cnn", num_outputs=10, input_shape=INFO.input_shape)
    state = adljax.create_train_state(
        model, adljax.create_optimizer("adam", 1e-3), np.zeros((1, 32, 32, 3)), jax.random.key(0)
    )
    result = adljax.fit(
        state,
        data,
        task="classification",
        epochs=1 + epochs,
        batch_size=batch_size,
        progress=False,
    )
    return float(np.median([record["examples_per_sec"] for record in result.history[1:]]))


def run_pipeline(config: PipelineConfig) -> dict[str, Any]:
    """The reader's examples/s per thread count, and ``fit``'s fed and in-memory rates."""
    source = PNGSource(config.examples)
    reader = {
        threads: reader_rate(_stream(source, threads), config.batch_size, config.reader_repeats)
        for threads in config.threads
    }
    in_memory = _stream(source, 0).to_arrays()
    feeding = {
        threads: fit_rate(_stream(source, threads), config.batch_size, config.fit_epochs)
        for threads in config.feeding_threads
    }
    return {
        "config": dataclasses.asdict(config),
        "device": jax.devices()[0].device_kind,
        "reader_examples_per_sec": {str(t): rate for t, rate in reader.items()},
        "fit_streamed_examples_per_sec": {str(t): rate for t, rate in feeding.items()},
        # fit's own choice: whole-epoch where it wins (not for convolutions on a CPU).
        "fit_in_memory_examples_per_sec": fit_rate(in_memory, config.batch_size, config.fit_epochs),
    }


def pipeline_table(section: dict[str, Any]) -> str:
    """Reader rates per thread count, then fit's rates."""
    rows = [
        (f"reader, {t} threads", f"{rate:,.0f}")
        for t, rate in section["reader_examples_per_sec"].items()
    ]
    rows += [
        (f"fit CNN, streamed, {t} threads", f"{rate:,.0f}")
        for t, rate in section["fit_streamed_examples_per_sec"].items()
    ]
    rows.append(("fit CNN, in memory", f"{section['fit_in_memory_examples_per_sec']:,.0f}"))
    config = section["config"]
    return (
        f"streamed PNG 32x32x3 images ({config['examples']}, batch {config['batch_size']}, "
        f"{section['device']})\n{format_table(('pipeline', 'examples/s'), rows)}"
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the pipeline benchmark, prints its table and writes the JSON; returns 0."""
    args = benchmark_arguments(__doc__, DEFAULT_OUT, argv)
    section = run_pipeline(QUICK if args.quick else FULL)
    results = {"machine": machine_info(), "pipeline": section}
    return report(results, pipeline_table(section), args.out)


if __name__ == "__main__":
    sys.exit(main())
