"""epoch_permutation and the batching shared by ArrayDataset and SourceDataset."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adljax.data import ArrayDataset, Dataset, DatasetInfo, SourceDataset, epoch_permutation

INFO = DatasetInfo(
    name="ids", task="classification", input_shape=(2,), num_outputs=3, num_classes=3
)
KINDS = ["array", "source"]
SEEDS = st.integers(0, 2**32 - 1)
EPOCHS = st.integers(0, 10_000)


class ListSource:
    """A random-access source like a tfds data source, whose batched read is broken."""

    def __init__(self, n: int) -> None:
        self.examples = [{"id": i} for i in range(n)]

    def __len__(self) -> int:
        return len(self.examples)

    def __getitem__(self, i: int) -> dict:
        return self.examples[i]

    def __getitems__(self, keys):
        raise TypeError("batched reads are broken, as in the tfds mock")


def make_dataset(kind: str, n: int) -> ArrayDataset | SourceDataset:
    """n examples whose x is (id, id + 0.5) and y is id % 3, so each batch row names itself."""
    if kind == "array":
        ids = np.arange(n, dtype=np.float32)
        x = np.stack([ids, ids + 0.5], axis=1)
        return ArrayDataset(INFO, {"x": x, "y": np.arange(n, dtype=np.int32) % 3}, "train")
    return SourceDataset(
        ListSource(n), INFO, lambda ex: {"x": [ex["id"], ex["id"] + 0.5], "y": ex["id"] % 3}
    )


def batch_ids(batch: dict[str, np.ndarray]) -> np.ndarray:
    return batch["x"][:, 0].astype(np.int64)


@settings(max_examples=60, deadline=None)
@given(n=st.integers(0, 300), seed=SEEDS, epoch=EPOCHS)
def test_epoch_permutation_is_a_deterministic_permutation(n, seed, epoch):
    perm = epoch_permutation(n, seed, epoch)
    assert perm.shape == (n,)
    assert np.issubdtype(perm.dtype, np.integer)
    np.testing.assert_array_equal(np.sort(perm), np.arange(n))
    np.testing.assert_array_equal(perm, epoch_permutation(n, seed, epoch))
    np.testing.assert_array_equal(perm, np.random.default_rng((seed, epoch)).permutation(n))


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(20, 300), seed=SEEDS, epochs=st.lists(EPOCHS, min_size=2, max_size=2, unique=True)
)
def test_epoch_permutation_differs_across_epochs_and_seeds(n, seed, epochs):
    first, second = (epoch_permutation(n, seed, e) for e in epochs)
    assert not np.array_equal(first, second)
    assert not np.array_equal(first, epoch_permutation(n, seed + 1, epochs[0]))


@pytest.mark.parametrize(
    ("args", "match"),
    [
        ((-1, 0, 0), "`num_examples` must be a non-negative integer, got -1"),
        ((10, -3, 0), "`seed` must be a non-negative integer, got -3"),
        ((10, 0, 1.5), "`epoch` must be a non-negative integer, got 1.5"),
        ((10, True, 0), "`seed` must be a non-negative integer, got True"),
    ],
)
def test_epoch_permutation_rejects_bad_arguments(args, match):
    with pytest.raises(ValueError, match=match):
        epoch_permutation(*args)


@pytest.mark.parametrize("kind", KINDS)
@settings(max_examples=40, deadline=None)
@given(
    n=st.integers(1, 60),
    batch_size=st.integers(1, 70),
    seed=SEEDS,
    epoch=EPOCHS,
    shuffle=st.booleans(),
)
def test_padded_epoch_visits_every_example_exactly_once(kind, n, batch_size, seed, epoch, shuffle):
    ds = make_dataset(kind, n)
    batches = list(
        ds.batches(batch_size, seed=seed, epoch=epoch, shuffle=shuffle, drop_remainder=False)
    )
    assert len(batches) == ds.num_batches(batch_size, drop_remainder=False) == -(-n // batch_size)
    for batch in batches:
        assert set(batch) == {"x", "y", "mask"}
        assert batch["x"].shape == (batch_size, 2)
        assert batch["x"].dtype == np.float32
        assert batch["y"].shape == (batch_size,)
        assert batch["y"].dtype == np.int32
        assert batch["mask"].dtype == np.float32
        padding = batch["mask"] == 0
        # Real rows come first; padded rows are all zeros.
        assert np.all(np.diff(batch["mask"]) <= 0)
        assert not batch["x"][padding].any()
        assert not batch["y"][padding].any()
    masks = np.concatenate([b["mask"] for b in batches])
    assert masks.sum() == n
    seen = np.concatenate([batch_ids(b)[b["mask"] == 1] for b in batches])
    expected = epoch_permutation(n, seed, epoch) if shuffle else np.arange(n)
    np.testing.assert_array_equal(seen, expected)
    labels = np.concatenate([b["y"][b["mask"] == 1] for b in batches])
    np.testing.assert_array_equal(labels, seen % 3)


@pytest.mark.parametrize("kind", KINDS)
@settings(max_examples=40, deadline=None)
@given(data=st.data(), n=st.integers(1, 60), seed=SEEDS, epoch=EPOCHS)
def test_dropped_remainder_epoch_is_the_permutation_prefix(kind, data, n, seed, epoch):
    batch_size = data.draw(st.integers(1, n))
    ds = make_dataset(kind, n)
    batches = list(ds.batches(batch_size, seed=seed, epoch=epoch))
    assert len(batches) == ds.num_batches(batch_size) == n // batch_size
    assert all(set(b) == {"x", "y"} and len(b["x"]) == batch_size for b in batches)
    seen = np.concatenate([batch_ids(b) for b in batches])
    np.testing.assert_array_equal(seen, epoch_permutation(n, seed, epoch)[: len(seen)])


@pytest.mark.parametrize("kind", KINDS)
@settings(max_examples=40, deadline=None)
@given(data=st.data(), n=st.integers(1, 50), seed=SEEDS, epoch=EPOCHS, drop_remainder=st.booleans())
def test_start_batch_resumes_with_the_tail_of_the_epoch(kind, data, n, seed, epoch, drop_remainder):
    batch_size = data.draw(st.integers(1, n))
    ds = make_dataset(kind, n)
    kwargs = {"seed": seed, "epoch": epoch, "drop_remainder": drop_remainder}
    full = list(ds.batches(batch_size, **kwargs))
    start = data.draw(st.integers(0, len(full)))
    resumed = list(ds.batches(batch_size, start_batch=start, **kwargs))
    assert len(resumed) == len(full) - start
    for got, want in zip(resumed, full[start:], strict=True):
        assert got.keys() == want.keys()
        for key in want:
            np.testing.assert_array_equal(got[key], want[key])


@settings(max_examples=30, deadline=None)
@given(n=st.integers(1, 40), batch_size=st.integers(1, 40), seed=SEEDS, epoch=EPOCHS)
def test_array_and_source_datasets_yield_identical_batches(n, batch_size, seed, epoch):
    array_batches = make_dataset("array", n).batches(
        batch_size, seed=seed, epoch=epoch, drop_remainder=False
    )
    source_batches = make_dataset("source", n).batches(
        batch_size, seed=seed, epoch=epoch, drop_remainder=False
    )
    for a, s in zip(array_batches, source_batches, strict=True):
        for key in ("x", "y", "mask"):
            np.testing.assert_array_equal(a[key], s[key])


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"batch_size": 0}, "`batch_size` must be a positive integer, got 0"),
        ({"batch_size": -2}, "`batch_size` must be a positive integer, got -2"),
        ({"batch_size": 2.0}, "`batch_size` must be a positive integer, got 2.0"),
        ({"batch_size": 11}, r"`batch_size`=11 is larger than the dataset size 10"),
        ({"batch_size": 3, "start_batch": 4}, r"`start_batch`=4 is past the end .*3 batches"),
        ({"batch_size": 3, "start_batch": -1}, "`start_batch` must be a non-negative integer"),
        ({"batch_size": 3, "seed": -1}, "`seed` must be a non-negative integer"),
        ({"batch_size": 3, "seed": -1, "shuffle": False}, "`seed` must be a non-negative"),
        ({"batch_size": 3, "epoch": "1"}, "`epoch` must be a non-negative integer"),
    ],
)
def test_batches_rejects_bad_arguments_before_reading(kind, kwargs, match):
    ds = make_dataset(kind, 10)
    with pytest.raises(ValueError, match=match):
        ds.batches(**kwargs)  # raises on the call, not on the first next()


@pytest.mark.parametrize("kind", KINDS)
def test_batch_larger_than_dataset_is_one_padded_batch_without_drop_remainder(kind):
    ds = make_dataset(kind, 3)
    (batch,) = ds.batches(8, shuffle=False, drop_remainder=False)
    np.testing.assert_array_equal(batch["mask"], [1, 1, 1, 0, 0, 0, 0, 0])
    np.testing.assert_array_equal(batch_ids(batch)[:3], [0, 1, 2])
    assert ds.num_batches(8, drop_remainder=False) == 1
    with pytest.raises(ValueError, match=r"`batch_size`=8 is larger than the dataset size 3"):
        ds.num_batches(8)


def test_regression_batches_carry_target_columns():
    info = DatasetInfo(name="r", task="regression", input_shape=(3,), num_outputs=2)
    x = np.arange(15, dtype=np.float32).reshape(5, 3)
    y = np.arange(10, dtype=np.float32).reshape(5, 2)
    ds = ArrayDataset(info, {"x": x, "y": y})
    source = SourceDataset(list(zip(x, y, strict=True)), info, lambda ex: {"x": ex[0], "y": ex[1]})
    for dataset in (ds, source):
        batches = list(dataset.batches(2, shuffle=False, drop_remainder=False))
        assert [b["y"].shape for b in batches] == [(2, 2)] * 3
        np.testing.assert_array_equal(batches[2]["y"], [[8, 9], [0, 0]])
        np.testing.assert_array_equal(np.concatenate([b["x"] for b in batches])[:5], x)


def test_both_dataset_kinds_satisfy_the_protocol():
    assert isinstance(make_dataset("array", 4), Dataset)
    assert isinstance(make_dataset("source", 4), Dataset)
    assert not isinstance(np.zeros(3), Dataset)


def test_source_dataset_to_arrays_and_nbytes():
    source = make_dataset("source", 7)
    arrays = source.to_arrays()
    assert source.nbytes is None
    assert isinstance(arrays, ArrayDataset)
    assert arrays.info == source.info
    np.testing.assert_array_equal(arrays.arrays["x"], make_dataset("array", 7).arrays["x"])
    assert arrays.nbytes == 7 * 2 * 4 + 7 * 4


def test_subset_and_take_copy_the_selected_examples():
    ds = make_dataset("array", 10)
    sub = ds.subset([7, 2, 7])
    np.testing.assert_array_equal(batch_ids(sub.arrays), [7, 2, 7])
    np.testing.assert_array_equal(sub.arrays["y"], [1, 2, 1])
    assert sub.info is ds.info
    assert sub.split == ds.split
    head = ds.take(4)
    np.testing.assert_array_equal(batch_ids(head.arrays), [0, 1, 2, 3])
    head.arrays["x"][0] = 99.0
    assert ds.arrays["x"][0, 0] == 0.0


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda ds: ds.take(0), "`n` must be a positive integer, got 0"),
        (lambda ds: ds.take(11), r"`n`=11 exceeds the dataset size 10"),
        (lambda ds: ds.subset([]), "`indices` must be a non-empty 1-D array of integers"),
        (lambda ds: ds.subset([0.5]), "`indices` must be a non-empty 1-D array of integers"),
        (lambda ds: ds.subset([[1]]), "`indices` must be a non-empty 1-D array of integers"),
        (
            lambda ds: ds.subset([3, 10]),
            r"`indices` must lie in \[0, 10\), got values in \[3, 10\]",
        ),
        (lambda ds: ds.subset([-1]), r"`indices` must lie in \[0, 10\)"),
    ],
)
def test_subset_and_take_reject_bad_arguments(call, match):
    with pytest.raises(ValueError, match=match):
        call(make_dataset("array", 10))


@pytest.mark.parametrize(
    ("arrays", "match"),
    [
        ({"x": np.zeros((4, 2), np.float32)}, r"`arrays` must have keys 'x' and 'y', got \['x'\]"),
        (
            {"x": np.zeros((4, 2), np.float64), "y": np.zeros(4, np.int32)},
            r"`arrays\[.x.\]` must be float32 \(or int32 token ids\) with shape \(4, 2\)",
        ),
        (
            {"x": np.zeros((4, 3), np.float32), "y": np.zeros(4, np.int32)},
            r"`arrays\['x'\]` must be float32 .* with shape \(4, 2\).*got float32 \(4, 3\)",
        ),
        (
            {"x": np.zeros((4, 2), np.float32), "y": np.zeros(3, np.int32)},
            r"`arrays\['y'\]` must be int32 with shape \(4,\).*got int32 \(3,\)",
        ),
        (
            {"x": np.zeros((4, 2), np.float32), "y": np.zeros(4, np.int32), "w": np.zeros(3)},
            r"`arrays\['w'\]` has 3 examples but `arrays\['x'\]` has 4",
        ),
        (
            {"x": np.zeros((0, 2), np.float32), "y": np.zeros(0, np.int32)},
            "at least one example",
        ),
    ],
)
def test_array_dataset_checks_arrays_against_info(arrays, match):
    with pytest.raises(ValueError, match=match):
        ArrayDataset(INFO, arrays)
