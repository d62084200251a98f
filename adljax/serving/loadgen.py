"""A bounded load generator for a local service: requests/s and latency percentiles.

It only sends to loopback addresses (127.0.0.0/8, ``localhost``, ``::1``), a fixed number
of requests and for at most ``time_limit_s``, from ``concurrency`` concurrent clients.
"""

import asyncio
import dataclasses
import ipaddress
import json
import time
import urllib.parse
from collections.abc import Sequence
from typing import Any

import httpx
import numpy as np


@dataclasses.dataclass(frozen=True)
class LoadResult:
    """What one load level measured (latencies in milliseconds, over answered requests)."""

    concurrency: int
    requests: int
    errors: int
    seconds: float
    requests_per_s: float
    p50_ms: float
    p99_ms: float


def _check_loopback(url: str) -> None:
    host = urllib.parse.urlsplit(url).hostname or ""
    if host == "localhost":
        return
    try:
        if ipaddress.ip_address(host).is_loopback:
            return
    except ValueError:
        pass
    raise ValueError(f"the load generator only targets this machine (loopback), not {url!r}")


async def _load(
    url: str, path: str, bodies: list[bytes], concurrency: int, requests: int, limit: float
) -> LoadResult:
    latencies: list[float] = []
    errors = 0
    sent = 0
    deadline = time.perf_counter() + limit
    headers = {"content-type": "application/json"}
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)

    async def client_loop(client: httpx.AsyncClient) -> None:
        nonlocal sent, errors
        while sent < requests and time.perf_counter() < deadline:
            body = bodies[sent % len(bodies)]
            sent += 1
            start = time.perf_counter()
            answer = await client.post(path, content=body, headers=headers)
            latencies.append(time.perf_counter() - start)
            errors += answer.status_code != 200

    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=limit) as client:
        await client.get("/health")  # opens a connection before the clock starts
        began = time.perf_counter()
        await asyncio.gather(*(client_loop(client) for _ in range(concurrency)))
        seconds = time.perf_counter() - began
    ms = np.asarray(latencies) * 1000.0
    return LoadResult(
        concurrency=concurrency,
        requests=len(latencies),
        errors=errors,
        seconds=round(seconds, 3),
        requests_per_s=round(len(latencies) / seconds, 1),
        p50_ms=round(float(np.percentile(ms, 50)), 3),
        p99_ms=round(float(np.percentile(ms, 99)), 3),
    )


def measure_load(
    url: str,
    path: str,
    bodies: Sequence[dict[str, Any]],
    *,
    concurrency: int,
    requests: int,
    time_limit_s: float = 60.0,
) -> LoadResult:
    """Sends ``requests`` POSTs of ``bodies`` (cycled) to ``url + path`` from ``concurrency``
    clients, stopping early at ``time_limit_s``; a non-200 answer counts as an error."""
    _check_loopback(url)
    if concurrency < 1 or requests < 1 or not bodies:
        raise ValueError("`concurrency` and `requests` must be >= 1 and `bodies` non-empty")
    encoded = [json.dumps(body).encode() for body in bodies]
    return asyncio.run(_load(url, path, encoded, concurrency, requests, time_limit_s))
