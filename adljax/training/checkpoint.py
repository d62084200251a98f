"""Orbax checkpoints of a train state plus the JSON metadata needed to rebuild the run.

A checkpoint directory holds one sub-directory per saved step (Orbax writes each to a
temporary directory and renames it when complete, so a save killed half-way is never
restored), and ``history.jsonl`` beside them. Each step stores two items:

* ``state``: the ``TrainState`` pytree (step, params, model state, optimizer state, key);
* ``meta``: JSON with the model's name and configuration, the task, the dataset, the data
  position (epoch, batch in epoch, shuffle seed, batch size), the metrics and the library
  versions, so that ``adljax.predict`` and ``adljax.evaluate`` can rebuild the model from the
  directory alone.

Integrity: once Orbax has finalized a step, the SHA-256 and size of every file in it are
written to ``<step>/adljax_checksums.json`` (atomically; after an asynchronous save, in a
background thread). Every read checks them first, so a flipped byte, a truncated or a missing
file raises ``CheckpointError`` naming the step and the files before Orbax reads anything.
Steps written before checksums existed have no record and are read unverified. A read of a
damaged step raises, naming the newest intact step; ``intact_step()`` picks that step instead,
warning (``CheckpointWarning``) about the newer damaged ones, and ``load_checkpoint`` uses it.
Nothing is ever deleted or repaired. The metadata is checked against the keys and
types ``fit`` writes (``_META_SCHEMA``).
"""

import dataclasses
import hashlib
import importlib.metadata
import json
import logging
import os
import platform
import threading
import warnings
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any

import jax
import orbax.checkpoint as ocp

from adljax._validate import check_choice, check_positive_int
from adljax.training.state import TrainState
from adljax.typing import PyTree

META_FORMAT_VERSION = 1
_ITEMS = ("state", "meta")
CHECKSUMS_FILE = "adljax_checksums.json"
"""The record of a step's file checksums, inside the step's directory."""
_CHECKSUMS_FORMAT_VERSION = 1
_SHOWN_PROBLEMS = 3  # damaged files named per step; the rest are counted


class _HideOrbaxNoise(logging.Filter):
    """Hides Orbax log records that adljax reports better itself.

    Mid-epoch saves carry no evaluation metrics by design, and Orbax warns about each one. It
    also logs a missing or unreadable ``_CHECKPOINT_METADATA`` (which it does without) for
    each step as it lists them, before the checksums are verified, which name that file.
    """

    _HIDDEN = (
        "did not provide metrics",
        "Metadata file does not exist",
        "Failed to read Metadata file",
        "Failed to json parse Metadata file",
    )

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not any(hidden in message for hidden in self._HIDDEN)


_ORBAX_NOISE_FILTER = _HideOrbaxNoise()


class CheckpointError(RuntimeError):
    """A checkpoint directory is missing, unreadable, damaged or does not match the model."""


class CheckpointWarning(UserWarning):
    """``intact_step()`` (so ``load_checkpoint``) skipped damaged steps for an older intact one."""


