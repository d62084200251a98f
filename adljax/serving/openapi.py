"""The OpenAPI 3.1 schema of a service, written from its artifact's manifest."""

from collections.abc import Sequence
from typing import Any

from adljax.serving.artifact import BATCH, TensorSpec

_ERROR = {
    "description": "a refused request: the field at fault and why",
    "content": {
        "application/json": {
            "schema": {
                "type": "object",
                "properties": {
                    "error": {
                        "type": "object",
                        "properties": {
                            "field": {"type": ["string", "null"]},
                            "message": {"type": "string"},
                        },
                    }
                },
            }
        }
    },
}


def _array_schema(spec: TensorSpec) -> dict[str, Any]:
    """Nested JSON arrays for one example of ``spec`` (its batch axis removed)."""
    item: dict[str, Any] = {"type": "integer" if spec.dtype in ("uint8", "int32") else "number"}
    if spec.low is not None:
        item["minimum"] = spec.low
    if spec.high is not None:
        item["maximum"] = spec.high
    for size in reversed([s for s in spec.shape if s != BATCH]):
        item = {"type": "array", "items": item, "minItems": size, "maxItems": size}
    return item


def _inputs_body(spec: TensorSpec, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["inputs"],
        "properties": {
            "inputs": {
                "type": "array",
                "minItems": 1,
                "items": _array_schema(spec),
                "description": f"examples of {spec.describe()}: {spec.description}",
            },
            **(extra or {}),
        },
    }


def _generate_body(manifest: dict[str, Any]) -> dict[str, Any]:
    if manifest["family"] == "language_model":
        return {
            "type": "object",
            "required": ["prompt"],
            "properties": {
                "prompt": {"type": "string", "minLength": 1},
                "length": {"type": "integer", "minimum": 1, "default": 100},
                "temperature": {"type": "number", "exclusiveMinimum": 0, "default": 1.0},
                "seed": {"type": "integer", "minimum": 0, "default": 0},
            },
        }
    latents = TensorSpec.from_dict(manifest["functions"]["generate"]["inputs"][0])
    seed = {"type": "integer", "minimum": 0}
    return {
        "type": "object",
        "description": "either seed and count, or latents, or interpolate",
        "properties": {
            "seed": {**seed, "default": 0},
            "count": {"type": "integer", "minimum": 1, "default": 16},
            "latents": {"type": "array", "items": _array_schema(latents)},
            "interpolate": {
                "type": "object",
                "properties": {
                    "from_seed": seed,
                    "to_seed": seed,
                    "steps": {"type": "integer", "minimum": 2, "default": 8},
                },
            },
        },
    }


_SUMMARIES = {
    "classify": "class probabilities of each input",
    "regress": "the predicted target of each input, in its own units",
    "detect": "boxes (pixels), classes and scores of each image",
    "embed": "the learned representation of each input",
    "generate": "samples from latents, or text after a prompt",
}
_FUNCTIONS = {"classify": "predict", "regress": "predict", "detect": "detect", "embed": "embed"}


def openapi_schema(manifest: dict[str, Any], endpoints: Sequence[str]) -> dict[str, Any]:
    """The OpenAPI document of a service for ``manifest`` with these POST ``endpoints``."""
    paths: dict[str, Any] = {}
    for name in endpoints:
        if name == "generate":
            body = _generate_body(manifest)
        else:
            spec = TensorSpec.from_dict(manifest["functions"][_FUNCTIONS[name]]["inputs"][0])
            extra = None
            if name == "detect":
                extra = {"min_score": {"type": "number", "minimum": 0, "maximum": 1}}
            body = _inputs_body(spec, extra)
        paths[f"/{name}"] = {
            "post": {
                "summary": _SUMMARIES[name],
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": body}},
                },
                "responses": {
                    "200": {"description": "the answer", "content": {"application/json": {}}},
                    **{code: _ERROR for code in ("400", "404", "413", "422")},
                },
            }
        }
    for path, summary in (
        ("/health", "liveness and request counts"),
        ("/metadata", "the artifact's manifest and the service's limits"),
        ("/examples", "a few inputs from the test split, if the export kept them"),
    ):
        paths[path] = {"get": {"summary": summary, "responses": {"200": {"description": "ok"}}}}
    model = manifest["model"].get("name") or "model"
    return {
        "openapi": "3.1.0",
        "info": {
            "title": f"adljax {model} ({manifest['family']}) on {manifest['dataset']['name']}",
            "version": manifest["versions"].get("adljax", "unknown"),
        },
        "paths": paths,
    }
