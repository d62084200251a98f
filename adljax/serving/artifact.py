"""Exported models: read, verify and call an adljax artifact with JAX and NumPy alone.

An artifact is a directory that `adljax.serving.export` writes::

    manifest.json          what the model is; each function's inputs and outputs; file hashes
    weights.npz            the model's variables, one array per path (NumPy, no pickle)
    examples.npz           optional: a few raw inputs of the entry function
    <function>.jaxexport   each function's StableHLO, serialised by ``jax.export``

Synopsis::

    model = adljax.serving.load("runs/digits.export")
    model(images)["probabilities"]          # uint8 images (N, 8, 8, 1) -> (N, 10)
    model.call("embed", images)["embedding"]

This module imports only the standard library, NumPy and JAX, so an artifact runs where
neither Flax nor Optax nor Orbax nor adljax's models are installed.
"""

import dataclasses
import hashlib
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import jax
import numpy as np
from jax import export as jax_export

FORMAT = "adljax-export"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
WEIGHTS = "weights.npz"
EXAMPLES = "examples.npz"
BATCH = "batch"
"""The name of the symbolic batch dimension in every shape of a manifest."""


class ArtifactError(RuntimeError):
    """An artifact is missing, damaged (a hash that does not match) or not of this format."""


@dataclasses.dataclass(frozen=True)
class TensorSpec:
    """One input or output of an exported function.

    Attributes:
        name: the key of the array, e.g. ``"image"`` or ``"probabilities"``.
        shape: sizes, with `BATCH` for the batch dimension, e.g. ``("batch", 8, 8, 1)``.
        dtype: a NumPy dtype name, e.g. ``"uint8"``.
        description: what the values mean, with their units.
        low, high: the inclusive range of valid values, where there is one (pixels 0-255,
            token ids ``0..V-1``).
    """

    name: str
    shape: tuple[int | str, ...]
    dtype: str
    description: str = ""
    low: float | None = None
    high: float | None = None

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["shape"] = list(self.shape)
        return {key: value for key, value in out.items() if value is not None}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "TensorSpec":
        return cls(**{**d, "shape": tuple(d["shape"])})

    @property
    def batch_axis(self) -> int:
        return self.shape.index(BATCH)

    def describe(self) -> str:
        """E.g. ``uint8 (batch, 8, 8, 1)``."""
        return f"{self.dtype} ({', '.join(map(str, self.shape))})"

    def check(self, value: Any, batch: int | None = None) -> np.ndarray:
        """``value`` as an array of this spec's dtype, or a ``ValueError`` naming the problem.

        Args:
            value: an array-like whose batch dimension is any size >= 1 (or ``batch``).
            batch: the batch size it must have, when another input fixed it.
        """
        try:
            array = np.asarray(value)
        except (ValueError, TypeError) as error:  # ragged nested lists
            raise ValueError(f"input {self.name!r} is not a rectangular array: {error}") from None
        expected = np.dtype(self.dtype)
        kind = array.dtype.kind
        allowed = "iu" if expected.kind in "iu" else "iuf"
        if kind not in allowed:
            wanted = "integers" if expected.kind in "iu" else "numbers"
            raise ValueError(
                f"input {self.name!r} must hold {wanted} ({self.describe()}), got dtype "
                f"{array.dtype}"
            )
        if array.ndim != len(self.shape) or any(
            want not in (BATCH, size) for size, want in zip(array.shape, self.shape, strict=True)
        ):
            raise ValueError(
                f"input {self.name!r} must have shape {self._shape_text()}, got {array.shape}"
            )
        size = array.shape[self.batch_axis]
        if size == 0 or (batch is not None and size != batch):
            wanted = f"{batch}" if batch is not None else "at least 1"
            raise ValueError(f"input {self.name!r} has batch size {size}; expected {wanted}")
        if kind == "f" and not np.all(np.isfinite(array)):
            raise ValueError(f"input {self.name!r} contains NaN or infinite values")
        if array.size and self.low is not None and array.min() < self.low:
            raise ValueError(
                f"input {self.name!r} must be >= {self.low:g}, got a value {array.min():g}"
            )
        if array.size and self.high is not None and array.max() > self.high:
            raise ValueError(
                f"input {self.name!r} must be <= {self.high:g}, got a value {array.max():g}"
            )
        return array.astype(expected, copy=False)

    def _shape_text(self) -> str:
        return "(" + ", ".join("N" if s == BATCH else str(s) for s in self.shape) + ")"


