"""Deploying a trained model: export it, load it with JAX alone, serve it over HTTP.

Synopsis::

    path = adljax.serving.export("runs/digits", "runs/digits.export")  # checkpoint -> files
    model = adljax.serving.load(path)              # JAX + NumPy only: no Flax, no adljax.models
    model(images)["probabilities"]                 # uint8 (N, 8, 8, 1) -> (N, 10)

``adljax export`` and ``adljax serve`` are the command-line forms. `load` is imported
eagerly and needs nothing beyond JAX; `export` and the service load Flax and the models on
first use.
"""

import importlib
from typing import TYPE_CHECKING, Any

from adljax.serving.artifact import Artifact as Artifact
from adljax.serving.artifact import ArtifactError as ArtifactError
from adljax.serving.artifact import Function as Function
from adljax.serving.artifact import TensorSpec as TensorSpec
from adljax.serving.artifact import load as load

__all__ = ["Artifact", "ArtifactError", "Function", "TensorSpec", "export", "load"]
_LAZY = {"export": "adljax.serving.exporting"}


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'adljax.serving' has no attribute {name!r}")
    value = getattr(importlib.import_module(_LAZY[name]), name)
    globals()[name] = value
    return value


if TYPE_CHECKING:
    from adljax.serving.exporting import export as export
