"""IMDB movie-review sentiment (tfds ``imdb_reviews``): a word tokenizer and length buckets.

Synopsis::

    train = load("imdb_reviews", "train", download=True, vocab_size=20_000, max_len=256)
    # train.arrays: "x" int32 (N, 256) word ids right-padded with 0, "y" (N,) 0/1,
    # "lengths" (N,); the tokenizer is train.info.extras["vocabulary"]
    for batch in bucketed_batches(train, 64, seed=0, epoch=0):
        ...  # "x" trimmed to the batch's length bucket, e.g. (64, 128)

The tokenizer is built from the train split (the ``vocab_size - 2`` most frequent words;
id 0 pads, id 1 is any other word) and stored in ``info.extras``, so a checkpoint carries
it and `Tokenizer.from_info` encodes new text the same way. Reviews longer than
``max_len`` words keep their first ``max_len``.
"""

import collections
import dataclasses
import functools
import re
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import numpy as np

from adljax._validate import check_positive_int
from adljax.data.dataset import ArrayDataset, Batch, epoch_permutation
from adljax.data.info import DatasetInfo
from adljax.data.tfds_source import data_source

IMDB_NAME = "imdb_reviews"
"""The tfds catalog name, also the name `load` takes."""
IMDB_DESCRIPTION = "IMDB movie reviews, positive or negative, word ids (tensorflow-datasets)"
"""The one-line description `list_datasets` shows."""
PADDING_ID = 0
"""The id that right-pads every review (the models' ``padding_token``)."""
UNKNOWN_ID = 1
"""The id of every word outside the vocabulary."""
BUCKETS = (64, 128, 256, 512)
"""Default bucket lengths of `bucketed_batches` (capped at the dataset's ``max_len``)."""

_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")
_MARKUP = re.compile(r"<[^>]+>")


def words(text: str) -> list[str]:
    """Lower-cased words of ``text``, HTML line breaks and punctuation removed."""
    return _WORD.findall(_MARKUP.sub(" ", text.lower()))


def _check_vocab_size(vocab_size: object) -> None:
    check_positive_int(vocab_size, "vocab_size")
    if vocab_size < 3:
        raise ValueError(f"`vocab_size` must be >= 3 (padding, unknown, words), got {vocab_size}")


@dataclasses.dataclass(frozen=True)
class Tokenizer:
    """Word -> id: ``vocabulary[i]`` has id ``i + 2``; 0 pads, 1 is an unknown word."""

    vocabulary: tuple[str, ...]

    @classmethod
    def build(cls, texts: Iterable[str], vocab_size: int) -> "Tokenizer":
        """The ``vocab_size - 2`` most frequent words of ``texts`` (ties: alphabetical)."""
        _check_vocab_size(vocab_size)
        counts = collections.Counter(w for text in texts for w in words(text))
        ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
        return cls(tuple(word for word, _ in ranked[: vocab_size - 2]))

    @classmethod
    def from_info(cls, info: DatasetInfo) -> "Tokenizer":
        """The tokenizer stored in an imdb `DatasetInfo` (e.g. a checkpoint's)."""
        return cls(tuple(info.extras["vocabulary"]))

    @property
    def vocab_size(self) -> int:
        return len(self.vocabulary) + 2

    @functools.cached_property
    def _ids(self) -> dict[str, int]:
        return {word: i + 2 for i, word in enumerate(self.vocabulary)}

    def encode(self, text: str, max_len: int) -> np.ndarray:
        """int32 ids ``(min(words, max_len),)`` of ``text``'s first ``max_len`` words."""
        return np.array(
            [self._ids.get(w, UNKNOWN_ID) for w in words(text)[:max_len]], np.int32
        ).reshape(-1)

    def encode_batch(self, texts: Sequence[str], max_len: int) -> tuple[np.ndarray, np.ndarray]:
        """``(ids (N, max_len) right-padded with 0, lengths (N,))``, both int32."""
        ids = np.zeros((len(texts), max_len), np.int32)
        lengths = np.zeros(len(texts), np.int32)
        for i, text in enumerate(texts):
            encoded = self.encode(text, max_len)
            ids[i, : len(encoded)] = encoded
            lengths[i] = len(encoded)
        return ids, lengths


