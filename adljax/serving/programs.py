"""The functions an export holds for each family, as pure functions of (variables, inputs).

Each family's programs take inputs as a person has them and return what a person wants:

- classifier: ``predict`` (raw input -> class probabilities), ``embed``;
- regressor: ``predict`` (raw features -> prediction in the target's units), ``embed``;
- tagger: ``predict`` (sequence -> per-step class probabilities);
- language_model: ``step`` (one character and the carry -> the next one's distribution);
- detector: ``detect`` (uint8 image -> boxes in pixels, scores, classes);
- generator: ``generate`` (latents -> samples in the data's units).

Raw inputs: images are uint8 pixels 0-255 (NHWC; the model saw them scaled to [0, 1]);
standardised tabular features are taken in their original units (the training split's mean
and standard deviation are inside the function); token ids are int32.
"""

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import traverse_util

from adljax.data import DatasetInfo
from adljax.detection.decode import decode_detections
from adljax.gan.sampling import sampling_variables
from adljax.representations import embedding
from adljax.serving.artifact import BATCH, TensorSpec
from adljax.typing import Array, PyTree

FAMILIES = {
    "classification": "classifier",
    "binary": "classifier",
    "regression": "regressor",
    "tagging": "tagger",
    "language_modeling": "language_model",
    "detection": "detector",
    "generation": "generator",
}

NO_EXAMPLES = ("language_model", "generator")
"""Families whose entry function takes no dataset input (a carry, latents)."""


@dataclasses.dataclass(frozen=True)
class Program:
    """One function to export: ``fn(variables, *inputs) -> {output name: array}``.

    ``outputs`` maps each output name to its description; shapes and dtypes come from
    tracing. ``state`` names inputs that are fed back from the outputs of the same name.
    """

    name: str
    fn: Callable[..., dict[str, Array]]
    inputs: tuple[TensorSpec, ...]
    outputs: Mapping[str, str]
    description: str
    state: tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True)
class Plan:
    """Everything a family's export needs: its programs and the manifest fields it adds."""

    family: str
    entry: str
    programs: tuple[Program, ...]
    variables: PyTree
    manifest: Mapping[str, Any]


def _batched(shape: tuple[int, ...]) -> tuple[int | str, ...]:
    return (BATCH, *shape)


def _is_image(info: DatasetInfo) -> bool:
    return len(info.input_shape) == 3


def _input(info: DatasetInfo, model: Any) -> tuple[TensorSpec, Callable[[Array], Array]]:
    """The raw input's spec and the preprocessing that maps it to what the model saw."""
    shape = _batched(info.input_shape)
    vocab = getattr(model, "vocab_size", None)
    if vocab is not None:
        spec = TensorSpec("tokens", shape, "int32", "token ids", low=0, high=vocab - 1)
        return spec, lambda x: x
    if _is_image(info):
        spec = TensorSpec(
            "image", shape, "uint8", "pixels 0-255, (height, width, channels)", low=0, high=255
        )
        return spec, lambda x: x.astype(jnp.float32) / 255.0
    mean, std = info.extras.get("feature_mean"), info.extras.get("feature_std")
    if mean is not None and std is not None:
        names = ", ".join(info.feature_names or ())
        spec = TensorSpec("x", shape, "float32", f"features in their own units ({names})")
        mean, std = np.asarray([mean], np.float32), np.asarray([std], np.float32)  # (1, F)
        return spec, lambda x: (x - mean) / std
    return TensorSpec("x", shape, "float32", "features, as in the dataset"), lambda x: x


def raw_inputs(info: DatasetInfo, model: Any, x: np.ndarray) -> np.ndarray:
    """Dataset inputs ``(N, ...)`` mapped back to the raw units `_input` takes."""
    spec, _ = _input(info, model)
    if spec.dtype == "uint8":
        return np.clip(np.round(np.asarray(x) * 255.0), 0, 255).astype(np.uint8)
    mean, std = info.extras.get("feature_mean"), info.extras.get("feature_std")
    if spec.dtype == "float32" and mean is not None and std is not None:
        return (np.asarray(x) * np.asarray(std) + np.asarray(mean)).astype(np.float32)
    return np.asarray(x).astype(spec.dtype)


def _embed_program(model, info, spec, preprocess, variables) -> list[Program]:
    """``embed`` when the model sows a representation (not a linear model, say)."""
    example = jax.ShapeDtypeStruct((1, *info.input_shape), jnp.float32)
    try:
        jax.eval_shape(lambda v, x: embedding(model, v, x), variables, example)
    except ValueError:
        return []
    return [
        Program(
            "embed",
            lambda v, x: {"embedding": embedding(model, v, preprocess(x))},
            (spec,),
            {"embedding": "the learned representation (the model's sown features)"},
            "the learned representation of each input",
        )
    ]


def _classifier(model, info, variables) -> list[Program]:
    spec, preprocess = _input(info, model)

    def predict(v, x):
        logits = model.apply(v, preprocess(x), train=False)
        if info.task == "binary":
            p = jax.nn.sigmoid(logits.reshape(-1))
            return {"probabilities": jnp.stack([1.0 - p, p], axis=-1)}
        return {"probabilities": jax.nn.softmax(logits, axis=-1)}

    described = {"probabilities": "one probability per class (manifest: class_names)"}
    programs = [Program("predict", predict, (spec,), described, "class probabilities")]
    return programs + _embed_program(model, info, spec, preprocess, variables)