class Function:
    """One exported function: validated NumPy inputs in, a dict of NumPy outputs out."""

    def __init__(
        self,
        name: str,
        exported: jax_export.Exported,
        weights: Mapping[str, jax.Array],
        spec: Mapping[str, Any],
    ) -> None:
        self.name = name
        self.inputs = tuple(TensorSpec.from_dict(d) for d in spec["inputs"])
        self.outputs = tuple(TensorSpec.from_dict(d) for d in spec["outputs"])
        self.state = tuple(spec.get("state", ()))
        self.description = spec.get("description", "")
        self._weights = weights
        self._call = jax.jit(exported.call)

    def check_inputs(self, inputs: Sequence[Any]) -> list[np.ndarray]:
        """The inputs as arrays of the manifest's dtypes (``ValueError`` naming a bad one)."""
        if len(inputs) != len(self.inputs):
            names = ", ".join(spec.name for spec in self.inputs)
            raise ValueError(
                f"{self.name!r} takes {len(self.inputs)} input(s) ({names}), got {len(inputs)}"
            )
        checked, batch = [], None
        for spec, value in zip(self.inputs, inputs, strict=True):
            array = spec.check(value, batch)
            batch = array.shape[spec.batch_axis]
            checked.append(array)
        return checked

    def __call__(self, *inputs: Any) -> dict[str, np.ndarray]:
        """Runs the function on ``inputs`` (in the manifest's order), after checking them."""
        return self.run_checked(self.check_inputs(inputs))

    def run_checked(self, inputs: Sequence[np.ndarray]) -> dict[str, np.ndarray]:
        """Runs on inputs that `check_inputs` returned (no checks)."""
        return jax.device_get(self._call(self._weights, *inputs))

    def initial_state(self, batch: int) -> dict[str, np.ndarray]:
        """Zeros for the inputs this function feeds back to itself (a recurrent carry)."""
        specs = {spec.name: spec for spec in self.inputs}
        return {
            name: np.zeros(
                [batch if s == BATCH else s for s in specs[name].shape], specs[name].dtype
            )
            for name in self.state
        }


class Artifact:
    """A loaded artifact: its manifest and its functions.

    Calling the artifact calls its entry function (``manifest["entry"]``): ``predict`` for
    classifiers, regressors and taggers, ``detect``, ``generate`` or ``step``.
    """

    def __init__(
        self,
        path: Path,
        manifest: dict[str, Any],
        functions: dict[str, Function],
        examples: np.ndarray | None = None,
    ):
        self.path = path
        self.manifest = manifest
        self.functions = functions
        self.examples = examples
        """A few raw inputs of the entry function ``(K, ...)``, or None."""

    @property
    def family(self) -> str:
        return self.manifest["family"]

    @property
    def entry(self) -> Function:
        return self.functions[self.manifest["entry"]]

    def __call__(self, *inputs: Any) -> dict[str, np.ndarray]:
        return self.entry(*inputs)

    def call(self, function: str, *inputs: Any) -> dict[str, np.ndarray]:
        """Runs the exported function named ``function`` (a key of `functions`)."""
        if function not in self.functions:
            raise ValueError(
                f"this {self.family} artifact has no function {function!r}; it has "
                f"{sorted(self.functions)}"
            )
        return self.functions[function](*inputs)

    def latents(self, seed: int, count: int) -> np.ndarray:
        """A generator's standard-normal latents ``(count, latent_dim)`` drawn from ``seed``
        (the same draw as ``adljax.gan.sampling.latents(jax.random.key(seed), ...)``)."""
        spec = self._require("generator", "latents").entry.inputs[0]
        _check_count(count, "count")
        if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
            raise ValueError(f"`seed` must be a non-negative integer, got {seed!r}")
        key = jax.random.key(int(seed))
        return np.asarray(jax.random.normal(key, (count, spec.shape[1]), np.float32))

    def generate_text(
        self, prompt: str, *, length: int, temperature: float = 1.0, seed: int = 0
    ) -> str:
        """``length`` characters sampled after ``prompt`` by a character model.

        The prompt is read one character at a time through the exported ``step`` (carrying
        the recurrent state), then each next character is drawn on the host from
        ``softmax(log p / temperature)`` with NumPy's generator seeded by ``seed``.
        """
        step = self._require("language_model", "generate_text").entry
        vocabulary = self.manifest["vocabulary"]
        if not isinstance(prompt, str) or not prompt:
            raise ValueError(f"`prompt` must be a non-empty string, got {prompt!r}")
        unknown = sorted(set(prompt) - set(vocabulary))
        if unknown:
            raise ValueError(f"`prompt` has characters the model does not know: {unknown}")
        _check_count(length, "length")
        if isinstance(temperature, bool) or not np.isfinite(temperature) or temperature <= 0:
            raise ValueError(f"`temperature` must be a positive number, got {temperature!r}")
        rng = np.random.default_rng(seed)
        index = {c: i for i, c in enumerate(vocabulary)}
        carry = step.initial_state(1)
        for character in prompt:
            out = step.run_checked([np.array([index[character]], np.int32), *carry.values()])
            carry = {name: out[name] for name in step.state}
        written = []
        for _ in range(length):
            logits = np.log(np.maximum(out["probabilities"][0].astype(np.float64), 1e-38))
            p = np.exp((logits - logits.max()) / temperature)
            token = int(rng.choice(len(p), p=p / p.sum()))
            written.append(vocabulary[token])
            out = step.run_checked([np.array([token], np.int32), *carry.values()])
            carry = {name: out[name] for name in step.state}
        return "".join(written)

    def _require(self, family: str, what: str) -> "Artifact":
        if self.family != family:
            raise ValueError(f"`{what}` needs a {family} artifact; this one is a {self.family}")
        return self


