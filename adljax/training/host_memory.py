"""`keep_freed_host_memory`: stop XLA:CPU's per-step buffers from page-faulting (glibc).

XLA:CPU allocates each call's buffers with ``malloc`` and frees them when the call ends.
glibc serves blocks above its mmap threshold (at most 32 MB) with fresh ``mmap`` pages and
returns freed heap tops to the system, so every train step of a ConvNet touches tens of
megabytes of new pages: the page faults cost about a third of the MNIST CNN's step
(``benchmarks/NOTES.md``). Keeping the memory in the process, as PyTorch's caching
allocator does, removes them. The setting is process-wide (PyTorch in the same process
profits too) and raises the resident size to the peak the process has needed.
"""

import ctypes
import functools
import os
import platform

OPT_OUT = "ADLJAX_KEEP_MALLOC_DEFAULTS"
"""Environment variable: set to ``1`` to leave glibc's malloc settings alone."""

_M_TRIM_THRESHOLD = -1
_M_MMAP_MAX = -4
_NEVER_TRIM = 2**31 - 1


@functools.cache
def keep_freed_host_memory() -> bool:
    """Tells glibc's ``malloc`` to serve every block from its heap and to keep freed memory.

    ``mallopt(M_MMAP_MAX, 0)`` and ``mallopt(M_TRIM_THRESHOLD, 2**31 - 1)``, once per
    process. `adljax.jit` calls it before it first compiles for the CPU.

    Returns:
        Whether the settings were applied: False off Linux/glibc, or when the environment
        variable `OPT_OUT` is ``1``.
    """
    if os.environ.get(OPT_OUT) == "1" or platform.system() != "Linux":
        return False
    libc = ctypes.CDLL(None)  # the C library the process already uses
    if not hasattr(libc, "gnu_get_libc_version"):  # glibc only (musl's mallopt is a no-op)
        return False
    return bool(libc.mallopt(_M_MMAP_MAX, 0)) and bool(libc.mallopt(_M_TRIM_THRESHOLD, _NEVER_TRIM))
