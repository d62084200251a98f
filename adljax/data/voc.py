"""PASCAL VOC 2007 detection through tensorflow-datasets (``voc/2007``), at a fixed shape.

tfds gives images of varied sizes and boxes as normalised ``(ymin, xmin, ymax, xmax)``.
Each image is letterboxed: scaled (bilinear) so its longer side is ``image_size``, placed
at the top-left of an ``image_size x image_size`` black square. Boxes become corners
``(x_min, y_min, x_max, y_max)`` in pixels of that square and are padded to
``max_objects`` slots (the first ``max_objects`` objects are kept; VOC 2007 has at most 42
per image). Examples (streamed, read on demand):

- ``"x"``: float32 ``(S, S, 3)`` in ``[0, 1]``;
- ``"boxes"`` float32 ``(M, 4)``, ``"labels"`` int32 ``(M,)``, ``"box_mask"`` float32
  ``(M,)``, and ``"difficult"`` float32 ``(M,)``: VOC's difficult flag, which evaluation
  ignores (neither a miss nor a false positive).
"""

from typing import Any

import numpy as np
from PIL import Image

from adljax._validate import check_positive_int
from adljax.data.dataset import SourceDataset
from adljax.data.info import DatasetInfo
from adljax.data.tfds_source import data_source

VOC_NAME = "voc/2007"
"""The tensorflow-datasets name that ``load("voc", ...)`` reads."""
VOC_DESCRIPTION = "PASCAL VOC 2007 detection, 20 classes, letterboxed (tensorflow-datasets)"
"""The one-line description `list_datasets` shows for ``voc``."""


def voc_example(example: dict[str, Any], image_size: int, max_objects: int) -> dict[str, Any]:
    """One tfds ``voc`` example as fixed-shape arrays (see the module docstring)."""
    image = np.asarray(example["image"])
    height, width = image.shape[:2]
    scale = image_size / max(height, width)
    new_height, new_width = max(1, round(height * scale)), max(1, round(width * scale))
    resized = Image.fromarray(image).resize((new_width, new_height), Image.Resampling.BILINEAR)
    x = np.zeros((image_size, image_size, 3), np.float32)
    x[:new_height, :new_width] = np.asarray(resized, np.float32) / 255.0

    objects = example["objects"]
    count = min(len(objects["label"]), max_objects)
    ymin, xmin, ymax, xmax = np.asarray(objects["bbox"], np.float32)[:count].T
    boxes = np.zeros((max_objects, 4), np.float32)
    boxes[:count] = np.stack(
        [xmin * new_width, ymin * new_height, xmax * new_width, ymax * new_height], axis=-1
    )
    padded = np.zeros(max_objects, np.float32)
    labels, box_mask, difficult = padded.astype(np.int32), padded.copy(), padded.copy()
    labels[:count] = np.asarray(objects["label"])[:count]
    box_mask[:count] = 1.0
    difficult[:count] = np.asarray(objects["is_difficult"])[:count]
    return {"x": x, "boxes": boxes, "labels": labels, "box_mask": box_mask, "difficult": difficult}


def load_voc(
    split: str,
    *,
    data_dir: str | None = None,
    download: bool = False,
    image_size: int = 256,
    max_objects: int = 42,
) -> SourceDataset:
    """Streams split ``split`` (``"train"``, ``"validation"``, ``"test"``, or any tfds split
    syntax) of VOC 2007 as fixed-shape detection examples.

    Args:
        split: the tfds split.
        data_dir: where tfds keeps its data; None for its default.
        download: allow downloading and preparing the dataset (network, about 900 MB).
        image_size: S, the side of the letterboxed images.
        max_objects: M, the box slots per image.

    Raises:
        DatasetUnavailableError: not prepared and ``download`` is False, or the download
            failed.
    """
    import tensorflow_datasets as tfds

    check_positive_int(image_size, "image_size")
    check_positive_int(max_objects, "max_objects")
    builder = tfds.builder(VOC_NAME, data_dir=data_dir, file_format="array_record")
    class_names = tuple(builder.info.features["objects"]["label"].names)
    info = DatasetInfo(
        name="voc",
        task="detection",
        input_shape=(image_size, image_size, 3),
        num_outputs=len(class_names),
        num_classes=len(class_names),
        class_names=class_names,
        description=VOC_DESCRIPTION,
        extras={"box_format": "xyxy", "max_objects": max_objects},
    )
    source = data_source("voc", builder, split, download=download)
    return SourceDataset(
        source, info, lambda example: voc_example(example, image_size, max_objects), split
    )
