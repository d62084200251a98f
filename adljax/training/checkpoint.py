"""Orbax checkpoints of a train state plus the JSON metadata needed to rebuild the run.

A checkpoint directory holds one sub-directory per saved step (Orbax writes each to a
temporary directory and renames it when complete, so a save killed half-way is never
restored), and ``history.jsonl`` beside them. Each step stores two items:

* ``state``: the ``TrainState`` pytree (step, params, model state, optimizer state, key);
* ``meta``: JSON with the model's name and configuration, the task, the dataset, the data
  position (epoch, batch in epoch, shuffle seed, batch size), the metrics and the library
  versions, so that ``adljax.predict`` and ``adljax.evaluate`` can rebuild the model from the
  directory alone.
"""

import dataclasses
import importlib.metadata
import logging
import os
import platform
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jax
import orbax.checkpoint as ocp

from adljax._validate import check_choice, check_positive_int
from adljax.training.state import TrainState
from adljax.typing import PyTree

META_FORMAT_VERSION = 1
_ITEMS = ("state", "meta")


class _HideUnrankedSaveWarning(logging.Filter):
    """Mid-epoch saves carry no evaluation metrics by design; Orbax warns about each one."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "did not provide metrics" not in record.getMessage()


_UNRANKED_SAVE_FILTER = _HideUnrankedSaveWarning()


class CheckpointError(RuntimeError):
    """A checkpoint directory is missing, unreadable or does not match the model."""


@dataclasses.dataclass(frozen=True)
class CheckpointOptions:
    """When to save and what to keep.

    Attributes:
      every_epochs: save at the end of every this many epochs (None: never by epoch).
      every_steps: also save every this many optimizer steps (None: never by step).
      keep_last: how many of the most recent checkpoints to keep.
      keep_best: how many of the best checkpoints by ``monitor`` to keep as well.
      monitor: the metric that ranks checkpoints, e.g. ``"eval/loss"``; None picks the task's
        (``eval/`` when there is evaluation data, else ``train/``).
      mode: ``"min"`` or ``"max"`` for ``monitor``; None picks the task's.
      async_save: write in a background thread while training goes on.
    """

    every_epochs: int | None = 1
    every_steps: int | None = None
    keep_last: int = 2
    keep_best: int = 1
    monitor: str | None = None
    mode: str | None = None
    async_save: bool = True

    def __post_init__(self):
        if self.every_epochs is not None:
            check_positive_int(self.every_epochs, "every_epochs")
        if self.every_steps is not None:
            check_positive_int(self.every_steps, "every_steps")
        check_positive_int(self.keep_last, "keep_last")
        if self.keep_best < 0:
            raise ValueError(f"`keep_best` must be >= 0, got {self.keep_best!r}")
        if self.mode is not None:
            check_choice(self.mode, "mode", ("min", "max"))


def library_versions() -> dict[str, str]:
    """Versions of Python and the libraries a checkpoint depends on."""
    versions = {"python": platform.python_version()}
    for package in ("adljax", "jax", "jaxlib", "flax", "optax", "orbax-checkpoint", "numpy"):
        try:
            versions[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            versions[package] = "unknown"
    return versions


class CheckpointManager:
    """Saves and restores train states in ``directory`` (a thin layer over Orbax).

    Use as a context manager, or call ``close()``: it waits for asynchronous saves to finish.
    """

    def __init__(
        self,
        directory: str | os.PathLike,
        options: CheckpointOptions | None = None,
        *,
        monitor: str = "eval/loss",
        mode: str = "min",
        create: bool = True,
    ):
        self.directory = Path(directory).absolute()
        if not create and not self.directory.is_dir():
            raise CheckpointError(f"checkpoint directory {str(self.directory)!r} does not exist")
        self.options = options or CheckpointOptions()
        logging.getLogger("absl").addFilter(_UNRANKED_SAVE_FILTER)
        self.monitor = self.options.monitor or monitor
        self.mode = self.options.mode or mode
        policies = [ocp.checkpoint_managers.LatestN(n=self.options.keep_last)]
        if self.options.keep_best:
            policies.append(
                ocp.checkpoint_managers.BestN(
                    get_metric_fn=self._metric,
                    reverse=self.mode == "min",  # BestN keeps the last n after sorting
                    n=self.options.keep_best,
                    keep_checkpoints_without_metrics=False,
                )
            )
        manager_options = ocp.CheckpointManagerOptions(
            save_decision_policy=ocp.checkpoint_managers.FixedIntervalPolicy(1),
            preservation_policy=ocp.checkpoint_managers.AnyPreservationPolicy(policies),
            best_fn=self._metric,
            best_mode=self.mode,
            enable_async_checkpointing=self.options.async_save,
            cleanup_tmp_directories=True,
            create=create,
        )
        self._manager = ocp.CheckpointManager(
            self.directory,
            options=manager_options,
            item_names=_ITEMS,
            item_handlers={
                "state": ocp.StandardCheckpointHandler(),
                "meta": ocp.JsonCheckpointHandler(),
            },
        )

    def _metric(self, metrics: Mapping[str, float]) -> float:
        return float(metrics[self.monitor])

    def __enter__(self) -> "CheckpointManager":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def all_steps(self) -> list[int]:
        """Steps of the complete checkpoints on disk, oldest first."""
        return list(self._manager.all_steps())

    def latest_step(self) -> int | None:
        """The newest complete checkpoint's step, or None when there is none."""
        return self._manager.latest_step()

    def best_step(self) -> int | None:
        """The step of the best checkpoint by ``monitor`` (the latest if none has metrics)."""
        return self._manager.best_step()

    def save(
        self,
        step: int,
        state: TrainState,
        meta: Mapping[str, Any],
        metrics: Mapping[str, float] | None = None,
    ) -> None:
        """Starts saving ``state`` and ``meta`` as ``step`` (returns before the write ends).

        ``metrics`` ranks the checkpoint for ``keep_best``; without the monitored metric it
        is kept only while it is among the ``keep_last`` newest.
        """
        if metrics is not None and self.monitor not in metrics:
            metrics = None
        meta = {"format_version": META_FORMAT_VERSION, **meta, "versions": library_versions()}
        self._manager.save(
            step,
            args=ocp.args.Composite(
                state=ocp.args.StandardSave(_savable(state)), meta=ocp.args.JsonSave(meta)
            ),
            metrics=dict(metrics) if metrics is not None else None,
        )

    def read_meta(self, step: int | None = None) -> dict[str, Any]:
        """The JSON metadata saved with ``step`` (default: the latest)."""
        step = self._existing_step(step)
        try:
            restored = self._manager.restore(
                step, args=ocp.args.Composite(meta=ocp.args.JsonRestore())
            )
        except Exception as error:  # Orbax raises many types for damaged files
            raise CheckpointError(
                f"cannot read the metadata of step {step} in {str(self.directory)!r}: {error}"
            ) from error
        return dict(restored.meta)

    def restore(self, target: TrainState, step: int | None = None) -> tuple[TrainState, dict]:
        """Restores ``step`` (default: the latest) into the structure of ``target``.

        ``target`` may be concrete or abstract (``jax.eval_shape``); its parameter and model
        state shapes must match the checkpoint's, else ``CheckpointError`` lists the
        differences before anything is read.
        """
        step = self._existing_step(step)
        self._check_matches(target, step)
        abstract = jax.tree.map(_abstract, _savable(target))
        try:
            restored = self._manager.restore(
                step,
                args=ocp.args.Composite(
                    state=ocp.args.StandardRestore(abstract), meta=ocp.args.JsonRestore()
                ),
            )
        except Exception as error:
            raise CheckpointError(
                f"cannot restore step {step} from {str(self.directory)!r} "
                f"(damaged or incompatible checkpoint): {error}"
            ) from error
        state = target.replace(**{f: restored.state[f] for f in _STATE_FIELDS})
        return state, dict(restored.meta)

    def restore_tree(self, step: int | None = None) -> tuple[dict[str, PyTree], dict]:
        """Restores ``step`` (default: the latest) as plain nested dicts, without a target.

        Returns ``({"step", "params", "model_state", "opt_state", "key"}, meta)``; optimizer
        states come back as dicts and lists rather than their Optax classes.
        """
        step = self._existing_step(step)
        try:
            restored = self._manager.restore(
                step,
                args=ocp.args.Composite(
                    state=ocp.args.StandardRestore(), meta=ocp.args.JsonRestore()
                ),
            )
        except Exception as error:
            raise CheckpointError(
                f"cannot restore step {step} from {str(self.directory)!r} "
                f"(damaged checkpoint): {error}"
            ) from error
        return dict(restored.state), dict(restored.meta)

    def restore_variables(self, step: int | None = None) -> tuple[dict[str, PyTree], dict]:
        """Restores only the model variables ``{"params", **model_state}`` and the metadata.

        Needs no optimizer or model object: used to predict from a directory alone.
        """
        tree, meta = self.restore_tree(step)
        return {"params": tree["params"], **(tree.get("model_state") or {})}, meta

    def wait(self) -> None:
        """Blocks until every started save has been written."""
        self._manager.wait_until_finished()

    def close(self) -> None:
        """Waits for pending saves and releases the manager."""
        self._manager.wait_until_finished()
        self._manager.close()

    def _existing_step(self, step: int | None) -> int:
        steps = self.all_steps()
        if not steps:
            raise CheckpointError(f"no complete checkpoint in {str(self.directory)!r}")
        if step is None:
            return steps[-1]
        if step not in steps:
            raise CheckpointError(
                f"no checkpoint of step {step} in {str(self.directory)!r}; it holds {steps}"
            )
        return step

    def _check_matches(self, target: TrainState, step: int) -> None:
        try:
            stored = self._manager.item_metadata(step)["state"].tree
        except Exception as error:
            raise CheckpointError(
                f"cannot read step {step} in {str(self.directory)!r} (damaged checkpoint): {error}"
            ) from error
        expected = _shapes({"params": target.params, "model_state": target.model_state})
        found = _shapes(
            {"params": stored.get("params", {}), "model_state": stored.get("model_state", {})}
        )
        problems = [f"missing in checkpoint: {p} {expected[p]}" for p in expected if p not in found]
        problems += [f"not in the model: {p} {found[p]}" for p in found if p not in expected]
        problems += [
            f"shape of {p}: model {expected[p]}, checkpoint {found[p]}"
            for p in expected
            if p in found and expected[p] != found[p]
        ]
        if problems:
            shown = "\n  ".join(problems[:20])
            more = f"\n  ... and {len(problems) - 20} more" if len(problems) > 20 else ""
            raise CheckpointError(
                f"the checkpoint at step {step} in {str(self.directory)!r} was saved from a "
                f"different architecture:\n  {shown}{more}"
            )


_STATE_FIELDS = ("step", "params", "model_state", "opt_state", "key")


def _savable(state: TrainState) -> dict[str, PyTree]:
    return {name: getattr(state, name) for name in _STATE_FIELDS}


def _abstract(leaf) -> jax.ShapeDtypeStruct:
    """Shape, dtype and sharding of ``leaf``; unsharded leaves go to the first device."""
    sharding = getattr(leaf, "sharding", None)
    if sharding is None:
        sharding = jax.sharding.SingleDeviceSharding(jax.devices()[0])
    return jax.ShapeDtypeStruct(leaf.shape, leaf.dtype, sharding=sharding)


def _shapes(tree: PyTree) -> dict[str, tuple[int, ...]]:
    leaves = jax.tree_util.tree_flatten_with_path(tree)[0]
    return {
        jax.tree_util.keystr(path, simple=True, separator="/"): tuple(leaf.shape)
        for path, leaf in leaves
    }
