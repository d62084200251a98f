"""The model service: an artifact behind JSON endpoints, a web page and an OpenAPI schema.

Synopsis::

    app = create_app(adljax.serving.load("runs/digits.export"), max_batch_size=64)
    uvicorn.run(app, host="127.0.0.1", port=8000)        # what `adljax serve` does
    with running(app) as url: httpx.post(f"{url}/classify", json={"inputs": [...]})

Why Starlette under uvicorn: requests are validated against the artifact's own manifest
(shapes, dtypes, value ranges), not against static Python types, so FastAPI's pydantic layer
would add a second, weaker schema; and FastAPI's docs page loads Swagger UI from a CDN, while
this service must work offline. Starlette is the ASGI toolkit FastAPI itself is built on.

Endpoints, by the artifact's family: ``POST /classify`` (classifier, tagger), ``/regress``,
``/detect``, ``/generate`` (GAN samples from a seed, or text from a prompt), ``/embed``; and
``GET /health``, ``/metadata``, ``/examples``, ``/openapi.json``, ``/docs`` and ``/`` (the
page). A bad request gets a 4xx answer ``{"error": {"field": ..., "message": ...}}``.
"""

import asyncio
import concurrent.futures
import contextlib
import importlib.resources
import json
import math
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from adljax.serving.artifact import Artifact
from adljax.serving.batching import MicroBatcher
from adljax.serving.openapi import openapi_schema

ENDPOINTS = {
    "classifier": ("classify", "embed"),
    "regressor": ("regress", "embed"),
    "tagger": ("classify",),
    "detector": ("detect",),
    "generator": ("generate",),
    "language_model": ("generate",),
}
"""The POST endpoints of each family (``embed`` where the artifact has that function)."""

MAX_BODY_BYTES = 8 << 20
"""The default limit of a request body (8 MiB); larger ones get 413."""
MAX_TEXT_LENGTH = 2000
"""The longest prompt, and the most characters one text request may ask for."""
MAX_SAMPLES = 256
"""The most GAN samples one request may ask for (also bounded by the batch limit)."""
_STATIC = {
    "/": ("index.html", "text/html; charset=utf-8"),
    "/docs": ("docs.html", "text/html; charset=utf-8"),
    "/static/app.js": ("app.js", "text/javascript; charset=utf-8"),
    "/static/style.css": ("style.css", "text/css; charset=utf-8"),
}


class RequestError(Exception):
    """A request the service refuses: HTTP ``status``, the ``field`` at fault and why."""

    def __init__(self, status: int, field: str | None, message: str) -> None:
        super().__init__(message)
        self.status, self.field, self.message = status, field, message


def _error_response(error: RequestError) -> JSONResponse:
    return JSONResponse(
        {"error": {"field": error.field, "message": error.message}}, status_code=error.status
    )


def _refuse_constant(name: str) -> None:
    raise RequestError(422, None, f"{name} is not a number JSON allows")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise RequestError(422, None, f"{text} overflows to Infinity, not a number JSON allows")
    return value


