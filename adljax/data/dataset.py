"""Datasets that yield batches of NumPy arrays: in memory (`ArrayDataset`) or streamed
(`SourceDataset`), both shuffled by the one rule `epoch_permutation`.

Synopsis::

    ds = adljax.data.load("digits", "train")
    for batch in ds.batches(32, seed=0, epoch=3):        # {"x": (32, 8, 8, 1), "y": (32,)}
        ...
    for batch in test.batches(32, shuffle=False, drop_remainder=False):
        ...                                              # + "mask": (32,), 0 marks padding
"""

import abc
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np

from adljax._validate import check_positive_int
from adljax.data.info import DatasetInfo
from adljax.data.streaming import PREFETCH_BATCHES, READ_THREADS, stream_batches

Batch = dict[str, np.ndarray]


def check_non_negative_int(value: object, name: str) -> int:
    """Returns ``value`` if it is an int >= 0, else raises ``ValueError`` naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 0:
        raise ValueError(f"`{name}` must be a non-negative integer, got {value!r}")
    return int(value)


def epoch_permutation(num_examples: int, seed: int, epoch: int) -> np.ndarray:
    """The order in which one epoch visits the examples: a pure function of (seed, epoch).

    Every shuffled path of adljax uses this rule, so a run resumed from a checkpoint that
    records (seed, epoch, step) sees exactly the batches it would have seen.

    Args:
        num_examples: dataset size N >= 0.
        seed: shuffle seed >= 0.
        epoch: epoch number >= 0.

    Returns:
        int64 array of shape ``(N,)``, a permutation of ``0..N-1``:
        ``np.random.default_rng((seed, epoch)).permutation(N)``.
    """
    check_non_negative_int(num_examples, "num_examples")
    check_non_negative_int(seed, "seed")
    check_non_negative_int(epoch, "epoch")
    return np.random.default_rng((seed, epoch)).permutation(num_examples)


def _label_spec(info: DatasetInfo) -> tuple[tuple[int, ...], type[np.generic]] | None:
    """Per-example shape and dtype of ``batch["y"]`` for ``info.task``.

    None for tasks whose label arrays their model family checks (detection, generation).
    """
    if info.task == "regression":
        return (info.num_outputs,), np.float32
    if info.task in ("tagging", "language_modeling"):
        return (info.input_shape[0],), np.int32
    if info.task in ("classification", "binary"):
        return (), np.int32
    return None


@runtime_checkable
class Dataset(Protocol):
    """What the training loop needs from a dataset; `ArrayDataset` and `SourceDataset` are one.

    Attributes:
        info: the dataset's `DatasetInfo`.
        split: the split it holds, e.g. ``"train"`` or a tfds split such as ``"train[:10%]"``.
    """

    info: DatasetInfo
    split: str

    def __len__(self) -> int: ...

    @property
    def nbytes(self) -> int | None: ...

    def batches(
        self,
        batch_size: int,
        *,
        seed: int = 0,
        epoch: int = 0,
        shuffle: bool = True,
        drop_remainder: bool = True,
        start_batch: int = 0,
    ) -> Iterator[Batch]: ...

    def num_batches(self, batch_size: int, drop_remainder: bool = True) -> int: ...


class _BatchedDataset(abc.ABC):
    """Batching shared by both dataset kinds; subclasses say how to read examples."""

    info: DatasetInfo
    split: str

    @abc.abstractmethod
    def __len__(self) -> int: ...

    @abc.abstractmethod
    def _gather(self, indices: np.ndarray) -> Batch:
        """Returns ``{"x": (k, *input_shape), "y": (k, ...)}`` for the k given indices."""

    def num_batches(self, batch_size: int, drop_remainder: bool = True) -> int:
        """Number of batches in one epoch.

        Raises:
            ValueError: ``batch_size`` is not a positive int, or exceeds the dataset size
                while ``drop_remainder`` is True (the epoch would be empty).
        """
        check_positive_int(batch_size, "batch_size")
        size = len(self)
        if not drop_remainder:
            return -(-size // batch_size)
        if batch_size > size:
            raise ValueError(
                f"`batch_size`={batch_size} is larger than the dataset size {size} "
                f"({self.info.name!r}, split {self.split!r}); with drop_remainder=True no batch "
                "would be produced: use a smaller batch_size or drop_remainder=False"
            )
        return size // batch_size

    def batches(
        self,
        batch_size: int,
        *,
        seed: int = 0,
        epoch: int = 0,
        shuffle: bool = True,
        drop_remainder: bool = True,
        start_batch: int = 0,
    ) -> Iterator[Batch]:
        """Iterates over one epoch in batches of ``batch_size`` examples.

        Arguments are checked when this is called, before the first batch is read.

        Args:
            batch_size: examples per batch B.
            seed: shuffle seed; the order is ``epoch_permutation(len(self), seed, epoch)``.
            epoch: epoch number, so that each epoch has its own order.
            shuffle: False keeps the stored order (seed and epoch are then unused).
            drop_remainder: True drops the last incomplete batch. False pads it to B with
                zeros and adds ``"mask"`` to every batch, so one compiled step sees one shape
                and can count every example exactly once.
            start_batch: number of batches of this epoch to skip (to resume mid-epoch).

        Yields:
            ``{"x": float32 (B, *input_shape), "y": int32 (B,) or float32 (B, num_outputs)}``,
            plus ``"mask": float32 (B,)`` (1 real, 0 padding) when ``drop_remainder`` is False.
        """
        total = self.num_batches(batch_size, drop_remainder)
        check_non_negative_int(start_batch, "start_batch")
        if start_batch > total:
            raise ValueError(
                f"`start_batch`={start_batch} is past the end of the epoch ({total} batches)"
            )
        if shuffle:
            order = epoch_permutation(len(self), seed, epoch)
        else:
            check_non_negative_int(seed, "seed")
            check_non_negative_int(epoch, "epoch")
            order = np.arange(len(self))
        return self._iterate(order, batch_size, range(start_batch, total), drop_remainder)

    def _iterate(
        self, order: np.ndarray, batch_size: int, batch_ids: range, drop_remainder: bool
    ) -> Iterator[Batch]:
        for b in batch_ids:
            batch = self._gather(order[b * batch_size : (b + 1) * batch_size])
            yield batch if drop_remainder else _pad(batch, batch_size)


def _pad(batch: Batch, batch_size: int) -> Batch:
    """Zero-pads every array to ``batch_size`` rows and adds the float32 ``"mask"``."""
    num_real = len(batch["x"])
    padded = {
        k: np.pad(v, [(0, batch_size - num_real)] + [(0, 0)] * (v.ndim - 1))
        for k, v in batch.items()
    }
    padded["mask"] = (np.arange(batch_size) < num_real).astype(np.float32)
    return padded


class ArrayDataset(_BatchedDataset):
    """An in-memory dataset: ``arrays["x"]`` float32 (or int32 token ids) ``(N, *input_shape)``
    and ``arrays["y"]`` int32 ``(N,)`` (classification, binary), int32 ``(N, T)`` (tagging,
    language modeling) or float32 ``(N, num_outputs)`` (regression). Detection and
    generation datasets carry their own further arrays (e.g. padded boxes); every array
    has the leading axis ``N``.

    Build one with `from_arrays` (validated user data) or `load`.

    Attributes:
        info: the dataset's `DatasetInfo`.
        split: the split these arrays are.
        arrays: ``{"x": ..., "y": ...}`` as above.
    """

    def __init__(
        self, info: DatasetInfo, arrays: Mapping[str, np.ndarray], split: str = "train"
    ) -> None:
        """Checks the arrays' keys, shapes and dtypes against ``info``; raises ValueError."""
        label_spec = _label_spec(info)
        if "x" not in arrays or (label_spec is not None and "y" not in arrays):
            needed = "'x' and 'y'" if label_spec is not None else "'x'"
            raise ValueError(f"`arrays` must have keys {needed}, got {sorted(arrays)}")
        x = arrays["x"]
        if x.shape != (len(x), *info.input_shape) or x.dtype not in (np.float32, np.int32):
            raise ValueError(
                f"`arrays['x']` must be float32 (or int32 token ids) with shape "
                f"{(len(x), *info.input_shape)} for {info.name!r} ({info.task}), "
                f"got {x.dtype} {x.shape}"
            )
        if label_spec is not None:
            y_shape, y_dtype = label_spec
            y, shape = arrays["y"], (len(x), *y_shape)
            if y.shape != shape or y.dtype != y_dtype:
                raise ValueError(
                    f"`arrays['y']` must be {np.dtype(y_dtype)} with shape {shape} for "
                    f"{info.name!r} ({info.task}), got {y.dtype} {y.shape}"
                )
        for key, array in arrays.items():
            if len(array) != len(x):
                raise ValueError(
                    f"`arrays[{key!r}]` has {len(array)} examples but `arrays['x']` has {len(x)}"
                )
        if len(x) == 0:
            raise ValueError("`arrays` must hold at least one example, got 0")
        self.info = info
        self.split = split
        self.arrays = dict(arrays)

    def __len__(self) -> int:
        return len(self.arrays["x"])

    def __repr__(self) -> str:
        return f"ArrayDataset(name={self.info.name!r}, split={self.split!r}, size={len(self)})"

    def to_arrays(self) -> "ArrayDataset":
        """This dataset (already in memory), as `SourceDataset.to_arrays` returns one."""
        return self

    @property
    def nbytes(self) -> int:
        """Bytes held by the arrays."""
        return sum(a.nbytes for a in self.arrays.values())

    def _gather(self, indices: np.ndarray) -> Batch:
        return {k: v[indices] for k, v in self.arrays.items()}

    def subset(self, indices: Sequence[int] | np.ndarray) -> "ArrayDataset":
        """Returns a new dataset (copied arrays, same info and split) of the given examples.

        Args:
            indices: integer positions in ``[0, len(self))``, shape ``(k,)``, k >= 1.
        """
        idx = np.asarray(indices)
        if idx.ndim != 1 or idx.size == 0 or not np.issubdtype(idx.dtype, np.integer):
            raise ValueError(
                f"`indices` must be a non-empty 1-D array of integers, got {idx.dtype} {idx.shape}"
            )
        if idx.min() < 0 or idx.max() >= len(self):
            raise ValueError(
                f"`indices` must lie in [0, {len(self)}), got values in [{idx.min()}, {idx.max()}]"
            )
        return ArrayDataset(self.info, self._gather(idx), self.split)

    def take(self, n: int) -> "ArrayDataset":
        """Returns the first ``n`` examples as a new dataset (e.g. a few-labels lesson).

        The embedded datasets store each split in shuffled order, so this is a random sample.
        """
        check_positive_int(n, "n")
        if n > len(self):
            raise ValueError(f"`n`={n} exceeds the dataset size {len(self)}")
        return self.subset(np.arange(n))


