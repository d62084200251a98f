"""tensorflow-datasets image classification datasets, streamed from ArrayRecord files.

Reading needs no TensorFlow (images decode with pillow). Preparing a catalog dataset the first
time downloads it and, for datasets such as MNIST, encodes images with TensorFlow.
"""

import re
from typing import Any

import numpy as np

from adljax.data.dataset import SourceDataset
from adljax.data.errors import DatasetUnavailableError
from adljax.data.info import DatasetInfo

TFDS_DATASETS = {
    "mnist": "handwritten digits, 28x28 grayscale, 10 classes (tensorflow-datasets)",
    "fashion_mnist": "Zalando clothing images, 28x28 grayscale, 10 classes (tensorflow-datasets)",
    "cifar10": "tiny natural images, 32x32 RGB, 10 classes (tensorflow-datasets)",
}

# Plain catalog names only: "ns:name" (community) or "name:1.0.0" could reach other registries.
_PLAIN_NAME = re.compile(r"[a-z][a-z0-9_]*")


def tfds_builder(name: str, data_dir: str | None) -> Any:
    """Returns the tfds builder for a plain catalog ``name``, or None if tfds has none."""
    import tensorflow_datasets as tfds  # imported here: only tfds users pay for the import

    if not _PLAIN_NAME.fullmatch(name):
        return None
    try:
        return tfds.builder(name, data_dir=data_dir, file_format="array_record")
    except tfds.core.registered.DatasetNotFoundError:
        return None


def image_classification_info(name: str, builder: Any) -> DatasetInfo:
    """`DatasetInfo` from the builder's features (known without downloading anything)."""
    import tensorflow_datasets as tfds

    features = builder.info.features
    supported = (
        "image" in features
        and "label" in features
        and isinstance(features["image"], tfds.features.Image)
        and isinstance(features["label"], tfds.features.ClassLabel)
        and None not in features["image"].shape
    )
    if not supported:
        raise ValueError(
            f"tfds dataset {name!r} is not supported: adljax reads image classification data "
            f"with a fixed-size 'image' and a 'label' ClassLabel feature, got {features}"
        )
    image, label = features["image"], features["label"]
    return DatasetInfo(
        name=name,
        task="classification",
        input_shape=tuple(image.shape),
        num_outputs=label.num_classes,
        num_classes=label.num_classes,
        class_names=tuple(label.names),
        description=TFDS_DATASETS.get(name, builder.info.description.strip().split("\n")[0]),
    )


def image_label_example(example: dict[str, Any]) -> dict[str, Any]:
    """uint8 NHWC image -> float32 in [0, 1]; the label is cast to int32 when batched."""
    return {"x": np.asarray(example["image"], np.float32) / 255.0, "y": example["label"]}


def _prepare(name: str, builder: Any) -> None:
    """Downloads and prepares the dataset, turning the usual failures into clear errors.

    Offline, tfds retries the download for minutes before it fails.
    """
    try:
        builder.download_and_prepare()
    except OSError as err:  # requests' ConnectionError is an OSError
        raise DatasetUnavailableError(
            f"could not download tfds dataset {name!r} into {builder.data_dir}: it needs the "
            f"network once ({err})"
        ) from err
    except ImportError as err:
        raise DatasetUnavailableError(
            f"preparing tfds dataset {name!r} needs TensorFlow to encode its images "
            f"(pip install tensorflow-cpu), or copy an already prepared {name}/ directory into "
            f"the data_dir ({err})"
        ) from err


def load_tfds(name: str, builder: Any, split: str, *, download: bool) -> SourceDataset:
    """Streams split ``split`` (any tfds split syntax) of a tfds image dataset.

    Reads with ``builder.as_data_source`` rather than ``tfds.data_source``, which would start
    a download by default (minutes of retries when offline).

    Raises:
        ValueError: the dataset is not fixed-size image classification.
        DatasetUnavailableError: not prepared and ``download`` is False, or the download or
            preparation failed.
    """
    info = image_classification_info(name, builder)
    return SourceDataset(
        data_source(name, builder, split, download=download), info, image_label_example, split
    )


def data_source(name: str, builder: Any, split: str, *, download: bool) -> Any:
    """The random-access source of split ``split`` of ``builder``, prepared first when
    ``download`` allows; raises `DatasetUnavailableError` as `load_tfds` documents."""
    if download and not builder.is_prepared():
        _prepare(name, builder)
    try:
        return builder.as_data_source(split=split)
    except Exception as err:
        if builder.is_prepared():
            raise
        raise DatasetUnavailableError(
            f"tfds dataset {name!r} is not prepared in {builder.data_dir}; pass download=True "
            "(CLI: --download) to download and prepare it once (needs the network, and "
            "TensorFlow for datasets whose images must be encoded), or point data_dir at a "
            "directory where it is prepared"
        ) from err
