"""Checks that ``fit``'s arguments, the model and the data fit together, before any compute.

Nothing here compiles or runs the model: `model_outputs` traces its eval-mode forward pass
with ``jax.eval_shape`` on the shapes and dtypes of one batch, so a state initialised for
inputs of another shape, or a head whose width does not match the labels, is refused with a
``ValueError`` that names the data, the expected and the actual shape. ``fit`` calls
`check_fit_arguments` before it creates its checkpoint directory; a runner that computes
before ``fit`` (the GAN's feature classifier) calls it first too.
"""

import os
from collections.abc import Callable, Mapping
from typing import Any

import jax
import numpy as np
from flax.errors import ScopeParamShapeError

from adljax._validate import check_positive_int
from adljax.data import ArrayDataset, Dataset
from adljax.tasks import Task, get_task
from adljax.training import sharding
from adljax.training.state import TrainState, ensemble_size
from adljax.training.steps import Augment, TrainStep, predict_step

# Tasks whose outputs end in one logit per class, with integer labels in ``batch["y"]``.
_CLASS_TASKS = ("classification", "tagging", "language_modeling")


def check_fit_arguments(
    state: TrainState,
    train_data: Dataset,
    *,
    task: Task | str,
    epochs: int,
    batch_size: int,
    eval_data: Dataset | None = None,
    eval_batch_size: int = 512,
    seed: int = 0,
    checkpoint_dir: str | os.PathLike | None = None,
    resume: bool = False,
    whole_epoch: bool | None = None,
    steps_per_call: int | None = None,
    devices: int | None = None,
    augment: Augment | None = None,
    train_step: TrainStep | None = None,
    evaluate_fn: Callable[[TrainState], Mapping[str, float]] | None = None,
    diagnostics_every: int | None = None,
    diagnostics_step: Callable[[TrainState, Any], Any] | None = None,
) -> None:
    """Raises the ``ValueError`` that ``fit`` would raise for these arguments (same meaning
    as ``fit``'s), without compute and without touching ``checkpoint_dir``.

    Besides the arguments themselves it checks, with `check_model_fits_data`, that the model
    in ``state`` takes the inputs of ``train_data`` and ``eval_data`` and that its outputs
    fit ``task`` and their labels.
    """
    task = get_task(task) if isinstance(task, str) else task
    if train_step is not None and augment is not None:
        raise ValueError("pass `augment` to the step you build, not together with `train_step`")
    if steps_per_call is not None:
        check_positive_int(steps_per_call, "steps_per_call")
    if diagnostics_every is not None:
        check_positive_int(diagnostics_every, "diagnostics_every")
        if train_step is not None and diagnostics_step is None:
            raise ValueError(
                "`diagnostics_every` with a custom `train_step` needs the `diagnostics_step` "
                "that matches it (e.g. `make_diagnostics_step(task)` when the step computes "
                "the task's loss)"
            )
    elif diagnostics_step is not None:
        raise ValueError("`diagnostics_step` is used only with `diagnostics_every`")
    check_positive_int(epochs, "epochs")
    check_positive_int(batch_size, "batch_size")
    check_positive_int(eval_batch_size, "eval_batch_size")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"`seed` must be a non-negative integer, got {seed!r}")
    check_data(train_data, task, "train_data")
    if eval_data is not None:
        check_data(eval_data, task, "eval_data")
    if batch_size > len(train_data):
        raise ValueError(
            f"`batch_size` ({batch_size}) is larger than the training set "
            f"({len(train_data)} examples)"
        )
    if resume and checkpoint_dir is None:
        raise ValueError("`resume=True` needs a `checkpoint_dir` to resume from")
    members = ensemble_size(state)
    if devices is not None:
        if members is not None:
            raise ValueError("ensembles run on one device; pass `devices=None` with them")
        sharding.check_divisible(batch_size, sharding.data_mesh(devices))
    if whole_epoch and not isinstance(train_data, ArrayDataset):
        raise ValueError("`whole_epoch=True` needs in-memory data (an ArrayDataset)")
    if evaluate_fn is not None and members is not None:
        raise ValueError("`evaluate_fn` evaluates a single model, not an ensemble")
    check_model_fits_data(state, train_data, task, "train_data", batch_size)
    if eval_data is not None:
        check_model_fits_data(state, eval_data, task, "eval_data", batch_size)


def check_data(data: Dataset, task: Task, name: str) -> None:
    """Raises ``ValueError`` if ``data`` is empty or its ``info`` names another task."""
    if len(data) == 0:
        raise ValueError(f"`{name}` is empty")
    data_task = getattr(getattr(data, "info", None), "task", None)
    if data_task is not None and data_task != task.name:
        raise ValueError(f"`{name}` is a {data_task!r} dataset but the task is {task.name!r}")


def model_outputs(state: Any, x: Any) -> Any:
    """The shapes and dtypes (``jax.ShapeDtypeStruct``) of the eval-mode outputs of the model
    in ``state`` for inputs ``x`` ``(B, ...)`` (an array or a ``jax.ShapeDtypeStruct``),
    found with ``jax.eval_shape``: nothing is computed. An ensemble state gives one
    member's outputs.

    ``state`` is a ``TrainState`` or anything with ``.model`` and ``.variables``.

    Raises:
        ValueError: the model's own input check (naming the expected and actual shape), or
            naming a parameter whose shape does not fit these inputs (a state initialised
            for inputs of another shape).
    """
    members = ensemble_size(state) if isinstance(state, TrainState) else None

    def forward(state, x):
        if members is not None:
            state = jax.tree.map(lambda leaf: leaf[0], state)
        return predict_step(state, x)

    try:
        return jax.eval_shape(forward, state, x)
    except ScopeParamShapeError as error:
        raise ValueError(_parameter_mismatch(state, x, members, error)) from None