class SourceDataset(_BatchedDataset):
    """A dataset streamed from a random-access source, converting each example when read.

    ``source`` is anything with ``__len__`` and ``__getitem__(int) -> example`` (e.g. a
    ``tfds.data_source``). ``batches`` reads an epoch through grain
    (`adljax.data.streaming`): ``read_threads`` threads each read, convert and stack whole
    batches, up to ``prefetch_batches`` ahead of the loop, in the epoch's order (0, the
    default `READ_THREADS`: each batch is read when asked for, in the caller). Threads pay
    where reads release the GIL; random access and thread safety of ``source[i]`` are all
    they need, and tfds's ArrayRecord sources have both.

    Attributes:
        info: the dataset's `DatasetInfo`.
        split: the split the source holds.
        source: the random-access source.
        convert: maps one source example to ``{"x": (*input_shape,), "y": () or
            (num_outputs,), ...}``; ``x`` is cast to float32 (int32 if integer token ids),
            ``y`` to the task's label dtype; further keys are stacked as they are.
        read_threads, prefetch_batches: how ``batches`` reads (above).
    """

    def __init__(
        self,
        source: Any,
        info: DatasetInfo,
        convert: Callable[[Any], Mapping[str, Any]],
        split: str = "train",
        *,
        read_threads: int = READ_THREADS,
        prefetch_batches: int = PREFETCH_BATCHES,
    ) -> None:
        check_non_negative_int(read_threads, "read_threads")
        check_positive_int(prefetch_batches, "prefetch_batches")
        self.source = source
        self.info = info
        self.convert = convert
        self.split = split
        self.read_threads = read_threads
        self.prefetch_batches = prefetch_batches

    def __len__(self) -> int:
        return len(self.source)

    def __repr__(self) -> str:
        return f"SourceDataset(name={self.info.name!r}, split={self.split!r}, size={len(self)})"

    @property
    def nbytes(self) -> None:
        """Unknown for a streamed source: None."""
        return None

    def _gather(self, indices: np.ndarray) -> Batch:
        return self._collate([self.source[int(i)] for i in indices])

    def _collate(self, records: Sequence[Any]) -> Batch:
        """Converts source records and stacks them into one batch."""
        examples = [self.convert(record) for record in records]
        batch = {key: np.stack([np.asarray(e[key]) for e in examples]) for key in examples[0]}
        x_dtype = np.int32 if np.issubdtype(batch["x"].dtype, np.integer) else np.float32
        batch["x"] = batch["x"].astype(x_dtype)
        label_spec = _label_spec(self.info)
        if label_spec is not None:
            batch["y"] = batch["y"].astype(label_spec[1])
        return batch

    def _iterate(
        self, order: np.ndarray, batch_size: int, batch_ids: range, drop_remainder: bool
    ) -> Iterator[Batch]:
        batches = stream_batches(
            self.source,
            order,
            batch_size,
            batch_ids,
            self._collate,
            read_threads=self.read_threads,
            prefetch=self.prefetch_batches,
        )
        return batches if drop_remainder else (_pad(batch, batch_size) for batch in batches)

    def to_arrays(self) -> ArrayDataset:
        """Reads every example into memory, in source order, as an `ArrayDataset`."""
        return ArrayDataset(self.info, self._gather(np.arange(len(self))), self.split)