# What ``fit`` (and ``CheckpointManager.save``) write into a step's metadata: a key ending in
# "?" may be absent; a leaf is a type, a tuple of types (None for null), or a nested schema.
# ``float`` accepts integers too, ``int`` refuses booleans; other keys are not checked.
_META_SCHEMA: dict[str, Any] = {
    "format_version": int,
    "versions": dict,
    "task?": str,
    "model?": {"name": (str, None), "config": dict, "class?": str},
    "dataset?": {
        "name?": (str, None),
        "data_dir?": (str, None),
        "options?": dict,
        "info?": {"input_shape?": list, "task?": str},
    },
    "data_position?": {
        "epoch": int,
        "batch_in_epoch": int,
        "seed": int,
        "batch_size": int,
        "num_batches?": int,
    },
    "epoch_metrics?": list,
    "epoch_diagnostics?": list,
    "metrics?": dict,
    "history?": list,
    "early_stopping?": {
        "best?": (float, None),
        "epochs_without_improvement?": int,
        "stopped?": bool,
    },
    "optimizer?": dict,
    "ensemble?": (int, None),
    "augment?": bool,
    "pretrained?": (str, None),
    "freeze?": list,
}


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

    Use as a context manager, or call ``close()``: it waits for asynchronous saves (and
    their checksum records) to finish. Each read verifies the step's files against their
    checksums (each step at most once per manager) before Orbax reads them.
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
        logging.getLogger("absl").addFilter(_ORBAX_NOISE_FILTER)
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
        # Orbax reads every step's metrics on opening and fails on one damaged metrics file;
        # then the steps are opened without their metrics, so that reads can name the damage
        # and fall back, while saving and ranking (which need the metrics) refuse.
        self._unranked: str | None = None
        try:
            self._manager = self._open(manager_options)
        except Exception as error:
            self._unranked = _short(error)
            try:
                options = dataclasses.replace(manager_options, lightweight_initialize=True)
                self._manager = self._open(options)
            except Exception as again:
                raise CheckpointError(
                    f"cannot open checkpoint directory {str(self.directory)!r}: {_short(again)}"
                ) from again
        # The thread writing the last async save's checksums, and what it raised.
        self._recorder: threading.Thread | None = None
        self._recorder_error: BaseException | None = None
        self._intact: set[int] = set()  # steps verified (or unverifiable) by this manager

    def _open(self, options: ocp.CheckpointManagerOptions) -> ocp.CheckpointManager:
        return ocp.CheckpointManager(
            self.directory,
            options=options,
            item_names=_ITEMS,
            item_handlers={
                "state": ocp.StandardCheckpointHandler(),
                "meta": ocp.JsonCheckpointHandler(),
            },
        )

    def _metric(self, metrics: Mapping[str, float]) -> float:
        return float(metrics[self.monitor])

    def _check_ranked(self, action: str) -> None:
        """Raises ``CheckpointError`` if the steps were opened without their metrics."""
        if self._unranked is None:
            return
        damaged = "; ".join(
            _damaged(self.directory, step, problems)
            for step in self.all_steps()
            if (problems := self._problems(step))
        )
        raise CheckpointError(
            f"cannot {action} in {str(self.directory)!r}: Orbax cannot read the metrics of "
            f"its steps ({self._unranked}); {damaged or 'no checksum names the damaged step'}"
            " - move the damaged step out of the directory (nothing was deleted)"
        )

    def __enter__(self) -> "CheckpointManager":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def all_steps(self) -> list[int]:
        """Steps of the complete checkpoints on disk, oldest first (damaged ones included)."""
        return list(self._manager.all_steps())

    def latest_step(self) -> int | None:
        """The newest complete checkpoint's step, or None when there is none."""
        return self._manager.latest_step()

    def best_step(self) -> int | None:
        """The step of the best checkpoint by ``monitor`` (the latest if none has metrics)."""
        self._check_ranked("rank the checkpoints")
        return self._manager.best_step()

    def save(
        self,
        step: int,
        state: TrainState,
        meta: Mapping[str, Any],
        metrics: Mapping[str, float] | None = None,
    ) -> None:
        """Starts saving ``state`` and a snapshot of ``meta`` (JSON) as ``step``; returns
        before the write ends.

        ``metrics`` ranks the checkpoint for ``keep_best``; without the monitored metric it
        is kept only while it is among the ``keep_last`` newest. Once Orbax has finalized the
        step, the checksums of its files are recorded (in a background thread for async
        saves; the next save, ``wait()`` and ``close()`` wait for it).
        """
        self._join_recorder()
        self._check_ranked(f"save step {step}")
        if metrics is not None and self.monitor not in metrics:
            metrics = None
        # A copy: an async save serializes ``meta`` later, after the caller's lists have moved on.
        meta = json.loads(
            json.dumps(
                {"format_version": META_FORMAT_VERSION, **meta, "versions": library_versions()}
            )
        )
        self._intact.discard(step)
        saved = self._manager.save(
            step,
            args=ocp.args.Composite(
                state=ocp.args.StandardSave(_savable(state)), meta=ocp.args.JsonSave(meta)
            ),
            metrics=dict(metrics) if metrics is not None else None,
        )
        if not saved:
            return
        if self.options.async_save:
            self._recorder = threading.Thread(
                target=self._record_when_finalized, args=(step,), name="adljax-checksums"
            )
            self._recorder.start()
        else:
            _write_checksums(self._step_dir(step), step)

    def _record_when_finalized(self, step: int) -> None:
        """The async recorder: waits for Orbax to finalize ``step``, then records it."""
        try:
            self._manager.wait_until_finished()
        except BaseException:  # the save failed: Orbax raises it again in the caller's thread
            return
        try:
            _write_checksums(self._step_dir(step), step)
        except BaseException as error:
            self._recorder_error = error

    def _join_recorder(self) -> None:
        if self._recorder is not None:
            self._recorder.join()
            self._recorder = None
        error, self._recorder_error = self._recorder_error, None
        if error is not None:
            raise CheckpointError(
                f"cannot record the checksums of a step in {str(self.directory)!r}: {_short(error)}"
            ) from error

    def verify(self, step: int) -> None:
        """Raises ``CheckpointError`` unless every file of ``step`` matches its checksum.

        The message names the step, each changed, truncated or missing file, and the newest
        intact step. A step saved without a checksum record (by an older adljax) passes.
        """
        step = self._existing_step(step)
        problems = self._problems(step)
        if problems:
            newest, newer_damaged = self._newest_intact(exclude=step)
            advice = self._advice(step, newest, newer_damaged)
            raise CheckpointError(f"{_damaged(self.directory, step, problems)}; {advice}")

    def newest_intact_step(self) -> int | None:
        """The newest step whose files all match their checksums, or None when none does."""
        return self._newest_intact()[0]

    def intact_step(self, step: int | None = None) -> int:
        """``step`` if it is intact (else ``CheckpointError``, see ``verify``); for None, the
        newest intact step, with a ``CheckpointWarning`` naming each newer damaged step.

        The reads below take the latest step by default and refuse a damaged one; pass them
        ``intact_step()`` to fall back instead (``load_checkpoint`` does).
        """
        if step is not None:
            return self._verified(step)
        self._existing_step(None)
        newest, damaged = self._newest_intact()
        if damaged and newest is None:
            raise CheckpointError(
                f"no intact checkpoint in {str(self.directory)!r}: "
                f"{'; '.join(damaged.values())} (nothing was deleted)"
            )
        if damaged:
            warnings.warn(
                f"{'; '.join(damaged.values())}; using step {newest}, the newest intact step",
                CheckpointWarning,
                stacklevel=3,
            )
        return newest

    def read_meta(
        self, step: int | None = None, *, require: Collection[str] = ()
    ) -> dict[str, Any]:
        """The JSON metadata saved with ``step`` (default: the latest).

        The metadata is checked against what ``fit`` writes: ``CheckpointError`` names each
        key that is missing or of the wrong type. ``require`` lists optional top-level keys
        that must be present too, e.g. ``("data_position",)`` to resume a run.
        """
        return self._read_meta(self._verified(step), require)

    def restore(self, target: TrainState, step: int | None = None) -> tuple[TrainState, dict]:
        """Restores ``step`` (default: the latest) into the structure of ``target``.

        ``target`` may be concrete or abstract (``jax.eval_shape``); its parameter and model
        state shapes must match the checkpoint's, else ``CheckpointError`` lists the
        differences before anything is read. A damaged step raises ``CheckpointError``
        naming the newest intact step and how to resume from it.
        """
        step = self._verified(step)
        meta = self._read_meta(step)
        self.check_shapes({"params": target.params, "model_state": target.model_state}, step)
        abstract = jax.tree.map(_abstract, _savable(target))
        state = self._restore_state(step, ocp.args.StandardRestore(abstract))
        return target.replace(**{f: state[f] for f in _STATE_FIELDS}), meta

    def restore_tree(self, step: int | None = None) -> tuple[dict[str, PyTree], dict]:
        """Restores ``step`` (default: the latest) as plain nested dicts, without a target.

        Returns ``({"step", "params", "model_state", "opt_state", "key"}, meta)``; optimizer
        states come back as dicts and lists rather than their Optax classes.
        """
        step = self._verified(step)
        meta = self._read_meta(step)
        return dict(self._restore_state(step, ocp.args.StandardRestore())), meta

    def restore_variables(self, step: int | None = None) -> tuple[dict[str, PyTree], dict]:
        """Restores only the model variables ``{"params", **model_state}`` and the metadata.

        Needs no optimizer or model object: used to predict from a directory alone.
        """
        tree, meta = self.restore_tree(step)
        return {"params": tree["params"], **(tree.get("model_state") or {})}, meta

    def check_shapes(
        self, expected: Mapping[str, PyTree], step: int, *, problem: str | None = None
    ) -> None:
        """Raises ``CheckpointError`` listing how the shapes in ``expected`` differ from the
        ones saved at ``step``, without reading any array.

        ``expected`` maps ``"params"`` and optionally ``"model_state"`` to trees of arrays
        or ``jax.ShapeDtypeStruct``; only those groups are compared. ``problem`` opens the
        message (default: the checkpoint was saved from a different architecture).
        """
        try:
            stored = self._manager.item_metadata(step)["state"].tree
        except Exception as error:
            raise CheckpointError(
                f"cannot read step {step} in {str(self.directory)!r} (damaged checkpoint): "
                f"{_short(error)}"
            ) from error
        expected_shapes = _shapes(dict(expected))
        found = _shapes({group: stored.get(group, {}) for group in expected})
        problems = [
            f"missing in checkpoint: {p} {expected_shapes[p]}"
            for p in expected_shapes
            if p not in found
        ]
        problems += [f"not in the model: {p} {found[p]}" for p in found if p not in expected_shapes]
        problems += [
            f"shape of {p}: model {expected_shapes[p]}, checkpoint {found[p]}"
            for p in expected_shapes
            if p in found and expected_shapes[p] != found[p]
        ]
        if problems:
            shown = "\n  ".join(problems[:20])
            more = f"\n  ... and {len(problems) - 20} more" if len(problems) > 20 else ""
            problem = problem or (
                f"the checkpoint at step {step} in {str(self.directory)!r} was saved from a "
                "different architecture"
            )
            raise CheckpointError(f"{problem}:\n  {shown}{more}")

    def wait(self) -> None:
        """Blocks until every started save has been written and its checksums recorded."""
        self._join_recorder()
        self._manager.wait_until_finished()

    def close(self) -> None:
        """Waits for pending saves and releases the manager (also when a wait raises)."""
        try:
            self.wait()
        finally:
            self._manager.close()

    def _verified(self, step: int | None) -> int:
        """``step`` (default: the latest), after ``verify``."""
        step = self._existing_step(step)
        self.verify(step)
        return step

    def _step_dir(self, step: int) -> Path:
        return self.directory / str(step)

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

    def _problems(self, step: int) -> list[str]:
        """What is wrong with the files of ``step`` (empty: intact or saved unverified)."""
        self._join_recorder()
        if step in self._intact:
            return []
        problems = _checksum_problems(self._step_dir(step))
        if not problems:
            self._intact.add(step)
        return problems

    def _newest_intact(self, exclude: int | None = None) -> tuple[int | None, dict[int, str]]:
        """``(newest intact step or None, {damaged step newer than it: description})``."""
        damaged = {}
        for step in reversed(self.all_steps()):
            if step == exclude:
                continue
            problems = self._problems(step)
            if not problems:
                return step, damaged
            damaged[step] = _damaged(self.directory, step, problems)
        return None, damaged

    def _advice(self, step: int, newest: int | None, newer_damaged: Collection[int]) -> str:
        """How to go on without the damaged ``step``: read ``newest``, or resume from it."""
        if newest is None:
            return "no other step is intact (nothing was deleted)"
        advice = (
            f"the newest intact step is {newest}: pass step={newest} (--step {newest}) to read it"
        )
        if step > newest:  # resuming takes the latest step: every newer one must go
            paths = ", ".join(repr(str(self._step_dir(s))) for s in sorted({step, *newer_damaged}))
            advice += f"; to resume training from it, move {paths} out of {str(self.directory)!r}"
        return f"{advice} (nothing was deleted)"

    def _read_meta(self, step: int, require: Collection[str] = ()) -> dict:
        try:
            restored = self._manager.restore(
                step, args=ocp.args.Composite(meta=ocp.args.JsonRestore())
            )
        except Exception as error:  # Orbax raises many types for damaged files
            raise CheckpointError(
                f"cannot read the metadata of step {step} in {str(self.directory)!r}: "
                f"{_short(error)}"
            ) from error
        meta = restored.meta
        problems = _schema_problems(meta, _required(_META_SCHEMA, require), "")
        if problems:
            raise CheckpointError(
                f"the metadata of step {step} in {str(self.directory)!r} is not what adljax "
                f"writes: {'; '.join(problems)}"
            )
        return dict(meta)

    def _restore_state(self, step: int, args: ocp.args.StandardRestore) -> dict[str, PyTree]:
        try:
            return self._manager.restore(step, args=ocp.args.Composite(state=args)).state
        except Exception as error:
            raise CheckpointError(
                f"cannot restore step {step} from {str(self.directory)!r} "
                f"(damaged or incompatible checkpoint): {_short(error)}"
            ) from error


