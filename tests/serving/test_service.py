"""The HTTP service: each family's endpoints equal the artifact, bad requests get a 4xx
that names the field, concurrent requests share compiled calls, and signals stop it."""

import asyncio
import itertools
import os
import signal
import subprocess
import sys
import time

import httpx
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from serving_models import raw

from adljax.serving import load
from adljax.serving.batching import MicroBatcher, bucket_sizes
from adljax.serving.service import create_app, running

pytestmark = pytest.mark.usefixtures("fast_compiles")


@pytest.fixture(scope="module")
def digits(exported):
    _, data, path = exported("cnn_digits")
    artifact = load(path)
    with (
        running(create_app(artifact, max_batch_size=16)) as url,
        httpx.Client(base_url=url, timeout=60) as client,
    ):
        yield artifact, data, client


def test_classify_equals_the_artifact(digits):
    artifact, data, client = digits
    x = raw(data, 3)
    answer = client.post("/classify", json={"inputs": x.tolist()})
    assert answer.status_code == 200
    want = artifact(x)["probabilities"]
    predictions = answer.json()["predictions"]
    assert [p["class_id"] for p in predictions] == want.argmax(-1).tolist()
    assert [p["class"] for p in predictions] == [str(k) for k in want.argmax(-1)]
    np.testing.assert_allclose([p["probabilities"] for p in predictions], want, atol=1e-6)
    embedded = client.post("/embed", json={"inputs": x.tolist()}).json()["embeddings"]
    np.testing.assert_allclose(embedded, artifact.call("embed", x)["embedding"], atol=1e-5)


def test_health_metadata_schema_and_page(digits):
    _, _, client = digits
    assert client.get("/health").json()["status"] == "ok"
    metadata = client.get("/metadata").json()
    assert metadata["family"] == "classifier"
    assert metadata["service"]["endpoints"] == ["classify", "embed"]
    assert metadata["service"]["max_batch_size"] == 16
    schema = client.get("/openapi.json").json()
    assert schema["openapi"].startswith("3.")
    assert {"/classify", "/embed", "/health", "/metadata"} <= set(schema["paths"])
    image = schema["paths"]["/classify"]["post"]["requestBody"]["content"]["application/json"]
    assert image["schema"]["properties"]["inputs"]["items"]["maxItems"] == 8
    page = client.get("/")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert client.get("/docs").status_code == 200


def _bad_requests():
    image = np.zeros((8, 8, 1), int).tolist()

    def one(value: str) -> bytes:
        return f'{{"inputs": [{image}]}}'.replace("0", value).encode()

    return [
        ("classify", b"", 400, None, "empty"),
        ("classify", b"{not json", 400, None, "not valid JSON"),
        ("classify", b"[1, 2]", 400, None, "JSON object"),
        ("classify", b'{"inputs": NaN}', 422, None, "NaN"),
        ("classify", b'{"inputs": [[1e999]]}', 422, None, "Infinity"),
        ("classify", b'{"inputs": []}', 422, "inputs", "non-empty"),
        ("classify", b'{"images": []}', 422, "images", "unknown field"),
        ("classify", b"{}", 422, "inputs", "required"),
        ("classify", f'{{"inputs": [{image}], "x": 1}}'.encode(), 422, "x", "unknown field"),
        ("classify", b'{"inputs": [[1, 2, 3]]}', 422, "inputs", "shape"),
        (
            "classify",
            f'{{"inputs": [{image}]}}'.replace("0", '"a"').encode(),
            422,
            "inputs",
            "dtype",
        ),
        (
            "classify",
            f'{{"inputs": [{image}]}}'.replace("0", "0.5").encode(),
            422,
            "inputs",
            "dtype",
        ),
        (
            "classify",
            f'{{"inputs": [{image}]}}'.replace("0", "999").encode(),
            422,
            "inputs",
            "<= 255",
        ),
        ("classify", f'{{"inputs": {[image] * 17}}}'.encode(), 413, "inputs", "limit of 16"),
        ("detect", f'{{"inputs": [{image}]}}'.encode(), 404, None, "/classify, /embed"),
    ]


