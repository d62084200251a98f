"""Tests for adljax.data.imdb: the tokenizer, tfds loading through its mock, length buckets."""

import numpy as np
import pytest
import tensorflow_datasets as tfds
from hypothesis import given
from hypothesis import strategies as st

from adljax.data import ArrayDataset, DatasetInfo, list_datasets, load
from adljax.data.imdb import Tokenizer, bucket_of, bucketed_batches, words


def test_words_drop_markup_case_and_punctuation():
    assert words("A <br />Great film, isn't it?! 10/10") == [
        "a",
        "great",
        "film",
        "isn't",
        "it",
        "10",
        "10",
    ]


def test_tokenizer_ranks_by_frequency_and_maps_the_rest_to_unknown():
    tokenizer = Tokenizer.build(["b a b c", "c b d"], vocab_size=4)
    assert tokenizer.vocabulary == ("b", "c")  # b 3x, c 2x; a and d tie below the cut
    np.testing.assert_array_equal(tokenizer.encode("B c a zz", max_len=10), [2, 3, 1, 1])
    ids, lengths = tokenizer.encode_batch(["c", "b b b"], max_len=2)
    np.testing.assert_array_equal(ids, [[3, 0], [2, 2]])
    np.testing.assert_array_equal(lengths, [1, 2])
    with pytest.raises(ValueError, match="vocab_size"):
        Tokenizer.build(["a"], vocab_size=2)


def test_imdb_loads_through_the_tfds_mock():
    assert "imdb_reviews" in list_datasets()
    with tfds.testing.mock_data(num_examples=12):
        train = load("imdb_reviews", "train", vocab_size=30, max_len=8)
        test = load("imdb_reviews", "test", vocab_size=30, max_len=8)
    for data in (train, test):
        assert isinstance(data, ArrayDataset) and len(data) == 12
        x, lengths = data.arrays["x"], data.arrays["lengths"]
        assert x.shape == (12, 8) and x.dtype == np.int32 and x.max() < 30
        np.testing.assert_array_equal((x != 0).sum(1), lengths)  # right-padded with 0
        assert set(np.unique(data.arrays["y"])) <= {0, 1}
    info = train.info
    assert (info.task, info.num_outputs, info.extras["padding_token"]) == ("binary", 1, 0)
    tokenizer = Tokenizer.from_info(DatasetInfo.from_dict(info.to_dict()))  # as a checkpoint
    assert tokenizer.vocab_size == info.extras["vocab_size"] <= 30
    with pytest.raises(ValueError, match="no option"):
        load("imdb_reviews", "train", seq_len=5)


@given(lengths=st.lists(st.integers(1, 20), min_size=1, max_size=30), batch_size=st.integers(1, 8))
def test_bucketed_batches_cover_the_epoch_once_trimmed_to_their_bucket(lengths, batch_size):
    n, width = len(lengths), 20
    x = np.zeros((n, width), np.int32)
    for i, length in enumerate(lengths):
        x[i, :length] = i + 1
    info = DatasetInfo(
        name="toy", task="binary", input_shape=(width,), num_outputs=1, num_classes=2
    )
    arrays = {"x": x, "y": np.zeros(n, np.int32), "lengths": np.array(lengths, np.int32)}
    data = ArrayDataset(info, arrays)
    seen = []
    for batch in bucketed_batches(data, batch_size, seed=1, epoch=2, buckets=(4, 8)):
        bucket = batch["x"].shape[1]
        assert len(batch["x"]) <= batch_size and bucket in (4, 8, 20)
        np.testing.assert_array_equal(bucket_of(batch["lengths"], (4, 8, 20)), bucket)
        np.testing.assert_array_equal((batch["x"] != 0).sum(1), batch["lengths"])  # nothing cut
        seen += list(batch["x"][:, 0] - 1)
    assert sorted(seen) == list(range(n))
