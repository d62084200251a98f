"""load and list_datasets: the registry, and tensorflow-datasets through its mock."""

import time

import numpy as np
import pytest
import tensorflow_datasets as tfds

from adljax.data import (
    ArrayDataset,
    DatasetUnavailableError,
    SourceDataset,
    epoch_permutation,
    list_datasets,
    load,
)

EMBEDDED_NAMES = ["california_housing", "diabetes", "digits", "housing_synthetic", "spirals"]
EMBEDDED_NAMES += ["windsor_housing", "xor"]
EMBEDDED_NAMES += ["shapes"]  # detection
EMBEDDED_NAMES += ["adding", "copy", "pydoc_chars", "sines", "waveforms"]  # sequences
EMBEDDED_NAMES += ["grid25", "ring8"]  # generation (GAN mixtures)
TFDS_IMAGES = [("mnist", (28, 28, 1)), ("fashion_mnist", (28, 28, 1)), ("cifar10", (32, 32, 3))]


def test_list_datasets_names_every_dataset_once_sorted_with_one_line_each():
    datasets = list_datasets()
    assert list(datasets) == sorted(
        EMBEDDED_NAMES + [name for name, _ in TFDS_IMAGES] + ["voc", "imdb_reviews"]
    )
    assert all(d and "\n" not in d for d in datasets.values())


@pytest.mark.parametrize(
    ("args", "kwargs", "match"),
    [
        (("mnistt",), {}, r"unknown dataset 'mnistt'; known datasets: adding, .*xor"),
        (("huggingface:mnist",), {}, "unknown dataset 'huggingface:mnist'"),
        (("mnist:3.0.1",), {}, "unknown dataset 'mnist:3.0.1'"),
        ((3,), {}, "`name` must be a string, got 3"),
        (("digits", "validation"), {}, r"unknown split 'validation' of 'digits'; .*train, test"),
        (("xor", None), {}, "`split` must be a string, got None"),
        (("xor",), {"seed": -1}, "`seed` must be a non-negative integer, got -1"),
        (("ag_news_subset",), {}, "tfds dataset 'ag_news_subset' is not supported: .*'image'"),
        (("tf_flowers",), {}, "tfds dataset 'tf_flowers' is not supported"),  # variable size
    ],
)
def test_load_rejects_bad_names_and_splits(args, kwargs, match, tmp_path):
    with pytest.raises(ValueError, match=match):
        load(*args, data_dir=str(tmp_path), **kwargs)


@pytest.mark.parametrize(("name", "shape"), TFDS_IMAGES)
def test_tfds_image_dataset_streams_through_the_mock(name, shape):
    with tfds.testing.mock_data(num_examples=10):
        ds = load(name, "test")
        assert isinstance(ds, SourceDataset)
        assert len(ds) == 10
        assert ds.split == "test"
        info = ds.info
        assert (info.name, info.task, info.input_shape) == (name, "classification", shape)
        assert info.num_classes == info.num_outputs == len(info.class_names) == 10
        batches = list(ds.batches(4, seed=1, epoch=2, drop_remainder=False))
        everything = ds.to_arrays()
    assert ds.nbytes is None
    assert isinstance(everything, ArrayDataset)
    assert [b["x"].shape for b in batches] == [(4, *shape)] * 3
    x = np.concatenate([b["x"][b["mask"] == 1] for b in batches])
    y = np.concatenate([b["y"][b["mask"] == 1] for b in batches])
    assert x.dtype == np.float32
    assert x.min() >= 0.0
    assert x.max() <= 1.0
    assert y.dtype == np.int32
    assert y.min() >= 0
    assert y.max() < 10
    # Same rows as the in-memory copy, visited in the one shared shuffled order.
    order = epoch_permutation(10, 1, 2)
    np.testing.assert_array_equal(x, everything.arrays["x"][order])
    np.testing.assert_array_equal(y, everything.arrays["y"][order])
    # The images are the mock's uint8 values scaled to [0, 1].
    np.testing.assert_array_equal(np.round(x * 255) / 255, x)


def test_tfds_split_syntax_and_other_image_names_pass_through():
    with tfds.testing.mock_data(num_examples=6):
        ds = load("kmnist", "train[:50%]", download=True)  # the mock's prepare is a no-op
        (batch,) = ds.batches(6)
    assert ds.split == "train[:50%]"
    assert ds.info.input_shape == (28, 28, 1)
    assert batch["x"].shape == (6, 28, 28, 1)


def test_unprepared_tfds_dataset_raises_quickly_without_network(tmp_path):
    start = time.monotonic()
    with pytest.raises(
        DatasetUnavailableError, match=r"'mnist' is not prepared in .*download=True"
    ):
        load("mnist", "train", data_dir=str(tmp_path))
    assert time.monotonic() - start < 5.0
    assert list(tmp_path.iterdir()) == []  # nothing downloaded or written


@pytest.mark.parametrize(
    ("error", "match"),
    [
        (
            OSError("Failed to resolve 'storage.googleapis.com'"),
            "could not download .*network once",
        ),
        (ModuleNotFoundError("Failed to encode example"), "needs TensorFlow to encode its images"),
    ],
)
def test_failed_tfds_download_raises_unavailable(monkeypatch, tmp_path, error, match):
    def offline(self, *args, **kwargs):
        raise error

    monkeypatch.setattr(tfds.core.DatasetBuilder, "download_and_prepare", offline)
    with pytest.raises(DatasetUnavailableError, match=match) as err:
        load("mnist", data_dir=str(tmp_path), download=True)
    assert "'mnist'" in str(err.value)
    assert err.value.__cause__ is error


def test_read_errors_of_a_prepared_tfds_dataset_are_not_masked(monkeypatch, tmp_path):
    def unknown_split(self, split, **kwargs):
        raise ValueError(f"Unknown split {split!r}. Should be one of ['test', 'train'].")

    monkeypatch.setattr(tfds.core.DatasetBuilder, "is_prepared", lambda self: True)
    monkeypatch.setattr(tfds.core.DatasetBuilder, "as_data_source", unknown_split)
    with pytest.raises(ValueError, match=r"Unknown split 'valid'\. Should be one of"):
        load("mnist", "valid", data_dir=str(tmp_path))