@pytest.mark.parametrize(("endpoint", "body", "status", "field", "message"), _bad_requests())
def test_bad_requests_get_a_4xx_naming_the_problem(digits, endpoint, body, status, field, message):
    _, _, client = digits
    answer = client.post(f"/{endpoint}", content=body)
    assert answer.status_code == status
    error = answer.json()["error"]
    assert error["field"] == field
    assert message in error["message"]
    assert client.get("/health").status_code == 200


def test_oversized_bodies_and_other_methods_are_refused(exported):
    artifact = load(exported("cnn_digits")[2])
    with running(create_app(artifact, max_body_bytes=1000, warm_up=False)) as url:
        answer = httpx.post(f"{url}/classify", content=b"{" + b" " * 2000 + b"}")
        assert answer.status_code == 413
        assert "1000 bytes" in answer.json()["error"]["message"]
        assert httpx.get(f"{url}/classify").status_code == 405
        assert httpx.get(f"{url}/../../etc/passwd").status_code == 404
        assert httpx.get(f"{url}/static/../service.py").status_code == 404


def test_regress_detect_and_generate(exported):
    cases = {}
    for family in ("linear_housing", "detector_shapes", "gan_ring", "charlm"):
        _, data, path = exported(family)
        cases[family] = (load(path), data)
    artifact, data = cases["linear_housing"]
    with running(create_app(artifact, warm_up=False)) as url:
        x = raw(data, 4)
        values = httpx.post(f"{url}/regress", json={"inputs": x.tolist()}).json()["predictions"]
        np.testing.assert_allclose(
            [v["value"] for v in values], artifact(x)["prediction"], rtol=1e-5
        )
    artifact, data = cases["detector_shapes"]
    with running(create_app(artifact, max_batch_size=4, warm_up=False)) as url:
        x = raw(data, 2)
        body = {"inputs": x.tolist(), "min_score": 0.2}
        found = httpx.post(f"{url}/detect", json=body, timeout=60).json()["detections"]
        direct = artifact(x)
        for image, boxes in enumerate(found):
            keep = direct["valid"][image] & (direct["scores"][image] >= 0.2)
            assert len(boxes) == keep.sum() > 0
            np.testing.assert_allclose(
                [b["box"] for b in boxes], direct["boxes"][image][keep], atol=2e-3
            )
            assert {b["class"] for b in boxes} <= set(artifact.manifest["class_names"])
    artifact, _ = cases["gan_ring"]
    with running(create_app(artifact, warm_up=False)) as url:
        samples = httpx.post(f"{url}/generate", json={"seed": 5, "count": 6}).json()["samples"]
        np.testing.assert_allclose(samples, artifact(artifact.latents(5, 6))["samples"], atol=1e-6)
        path = {"interpolate": {"from_seed": 1, "to_seed": 2, "steps": 5}}
        line = httpx.post(f"{url}/generate", json=path).json()
        np.testing.assert_allclose(line["latents"][0], artifact.latents(1, 1)[0], atol=1e-6)
        np.testing.assert_allclose(line["latents"][-1], artifact.latents(2, 1)[0], atol=1e-6)
        both = httpx.post(f"{url}/generate", json={"seed": 1, "latents": [[0, 0]]})
        assert both.status_code == 422
        assert httpx.post(f"{url}/generate", json={"count": 0}).json()["error"]["field"] == "count"
    artifact, _ = cases["charlm"]
    with running(create_app(artifact, warm_up=False)) as url:
        body = {"prompt": "def ", "length": 15, "temperature": 0.7, "seed": 2}
        text = httpx.post(f"{url}/generate", json=body, timeout=60).json()["text"]
        assert text == artifact.generate_text("def ", length=15, temperature=0.7, seed=2)
        bad = httpx.post(f"{url}/generate", json={"prompt": "x", "temperature": -1})
        assert bad.json()["error"]["field"] == "temperature"


