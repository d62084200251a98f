"""``evaluate`` and ``predict`` from a train state or from a checkpoint directory alone."""

import functools
import os
from pathlib import Path
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from adljax._validate import check_positive_int, check_real_dtype
from adljax.data import Dataset
from adljax.models import create_model
from adljax.tasks import Task, get_task
from adljax.training.checkpoint import CheckpointError, CheckpointManager
from adljax.training.compilation import jit
from adljax.training.loop import evaluate_statistics
from adljax.training.precision import FLOAT32, Policy, get_policy
from adljax.training.preflight import check_model_fits_data, model_outputs
from adljax.training.state import TrainState, ensemble_size
from adljax.training.steps import make_eval_step, predict_step
from adljax.typing import PyTree


class InferenceState(struct.PyTreeNode):
    """A model and its variables: what evaluation and prediction need from a train state.

    ``policy`` is the mixed-precision policy the model was trained under (static).
    """

    params: PyTree
    model_state: PyTree
    model: nn.Module = struct.field(pytree_node=False)
    policy: Policy = struct.field(pytree_node=False, default=FLOAT32)

    @property
    def variables(self) -> dict[str, PyTree]:
        return {"params": self.params, **self.model_state}


def load_checkpoint(
    checkpoint_dir: str | os.PathLike, step: int | None = None
) -> tuple[InferenceState, dict[str, Any]]:
    """Rebuilds the model saved in ``checkpoint_dir`` from its metadata and restores it.

    Returns the model with its variables (of ``step``; default the newest intact step, with
    a ``CheckpointWarning`` naming any newer damaged one) and the metadata. Raises
    ``CheckpointError`` for a missing or damaged directory or step, a model that was not
    saved under a registered name, or a model configuration in the metadata that does not
    match the saved weights (listing the differences), before any array is read.
    """
    directory = Path(checkpoint_dir)
    if not directory.is_dir():
        raise CheckpointError(f"checkpoint directory {str(directory)!r} does not exist")
    with CheckpointManager(directory, create=False) as manager:
        step = manager.intact_step(step)
        meta = manager.read_meta(step)
        where = f"step {step} in {str(directory)!r}"
        model = _rebuild_model(meta, where)
        params = _initial_params(model, meta, where)
        if params is not None:
            mismatch = (
                f"the model config in the metadata of {where} does not match the saved weights"
            )
            manager.check_shapes({"params": params}, step, problem=mismatch)
        variables, meta = manager.restore_variables(step)
    variables = dict(variables)
    params = variables.pop("params")
    policy = get_policy(meta.get("dtype") or "float32")
    return InferenceState(params=params, model_state=variables, model=model, policy=policy), meta


def _rebuild_model(meta: dict[str, Any], where: str) -> nn.Module:
    """The model named and configured in ``meta``, else ``CheckpointError``."""
    model_meta = meta.get("model") or {}
    if not model_meta.get("name"):
        raise CheckpointError(
            f"the checkpoint at {where} does not name a registered model "
            f"(class {model_meta.get('class')!r}); restore it with CheckpointManager.restore "
            f"into a state built from your model instead"
        )
    try:
        return create_model(model_meta["name"], **model_meta.get("config", {}))
    except (TypeError, ValueError) as error:
        raise CheckpointError(
            f"cannot rebuild model {model_meta['name']!r} from the metadata of {where}: {error}"
        ) from error


def _initial_params(model: nn.Module, meta: dict[str, Any], where: str) -> PyTree | None:
    """The shapes (``jax.ShapeDtypeStruct``) of the parameters ``model`` creates for one input
    of the checkpoint's dataset, stacked for an ensemble; None when no input shape is saved."""
    input_shape = ((meta.get("dataset") or {}).get("info") or {}).get("input_shape")
    if not input_shape:
        return None
    key = jax.random.key(0)

    def init(x):
        return model.init({"params": key, "dropout": key}, x, train=False)["params"]

    # Features and images are floats, token ids integers; the metadata does not say which.
    for dtype in (jnp.float32, jnp.int32):
        try:
            params = jax.eval_shape(init, jax.ShapeDtypeStruct((1, *input_shape), dtype))
            break
        except (TypeError, ValueError) as error:
            failure = error
    else:
        raise CheckpointError(
            f"cannot build the model saved at {where} for inputs {tuple(input_shape)}: {failure}"
        ) from failure
    members = meta.get("ensemble")
    if members:
        params = jax.tree.map(lambda p: jax.ShapeDtypeStruct((members, *p.shape), p.dtype), params)
    return params