async def _read_json(request: Request, max_body_bytes: int) -> dict[str, Any]:
    """The request body as a JSON object, read no further than ``max_body_bytes``."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > max_body_bytes:
        raise RequestError(413, None, f"the body exceeds {max_body_bytes} bytes")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > max_body_bytes:
            raise RequestError(413, None, f"the body exceeds {max_body_bytes} bytes")
    if not body:
        raise RequestError(400, None, "the body is empty; send a JSON object")
    try:
        payload = json.loads(body, parse_constant=_refuse_constant, parse_float=_finite_float)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise RequestError(400, None, f"the body is not valid JSON: {error}") from None
    if not isinstance(payload, dict):
        raise RequestError(
            400, None, f"the body must be a JSON object, got {type(payload).__name__}"
        )
    return payload


def _fields(payload: dict[str, Any], required: tuple[str, ...], optional: tuple[str, ...]) -> None:
    unknown = sorted(set(payload) - set(required) - set(optional))
    if unknown:
        allowed = ", ".join(required + optional)
        raise RequestError(422, unknown[0], f"unknown field {unknown[0]!r}; allowed: {allowed}")
    for name in required:
        if name not in payload:
            raise RequestError(422, name, f"the field {name!r} is required")


def _integer(payload: dict, name: str, default: int | None, low: int, high: int) -> int:
    value = payload.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise RequestError(
            422, name, f"{name!r} must be an integer in [{low}, {high}], got {value!r}"
        )
    return value


def _number(payload: dict, name: str, default: float, low: float, high: float) -> float:
    value = payload.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or not low < value <= high:
        raise RequestError(
            422, name, f"{name!r} must be a number in ({low:g}, {high:g}], got {value!r}"
        )
    return float(value)


def _rounded(values: np.ndarray) -> list:
    return np.round(values.astype(np.float64), 6).tolist()


class ModelService:
    """The endpoints' logic for one artifact (what `create_app` routes to)."""

    def __init__(
        self,
        artifact: Artifact,
        *,
        max_batch_size: int,
        max_wait_ms: float,
        max_body_bytes: int,
    ) -> None:
        if (
            isinstance(max_batch_size, bool)
            or not isinstance(max_batch_size, int)
            or (max_batch_size < 1)
        ):
            raise ValueError(f"`max_batch_size` must be a positive integer, got {max_batch_size!r}")
        if not math.isfinite(max_wait_ms) or max_wait_ms < 0:
            raise ValueError(f"`max_wait_ms` must be a finite number >= 0, got {max_wait_ms!r}")
        if max_body_bytes < 1:
            raise ValueError(f"`max_body_bytes` must be positive, got {max_body_bytes!r}")
        self.artifact = artifact
        self.family = artifact.family
        self.max_batch_size = max_batch_size
        self.max_wait_ms = max_wait_ms
        self.max_body_bytes = max_body_bytes
        self.endpoints = tuple(
            e for e in ENDPOINTS[self.family] if e != "embed" or "embed" in artifact.functions
        )
        self.executor = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="adljax-model")
        self.batchers = {
            name: MicroBatcher(
                function,
                self.executor,
                max_batch_size=max_batch_size,
                max_wait_ms=max_wait_ms,
            )
            for name, function in artifact.functions.items()
            if not function.state  # a recurrent step runs inside generate_text, unbatched
        }
        self.started = time.monotonic()
        self.requests = 0

    def warm_up(self) -> None:
        """Compiles the batched functions for every padded batch size."""
        for batcher in self.batchers.values():
            batcher.warm_up()

    async def start(self) -> None:
        for batcher in self.batchers.values():
            batcher.start()

    async def stop(self) -> None:
        for batcher in self.batchers.values():
            await batcher.stop()
        self.executor.shutdown(wait=False, cancel_futures=True)

    def metadata(self) -> dict[str, Any]:
        return {
            **self.artifact.manifest,
            "service": {
                "endpoints": list(self.endpoints),
                "max_batch_size": self.max_batch_size,
                "max_wait_ms": self.max_wait_ms,
                "max_body_bytes": self.max_body_bytes,
                "has_examples": self.artifact.examples is not None,
            },
        }

    async def _run_inputs(self, function: str, payload: dict[str, Any]) -> dict[str, np.ndarray]:
        """Checks ``payload["inputs"]`` against ``function``'s manifest input and runs it."""
        inputs = payload["inputs"]
        if not isinstance(inputs, list) or not inputs:
            raise RequestError(422, "inputs", "'inputs' must be a non-empty list of examples")
        if len(inputs) > self.max_batch_size:
            raise RequestError(
                413, "inputs", f"{len(inputs)} items exceed the limit of {self.max_batch_size}"
            )
        function_ = self.artifact.functions[function]
        try:
            checked = function_.check_inputs([inputs])
        except ValueError as error:
            raise RequestError(422, "inputs", str(error)) from None
        return await self.batchers[function].submit(checked)

    async def classify(self, payload: dict[str, Any]) -> dict[str, Any]:
        _fields(payload, ("inputs",), ())
        probabilities = (await self._run_inputs("predict", payload))["probabilities"]
        names = self.artifact.manifest.get("class_names")
        name = (lambda k: names[k]) if names else str
        if self.family == "tagger":
            ids = probabilities.argmax(-1)
            return {
                "predictions": [
                    {"classes": [name(int(k)) for k in row], "class_ids": row.tolist()}
                    for row in ids
                ]
            }
        return {
            "predictions": [
                {
                    "class": name(int(p.argmax())),
                    "class_id": int(p.argmax()),
                    "probability": round(float(p.max()), 6),
                    "probabilities": _rounded(p),
                }
                for p in probabilities
            ]
        }

    async def regress(self, payload: dict[str, Any]) -> dict[str, Any]:
        _fields(payload, ("inputs",), ())
        prediction = (await self._run_inputs("predict", payload))["prediction"]
        return {"predictions": [{"value": _rounded(row)} for row in prediction]}

    async def embed(self, payload: dict[str, Any]) -> dict[str, Any]:
        _fields(payload, ("inputs",), ())
        return {"embeddings": _rounded((await self._run_inputs("embed", payload))["embedding"])}

    async def detect(self, payload: dict[str, Any]) -> dict[str, Any]:
        _fields(payload, ("inputs",), ("min_score",))
        min_score = _number(payload, "min_score", 0.3, -1e-9, 1.0)
        found = await self._run_inputs("detect", payload)
        names = self.artifact.manifest.get("class_names") or []
        detections = []
        for boxes, scores, classes, valid in zip(
            found["boxes"], found["scores"], found["classes"], found["valid"], strict=True
        ):
            keep = valid & (scores >= min_score)
            detections.append(
                [
                    {
                        "class": names[int(c)] if names else str(int(c)),
                        "class_id": int(c),
                        "score": round(float(s), 6),
                        "box": [round(float(v), 3) for v in b],
                    }
                    for b, s, c in zip(boxes[keep], scores[keep], classes[keep], strict=True)
                ]
            )
        return {"detections": detections}

    async def generate(self, payload: dict[str, Any]) -> dict[str, Any]:
        if self.family == "language_model":
            return await self._write(payload)
        _fields(payload, (), ("seed", "count", "latents", "interpolate"))
        given = [name for name in ("latents", "interpolate") if name in payload]
        if len(given) > 1 or (given and ("seed" in payload or "count" in payload)):
            raise RequestError(
                422, given[-1], "send either 'seed' and 'count', or 'latents', or 'interpolate'"
            )
        if "latents" in payload:
            z = payload["latents"]
            if not isinstance(z, list) or not z:
                raise RequestError(422, "latents", "'latents' must be a non-empty list")
            result = await self._run_inputs("generate", {"inputs": z})
        else:
            z = self._latents(payload)
            result = await self.batchers["generate"].submit([z])
        return {"samples": _rounded(result["samples"]), "latents": _rounded(z)}

    def _latents(self, payload: dict[str, Any]) -> np.ndarray:
        if "interpolate" not in payload:
            seed = _integer(payload, "seed", 0, 0, 2**31 - 1)
            count = _integer(payload, "count", 16, 1, min(MAX_SAMPLES, self.max_batch_size))
            return self.artifact.latents(seed, count)
        spec = payload["interpolate"]
        if not isinstance(spec, dict):
            raise RequestError(422, "interpolate", "'interpolate' must be an object")
        unknown = sorted(set(spec) - {"from_seed", "to_seed", "steps"})
        if unknown:
            raise RequestError(422, "interpolate", f"unknown field {unknown[0]!r} in 'interpolate'")
        start = self.artifact.latents(_integer(spec, "from_seed", 0, 0, 2**31 - 1), 1)[0]
        end = self.artifact.latents(_integer(spec, "to_seed", 1, 0, 2**31 - 1), 1)[0]
        steps = _integer(spec, "steps", 8, 2, self.max_batch_size)
        t = np.linspace(0.0, 1.0, steps, dtype=np.float32)[:, None]
        return ((1.0 - t) * start + t * end).astype(np.float32)

    async def _write(self, payload: dict[str, Any]) -> dict[str, Any]:
        _fields(payload, ("prompt",), ("length", "temperature", "seed"))
        prompt = payload["prompt"]
        if not isinstance(prompt, str) or not prompt or len(prompt) > MAX_TEXT_LENGTH:
            raise RequestError(
                422, "prompt", f"'prompt' must be a string of 1 to {MAX_TEXT_LENGTH} characters"
            )
        unknown = sorted(set(prompt) - set(self.artifact.manifest["vocabulary"]))
        if unknown:
            raise RequestError(422, "prompt", f"characters the model does not know: {unknown}")
        length = _integer(payload, "length", 100, 1, MAX_TEXT_LENGTH)
        temperature = _number(payload, "temperature", 1.0, 0.0, 100.0)
        seed = _integer(payload, "seed", 0, 0, 2**31 - 1)

        def write() -> str:
            return self.artifact.generate_text(
                prompt, length=length, temperature=temperature, seed=seed
            )

        text = await asyncio.get_running_loop().run_in_executor(self.executor, write)
        return {"prompt": prompt, "text": text}