def _regressor(model, info, variables) -> list[Program]:
    spec, preprocess = _input(info, model)
    mean = np.zeros((1, info.num_outputs), np.float32)
    std = np.ones((1, info.num_outputs), np.float32)
    if info.target_mean is not None:
        mean = np.asarray([info.target_mean], np.float32)
        std = np.asarray([info.target_std], np.float32)

    def predict(v, x):
        return {"prediction": model.apply(v, preprocess(x), train=False) * std + mean}

    described = {"prediction": "the target, in its own units"}
    programs = [Program("predict", predict, (spec,), described, "the predicted target")]
    return programs + _embed_program(model, info, spec, preprocess, variables)


def _tagger(model, info, variables) -> list[Program]:
    del variables
    spec, preprocess = _input(info, model)

    def predict(v, x):
        return {"probabilities": jax.nn.softmax(model.apply(v, preprocess(x), train=False))}

    described = {"probabilities": "per step, one probability per class"}
    return [Program("predict", predict, (spec,), described, "per-step class probabilities")]


def _language_model(model, info, variables) -> list[Program]:
    del info
    token = TensorSpec(
        "token", (BATCH,), "int32", "the current character's id", low=0, high=model.num_outputs - 1
    )
    carry_shapes = jax.eval_shape(
        lambda v: model.apply(v, jnp.zeros((1, 1), jnp.int32), train=False, return_carry=True)[1],
        variables,
    )
    carry_names = tuple(sorted(carry_shapes))
    carry = tuple(
        TensorSpec(
            name,
            tuple(BATCH if i == 2 else size for i, size in enumerate(carry_shapes[name].shape)),
            "float32",
            "recurrent state (layers, directions, batch, hidden); zeros to start",
        )
        for name in carry_names
    )

    def step(v, token, *state):
        logits, new = model.apply(
            v,
            token[:, None],
            train=False,
            initial_carry=dict(zip(carry_names, state, strict=True)),
            return_carry=True,
        )
        return {"probabilities": jax.nn.softmax(logits[:, -1], axis=-1), **new}

    described = {"probabilities": "the next character's distribution (manifest: vocabulary)"}
    described |= {name: "the carry to feed back" for name in carry_names}
    program = Program(
        "step",
        step,
        (token, *carry),
        described,
        "reads one character and returns the next one's distribution and the new carry",
        state=carry_names,
    )
    return [program]


def _detector(model, info, variables) -> list[Program]:
    del variables
    spec, preprocess = _input(info, model)
    size = info.input_shape[:2]

    def detect(v, x):
        found = decode_detections(model.apply(v, preprocess(x), train=False), size)
        return found._asdict()

    described = {
        "boxes": "corner boxes (x_min, y_min, x_max, y_max) in pixels, best first",
        "scores": "detection scores in [0, 1]",
        "classes": "class ids (manifest: class_names); -1 in empty slots",
        "valid": "whether each slot holds a detection",
    }
    return [Program("detect", detect, (spec,), described, "boxes, scores and classes")]


def _generator(model, info, variables) -> list[Program]:
    del variables
    latents = TensorSpec(
        "latents", (BATCH, model.latent_dim), "float32", "standard-normal latent vectors"
    )

    def generate(v, z):
        return {"samples": model.apply(v, z, train=False, method="generate")}

    unit = "images in [0, 1] (height, width, channels)" if _is_image(info) else "data points"
    return [Program("generate", generate, (latents,), {"samples": unit}, "samples from latents")]


_BUILDERS = {
    "classifier": ("predict", _classifier),
    "regressor": ("predict", _regressor),
    "tagger": ("predict", _tagger),
    "language_model": ("step", _language_model),
    "detector": ("detect", _detector),
    "generator": ("generate", _generator),
}


def plan_export(model: Any, variables: PyTree, task: str, info: DatasetInfo) -> Plan:
    """The programs and manifest fields that export ``model`` trained for ``task`` on data
    described by ``info``. ``variables`` are ``{"params": ..., **model_state}``."""
    family = FAMILIES.get(task)
    if family is None:
        raise ValueError(f"no export is defined for task {task!r}; known: {sorted(FAMILIES)}")
    if family == "generator":
        variables = sampling_variables(
            variables["params"], {k: v for k, v in variables.items() if k != "params"}
        )
    entry, build = _BUILDERS[family]
    manifest: dict[str, Any] = {}
    if info.class_names is not None:
        manifest["class_names"] = list(info.class_names)
    if info.feature_names is not None:
        manifest["feature_names"] = list(info.feature_names)
    if "vocabulary" in info.extras:
        manifest["vocabulary"] = info.extras["vocabulary"]
    return Plan(family, entry, tuple(build(model, info, variables)), variables, manifest)


def flatten_variables(variables: PyTree) -> dict[str, np.ndarray]:
    """``{"params/dense_0/kernel": array, ...}``: the variables as named NumPy arrays."""
    flat = traverse_util.flatten_dict(jax.device_get(variables), sep="/")
    return {name: np.asarray(value) for name, value in flat.items()}


def unflatten_variables(flat: Mapping[str, Array]) -> PyTree:
    """The inverse of `flatten_variables`, inside a traced function."""
    return traverse_util.unflatten_dict(dict(flat), sep="/")
