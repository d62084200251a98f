"""`prefetch_to_device`: the same batches in the same order, on the placement, read a fixed
number ahead."""

import jax
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adljax.training.prefetch import prefetch_to_device


@settings(max_examples=30, deadline=None)
@given(count=st.integers(0, 12), size=st.integers(1, 4))
def test_yields_every_batch_in_order_on_the_placement_size_ahead(count, size):
    placement = jax.sharding.SingleDeviceSharding(jax.devices()[-1])
    pulled = []

    def batches():
        for i in range(count):
            pulled.append(i)
            yield {"x": np.full((2, 3), i, np.float32), "y": np.array([i, i], np.int32)}

    for i, batch in enumerate(prefetch_to_device(batches(), placement, size)):
        # Batch i is handed out once batch i + size has been read and sent (or all were).
        assert len(pulled) == min(count, i + size + 1)
        assert isinstance(batch["x"], jax.Array) and batch["x"].sharding == placement
        np.testing.assert_array_equal(batch["x"], np.full((2, 3), i, np.float32))
        assert batch["y"].dtype == np.int32
    assert pulled == list(range(count))


def test_an_error_while_reading_reaches_the_consumer():
    def batches():
        yield {"x": np.zeros(2)}
        raise OSError("record 1 is damaged")

    with pytest.raises(OSError, match="record 1 is damaged"):
        list(prefetch_to_device(batches(), jax.sharding.SingleDeviceSharding(jax.devices()[0])))