def _static(name: str) -> bytes:
    return importlib.resources.files("adljax.serving").joinpath("static", name).read_bytes()


def create_app(
    artifact: Artifact,
    *,
    max_batch_size: int = 64,
    max_wait_ms: float = 0.0,
    max_body_bytes: int = MAX_BODY_BYTES,
    warm_up: bool = True,
) -> Starlette:
    """The ASGI application serving ``artifact``.

    Args:
        artifact: a loaded export (`adljax.serving.load`).
        max_batch_size: the most examples one compiled call takes; a request may carry up
            to this many. 1 turns micro-batching off (one call per request).
        max_wait_ms: how long a batch may wait for more requests before it runs (0: it runs
            as soon as the previous batch is done, so at low load nothing waits).
        max_body_bytes: larger request bodies are refused with 413.
        warm_up: compile every padded batch size before serving the first request.
    """
    service = ModelService(
        artifact,
        max_batch_size=max_batch_size,
        max_wait_ms=max_wait_ms,
        max_body_bytes=max_body_bytes,
    )
    if warm_up:
        service.warm_up()
    pages = {path: (_static(file), media) for path, (file, media) in _STATIC.items()}
    schema = openapi_schema(artifact.manifest, service.endpoints)

    def endpoint(name: str) -> Callable:
        method = getattr(service, name)

        async def handle(request: Request) -> Response:
            service.requests += 1
            try:
                payload = await _read_json(request, service.max_body_bytes)
                return JSONResponse(await method(payload))
            except RequestError as error:
                return _error_response(error)

        return handle

    async def health(request: Request) -> Response:
        return JSONResponse(
            {
                "status": "ok",
                "family": service.family,
                "model": artifact.manifest["model"].get("name"),
                "uptime_s": round(time.monotonic() - service.started, 3),
                "requests": service.requests,
                "batches": {name: b.batches for name, b in service.batchers.items()},
            }
        )

    async def metadata(request: Request) -> Response:
        return JSONResponse(service.metadata())

    async def examples(request: Request) -> Response:
        if artifact.examples is None:
            return _error_response(RequestError(404, None, "this export keeps no examples"))
        return JSONResponse({"examples": artifact.examples.tolist()})

    async def openapi(request: Request) -> Response:
        return JSONResponse(schema)

    def page(path: str) -> Callable:
        content, media = pages[path]

        async def serve_page(request: Request) -> Response:
            return Response(content, media_type=media)

        return serve_page

    async def not_found(request: Request, exc: Exception) -> Response:
        known = ", ".join(f"/{e}" for e in service.endpoints)
        message = (
            f"no endpoint {request.url.path} for this {service.family}; POST to {known}"
            if request.method == "POST"
            else f"no page {request.url.path}; see /docs"
        )
        return _error_response(RequestError(404, None, message))

    async def not_allowed(request: Request, exc: Exception) -> Response:
        return _error_response(
            RequestError(405, None, f"{request.method} is not allowed on {request.url.path}")
        )

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette):
        await service.start()
        yield
        await service.stop()

    routes = [Route(f"/{name}", endpoint(name), methods=["POST"]) for name in service.endpoints]
    routes += [
        Route("/health", health, methods=["GET"]),
        Route("/metadata", metadata, methods=["GET"]),
        Route("/examples", examples, methods=["GET"]),
        Route("/openapi.json", openapi, methods=["GET"]),
        *(Route(path, page(path), methods=["GET"]) for path in pages),
    ]
    app = Starlette(
        routes=routes,
        lifespan=lifespan,
        exception_handlers={404: not_found, 405: not_allowed},
    )
    app.state.service = service
    return app


@contextlib.contextmanager
def running(app: Starlette, *, host: str = "127.0.0.1", port: int = 0) -> Iterator[str]:
    """Serves ``app`` on a background thread; yields its base URL, then shuts it down.

    ``port=0`` takes a free port. For the tour, the tests and the benchmarks.
    """
    import uvicorn

    # log_config=None: uvicorn's dictConfig would replace (and close) the host program's
    # logging handlers, pytest's capture among them; its loggers reach the root logger.
    server = uvicorn.Server(
        uvicorn.Config(
            app, host=host, port=port, log_level="warning", log_config=None, lifespan="on"
        )
    )
    thread = threading.Thread(target=server.run, name="adljax-service", daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError(f"the service did not start on {host}:{port}")
        time.sleep(0.01)
    bound = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://{host}:{bound}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)
