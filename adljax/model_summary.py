"""Model summaries: each module's output shape, parameters, bytes and FLOPs per example.

``adljax.summary(model, sample)`` traces the model once with abstract values (nothing is
computed or allocated) and records every module call through ``flax.linen.intercept_methods``;
FLOPs are XLA's cost analysis of each call lowered on its own, as ``flax.linen.tabulate`` does.
Unlike ``nn.tabulate`` the result is data (`ModelSummary`), so its columns can be checked and
compared; ``str()`` of it is a table of at most 100 columns.
"""

import dataclasses
import inspect
import math
import textwrap
from collections.abc import Mapping
from typing import Any

import flax.linen as nn
import jax
import numpy as np

from adljax.typing import PyTree

WIDTH = 100
"""No line of ``str(ModelSummary)`` is longer."""


@dataclasses.dataclass(frozen=True)
class LayerSummary:
    """One module call of the traced forward pass.

    Attributes:
      path: the module's path in the model, ``""`` for the model itself.
      module: its class name.
      output_shapes: each output array's shape, in tree order (a dict output's keys sorted).
      params: entries of the ``params`` collection this row owns: the module's own and those of
        any submodule shown in no row of its own (so the column sums to the total).
      state_entries: entries of the other collections (``batch_stats``...) it owns likewise.
      bytes: bytes of those parameters and state entries.
      flops: forward FLOPs per example of the call, submodules included (XLA's cost analysis;
        None where the backend gives none).
    """

    path: str
    module: str
    output_shapes: tuple[tuple[int, ...], ...]
    params: int
    state_entries: int
    bytes: int
    flops: float | None


