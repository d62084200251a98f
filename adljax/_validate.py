"""Eager checks of user input that raise ``ValueError`` naming the argument."""

import math
from collections.abc import Sequence

import numpy as np


def check_positive_int(value: object, name: str) -> int:
    """Returns ``value`` if it is an int > 0, else raises ``ValueError`` naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"`{name}` must be a positive integer, got {value!r}")
    return value


def _real(value: object) -> float | None:
    """``value`` as a float if it is a real scalar (Python, NumPy or a 0-d JAX array), else
    None: bools, strings and arrays of other shapes are not numbers here."""
    if isinstance(value, bool | str | bytes):
        return None
    try:
        array = np.asarray(value)
    except (TypeError, ValueError):
        return None
    return float(array) if array.ndim == 0 and array.dtype.kind in "iuf" else None


def check_positive_float(value: object, name: str, *, allow_zero: bool = False) -> float:
    """``value`` as a float if it is a finite real number > 0 (>= 0 with ``allow_zero``),
    else raises ``ValueError`` naming ``name`` and the value (NaN, inf, bools and strings
    are refused)."""
    number = _real(value)
    if (
        number is None
        or not math.isfinite(number)
        or number < 0
        or (number == 0 and not allow_zero)
    ):
        kind = "a finite number >= 0" if allow_zero else "a positive finite number"
        raise ValueError(f"`{name}` must be {kind}, got {value!r}")
    return number


def check_fraction(value: object, name: str) -> float:
    """``value`` as a float if it is a real number in ``[0, 1)`` (a decay or a momentum),
    else raises ``ValueError`` naming ``name`` and the value."""
    number = _real(value)
    if number is None or not 0 <= number < 1:
        raise ValueError(f"`{name}` must be a number in [0, 1), got {value!r}")
    return number


def check_real_dtype(dtype: np.dtype, name: str) -> None:
    """Raises ``ValueError`` naming ``name`` and ``dtype`` unless it holds real numbers: bool,
    integer or floating point (also ml_dtypes' ``bfloat16`` etc.), not complex numbers,
    strings, bytes, Python objects, dates or records."""
    dtype = np.dtype(dtype)
    # ml_dtypes' types (bfloat16, float8_*, int4) are real numbers with NumPy kind "V".
    if dtype.kind in "biuf" or (dtype.names is None and dtype.type.__module__ == "ml_dtypes"):
        return
    raise ValueError(
        f"`{name}` must hold numbers, got dtype {dtype}; accepted are bool, integer and real "
        f"floating-point dtypes"
    )


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
