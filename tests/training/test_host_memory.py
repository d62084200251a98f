"""Tests for adljax.training.host_memory: glibc malloc settings applied once, opt-out honoured."""

import ctypes
import platform
import resource

import pytest

from adljax.training import host_memory


@pytest.fixture
def fresh():
    host_memory.keep_freed_host_memory.cache_clear()
    yield host_memory.keep_freed_host_memory
    host_memory.keep_freed_host_memory.cache_clear()


def _glibc() -> bool:
    return platform.system() == "Linux" and hasattr(ctypes.CDLL(None), "gnu_get_libc_version")


def test_applied_on_glibc_and_only_there(fresh):
    assert fresh() is _glibc()


def test_the_environment_variable_opts_out(fresh, monkeypatch):
    monkeypatch.setenv(host_memory.OPT_OUT, "1")
    assert fresh() is False


def _faults_of_a_second_block(size: int = 48 * 2**20) -> int:
    """Page faults of malloc + write + free of ``size`` bytes, after the same once."""
    libc = ctypes.CDLL(None)
    libc.malloc.restype = ctypes.c_void_p
    libc.malloc.argtypes = [ctypes.c_size_t]
    libc.free.argtypes = [ctypes.c_void_p]
    libc.memset.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_size_t]

    def block():
        pointer = libc.malloc(size)
        libc.memset(pointer, 1, size)
        libc.free(pointer)

    block()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    block()
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before


def test_a_freed_large_block_is_reused_without_page_faults(fresh):
    """glibc maps a 48 MB block afresh each time (~12,000 faults of 4 KB pages); with the
    settings the second block reuses the first's memory."""
    assert fresh() is _glibc()
    if _glibc():
        assert _faults_of_a_second_block() < 100
