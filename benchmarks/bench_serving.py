"""Serving: the exported artifact vs in-process ``adljax.predict`` vs a hand-written
``jax.jit``, and the HTTP service at concurrency 1, 8 and 32 with and without micro-batching.

Models (initialised, not trained: speed does not depend on the weights):

- ``cnn``: the digits ``SimpleCNN`` (8x8x1 uint8 pixels in, 10 probabilities out);
- ``detector``: the shapes ``Detector`` (64x64x3 pixels in, decoded boxes after NMS out).

Calls, batch 1 and 256, interleaved (``benchmarks.timing.time_interleaved``):

- ``artifact``: ``adljax.serving.load(path)`` with its input checks (``artifact(x)``);
- ``adljax``: ``adljax.predict`` (``detect`` for the detector) on the same images / 255;
- ``hand_jit``: ``jax.jit`` of ``apply`` (+ softmax, or + ``decode_detections``) on
  device-resident variables.

The service (``create_app``, in this process on a background thread) is measured with
``adljax.serving.loadgen`` in a child process (its own interpreter lock): requests/s, p50
and p99, one image per request, with ``max_batch_size`` 64 (micro-batching) and 1 (one
compiled call per request).

Usage::

    python -m benchmarks.bench_serving [--quick] [--out PATH] [--models cnn detector]
"""

import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as `python benchmarks/bench_serving.py`
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import jax
import numpy as np

import adljax
from adljax.detection.decode import decode_detections
from adljax.detection.experiment import detect
from adljax.experiment import model_for_dataset
from adljax.serving.loadgen import measure_load
from adljax.serving.service import create_app, running
from benchmarks.report import (
    benchmark_arguments,
    finish_machine_info,
    format_table,
    machine_info,
    report,
)
from benchmarks.timing import TimingConfig, time_interleaved

DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "serving.json"
MODELS = {"cnn": "digits", "detector": "shapes"}
CONCURRENCY = (1, 8, 32)
CALLS = ("artifact", "adljax", "hand_jit")


def _state(model: str):
    data = adljax.data.load(MODELS[model], "train")
    x = data.to_arrays().arrays["x"][:2]
    net = model_for_dataset(model, data)
    state = adljax.create_train_state(
        net, adljax.create_optimizer("adam", 1e-3), x, jax.random.key(0)
    )
    return state, data


def _calls(model: str, state, artifact, pixels: np.ndarray) -> dict[str, Callable[[], Any]]:
    images = pixels.astype(np.float32) / np.float32(255)
    variables = jax.device_put(state.variables)
    size = pixels.shape[1:3]

    if model == "detector":

        @jax.jit
        def hand(v, x):
            outputs = state.model.apply(v, x.astype(np.float32) / 255.0, train=False)
            return decode_detections(outputs, size)

        in_process = lambda: detect(state, images)  # noqa: E731
    else:

        @jax.jit
        def hand(v, x):
            logits = state.model.apply(v, x.astype(np.float32) / 255.0, train=False)
            return jax.nn.softmax(logits, axis=-1)

        in_process = lambda: adljax.predict(state, images)  # noqa: E731
    return {
        "artifact": lambda: artifact(pixels),
        "adljax": in_process,
        "hand_jit": lambda: jax.device_get(hand(variables, pixels)),
    }


def _time_calls(calls: dict[str, Callable[[], Any]], config: TimingConfig) -> dict[str, Any]:
    def runner(fn: Callable[[], Any]) -> Callable[[int], None]:
        def run(units: int) -> None:
            for _ in range(units):
                fn()

        return run

    timing = time_interleaved({name: runner(fn) for name, fn in calls.items()}, config)
    return {
        "median_ms": {name: timing.median_ms(name) for name in calls},
        "artifact_to_hand_jit": timing.paired_ratio("artifact", "hand_jit"),
        "timing": timing.to_json(),
    }


