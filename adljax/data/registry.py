"""`load` and `list_datasets`: one entry point for embedded and tensorflow-datasets data."""

import inspect
from collections.abc import Callable
from typing import Any

from adljax.data.dataset import ArrayDataset, SourceDataset, check_non_negative_int
from adljax.data.embedded import EMBEDDED, EMBEDDED_SPLITS
from adljax.data.imdb import IMDB_DESCRIPTION, IMDB_NAME, load_imdb
from adljax.data.info import DatasetInfo
from adljax.data.tfds_source import (
    TFDS_DATASETS,
    image_classification_info,
    load_tfds,
    tfds_builder,
)
from adljax.data.voc import VOC_DESCRIPTION, load_voc


def list_datasets() -> dict[str, str]:
    """Returns ``{name: one-line description}`` of the embedded and tfds datasets, by name."""
    named = {name: entry.description for name, entry in EMBEDDED.items()} | TFDS_DATASETS
    named["voc"] = VOC_DESCRIPTION
    named[IMDB_NAME] = IMDB_DESCRIPTION
    return dict(sorted(named.items()))


def load(
    name: str,
    split: str = "train",
    *,
    data_dir: str | None = None,
    download: bool = False,
    seed: int = 0,
    **options: Any,
) -> ArrayDataset | SourceDataset:
    """Loads one split of a dataset by name.

    Embedded datasets (see `list_datasets`; splits ``"train"``, ``"test"``) come back in
    memory and need no network, except ``california_housing``, which scikit-learn fetches
    once (with ``download=True``) and caches. Other names go
    to tensorflow-datasets: fixed-size image classification datasets (``mnist``,
    ``fashion_mnist``, ``cifar10``, ...), streamed, with tfds split syntax (``"train[:10%]"``).

    Args:
        name: dataset name.
        split: split name.
        data_dir: where tfds (or scikit-learn, for ``california_housing``) keeps its data;
            None uses their defaults. Unused by the other embedded datasets.
        download: allow a network download of data that is not there yet.
        seed: generation seed of the generated embedded datasets (``xor``, ``spirals``,
            ``housing_synthetic``); their train/test split itself is fixed.
        **options: dataset-specific options of an embedded dataset (e.g. ``seq_len`` of the
            generated sequence tasks); a dataset rejects options it does not take.

    Returns:
        An `ArrayDataset` (embedded) or a `SourceDataset` (tfds) whose batches hold float32
        ``"x"`` ``(B, *info.input_shape)`` and ``"y"`` labels or targets.

    Raises:
        ValueError: unknown name (the message lists the known ones), unknown split of an
            embedded dataset (lists the valid ones), or an unsupported tfds dataset.
        DatasetUnavailableError: the data is not downloaded and ``download`` is False, or
            the download failed.
    """
    check_non_negative_int(seed, "seed")
    if not isinstance(name, str):
        raise ValueError(f"`name` must be a string, got {name!r}")
    if not isinstance(split, str):
        raise ValueError(f"`split` must be a string, got {split!r}")
    if name in EMBEDDED:
        if split not in EMBEDDED_SPLITS:
            raise ValueError(
                f"unknown split {split!r} of {name!r}; valid splits: {', '.join(EMBEDDED_SPLITS)}"
            )
        _check_options(name, EMBEDDED[name].build, options)
        build = EMBEDDED[name].build
        return build(seed=seed, data_dir=data_dir, download=download, **options)[split]
    if name == IMDB_NAME:  # tfds text, tokenized and padded in memory
        _check_options(name, load_imdb, options)
        return load_imdb(split, data_dir=data_dir, download=download, **options)
    if name == "voc":  # tfds voc/2007, as fixed-shape detection data
        _check_options(name, load_voc, options)
        return load_voc(split, data_dir=data_dir, download=download, **options)
    if options:
        raise ValueError(f"dataset {name!r} takes no options, got {sorted(options)}")
    return load_tfds(name, _tfds_image_builder(name, data_dir), split, download=download)


def tfds_image_info(name: str, *, data_dir: str | None = None) -> DatasetInfo:
    """The `DatasetInfo` of tfds image classification dataset ``name`` (``mnist``,
    ``cifar10``, ...), read from its builder's features: known without downloading or
    preparing anything. Its inputs are float32 images ``(B, *info.input_shape)`` in [0, 1].

    Raises:
        ValueError: ``name`` is embedded, unknown, or not fixed-size image classification.
    """
    if name in EMBEDDED or name in (IMDB_NAME, "voc"):
        raise ValueError(f"{name!r} is not a tfds image classification dataset")
    return image_classification_info(name, _tfds_image_builder(name, data_dir))


def _tfds_image_builder(name: str, data_dir: str | None) -> Any:
    builder = tfds_builder(name, data_dir)
    if builder is None:
        raise ValueError(
            f"unknown dataset {name!r}; known datasets: {', '.join(list_datasets())} "
            "(other tensorflow-datasets image classification names work too)"
        )
    return builder


def _check_options(name: str, build: Callable, options: dict[str, Any]) -> None:
    """Raises ValueError naming any option the embedded dataset's builder does not take."""
    taken = set(inspect.signature(build).parameters) - {"seed", "data_dir", "download"}
    unknown = sorted(set(options) - taken)
    if unknown:
        accepted = f"it takes {sorted(taken)}" if taken else "it takes none"
        raise ValueError(f"dataset {name!r} has no option {unknown}; {accepted}")