def _check_count(value: Any, name: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise ValueError(f"`{name}` must be a positive integer, got {value!r}")


def sha256_of(path: Path) -> str:
    """The hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_manifest(path: str | os.PathLike) -> dict[str, Any]:
    """The manifest of the artifact at ``path``, with every listed file's hash verified."""
    directory = Path(path)
    manifest_path = directory / MANIFEST
    if not manifest_path.is_file():
        raise ArtifactError(f"{str(directory)!r} is not an adljax export (no {MANIFEST})")
    try:
        manifest = json.loads(manifest_path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ArtifactError(f"{str(manifest_path)!r} is not valid JSON: {error}") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise ArtifactError(f"{str(manifest_path)!r} is not an {FORMAT} manifest")
    if manifest.get("format_version") != FORMAT_VERSION:
        raise ArtifactError(
            f"{str(directory)!r} has format version {manifest.get('format_version')!r}; this "
            f"adljax reads version {FORMAT_VERSION}"
        )
    for name, expected in manifest["files"].items():
        file = directory / name
        if Path(name).name != name or not file.is_file():
            raise ArtifactError(f"{str(directory)!r} is missing {name!r}")
        if sha256_of(file) != expected:
            raise ArtifactError(
                f"{str(file)!r} is damaged: its SHA-256 does not match the manifest's"
            )
    return manifest


def load(path: str | os.PathLike) -> Artifact:
    """Loads and verifies the artifact at ``path`` (a directory that ``export`` wrote).

    Raises:
        ArtifactError: the directory is not an artifact, a file is missing, or a file's
            SHA-256 differs from the manifest's (a damaged or tampered file).
    """
    directory = Path(path)
    manifest = read_manifest(directory)
    try:
        with np.load(directory / WEIGHTS, allow_pickle=False) as stored:
            weights = {name: jax.device_put(stored[name]) for name in stored.files}
        functions = {}
        for name, spec in manifest["functions"].items():
            exported = jax_export.deserialize(bytearray((directory / spec["file"]).read_bytes()))
            functions[name] = Function(name, exported, weights, spec)
        examples = None
        if EXAMPLES in manifest["files"]:
            with np.load(directory / EXAMPLES, allow_pickle=False) as stored:
                examples = stored[stored.files[0]]
    except (OSError, ValueError, KeyError) as error:
        raise ArtifactError(f"{str(directory)!r} could not be read: {error}") from None
    return Artifact(directory, manifest, functions, examples)
