"""Eager checks of user input that raise ``ValueError`` naming the argument."""

from collections.abc import Sequence


def check_positive_int(value: object, name: str) -> int:
    """Returns ``value`` if it is an int > 0, else raises ``ValueError`` naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"`{name}` must be a positive integer, got {value!r}")
    return value


def check_choice(value: str, name: str, choices: Sequence[str]) -> str:
    """Returns ``value`` if it is one of ``choices``, else raises ``ValueError``."""
    if value not in choices:
        allowed = ", ".join(repr(c) for c in choices)
        raise ValueError(f"unknown {name} {value!r}; choose one of {allowed}")
    return value


def check_positive_ints(value: object, name: str, *, allow_empty: bool = False) -> tuple[int, ...]:
    """``value`` as a tuple of ints > 0 (lists from JSON too), else raises ``ValueError``."""
    if (
        isinstance(value, str | bytes)
        or not isinstance(value, Sequence)
        or (not value and not allow_empty)
    ):
        kind = "a tuple" if allow_empty else "a non-empty tuple"
        raise ValueError(f"`{name}` must be {kind} of positive ints, got {value!r}")
    return tuple(check_positive_int(item, f"{name}[{i}]") for i, item in enumerate(value))