def _short(error: BaseException, limit: int = 500) -> str:
    """The first line of ``error``'s message without TensorStore's spec dumps, shortened."""
    text = str(error).strip().split("\n", 1)[0]
    for dump in (" See full TensorStore details", " [tensorstore_spec="):
        text = text.split(dump, 1)[0]
    text = text or type(error).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _step_files(step_dir: Path) -> list[Path]:
    """The files of a step, the checksum record (and its temporary) excepted."""
    return sorted(
        path
        for path in step_dir.rglob("*")
        if path.is_file() and not path.name.startswith(CHECKSUMS_FILE)
    )


def _sha256(path: Path) -> str:
    with path.open("rb") as file:
        return hashlib.file_digest(file, "sha256").hexdigest()


def _write_checksums(step_dir: Path, step: int) -> None:
    """Records the size and SHA-256 of every file of ``step_dir`` (temporary file + rename)."""
    files = {
        path.relative_to(step_dir).as_posix(): {
            "size": path.stat().st_size,
            "sha256": _sha256(path),
        }
        for path in _step_files(step_dir)
    }
    record = {"format_version": _CHECKSUMS_FORMAT_VERSION, "step": step, "files": files}
    temporary = step_dir / f"{CHECKSUMS_FILE}.tmp"
    with temporary.open("w") as file:
        json.dump(record, file, indent=1)
        file.flush()
        os.fsync(file.fileno())
    temporary.replace(step_dir / CHECKSUMS_FILE)


