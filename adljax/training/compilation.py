"""``adljax.jit``: ``jax.jit`` with the XLA options adljax compiles its steps with.

Synopsis::

    step = adljax.jit(adljax.make_train_step(task), donate_argnums=0)

On CPUs this jaxlib hands convolutions, matrix products and reductions to YNNPACK, whose
convolutions keep one of the cores busy; XLA's own (Eigen) convolutions use them all. adljax
therefore compiles for the CPU with ``xla_cpu_experimental_ynn_fusion_type`` limited to
matrix products and reductions (`CPU_COMPILER_OPTIONS`): the same function (gradients agree
to float rounding), ConvNet train steps 13-30% faster, nothing else changed
(``benchmarks/NOTES.md``). GPUs and TPUs compile with XLA's defaults. A jaxlib that does not
know the option compiles with its defaults too. Before its first CPU compilation `jit` also
calls `adljax.training.host_memory.keep_freed_host_memory` (glibc's malloc keeps freed
memory, so XLA:CPU's per-step buffers stop page-faulting).
"""

import functools
import threading
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from adljax.training.host_memory import keep_freed_host_memory

CPU_COMPILER_OPTIONS = {
    "xla_cpu_experimental_ynn_fusion_type": (
        "LIBRARY_FUSION_TYPE_INDIVIDUAL_DOT,LIBRARY_FUSION_TYPE_REDUCE"
    )
}
"""XLA options adljax compiles with on CPUs: YNNPACK for matrix products and reductions only,
so convolutions run on XLA's multi-threaded Eigen path."""


@functools.cache
def _cpu_options_supported() -> bool:
    """Whether this jaxlib's CPU compiler accepts `CPU_COMPILER_OPTIONS` (checked once)."""
    cpu = jax.sharding.SingleDeviceSharding(jax.devices("cpu")[0])
    try:
        jax.jit(jnp.negative, compiler_options=CPU_COMPILER_OPTIONS).lower(
            jax.ShapeDtypeStruct((), jnp.float32, sharding=cpu)
        ).compile()
    except jax.errors.JaxRuntimeError:  # "No such compile option", or an unknown value
        return False
    return True


def compiler_options(platform: str | None = None) -> dict[str, str] | None:
    """The XLA options adljax compiles with on ``platform`` (default: JAX's default backend).

    Returns:
        `CPU_COMPILER_OPTIONS` on ``"cpu"`` (when this jaxlib knows them), else None.
    """
    platform = platform or jax.default_backend()
    if platform == "cpu" and _cpu_options_supported():
        return dict(CPU_COMPILER_OPTIONS)
    return None


class _Jitted:
    """``jax.jit(fun, ...)`` built on first use, when the backend is known (so that creating
    one, e.g. at import, does not initialise JAX's backends)."""

    def __init__(self, fun: Callable, jit_kwargs: dict[str, Any]):
        functools.update_wrapper(self, fun, updated=())  # name and docs, not fun's __dict__
        self._fun, self._jit_kwargs = fun, jit_kwargs
        self._lock = threading.Lock()
        self._built: dict[bool, Callable] = {}

    def _build(self, top_level: bool) -> Callable:
        """The ``jax.jit`` object; compiler options only at top level (JAX refuses them on a
        jit nested in another trace, which the outer jit compiles)."""
        built = self._built.get(top_level)
        if built is not None:  # the per-call path: no lock, no pytree walk
            return built
        with self._lock:
            if top_level not in self._built:
                if top_level and jax.default_backend() == "cpu":
                    keep_freed_host_memory()
                kwargs = dict(self._jit_kwargs)
                extra = kwargs.pop("compiler_options", None) or {}
                options = (compiler_options() or {}) | dict(extra) if top_level else {}
                self._built[top_level] = jax.jit(
                    self._fun, compiler_options=options or None, **kwargs
                )
            return self._built[top_level]

    @property
    def _jitted(self) -> Callable:
        return self._build(top_level=True)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return self._jitted(*args, **kwargs)
        except ValueError:  # JAX refuses the options when this call is inside another trace
            leaves = jax.tree.leaves((args, kwargs))
            if not any(isinstance(leaf, jax.core.Tracer) for leaf in leaves):
                raise
            return self._build(top_level=False)(*args, **kwargs)

    def __get__(self, instance: Any, owner: type | None = None) -> Callable:
        """Binds like a function (and like ``jax.jit``'s result) when used on a method."""
        return self if instance is None else functools.partial(self, instance)

    def __getattr__(self, name: str) -> Any:  # lower, trace, eval_shape, clear_cache...
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self._jitted, name)


def jit(fun: Callable, **jit_kwargs: Any) -> Callable:
    """``jax.jit(fun, **jit_kwargs)`` compiled with `compiler_options` for the default backend.

    ``jit_kwargs`` are ``jax.jit``'s (``donate_argnums``, ``static_argnames``...); explicit
    ``compiler_options`` are merged over adljax's. The result calls, lowers and traces like
    the ``jax.jit`` object, which is created on first use. Where JAX refuses compiler options
    (inside another ``jax.jit``, or ``grad``'s trace) it is a plain nested ``jax.jit``: the
    outermost jit's options then apply.
    """
    return _Jitted(fun, jit_kwargs)
