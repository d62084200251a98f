"""Streamed epochs (`adljax.data.streaming`): grain's reader threads read whole batches
ahead, in exactly the order and with exactly the content of the unthreaded read."""

import threading

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adljax.data import DatasetInfo, SourceDataset

INFO = DatasetInfo(
    name="ids", task="classification", input_shape=(2,), num_outputs=3, num_classes=3
)


class RecordingSource:
    """Example ``i`` is ``{"id": i}``; records which thread read each example and can fail
    at one index, as a damaged record would."""

    def __init__(self, n: int, broken: int | None = None) -> None:
        self.n, self.broken = n, broken
        self.readers: set[int] = set()
        self.lock = threading.Lock()

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> dict:
        with self.lock:
            self.readers.add(threading.get_ident())
        if i == self.broken:
            raise OSError(f"record {i} is damaged")
        return {"id": i}


def dataset(n: int, read_threads: int, broken: int | None = None) -> SourceDataset:
    return SourceDataset(
        RecordingSource(n, broken),
        INFO,
        lambda ex: {"x": [ex["id"], ex["id"] + 0.5], "y": ex["id"] % 3},
        read_threads=read_threads,
        prefetch_batches=3,
    )


@settings(max_examples=25, deadline=None)
@given(
    n=st.integers(1, 60),
    batch_size=st.integers(1, 16),
    threads=st.integers(1, 4),
    seed=st.integers(0, 2**32 - 1),
    epoch=st.integers(0, 100),
    drop_remainder=st.booleans(),
    data=st.data(),
)
def test_threaded_epochs_equal_the_unthreaded_read(
    n, batch_size, threads, seed, epoch, drop_remainder, data
):
    if drop_remainder and batch_size > n:
        batch_size = n
    total = dataset(n, 0).num_batches(batch_size, drop_remainder)
    start = data.draw(st.integers(0, total))
    kwargs = dict(seed=seed, epoch=epoch, drop_remainder=drop_remainder, start_batch=start)
    plain = list(dataset(n, 0).batches(batch_size, **kwargs))
    threaded = list(dataset(n, threads).batches(batch_size, **kwargs))
    assert len(plain) == len(threaded) == total - start
    for a, b in zip(plain, threaded, strict=True):
        assert a.keys() == b.keys()
        for key in a:
            assert a[key].dtype == b[key].dtype
            np.testing.assert_array_equal(a[key], b[key])


def test_reader_threads_read_and_no_threads_reads_in_the_caller():
    main = threading.get_ident()
    threaded = dataset(64, 2)
    batches = list(threaded.batches(8, seed=0))
    assert len(batches) == 8 and main not in threaded.source.readers
    plain = dataset(64, 0)
    list(plain.batches(8, seed=0))
    assert plain.source.readers == {main}


@pytest.mark.parametrize("threads", [0, 2])
def test_a_failing_read_raises_its_own_error(threads):
    with pytest.raises(OSError, match="record 37 is damaged"):
        list(dataset(50, threads, broken=37).batches(4, shuffle=False))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"read_threads": -1}, "`read_threads` must be a non-negative integer"),
        ({"prefetch_batches": 0}, "`prefetch_batches` must be a positive integer"),
    ],
)
def test_bad_reader_settings_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        SourceDataset(RecordingSource(4), INFO, lambda ex: ex, **kwargs)