def _checksum_problems(step_dir: Path) -> list[str]:
    """``"<file>: <what is wrong>"`` for each file of ``step_dir`` that differs from its
    record; empty when all match or when there is no record."""
    try:
        record = json.loads((step_dir / CHECKSUMS_FILE).read_text())
        files = {
            name: (int(entry["size"]), str(entry["sha256"]))
            for name, entry in record["files"].items()
        }
    except FileNotFoundError:
        return []
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return [f"{CHECKSUMS_FILE}: unreadable checksum record"]
    problems = []
    for name, (size, digest) in sorted(files.items()):
        path = step_dir / name
        if not path.is_file():
            problems.append(f"{name}: missing")
        elif (actual := path.stat().st_size) != size:
            change = "truncated" if actual < size else "grown"
            problems.append(f"{name}: {change} ({actual} of {size} bytes)")
        elif _sha256(path) != digest:
            problems.append(f"{name}: contents changed (SHA-256 mismatch)")
    return problems


def _damaged(directory: Path, step: int, problems: list[str]) -> str:
    shown = ", ".join(problems[:_SHOWN_PROBLEMS])
    more = len(problems) - _SHOWN_PROBLEMS
    shown += f" and {more} more file{'s' * (more > 1)}" if more > 0 else ""
    return f"step {step} in {str(directory)!r} is damaged ({shown})"


