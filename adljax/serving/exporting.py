"""``export``: a checkpoint or train state becomes a standalone artifact (see `artifact`).

Each of the family's programs (`programs.plan_export`) is traced once with ``jax.export``
for every platform asked for, with a symbolic batch dimension, and the variables are passed
as arguments, so the StableHLO holds no weights and one file serves any batch size.
"""

import datetime
import json
import os
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import jax
import numpy as np
from jax import export as jax_export

from adljax.data import DatasetInfo, DatasetUnavailableError, load
from adljax.inference import InferenceState, load_checkpoint
from adljax.models.registry import model_config, registered_name
from adljax.serving import programs
from adljax.serving.artifact import (
    BATCH,
    EXAMPLES,
    FORMAT,
    FORMAT_VERSION,
    MANIFEST,
    WEIGHTS,
    TensorSpec,
    sha256_of,
)
from adljax.training.checkpoint import library_versions
from adljax.training.state import TrainState, ensemble_size

PLATFORMS = ("cpu", "cuda", "tpu")
"""Where an artifact runs by default: one file, lowered for each."""

Source = TrainState | InferenceState | str | os.PathLike


def _describe_source(
    source: Source, info: DatasetInfo | None, task: str | None
) -> tuple[Any, dict[str, Any], DatasetInfo, str, dict[str, Any], dict[str, Any] | None]:
    """``(model, variables, info, task, model description, dataset options)`` of a checkpoint
    or a state; the options (how the checkpoint's dataset was loaded) are None for a state."""
    if isinstance(source, TrainState | InferenceState):
        if isinstance(source, TrainState) and ensemble_size(source) is not None:
            raise ValueError("pass one member of an ensemble (adljax.training.member)")
        if info is None:
            raise ValueError(
                "exporting a state needs `info`, the DatasetInfo of its training data (the "
                "input units and class names); a checkpoint directory records it"
            )
        config = json.loads(json.dumps(model_config(source.model), default=repr))
        described = {"name": registered_name(source.model), "config": config}
        return source.model, source.variables, info, task or info.task, described, None
    state, meta = load_checkpoint(source)
    saved = (meta.get("dataset") or {}).get("info")
    if info is None and saved is None:
        raise ValueError(f"the checkpoint in {str(source)!r} records no dataset; pass `info`")
    info = info or DatasetInfo.from_dict(saved)
    described = {key: meta["model"][key] for key in ("name", "config")}
    described["checkpoint_dir"] = str(source)
    options = (meta.get("dataset") or {}).get("options") or {}
    task = task or meta.get("task") or info.task
    return state.model, state.variables, info, task, described, options


EXAMPLE_COUNT = 8
"""Test-split inputs stored with an export of a checkpoint, for the web page to offer."""


def _dataset_examples(
    options: dict[str, Any] | None, model: Any, info: DatasetInfo, family: str
) -> np.ndarray | None:
    """The first `EXAMPLE_COUNT` test inputs of a checkpoint's dataset (loaded with its
    ``options``) in raw units, when the data loads without the network; None for states
    (``options`` None) and generators."""
    if options is None or family in programs.NO_EXAMPLES:
        return None
    try:
        data = load(info.name, "test", download=False, **options)
    except (DatasetUnavailableError, ValueError):
        return None
    if len(data) == 0:
        return None
    first = next(data.batches(min(EXAMPLE_COUNT, len(data)), shuffle=False))
    return programs.raw_inputs(info, model, first["x"])


def _check_platforms(platforms: Sequence[str]) -> tuple[str, ...]:
    platforms = tuple(platforms)
    unknown = sorted(set(platforms) - set(PLATFORMS))
    if not platforms or unknown:
        raise ValueError(f"`platforms` must be a non-empty subset of {PLATFORMS}, got {platforms}")
    return platforms


def _abstract(spec: TensorSpec, batch: Any) -> jax.ShapeDtypeStruct:
    shape = tuple(batch if size == BATCH else size for size in spec.shape)
    return jax.ShapeDtypeStruct(shape, np.dtype(spec.dtype))


