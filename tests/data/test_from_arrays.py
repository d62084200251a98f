"""from_arrays: users' own NumPy data, validated before anything else."""

import numpy as np
import pytest

from adljax.data import ArrayDataset, from_arrays

X = np.arange(12, dtype=np.float64).reshape(6, 2)
LABELS = np.array([0, 1, 2, 0, 1, 2])


def test_classification_arrays_become_float32_inputs_and_int32_labels():
    ds = from_arrays(
        X,
        LABELS,
        task="classification",
        num_classes=3,
        name="mine",
        split="test",
        class_names=("a", "b", "c"),
        feature_names=("f0", "f1"),
    )
    assert isinstance(ds, ArrayDataset)
    assert len(ds) == 6
    assert ds.split == "test"
    assert ds.arrays["x"].dtype == np.float32
    assert ds.arrays["y"].dtype == np.int32
    np.testing.assert_array_equal(ds.arrays["x"], X)
    np.testing.assert_array_equal(ds.arrays["y"], LABELS)
    info = ds.info
    assert (info.name, info.task, info.input_shape) == ("mine", "classification", (2,))
    assert (info.num_outputs, info.num_classes, info.class_names) == (3, 3, ("a", "b", "c"))


@pytest.mark.parametrize(
    "y",
    [
        np.array([0, 1, 1, 0, 1, 0]),
        np.array([0.0, 1, 1, 0, 1, 0]),
        np.array([0, 1, 1, 0, 1, 0], bool),
    ],
)
def test_binary_labels_may_be_ints_whole_floats_or_bools(y):
    ds = from_arrays(X, y, task="binary")
    assert (ds.info.num_outputs, ds.info.num_classes) == (1, 2)
    np.testing.assert_array_equal(ds.arrays["y"], [0, 1, 1, 0, 1, 0])
    assert ds.arrays["y"].dtype == np.int32


@pytest.mark.parametrize(("y_shape", "num_outputs"), [((6,), 1), ((6, 1), 1), ((6, 3), 3)])
def test_regression_targets_become_columns(y_shape, num_outputs):
    y = np.linspace(-1.0, 1.0, int(np.prod(y_shape))).reshape(y_shape)
    ds = from_arrays(X, y, task="regression")
    assert ds.arrays["y"].shape == (6, num_outputs)
    assert ds.arrays["y"].dtype == np.float32
    np.testing.assert_allclose(ds.arrays["y"].ravel(), y.ravel(), rtol=1e-6)
    assert ds.info.num_outputs == num_outputs
    assert ds.info.target_mean is None


def test_images_keep_their_per_example_shape():
    x = np.zeros((5, 4, 4, 3), np.uint8)
    ds = from_arrays(x, np.arange(5), task="classification", num_classes=5)
    assert ds.info.input_shape == (4, 4, 3)
    assert ds.arrays["x"].dtype == np.float32


NAN_X = X.copy()
NAN_X[2, 1] = np.nan


@pytest.mark.parametrize(
    ("x", "y", "kwargs", "match"),
    [
        (X, LABELS, {"task": "clustering"}, "unknown task 'clustering'; choose one of"),
        (
            np.zeros((0, 2)),
            LABELS[:0],
            {"task": "binary"},
            r"`x` must hold at least one .*\(0, 2\)",
        ),
        (np.arange(6.0), LABELS, {"task": "binary"}, r"`x` must be at least 2-D.*got shape \(6,\)"),
        (X.astype(str), LABELS, {"task": "binary"}, "`x` must hold numbers, got dtype <U"),
        (
            X,
            LABELS[:5],
            {"task": "binary"},
            r"same number of examples: x has 6 .*y has shape \(5,\)",
        ),
        (X, np.float64(1.0), {"task": "regression"}, r"x has 6 .*y has shape \(\)"),
        (NAN_X, LABELS, {"task": "regression"}, "`x` must be finite, got 1 NaN or inf values"),
        (X, [0, 1, np.inf, 0, 1, 0], {"task": "regression"}, "`y` must be finite, got 1 NaN"),
        (X, np.zeros((6, 1, 1)), {"task": "regression"}, r"`y` must have shape \(num_examples,\)"),
        (X, LABELS, {"task": "regression", "num_classes": 3}, "must be None for regression, got 3"),
        (X, LABELS, {"task": "classification"}, "`num_classes` must be an int >= 2 for class"),
        (X, LABELS, {"task": "classification", "num_classes": 1}, "`num_classes` must be an int"),
        (
            X,
            LABELS + 0.5,
            {"task": "classification", "num_classes": 3},
            "`y` must hold integer class labels, got non-integer float64",
        ),
        (
            X,
            LABELS[:, None],
            {"task": "classification", "num_classes": 3},
            r"`y` must be 1-D class labels \(num_examples,\), got shape \(6, 1\)",
        ),
        (
            X,
            LABELS,
            {"task": "classification", "num_classes": 2},
            r"`y` labels must lie in \[0, num_classes=2\), got values in \[0, 2\]",
        ),
        (
            X,
            LABELS - 1,
            {"task": "classification", "num_classes": 3},
            r"must lie in \[0, num_classes=3\), got values in \[-1, 1\]",
        ),
        (X, LABELS, {"task": "binary"}, r"binary `y` must hold only 0 and 1, got values \[0 1 2\]"),
        (
            X,
            LABELS % 2,
            {"task": "binary", "num_classes": 3},
            "must be None or 2 for binary, got 3",
        ),
        (
            X,
            LABELS,
            {"task": "classification", "num_classes": 3, "class_names": ("a", "b")},
            "`class_names` must have num_classes=3 entries, got 2",
        ),
    ],
)
def test_bad_input_raises_value_error_naming_the_argument(x, y, kwargs, match):
    with pytest.raises(ValueError, match=match):
        from_arrays(x, y, **kwargs)
