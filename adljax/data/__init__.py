"""Data layer: embedded and tensorflow-datasets data as batches of NumPy arrays.

Synopsis::

    from adljax import data

    train = data.load("digits", "train")                 # ArrayDataset, info.input_shape (8, 8, 1)
    for epoch in range(3):
        for batch in train.batches(64, seed=0, epoch=epoch):
            ...                                          # {"x": (64, 8, 8, 1), "y": (64,)}
    mine = data.from_arrays(x, y, task="regression")     # your own NumPy data
"""

from .arrays import from_arrays as from_arrays
from .augment import Augment as Augment
from .augment import augmentation_for as augmentation_for
from .augment import compose as compose
from .augment import random_crop_with_padding as random_crop_with_padding
from .augment import random_flip_horizontal as random_flip_horizontal
from .augment import random_shift as random_shift
from .dataset import ArrayDataset as ArrayDataset
from .dataset import Dataset as Dataset
from .dataset import SourceDataset as SourceDataset
from .dataset import epoch_permutation as epoch_permutation
from .errors import DatasetUnavailableError as DatasetUnavailableError
from .info import DatasetInfo as DatasetInfo
from .registry import list_datasets as list_datasets
from .registry import load as load
from .registry import tfds_image_info as tfds_image_info