def _required(schema: dict[str, Any], require: Collection[str]) -> dict[str, Any]:
    """``schema`` with the optional top-level keys named in ``require`` made required."""
    return {key.rstrip("?") if key.rstrip("?") in require else key: v for key, v in schema.items()}


_KINDS = {
    bool: "true or false",
    int: "an integer",
    float: "a number",
    str: "a string",
    list: "a list",
    dict: "an object",
    None: "null",
}


def _matches(value: Any, kind: Any) -> bool:
    if kind is None:
        return value is None
    if isinstance(value, bool):
        return kind is bool
    if kind is float:
        return isinstance(value, int | float)
    return isinstance(value, kind)


def _kind_of(value: Any) -> str:
    kind = next((k for k in (None, bool, int, float, str, list, dict) if _matches(value, k)), "")
    return _KINDS[kind] if kind != "" else type(value).__name__


def _schema_problems(value: Any, schema: Any, path: str) -> list[str]:
    """How ``value`` departs from ``schema`` (see ``_META_SCHEMA``), one entry per key."""
    where = path or "the metadata"
    if isinstance(schema, dict):
        if not isinstance(value, dict):
            return [f"{where}: expected an object, got {_kind_of(value)}"]
        problems = []
        for spec, inner in schema.items():
            key = spec.rstrip("?")
            name = f"{path}.{key}" if path else key
            if key in value:
                problems += _schema_problems(value[key], inner, name)
            elif not spec.endswith("?"):
                expected = "an object" if isinstance(inner, dict) else _expected(inner)
                problems.append(f"{name!r} is missing (expected {expected})")
        return problems
    if not any(_matches(value, kind) for kind in _as_tuple(schema)):
        return [f"{where!r} is {_kind_of(value)}, expected {_expected(schema)}"]
    return []


def _as_tuple(kinds: Any) -> tuple:
    return kinds if isinstance(kinds, tuple) else (kinds,)


def _expected(kinds: Any) -> str:
    return " or ".join(_KINDS[kind] for kind in _as_tuple(kinds))


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