Source = TrainState | InferenceState | str | os.PathLike


def _resolve(source: Source) -> tuple[TrainState | InferenceState, dict[str, Any]]:
    if isinstance(source, TrainState):
        if ensemble_size(source) is not None:
            raise ValueError("pass one member of an ensemble (adljax.training.member)")
        return source, {}
    if isinstance(source, InferenceState):
        return source, {}
    return load_checkpoint(source)


@functools.cache
def _compiled_eval_step(task: Task):
    """One jitted eval step per task, reused across ``evaluate`` calls."""
    return jit(make_eval_step(task))


def evaluate(
    source: Source,
    data: Dataset,
    *,
    task: Task | str | None = None,
    batch_size: int = 512,
) -> dict[str, float]:
    """Exact metrics of a model over every example of ``data``.

    Args:
      source: a ``TrainState``, an ``InferenceState`` or a checkpoint directory.
      data: the dataset to evaluate on.
      task: defaults to the checkpoint's task, else the dataset's.
      batch_size: examples per compiled call (the last batch is padded and masked).

    Raises:
      ValueError: before any compute, for empty ``data`` or a model that does not fit it
        (`adljax.training.preflight.check_model_fits_data`: input shape, output width).
    """
    check_positive_int(batch_size, "batch_size")
    if len(data) == 0:
        raise ValueError("`data` is empty")
    state, meta = _resolve(source)
    task = task or meta.get("task") or data.info.task
    task = get_task(task) if isinstance(task, str) else task
    batch_size = min(batch_size, len(data))
    check_model_fits_data(state, data, task, "data", batch_size)
    values = evaluate_statistics(_compiled_eval_step(task), state, data, task, batch_size)
    return {name: float(value) for name, value in values.items()}


_compiled_predict_step = jit(predict_step)


def predict(source: Source, x: np.ndarray, *, batch_size: int = 1024) -> np.ndarray:
    """Model outputs for inputs ``x`` ``(N, ...)`` in eval mode: ``(N, ...)``.

    ``source`` is a ``TrainState`` or a checkpoint directory; inputs are run in batches of
    ``batch_size`` (the last one padded), so one compiled function serves any ``N``.

    Raises:
      ValueError: before any compute, for ``x`` that is empty, not numeric (bool, integer
        or real floating point), not finite, or not of the shape the model takes (the
        model's own check, or the shapes its parameters were initialised for).
    """
    check_positive_int(batch_size, "batch_size")
    x = np.asarray(x)
    check_real_dtype(x.dtype, "x")
    if np.issubdtype(x.dtype, np.floating):
        x = x.astype(np.float32)
    if x.ndim == 0 or x.shape[0] == 0:
        raise ValueError(f"`x` must be a non-empty batch (N, ...), got shape {x.shape}")
    if np.issubdtype(x.dtype, np.floating) and not np.all(np.isfinite(x)):
        raise ValueError("`x` contains NaN or infinite values")
    state, _ = _resolve(source)
    apply = _compiled_predict_step
    size = min(batch_size, x.shape[0])
    try:
        model_outputs(state, x[:size])  # the shape checks, without compute
    except ValueError as error:
        raise ValueError(f"`x` does not fit the model: {error}") from None
    outputs = []
    for start in range(0, x.shape[0], size):
        chunk = x[start : start + size]
        padded = np.concatenate([chunk, np.repeat(chunk[-1:], size - len(chunk), axis=0)])
        outputs.append(np.asarray(apply(state, padded))[: len(chunk)])
    return np.concatenate(outputs)