def _serve(artifact, pixels: np.ndarray, max_batch_size: int, requests: int) -> list[dict]:
    endpoint = "/detect" if artifact.family == "detector" else "/classify"
    bodies = [{"inputs": pixels[i : i + 1].tolist()} for i in range(len(pixels))]
    rows = []
    with running(create_app(artifact, max_batch_size=max_batch_size)) as url:
        for level in CONCURRENCY:
            result = measure_load(url, endpoint, bodies, concurrency=level, requests=requests)
            rows.append({"max_batch_size": max_batch_size, **result.__dict__})
    return rows


def run_model(model: str, quick: bool) -> dict[str, Any]:
    state, data = _state(model)
    from adljax.serving.programs import raw_inputs

    pixels = raw_inputs(data.info, None, data.to_arrays().arrays["x"][:256])
    with tempfile.TemporaryDirectory() as scratch:
        path = adljax.serving.export(state, Path(scratch) / "e", info=data.info)
        artifact = adljax.serving.load(path)
        config = TimingConfig(rounds=2, block=2, warmup=1) if quick else None
        calls = {}
        for batch in (1, 256):
            heavy = model == "detector" and batch == 256
            timing = config or TimingConfig(rounds=7, block=3 if heavy else 30, warmup=2)
            calls[batch] = _time_calls(_calls(model, state, artifact, pixels[:batch]), timing)
        requests = {"cnn": 20, "detector": 10} if quick else {"cnn": 1500, "detector": 300}
        service = [
            row
            for limit in (64, 1)
            for row in _serve(artifact, pixels[:64], limit, requests[model])
        ]
    bare = calls[1]["median_ms"]["artifact"]
    level1 = next(r for r in service if r["max_batch_size"] == 64 and r["concurrency"] == 1)
    by = {(r["max_batch_size"], r["concurrency"]): r["requests_per_s"] for r in service}
    return {
        "model": model,
        "calls": calls,
        "service": service,
        "overhead_p50_ms_at_concurrency_1": level1["p50_ms"] - bare,
        "batching_speedup_at_32": by[(64, 32)] / by[(1, 32)],
    }


def _table(sections: list[dict[str, Any]]) -> str:
    call_rows = [
        [
            f"{s['model']} batch {batch}",
            *(
                f"{s['calls'][batch]['median_ms'][n]:.3f}"
                for n in ("artifact", "adljax", "hand_jit")
            ),
            f"{s['calls'][batch]['artifact_to_hand_jit']:.3f}",
        ]
        for s in sections
        for batch in (1, 256)
    ]
    calls = format_table(
        ["call (ms)", "artifact", "adljax", "hand_jit", "artifact/hand"], call_rows
    )
    service_rows = [
        [
            s["model"],
            "on" if r["max_batch_size"] > 1 else "off",
            str(r["concurrency"]),
            f"{r['requests_per_s']:.0f}",
            f"{r['p50_ms']:.2f}",
            f"{r['p99_ms']:.2f}",
            str(r["errors"]),
        ]
        for s in sections
        for r in s["service"]
    ]
    service = format_table(
        ["service", "batching", "concurrency", "req/s", "p50 ms", "p99 ms", "errors"],
        service_rows,
    )
    summary = "\n".join(
        f"{s['model']}: p50 at concurrency 1 is {s['overhead_p50_ms_at_concurrency_1']:.2f} ms "
        f"over the bare call; batching x{s['batching_speedup_at_32']:.2f} at concurrency 32"
        for s in sections
    )
    return f"{calls}\n\n{service}\n\n{summary}"


def main(argv: Sequence[str] | None = None) -> int:
    args = benchmark_arguments(__doc__, DEFAULT_OUT, argv, models=tuple(MODELS))
    results: dict[str, Any] = {"machine": machine_info()}
    sections = [run_model(model, args.quick) for model in args.models]
    results["models"] = sections
    finish_machine_info(results)
    return report(results, _table(sections), args.out)


if __name__ == "__main__":
    sys.exit(main())