def _output_specs(exported: jax_export.Exported, described: dict[str, str]) -> list[dict]:
    avals = jax.tree.unflatten(exported.out_tree, exported.out_avals)
    return [
        TensorSpec(
            name,
            tuple(size if isinstance(size, int) else BATCH for size in avals[name].shape),
            str(avals[name].dtype),
            described[name],
        ).to_dict()
        for name in described
    ]


def _export_program(
    program: programs.Program, weights: dict[str, np.ndarray], platforms: tuple[str, ...]
) -> tuple[bytearray, dict[str, Any]]:
    def flat_fn(flat, *inputs):
        return program.fn(programs.unflatten_variables(flat), *inputs)

    (batch,) = jax_export.symbolic_shape(BATCH)
    weight_specs = {name: jax.ShapeDtypeStruct(w.shape, w.dtype) for name, w in weights.items()}
    input_specs = [_abstract(spec, batch) for spec in program.inputs]
    exported = jax_export.export(jax.jit(flat_fn), platforms=platforms)(weight_specs, *input_specs)
    spec = {
        "file": f"{program.name}.jaxexport",
        "description": program.description,
        "inputs": [s.to_dict() for s in program.inputs],
        "outputs": _output_specs(exported, dict(program.outputs)),
    }
    if program.state:
        spec["state"] = list(program.state)
    return exported.serialize(), spec


def export(
    source: Source,
    path: str | os.PathLike,
    *,
    info: DatasetInfo | None = None,
    task: str | None = None,
    platforms: Sequence[str] = PLATFORMS,
    examples: np.ndarray | None = None,
) -> Path:
    """Writes the artifact of a trained model to the new directory ``path``.

    Args:
        source: a checkpoint directory, a ``TrainState`` or an ``InferenceState``.
        path: where to write; it must not exist (nothing is ever overwritten).
        info: the training data's ``DatasetInfo``; needed for a state (a checkpoint records
            it).
        task: defaults to the checkpoint's, else ``info.task``.
        platforms: the platforms to lower for, a subset of `PLATFORMS`.
        examples: a few raw inputs of the entry function ``(K, ...)`` to keep with it (the
            web page offers them); by default a checkpoint's first test inputs, where its
            dataset loads offline.

    Returns:
        ``path``, to pass to ``adljax.serving.load`` or ``adljax serve``.

    Raises:
        ValueError: ``path`` exists, a bad platform, a state without ``info``, or a task with
            no export; ``CheckpointError`` for a missing or damaged checkpoint. All before
            anything is written.
    """
    path = Path(path)
    if path.exists():
        raise ValueError(f"{str(path)!r} exists; export writes a new directory, not overwriting")
    platforms = _check_platforms(platforms)
    model, variables, info, task, described, options = _describe_source(source, info, task)
    plan = programs.plan_export(model, variables, task, info)
    weights = programs.flatten_variables(plan.variables)
    entry = next(p for p in plan.programs if p.name == plan.entry)
    if examples is None:
        examples = _dataset_examples(options, model, info, plan.family)
    elif entry.state or len(entry.inputs) != 1:
        raise ValueError(f"a {plan.family} export keeps no `examples`")
    if examples is not None:
        examples = entry.inputs[0].check(examples)
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    try:
        functions = {}
        for program in plan.programs:
            serialized, spec = _export_program(program, weights, platforms)
            (staging / spec["file"]).write_bytes(serialized)
            functions[program.name] = spec
        np.savez(staging / WEIGHTS, **weights)
        if examples is not None:
            np.savez(staging / EXAMPLES, **{entry.inputs[0].name: examples})
        manifest = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "family": plan.family,
            "entry": plan.entry,
            "task": task,
            "model": described,
            "dataset": {"name": info.name, "info": info.to_dict()},
            **plan.manifest,
            "platforms": list(platforms),
            "functions": functions,
            "versions": library_versions(),
            "created": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
            "files": {
                file.name: sha256_of(file) for file in sorted(staging.iterdir()) if file.is_file()
            },
        }
        (staging / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
        staging.rename(path)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return path
