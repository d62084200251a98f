"""A bounded load generator for a local service: requests/s and latency percentiles.

It only sends to loopback addresses (127.0.0.0/8, ``localhost``, ``::1``), a fixed number
of requests and for at most ``time_limit_s``, from ``concurrency`` concurrent clients. By
default the clients run in a separate Python process, so that they do not share the
interpreter lock with a service running in the caller's process (the tour's, the tests').

    python -m adljax.serving.loadgen URL PATH BODIES.json --concurrency 8 --requests 500
"""

import argparse
import asyncio
import dataclasses
import ipaddress
import json
import subprocess
import sys
import tempfile
import time
import urllib.parse
from collections.abc import Sequence
from typing import Any

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


class _Connection:
    """One keep-alive HTTP/1.1 connection over asyncio streams (a minimal client: httpx's
    ``AsyncClient`` costs ~4 ms a request here, more than the service it would measure)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, host: str, port: int) -> "_Connection":
        return cls(*await asyncio.open_connection(host, port))

    async def post(self, request: bytes) -> int:
        """Sends a prepared request; returns the answer's status after reading its body."""
        self.writer.write(request)
        status_line = await self.reader.readline()
        length = 0
        while (line := await self.reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        await self.reader.readexactly(length)
        return int(status_line.split()[1])

    async def close(self) -> None:
        self.writer.close()
        await self.writer.wait_closed()


def _request(host: str, path: str, body: bytes) -> bytes:
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


async def _load(
    url: str, path: str, bodies: list[bytes], concurrency: int, requests: int, limit: float
) -> LoadResult:
    parts = urllib.parse.urlsplit(url)
    prepared = [_request(parts.netloc, path, body) for body in bodies]
    latencies: list[float] = []
    errors = 0
    sent = 0
    connections = [await _Connection.open(parts.hostname, parts.port) for _ in range(concurrency)]
    deadline = time.perf_counter() + limit

    async def client_loop(connection: _Connection) -> None:
        nonlocal sent, errors
        while sent < requests and time.perf_counter() < deadline:
            request = prepared[sent % len(prepared)]
            sent += 1
            start = time.perf_counter()
            status = await connection.post(request)
            latencies.append(time.perf_counter() - start)
            errors += status != 200

    began = time.perf_counter()
    try:
        await asyncio.wait_for(
            asyncio.gather(*(client_loop(c) for c in connections)), timeout=limit + 30
        )
    finally:
        seconds = time.perf_counter() - began
        for connection in connections:
            await connection.close()
    ms = np.asarray(latencies) * 1000.0
    return LoadResult(
        concurrency=concurrency,
        requests=len(latencies),
        errors=errors,
        seconds=seconds,
        requests_per_s=len(latencies) / seconds,
        p50_ms=float(np.percentile(ms, 50)),
        p99_ms=float(np.percentile(ms, 99)),
    )


def measure_load(
    url: str,
    path: str,
    bodies: Sequence[dict[str, Any]],
    *,
    concurrency: int,
    requests: int,
    time_limit_s: float = 60.0,
    separate_process: bool = True,
) -> LoadResult:
    """Sends ``requests`` POSTs of ``bodies`` (cycled) to ``url + path`` from ``concurrency``
    clients, stopping early at ``time_limit_s``; a non-200 answer counts as an error.

    ``separate_process`` runs the clients in a child Python process (this module's command).
    """
    _check_loopback(url)
    if concurrency < 1 or requests < 1 or not bodies:
        raise ValueError("`concurrency` and `requests` must be >= 1 and `bodies` non-empty")
    if not separate_process:
        encoded = [json.dumps(body).encode() for body in bodies]
        return asyncio.run(_load(url, path, encoded, concurrency, requests, time_limit_s))
    with tempfile.NamedTemporaryFile("w", suffix=".json") as file:
        json.dump(list(bodies), file)
        file.flush()
        command = [sys.executable, "-m", "adljax.serving.loadgen", url, path, file.name]
        command += ["--concurrency", str(concurrency), "--requests", str(requests)]
        command += ["--time-limit", str(time_limit_s)]
        done = subprocess.run(
            command, capture_output=True, text=True, check=True, timeout=time_limit_s + 60
        )
    return LoadResult(**json.loads(done.stdout.strip().splitlines()[-1]))


def main(argv: Sequence[str] | None = None) -> None:
    """The command: prints one `LoadResult` as JSON."""
    parser = argparse.ArgumentParser(prog="python -m adljax.serving.loadgen")
    parser.add_argument("url")
    parser.add_argument("path")
    parser.add_argument("bodies", help="a JSON file holding a list of request bodies")
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--requests", type=int, default=100)
    parser.add_argument("--time-limit", type=float, default=60.0)
    args = parser.parse_args(argv)
    with open(args.bodies) as file:
        bodies = json.load(file)
    result = measure_load(
        args.url,
        args.path,
        bodies,
        concurrency=args.concurrency,
        requests=args.requests,
        time_limit_s=args.time_limit,
        separate_process=False,
    )
    print(json.dumps(dataclasses.asdict(result)))


if __name__ == "__main__":
    main()
