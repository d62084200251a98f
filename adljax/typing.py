"""Semantic type aliases used across adljax."""

from collections.abc import Mapping
from typing import Any

import jax
import numpy as np

Array = jax.Array
ArrayLike = jax.typing.ArrayLike
PRNGKey = jax.Array  # a typed key from ``jax.random.key``
PyTree = Any
Batch = Mapping[str, np.ndarray | jax.Array]
Metrics = dict[str, jax.Array]