async def _burst(url: str, bodies: list[dict]) -> list[httpx.Response]:
    limits = httpx.Limits(max_connections=len(bodies))
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=60) as client:
        return await asyncio.gather(*(client.post("/classify", json=b) for b in bodies))


@pytest.mark.parametrize("max_batch_size", [1, 32])
def test_concurrent_requests_share_compiled_calls(exported, max_batch_size):
    _, data, path = exported("cnn_digits")
    artifact = load(path)
    x = raw(data, 48)
    app = create_app(artifact, max_batch_size=max_batch_size, max_wait_ms=5)
    with running(app) as url:
        answers = asyncio.run(_burst(url, [{"inputs": x[i : i + 1].tolist()} for i in range(48)]))
        batches = httpx.get(f"{url}/health").json()["batches"]["predict"]
    want = artifact(x)["probabilities"]
    got = [a.json()["predictions"][0]["probabilities"] for a in answers]
    np.testing.assert_allclose(got, want, atol=1e-6)
    if max_batch_size == 1:
        assert batches == 48
    else:
        assert batches < 48 / 4, f"48 concurrent requests ran as {batches} batches"


@settings(max_examples=10)
@given(rows=st.lists(st.integers(1, 5), min_size=1, max_size=6))
def test_a_batch_splits_back_into_each_requests_answer(exported, rows):
    _, data, path = exported("mlp_digits")
    function = load(path).entry
    batcher = MicroBatcher(function, None, max_batch_size=32, max_wait_ms=0)
    x = raw(data, sum(rows))
    bounds = np.cumsum([0, *rows])
    requests = [
        type("R", (), {"inputs": [x[a:b]], "rows": b - a})() for a, b in itertools.pairwise(bounds)
    ]
    for request, result in zip(requests, batcher._run(requests), strict=True):
        np.testing.assert_allclose(
            result["probabilities"], function(request.inputs[0])["probabilities"], atol=1e-6
        )


@given(size=st.integers(1, 512))
def test_bucket_sizes_are_powers_of_two_then_the_limit(size):
    sizes = bucket_sizes(size)
    assert sizes[-1] == size
    assert all(b == 2**i for i, b in enumerate(sizes[:-1]))
    assert len(sizes) == len(set(sizes))


def test_service_options_are_checked(exported):
    artifact = load(exported("mlp_digits")[2])
    for options, message in (
        ({"max_batch_size": 0}, "max_batch_size"),
        ({"max_wait_ms": float("nan")}, "max_wait_ms"),
        ({"max_body_bytes": 0}, "max_body_bytes"),
    ):
        with pytest.raises(ValueError, match=message):
            create_app(artifact, warm_up=False, **options)


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM])
def test_the_command_serves_and_stops_cleanly_on_signals(exported, stop):
    path = exported("mlp_digits")[2]
    adljax = os.path.join(os.path.dirname(sys.executable), "adljax")
    port = _free_port()
    process = subprocess.Popen(
        [adljax, "serve", str(path), "--port", str(port), "--max-batch-size", "4"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert process.poll() is None, process.communicate()
            assert time.monotonic() < deadline, "the service did not start"
            time.sleep(0.2)
        process.send_signal(stop)
        out, err = process.communicate(timeout=30)
    finally:
        process.kill()
    assert process.returncode == 0, err
    assert f"on http://127.0.0.1:{port}" in out
    assert "Traceback" not in err


def test_the_command_refuses_bad_arguments(exported, tmp_path):
    adljax = os.path.join(os.path.dirname(sys.executable), "adljax")
    missing = subprocess.run(
        [adljax, "serve", str(tmp_path / "none"), "--port", str(_free_port())],
        capture_output=True,
        text=True,
    )
    assert missing.returncode == 2
    assert "does not exist" in missing.stderr
    bad_port = subprocess.run(
        [adljax, "serve", str(exported("mlp_digits")[2]), "--port", "70000"],
        capture_output=True,
        text=True,
    )
    assert bad_port.returncode == 2
    assert "--port" in bad_port.stderr


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
