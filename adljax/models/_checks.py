"""Trace-time checks of model inputs and attributes, shared by every model family.

Shapes are static under ``jax.jit``, so these checks raise a ``ValueError`` while tracing,
before any compute starts.
"""

from collections.abc import Sequence

from adljax.typing import Array


def _format_shape(dims: Sequence[object]) -> str:
    """Formats dimensions as a tuple, e.g. ``(batch, 8, 8, 1)``."""
    inner = ", ".join(str(d) for d in dims)
    return f"({inner},)" if len(dims) == 1 else f"({inner})"


def check_input(
    x: Array,
    *,
    name: str,
    min_rank: int,
    input_shape: tuple[int, ...] | None = None,
    max_rank: int | None = None,
) -> None:
    """Raises ``ValueError`` unless ``x`` has a batch axis plus the expected trailing shape.

    Args:
        x: the model input, shape ``(batch, *input_shape)``.
        name: the argument's name, quoted in the message (e.g. ``"x"``).
        min_rank: the smallest rank allowed, batch axis included.
        input_shape: the per-example shape ``x.shape[1:]`` must equal, if given. It fixes the
            rank, so ``min_rank`` and ``max_rank`` are then not consulted (a model checks the
            length of its ``input_shape`` attribute when it is built).
        max_rank: the largest rank allowed, batch axis included; ``None`` for no limit.

    Raises:
        ValueError: naming ``name``, the expected and the actual shape, e.g.
            ``"`x` must have shape (batch, 8, 8, 1), got (32, 64)"``.
    """
    shape = tuple(x.shape)
    if input_shape is not None:
        if shape[1:] != tuple(input_shape) or len(shape) == 0:
            expected = _format_shape(("batch", *input_shape))
            raise ValueError(f"`{name}` must have shape {expected}, got {shape}")
        return
    if len(shape) < min_rank or (max_rank is not None and len(shape) > max_rank):
        if max_rank == min_rank:
            rank = f"rank {min_rank}"
        elif max_rank is None:
            rank = f"rank >= {min_rank}"
        else:
            rank = f"rank {min_rank} to {max_rank}"
        expected = _format_shape(("batch", *["..."] * (min_rank > 1)))
        raise ValueError(f"`{name}` must have {rank} {expected}, got shape {shape}")


def check_input_shape(input_shape: Sequence[int] | None) -> tuple[int, ...] | None:
    """Returns ``input_shape`` as a tuple of positive ints (or ``None``), else raises."""
    if input_shape is None:
        return None
    valid = (
        isinstance(input_shape, Sequence)
        and not isinstance(input_shape, str | bytes)
        and len(input_shape) > 0
        and all(isinstance(d, int) and not isinstance(d, bool) and d > 0 for d in input_shape)
    )
    if not valid:
        raise ValueError(
            f"`input_shape` must be a non-empty tuple of positive ints (the per-example "
            f"shape), got {input_shape!r}"
        )
    return tuple(input_shape)
