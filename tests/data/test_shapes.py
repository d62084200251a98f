"""The embedded ``shapes`` detection dataset: arrays, boxes on their objects, determinism."""

import numpy as np
import pytest

from adljax.data import ArrayDataset, load
from adljax.data.shapes import CLASS_NAMES, generate_shapes

SMALL = {"num_train": 48, "num_test": 16}


@pytest.fixture(scope="module")
def small():
    return load("shapes", "train", seed=3, **SMALL), load("shapes", "test", seed=3, **SMALL)


def test_splits_arrays_and_info(small):
    train, test = small
    assert isinstance(train, ArrayDataset) and (len(train), len(test)) == (48, 16)
    info = train.info
    assert (info.task, info.input_shape, info.num_classes) == ("detection", (64, 64, 3), 3)
    assert info.class_names == CLASS_NAMES
    a = train.arrays
    assert (a["x"].dtype, a["x"].shape) == (np.float32, (48, 64, 64, 3))
    assert (a["boxes"].dtype, a["boxes"].shape) == (np.float32, (48, 6, 4))
    assert (a["labels"].dtype, a["box_mask"].dtype) == (np.int32, np.float32)
    assert a["x"].min() >= 0.0 and a["x"].max() <= 1.0
    present = a["box_mask"] > 0
    assert np.all(present.sum(1) >= 1)
    # Present objects come first, padding slots are zeros.
    assert np.all(np.diff(present.astype(int), axis=1) <= 0)
    assert np.all(a["boxes"][~present] == 0) and np.all(a["labels"][~present] == 0)
    boxes = a["boxes"][present]
    assert np.all(boxes[:, 2:] > boxes[:, :2]) and boxes.min() >= 0 and boxes.max() <= 64
    assert set(np.unique(a["labels"][present])) <= {0, 1, 2}
    assert not np.array_equal(train.arrays["x"][:16], test.arrays["x"])


def test_each_box_frames_bright_object_pixels():
    """The box is tight: the object colour fills its centre and its edge rows/columns."""
    data = generate_shapes(64, seed=0, max_objects=1)  # one object: nothing covers it
    for image, box in zip(data["x"], data["boxes"][:, 0], strict=True):
        x0, y0, x1, y1 = box
        cy, cx = int((y0 + y1) / 2), int((x0 + x1) / 2)
        colour = image[cy, cx]
        inside = np.all(np.abs(image - colour) < 1e-6, axis=-1)
        rows, cols = np.nonzero(inside)
        # Clutter lines may share no pixel colour with the object; the object's own pixels
        # lie within the box, and reach each side to within 1.5 pixels.
        in_box = (cols + 0.5 >= x0) & (cols + 0.5 <= x1) & (rows + 0.5 >= y0) & (rows + 0.5 <= y1)
        rows, cols = rows[in_box], cols[in_box]
        assert cols.min() + 0.5 - x0 < 1.5 and x1 - (cols.max() + 0.5) < 1.5
        assert rows.max() + 0.5 > y1 - 1.5  # every shape touches its bottom side


def test_deterministic_from_the_seed():
    first, again, other = (generate_shapes(8, seed=s) for s in (5, 5, 6))
    for key in first:
        np.testing.assert_array_equal(first[key], again[key])
    assert not np.array_equal(first["x"], other["x"])


def test_objects_overlap_only_moderately_and_vary():
    data = generate_shapes(200, seed=1)
    present = data["box_mask"] > 0
    sides = data["boxes"][..., 2:] - data["boxes"][..., :2]
    assert sides[present].min() > 0.1 * 64 and sides[present].max() < 0.6 * 64
    counts = present.sum(1)
    assert counts.min() == 1 and counts.max() >= 5
    assert len(np.unique(data["labels"][present])) == 3


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"image_size": 8}, "`image_size` must be at least 16, got 8"),
        ({"max_objects": 0}, "`max_objects` must be a positive integer"),
        ({"colours": 3}, r"dataset 'shapes' has no option \['colours'\]"),
    ],
)
def test_bad_options_raise(options, match):
    with pytest.raises(ValueError, match=match):
        load("shapes", "train", num_train=4, num_test=4, **options)
