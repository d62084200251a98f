"""Build an application: train, export, load with JAX alone, serve over HTTP, call it.

Synopsis::

    python examples/application.py            # about 25 s on 2 CPU cores

Expected: the exported artifact's probabilities equal ``adljax.predict``'s to float32
round-off; the service answers ``/classify`` with the same classes; a bad request gets a
422 that names the field.

A digits CNN trains for a few epochs with a checkpoint directory. ``adljax.serving.export``
turns the checkpoint into an artifact: the inference function traced with ``jax.export``
(uint8 pixels in, the training data's scaling inside, softmax out; a symbolic batch; lowered
for CPU, CUDA and TPU), the weights in ``weights.npz`` and a manifest with every file's
SHA-256. ``adljax.serving.load`` runs it with JAX and NumPy alone. The service (the same one
``adljax serve`` starts) runs on a background thread on a free port of 127.0.0.1.
"""

import json
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

import jax
import numpy as np

import adljax
from adljax.experiment import run_experiment
from adljax.serving.service import create_app, running


def _post(url: str, body: dict) -> tuple[int, dict]:
    request = urllib.request.Request(
        url, json.dumps(body).encode(), {"content-type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def main(directory: str | None = None, epochs: int = 5) -> dict:
    """Trains, exports, loads and serves a digits CNN under ``directory`` (default: temporary)."""
    if directory is None:
        with tempfile.TemporaryDirectory() as scratch:
            return main(scratch, epochs)
    root = Path(directory)
    experiment = run_experiment(
        "cnn", "digits", epochs=epochs, checkpoint_dir=root / "checkpoint", progress=False
    )
    path = adljax.serving.export(root / "checkpoint", root / "digits.export")

    artifact = adljax.serving.load(path)  # needs only jax and numpy
    test = experiment.eval_data.to_arrays().arrays
    pixels = np.round(test["x"][:32] * 255).astype(np.uint8)  # (32, 8, 8, 1), as a page sends
    exported = artifact(pixels)["probabilities"]
    in_process = jax.nn.softmax(adljax.predict(root / "checkpoint", pixels / np.float32(255)))
    print(f"artifact vs adljax.predict: max |difference| {np.abs(exported - in_process).max():.1e}")

    with running(create_app(artifact)) as url:
        status, answer = _post(f"{url}/classify", {"inputs": pixels.tolist()})
        served = [p["class_id"] for p in answer["predictions"]]
        print(f"POST /classify: {status}, classes {served[:8]}..., labels {test['y'][:8]}...")
        bad_status, bad = _post(f"{url}/classify", {"inputs": [[1, 2, 3]]})
        print(f"a bad request: {bad_status} {bad['error']}")
    return {
        "max_difference": float(np.abs(exported - in_process).max()),
        "served_classes": served,
        "exported_classes": exported.argmax(-1).tolist(),
        "bad_status": bad_status,
        "bad_field": bad["error"]["field"],
        "files": sorted(p.name for p in Path(path).iterdir()),
    }


if __name__ == "__main__":
    main()