def check_model_fits_data(
    state: Any, data: Dataset, task: Task, name: str, batch_size: int = 1
) -> None:
    """Raises ``ValueError``, before any compute, if the model in ``state`` cannot take the
    inputs of ``data`` or its outputs do not fit ``task`` and ``data``'s labels.

    Classification (and tagging and language modelling, per step) needs an output width
    ``C`` equal to ``data.info.num_classes`` and every label in ``[0, C)``; in-memory data
    whose labels all lie in ``[0, C)`` may have fewer classes than its info says (a
    ``subset`` of the classes). Binary classification needs one logit, outputs ``(B,)`` or
    ``(B, 1)``; regression one output per target. Other tasks (detection, generation) are
    only checked for their inputs. Uses the shapes of one batch of ``batch_size``
    (`model_outputs`) and, for in-memory data, the range of the labels.
    """
    example = next(iter(data.batches(1, shuffle=False)))
    x = example["x"]
    try:
        outputs = model_outputs(state, jax.ShapeDtypeStruct((batch_size, *x.shape[1:]), x.dtype))
    except ValueError as error:
        raise ValueError(f"`{name}` does not fit the model: {error}") from None
    if task.name in _CLASS_TASKS:
        _check_classes(outputs.shape[1:], data, name)
    elif task.name == "binary" and outputs.shape[1:] not in ((), (1,)):
        raise ValueError(
            f"binary classification needs one logit per example, outputs (batch,) or "
            f"(batch, 1), but the model outputs {_batch_shape(outputs.shape[1:])} for "
            f"`{name}`; build it with num_outputs=1"
        )
    elif task.name == "regression":
        targets = example["y"].shape[1:] or (1,)
        if (outputs.shape[1:] or (1,)) != targets:
            raise ValueError(
                f"the model outputs {_batch_shape(outputs.shape[1:])} but the targets of "
                f"`{name}` are {_batch_shape(targets)}: regression needs one output per "
                f"target (num_outputs={int(np.prod(targets))})"
            )


def _check_classes(shape: tuple[int, ...], data: Dataset, name: str) -> None:
    """Checks a class task's per-example output ``shape`` ``(..., C)`` against ``data``."""
    if not shape:
        raise ValueError(
            f"the model outputs one number per example for `{name}`, but classification "
            f"needs one logit per class, (batch, num_classes)"
        )
    width = shape[-1]
    num_classes = getattr(getattr(data, "info", None), "num_classes", None)
    wrong_width = (
        f"the model outputs {width} classes (outputs {_batch_shape(shape)}), but `{name}` has "
        f"{num_classes} classes (info.num_classes); build the model with "
        f"num_outputs={num_classes}"
    )
    if num_classes is not None and width > num_classes:
        raise ValueError(wrong_width)
    if isinstance(data, ArrayDataset) and "y" in data.arrays:
        labels = data.arrays["y"]
        low, high = int(labels.min()), int(labels.max())
        if low < 0 or high >= width:
            raise ValueError(
                f"`{name}` has labels in [{low}, {high}] ({num_classes} classes in its info), "
                f"but the model outputs {width} classes (outputs {_batch_shape(shape)}): labels "
                f"must lie in [0, {width})"
            )
    # A narrower head fits a subset of the classes (`subset` keeps the info's num_classes)
    # when the labels in memory show it; streamed labels cannot be checked.
    elif num_classes is not None and width < num_classes:
        raise ValueError(wrong_width)


def _parameter_mismatch(state: Any, x: Any, members: int | None, error: Exception) -> str:
    """Names the first parameter of ``state`` whose shape differs from the one that inputs
    like ``x`` need (from an abstract ``model.init``), for a ``ScopeParamShapeError``."""
    key = jax.random.key(0)
    needed = jax.eval_shape(
        lambda x: state.model.init({"params": key, "dropout": key}, x, train=False)["params"], x
    )
    skip = 0 if members is None else 1
    have = {
        jax.tree_util.keystr(path, simple=True, separator="/"): tuple(leaf.shape[skip:])
        for path, leaf in jax.tree_util.tree_leaves_with_path(state.params)
    }
    inputs = f"inputs of shape {_batch_shape(x.shape[1:])}"
    for path, leaf in jax.tree_util.tree_leaves_with_path(needed):
        name = jax.tree_util.keystr(path, simple=True, separator="/")
        if name in have and have[name] != tuple(leaf.shape):
            return (
                f"{inputs} do not fit the model's parameters, which were initialised for "
                f"inputs of another shape: parameter {name!r} has shape {have[name]}, but "
                f"these inputs need {tuple(leaf.shape)}"
            )
    return f"{inputs} do not fit the model's parameters: {error}"


def _batch_shape(shape: tuple[int, ...]) -> str:
    """``(4,)`` -> ``"(batch, 4)"``: a per-example shape with its batch axis."""
    return "(" + ", ".join(["batch", *map(str, shape)]) + ")"
