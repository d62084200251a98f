"""A soak: thousands of mixed good and bad requests, concurrent and interleaved; afterwards
the service still answers, its memory has not grown beyond a bound, and every good answer
equals the direct call."""

import concurrent.futures
import json

import httpx
import numpy as np
import psutil
from serving_models import raw

from adljax.serving import load
from adljax.serving.service import create_app, running

REQUESTS = 2000
MEMORY_BOUND = 64 << 20  # bytes of resident memory the soak may add after a warm-up round


def _requests(images: np.ndarray) -> list[tuple[str, bytes, int, int | None]]:
    """``(path, body, expected status, image index or None)``, good and bad interleaved."""
    good = [
        ("/classify", json.dumps({"inputs": [img.tolist()]}).encode(), 200, i)
        for i, img in enumerate(images)
    ]
    bad = [
        ("/classify", b'{"inputs": [[1, 2]]}', 422, None),
        ("/classify", json.dumps({"inputs": [[["a"] * 1] * 8] * 8}).encode(), 422, None),
        ("/classify", b'{"inputs": NaN}', 422, None),
        ("/classify", b"", 400, None),
        ("/classify", b"{" + b" " * 3000 + b"}", 413, None),
        ("/classify", json.dumps({"inputs": [images[0].tolist()] * 9}).encode(), 413, None),
        ("/detect", b'{"inputs": []}', 404, None),
        ("/classify", b'{"inputs": [], "extra": 1}', 422, None),
        ("/classify", b"{oops", 400, None),
    ]
    mixed = []
    for k in range(REQUESTS):
        mixed.append(good[k % len(good)] if k % 3 else bad[(k // 3) % len(bad)])
    return mixed


def test_the_service_survives_a_soak(exported):
    _, data, path = exported("mlp_digits")
    artifact = load(path)
    images = raw(data, 32)
    want = artifact(images)["probabilities"]
    app = create_app(artifact, max_batch_size=8, max_body_bytes=2000)
    process = psutil.Process()
    with running(app) as url, httpx.Client(base_url=url, timeout=60) as client:

        def send(item):
            path_, body, _, _ = item
            answer = client.post(path_, content=body, headers={"content-type": "application/json"})
            return answer.status_code, answer.json()

        work = _requests(images)
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            list(pool.map(send, work[:300]))  # warm-up: allocator and caches settle
            before = process.memory_info().rss
            answers = list(pool.map(send, work))
        after = process.memory_info().rss
        assert client.get("/health").json()["status"] == "ok"
    for (_, _, status, index), (got, body) in zip(work, answers, strict=True):
        assert got == status, body
        if index is None:
            assert body["error"]["message"]
        else:
            np.testing.assert_allclose(
                body["predictions"][0]["probabilities"], want[index], atol=1e-6
            )
    assert after - before < MEMORY_BOUND, f"resident memory grew by {(after - before) >> 20} MiB"