def _read(source: Any) -> tuple[list[str], np.ndarray]:
    examples = [source[i] for i in range(len(source))]
    texts = [e["text"].decode() if isinstance(e["text"], bytes) else e["text"] for e in examples]
    return texts, np.array([int(e["label"]) for e in examples], np.int32)


def load_imdb(
    split: str,
    *,
    data_dir: str | None = None,
    download: bool = False,
    vocab_size: int = 20_000,
    max_len: int = 256,
) -> ArrayDataset:
    """Split ``split`` (``"train"``, ``"test"`` or tfds split syntax) of ``imdb_reviews`` in
    memory: ``x`` int32 ``(N, max_len)``, ``y`` int32 ``(N,)`` (1 = positive),
    ``lengths`` int32 ``(N,)``. Task ``binary``; ``info.extras`` holds ``vocabulary``,
    ``vocab_size`` and ``padding_token`` (0), so ``rnn``/``gru``/``lstm`` embed the ids and
    ignore the padding.

    Raises:
        ValueError: bad ``vocab_size`` or ``max_len``.
        DatasetUnavailableError: not prepared and ``download`` is False, or the download
            failed.
    """
    import tensorflow_datasets as tfds

    check_positive_int(max_len, "max_len")
    _check_vocab_size(vocab_size)
    builder = tfds.builder(IMDB_NAME, data_dir=data_dir, file_format="array_record")
    train_texts, _ = _read(data_source(IMDB_NAME, builder, "train", download=download))
    tokenizer = Tokenizer.build(train_texts, vocab_size)
    texts, labels = _read(data_source(IMDB_NAME, builder, split, download=download))
    ids, lengths = tokenizer.encode_batch(texts, max_len)
    info = DatasetInfo(
        name=IMDB_NAME,
        task="binary",
        input_shape=(max_len,),
        num_outputs=1,
        num_classes=2,
        class_names=tuple(builder.info.features["label"].names),
        description=IMDB_DESCRIPTION,
        extras={
            "vocabulary": list(tokenizer.vocabulary),
            "vocab_size": tokenizer.vocab_size,
            "padding_token": PADDING_ID,
            "max_len": max_len,
        },
    )
    return ArrayDataset(info, {"x": ids, "y": labels, "lengths": lengths}, split)


def bucket_of(lengths: np.ndarray, buckets: Sequence[int]) -> np.ndarray:
    """The smallest bucket length >= each length (the largest bucket for longer ones)."""
    edges = np.asarray(sorted(buckets))
    return edges[np.minimum(np.searchsorted(edges, lengths), len(edges) - 1)]


def bucketed_batches(
    data: ArrayDataset,
    batch_size: int,
    *,
    seed: int = 0,
    epoch: int = 0,
    buckets: Sequence[int] = BUCKETS,
) -> Iterator[Batch]:
    """One epoch of batches grouped by length bucket, each trimmed to its bucket's length.

    Examples are shuffled by `epoch_permutation`, then grouped by the bucket of their
    ``lengths``; each bucket is cut into batches of ``batch_size`` (its last one may be
    smaller), and the batches come in an order shuffled by ``(seed, epoch)``. A model that
    masks padding gives the same outputs on a trimmed batch as on the full padding, in less
    time: most reviews are far shorter than ``max_len``. One compiled step per bucket shape.

    Yields:
        ``{"x": (b, L), "y": (b,), "lengths": (b,)}`` with ``L`` a bucket length
        (capped at ``x``'s width).
    """
    check_positive_int(batch_size, "batch_size")
    if "lengths" not in data.arrays:
        raise ValueError(f"`data` must hold a 'lengths' array, got {sorted(data.arrays)}")
    width = data.arrays["x"].shape[1]
    capped = sorted({min(check_positive_int(b, "buckets"), width) for b in buckets} | {width})
    order = epoch_permutation(len(data), seed, epoch)
    assigned = bucket_of(data.arrays["lengths"][order], capped)
    groups = []
    for length in capped:
        members = order[assigned == length]
        groups += [
            (length, members[i : i + batch_size]) for i in range(0, len(members), batch_size)
        ]
    for index in np.random.default_rng((seed, epoch, 1)).permutation(len(groups)):
        length, members = groups[index]
        batch = {k: v[members] for k, v in data.arrays.items()}
        batch["x"] = batch["x"][:, :length]
        yield batch
