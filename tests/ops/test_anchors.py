"""Centre points of feature maps and pyramids; ltrb encoding and decoding."""

import hypothesis.extra.numpy as hnp
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from adljax import ops


def test_centre_points_of_one_map_by_hand():
    points = ops.centre_points(16, 24, 8)  # a 2 x 3 map
    np.testing.assert_array_equal(points, [[4, 4], [12, 4], [20, 4], [4, 12], [12, 12], [20, 12]])
    assert ops.centre_points(17, 8, 8).shape == (3 * 1, 2)  # ceil(17 / 8) rows


def test_pyramid_points_are_the_maps_finest_first_with_their_strides():
    points, strides = ops.pyramid_centre_points(64, 32, (8, 16))
    assert points.shape == (8 * 4 + 4 * 2, 2)
    np.testing.assert_array_equal(points[:32], ops.centre_points(64, 32, 8))
    np.testing.assert_array_equal(points[32:], ops.centre_points(64, 32, 16))
    np.testing.assert_array_equal(strides, [8] * 32 + [16] * 8)


@given(
    hnp.arrays(np.float32, (5, 2), elements=st.floats(0, 64, width=32)),
    hnp.arrays(np.float32, (5, 4), elements=st.floats(0.125, 30, width=32)),
    st.sampled_from([4, 8, 16]),
)
def test_decode_inverts_encode(points, distances, stride):
    strides = np.full(5, stride, np.float32)
    boxes = ops.decode_ltrb(points, distances, strides)
    np.testing.assert_allclose(ops.encode_ltrb(points, boxes, strides), distances, atol=1e-3)
    # A point lies inside the box it decodes to.
    assert np.all(np.asarray(boxes[:, :2]) < points) and np.all(points < np.asarray(boxes[:, 2:]))


def test_encode_by_hand():
    encoded = ops.encode_ltrb([[10.0, 20.0]], [[[6.0, 12.0, 18.0, 22.0]]], [2.0])
    np.testing.assert_allclose(encoded, [[[2, 4, 4, 1]]])


@pytest.mark.parametrize("stride", [0, -8, 2.5])
def test_bad_stride_raises(stride):
    with pytest.raises(ValueError, match="`stride` must be a positive integer"):
        ops.centre_points(16, 16, stride)
