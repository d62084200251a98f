"""tfds ``voc`` (2007) through ``load``, under tfds mock data with known examples."""

import numpy as np
import pytest
import tensorflow_datasets as tfds

from adljax.data import DatasetUnavailableError, SourceDataset, list_datasets, load


def _example(height: int, width: int, boxes, labels, difficult) -> dict:
    image = np.zeros((height, width, 3), np.uint8)
    image[:, : width // 2] = 255  # left half white
    return {
        "image": image,
        "image/filename": "x.jpg",
        "labels": np.asarray(labels),
        "labels_no_difficult": np.asarray(labels),
        "objects": {
            "bbox": np.asarray(boxes, np.float32),  # tfds: (ymin, xmin, ymax, xmax) in [0, 1]
            "is_difficult": np.asarray(difficult),
            "is_truncated": np.zeros(len(labels), bool),
            "label": np.asarray(labels),
            "pose": np.zeros(len(labels), np.int64),
        },
    }


EXAMPLES = [
    # A landscape image 50 x 100: scaled by 0.64 to 32 x 64, letterboxed at the top.
    _example(50, 100, [[0.1, 0.2, 0.5, 0.6], [0.0, 0.0, 1.0, 1.0]], [14, 2], [False, True]),
    # Three objects, one more than the slots: the first two are kept.
    _example(100, 50, [[0.5, 0.5, 1.0, 1.0]] * 3, [1, 2, 3], [False] * 3),
]


def _source(builder, split, **kwargs):
    del builder, split, kwargs
    return EXAMPLES


def test_voc_letterboxes_images_and_converts_boxes_to_pixel_corners():
    with tfds.testing.mock_data(as_data_source_fn=_source):
        data = load("voc", "test", image_size=64, max_objects=2)
        assert isinstance(data, SourceDataset)
        batch = next(iter(data.batches(2, shuffle=False)))
    info = data.info
    assert (info.name, info.task, info.input_shape, info.num_classes) == (
        "voc",
        "detection",
        (64, 64, 3),
        20,
    )
    assert info.class_names[14] == "person"
    assert batch["x"].shape == (2, 64, 64, 3) and batch["x"].dtype == np.float32
    # Image 0: rows 32+ are padding; the left half of the 64 columns is white.
    assert np.all(batch["x"][0, 32:] == 0) and np.all(batch["x"][0, :32, :30] == 1.0)
    np.testing.assert_allclose(
        batch["boxes"][0], [[0.2 * 64, 0.1 * 32, 0.6 * 64, 0.5 * 32], [0, 0, 64, 32]], rtol=1e-6
    )
    np.testing.assert_array_equal(batch["labels"][0], [14, 2])
    np.testing.assert_array_equal(batch["difficult"][0], [0, 1])
    np.testing.assert_array_equal(batch["box_mask"], [[1, 1], [1, 1]])
    # Image 1 (portrait 100 x 50 -> 64 x 32): boxes in its left 32 columns.
    np.testing.assert_allclose(batch["boxes"][1], [[16, 32, 32, 64]] * 2)
    np.testing.assert_array_equal(batch["labels"][1], [1, 2])


def test_voc_is_listed_and_takes_only_its_options(tmp_path):
    assert "voc" in list_datasets()
    with pytest.raises(ValueError, match=r"dataset 'voc' has no option \['seq_len'\]"):
        load("voc", "test", seq_len=3)


def test_voc_not_prepared_says_how_to_download(tmp_path):
    with pytest.raises(DatasetUnavailableError, match=r"not prepared.*download=True"):
        load("voc", "test", data_dir=str(tmp_path))