@dataclasses.dataclass(frozen=True)
class ModelSummary:
    """The rows of `summary`, in call order (a module before the modules it calls)."""

    rows: tuple[LayerSummary, ...]
    input_shape: tuple[int, ...]
    platform: str

    @property
    def params(self) -> int:
        """Entries of the model's ``params`` collection."""
        return sum(row.params for row in self.rows)

    @property
    def state_entries(self) -> int:
        """Entries of the model's other collections (batch statistics...)."""
        return sum(row.state_entries for row in self.rows)

    @property
    def bytes(self) -> int:
        """Bytes of all the model's variables."""
        return sum(row.bytes for row in self.rows)

    @property
    def flops(self) -> float | None:
        """Forward FLOPs per example of the whole model."""
        return self.rows[0].flops

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready copy: the totals and one dict per row."""
        return {
            "input_shape": list(self.input_shape),
            "params": self.params,
            "state_entries": self.state_entries,
            "bytes": self.bytes,
            "flops_per_example": self.flops,
            "platform": self.platform,
            "layers": [dataclasses.asdict(row) for row in self.rows],
        }

    def __str__(self) -> str:
        header = ("module", "type", "output shape", "params", "bytes", "FLOPs/ex")
        cells = [
            (
                "  " * (row.path.count("/") + 1) + row.path.rsplit("/", 1)[-1]
                if row.path
                else "(model)",
                row.module,
                ", ".join(_shape_text(shape) for shape in row.output_shapes),
                f"{row.params:,}",
                _bytes_text(row.bytes),
                _flops_text(row.flops),
            )
            for row in self.rows
        ]
        lines = _columns([header, *cells], caps=(22, 18, 22, 11, 9, 8))
        lines.insert(1, "-" * len(lines[0]))
        state = f", {self.state_entries:,} state entries" if self.state_entries else ""
        total = (
            f"input {_shape_text(self.input_shape)}: {self.params:,} parameters{state}, "
            f"{_bytes_text(self.bytes)}; {_flops_text(self.flops)} FLOPs per example "
            f"(forward, XLA cost analysis on {self.platform})"
        )
        return "\n".join([*lines, "", *textwrap.wrap(total, WIDTH)])


def summary(
    model: nn.Module,
    sample: Any,
    *,
    variables: PyTree | None = None,
    flops: bool = True,
    depth: int | None = None,
    method: str = "__call__",
    **call_kwargs: Any,
) -> ModelSummary:
    """Summarises ``model`` applied to ``sample`` in eval mode.

    Args:
      model: any Flax Linen module; one whose ``__call__`` takes ``train`` gets
        ``train=False`` unless ``call_kwargs`` says otherwise.
      sample: an input batch ``(B, ...)``, an array or a ``jax.ShapeDtypeStruct``; only its
        shape and dtype are used. FLOPs are divided by ``B``.
      variables: the model's variables (e.g. a checkpoint's); default: an abstract
        ``model.init`` (nothing allocated).
      flops: lower every call for its cost analysis (a few ms each); False leaves them None.
      depth: show modules at most this many levels below the model (None: all); a hidden
        module's parameters and state count in its shown ancestor's row.
      method: the model's method to trace, e.g. ``"generate"`` for a GAN's generator.
      **call_kwargs: more keyword arguments of the method.

    Returns:
      `ModelSummary`; ``print`` it for the table.

    Raises:
      ValueError: for a ``sample`` without a batch dimension or a negative ``depth``.
    """
    sample = jax.ShapeDtypeStruct(np.shape(sample), getattr(sample, "dtype", np.float32))
    if not sample.shape or sample.shape[0] < 1:
        raise ValueError(f"sample must be a batch (B, ...) with B >= 1, got shape {sample.shape}")
    if depth is not None and depth < 0:
        raise ValueError(f"depth must be None or >= 0, got {depth}")
    if "train" in inspect.signature(getattr(model, method)).parameters:
        call_kwargs = {"train": False, **call_kwargs}
    if variables is None:
        variables = jax.eval_shape(
            lambda x: model.init(jax.random.key(0), x, method=method, **call_kwargs), sample
        )
    variables = jax.tree.map(_abstract, dict(variables))
    calls = _record_calls(model, method, variables, sample, call_kwargs)
    shown = [c for c in calls if depth is None or len(c["path"]) <= depth]
    owned = _owned_variables(variables, [c["path"] for c in shown])
    rows = tuple(
        LayerSummary(
            path="/".join(call["path"]),
            module=call["module"],
            output_shapes=call["output_shapes"],
            **owned[call["path"]],
            flops=_call_flops(call, variables, sample.shape[0]) if flops else None,
        )
        for call in shown
    )
    return ModelSummary(rows, tuple(sample.shape), jax.default_backend())


def _abstract(leaf: Any) -> jax.ShapeDtypeStruct:
    return jax.ShapeDtypeStruct(np.shape(leaf), leaf.dtype)


def _record_calls(model, method, variables, sample, call_kwargs) -> list[dict[str, Any]]:
    """The model's ``method`` call and every submodule's first ``__call__``, in the order the
    calls start (a module called again, such as a head shared by pyramid levels, shows its
    first call)."""
    calls: dict[tuple[str, ...], dict[str, Any]] = {}

    def record(next_fun, args, kwargs, context):
        module, path = context.module, tuple(context.module.path)
        traced = method if not path else "__call__"
        fresh = context.method_name == traced and path not in calls
        if fresh:
            calls[path] = call = {
                "path": path,
                "module": type(module).__name__,
                "clone": module.clone(parent=None, name=None) if path else model,
                "method": traced,
                "args": jax.tree.map(_abstract, args),
                "kwargs": kwargs,
            }
        outputs = next_fun(*args, **kwargs)
        if fresh:
            call["output_shapes"] = tuple(tuple(leaf.shape) for leaf in jax.tree.leaves(outputs))
        return outputs

    def apply(variables, x):
        with nn.intercept_methods(record):
            return model.apply(variables, x, method=method, **call_kwargs)

    jax.eval_shape(apply, variables, sample)
    return list(calls.values())


def _owned_variables(
    variables: Mapping[str, PyTree], paths: list[tuple[str, ...]]
) -> dict[tuple[str, ...], dict[str, int]]:
    """Each shown path's ``params``, ``state_entries`` and ``bytes``: the variables whose
    module path it is the longest shown prefix of."""
    owned = {path: {"params": 0, "state_entries": 0, "bytes": 0} for path in paths}
    for collection, tree in variables.items():
        for key_path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]:
            names = tuple(str(getattr(k, "key", k)) for k in key_path)
            owner = max((p for p in paths if names[: len(p)] == p), key=len, default=())
            counts = owned.setdefault(owner, {"params": 0, "state_entries": 0, "bytes": 0})
            size = math.prod(leaf.shape)
            counts["params" if collection == "params" else "state_entries"] += size
            counts["bytes"] += size * np.dtype(leaf.dtype).itemsize
    return owned


def _call_flops(call: dict[str, Any], variables: Mapping[str, PyTree], batch: int):
    """FLOPs per example of one recorded call, from the cost analysis of its lowering."""
    scoped = {}
    for collection, tree in variables.items():
        for name in call["path"]:
            tree = tree.get(name, {}) if isinstance(tree, Mapping) else {}
        if tree:
            scoped[collection] = tree
    module, method, kwargs = call["clone"], call["method"], call["kwargs"]
    lowered = jax.jit(lambda v, args: module.apply(v, *args, method=method, **kwargs)).lower(
        scoped, call["args"]
    )
    cost = lowered.cost_analysis()
    return None if not cost or "flops" not in cost else float(cost["flops"]) / batch


def _columns(rows: list[tuple[str, ...]], caps: tuple[int, ...]) -> list[str]:
    """Rows as aligned text: text columns left, number columns (the last three) right, each
    at most its cap wide (longer cells cut with ``…``)."""
    widths = [min(cap, max(len(row[i]) for row in rows)) for i, cap in enumerate(caps)]
    numbers = len(caps) - 3
    lines = []
    for row in rows:
        cells = [c if len(c) <= w else c[: w - 1] + "…" for c, w in zip(row, widths, strict=True)]
        lines.append(
            "  ".join(
                cell.rjust(w) if i >= numbers else cell.ljust(w)
                for i, (cell, w) in enumerate(zip(cells, widths, strict=True))
            ).rstrip()
        )
    return lines


def _shape_text(shape: tuple[int, ...]) -> str:
    return f"({shape[0]},)" if len(shape) == 1 else "(" + ", ".join(map(str, shape)) + ")"


def _bytes_text(size: int) -> str:
    for unit, scale in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if size >= scale:
            return f"{size / scale:.1f} {unit}"
    return f"{size} B"


def _flops_text(flops: float | None) -> str:
    if flops is None:
        return "-"
    for unit, scale in (("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if flops >= scale:
            return f"{flops / scale:.2f}{unit}"
    return f"{flops:.0f}"
