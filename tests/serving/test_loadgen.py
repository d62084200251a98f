"""The load generator: bounded, loopback only, and it counts what it sent."""

import pytest

from adljax.serving import load
from adljax.serving.loadgen import measure_load
from adljax.serving.service import create_app, running


@pytest.mark.parametrize("url", ["http://10.0.0.1:80", "http://example.com", "http://192.168.1.2"])
def test_only_this_machine_is_a_target(url):
    with pytest.raises(ValueError, match="loopback"):
        measure_load(url, "/classify", [{}], concurrency=1, requests=1)


@pytest.mark.parametrize("separate_process", [False, True])
def test_it_sends_the_requests_it_reports(exported, separate_process):
    artifact = load(exported("mlp_digits")[2])
    good = {"inputs": [[[[0]] * 8] * 8]}
    with running(create_app(artifact, max_batch_size=8)) as url:
        result = measure_load(
            url,
            "/classify",
            [good, {"inputs": []}],
            concurrency=3,
            requests=40,
            separate_process=separate_process,
        )
    assert result.requests == 40
    assert result.errors == 20  # every other body is refused with 422
    assert result.concurrency == 3
    assert 0 < result.p50_ms <= result.p99_ms
    assert result.requests_per_s == pytest.approx(40 / result.seconds, rel=0.01)
