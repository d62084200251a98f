"""The embedded datasets: shapes, tasks, fixed splits, train-only statistics."""

import json
import urllib.error

import numpy as np
import pytest
import sklearn.datasets
from sklearn.utils import Bunch

from adljax.data import ArrayDataset, DatasetInfo, DatasetUnavailableError, load

# name, task, input_shape, num_outputs, num_classes, train size, test size
EMBEDDED = [
    ("xor", "binary", (2,), 1, 2, 64, 4),
    ("spirals", "binary", (2,), 1, 2, 320, 80),
    ("digits", "classification", (8, 8, 1), 10, 10, 1438, 359),
    ("diabetes", "regression", (10,), 1, None, 354, 88),
    ("housing_synthetic", "regression", (4,), 1, None, 400, 100),
    ("windsor_housing", "regression", (11,), 1, None, 437, 109),
]


@pytest.fixture(scope="module")
def splits():
    """Both splits of every embedded dataset with seed 0, loaded once for this module."""
    return {row[0]: (load(row[0], "train"), load(row[0], "test")) for row in EMBEDDED}


@pytest.mark.parametrize(
    ("name", "task", "input_shape", "num_outputs", "num_classes", "n_train", "n_test"), EMBEDDED
)
def test_embedded_dataset_shapes_dtypes_and_info(
    splits, name, task, input_shape, num_outputs, num_classes, n_train, n_test
):
    train, test = splits[name]
    for ds, split, size in ((train, "train", n_train), (test, "test", n_test)):
        assert isinstance(ds, ArrayDataset)
        assert ds.split == split
        assert len(ds) == size
        x, y = ds.arrays["x"], ds.arrays["y"]
        assert x.shape == (size, *input_shape)
        assert x.dtype == np.float32
        assert np.all(np.isfinite(x))
        if task == "regression":
            assert y.shape == (size, num_outputs)
            assert y.dtype == np.float32
        else:
            assert y.shape == (size,)
            assert y.dtype == np.int32
            assert y.min() >= 0
            assert y.max() < num_classes
    info = train.info
    assert info == test.info
    assert (info.name, info.task, info.input_shape) == (name, task, input_shape)
    assert (info.num_outputs, info.num_classes) == (num_outputs, num_classes)
    assert info.description
    assert "\n" not in info.description
    assert DatasetInfo.from_dict(json.loads(json.dumps(info.to_dict()))) == info


@pytest.mark.parametrize("name", ["spirals", "digits"])
def test_classification_splits_are_stratified_and_disjoint(splits, name):
    train, test = splits[name]
    train_counts = np.bincount(train.arrays["y"])
    test_counts = np.bincount(test.arrays["y"])
    np.testing.assert_array_equal(test_counts, np.round(0.2 * (train_counts + test_counts)))
    train_rows = {row.tobytes() for row in train.arrays["x"].reshape(len(train), -1)}
    shared = [row for row in test.arrays["x"].reshape(len(test), -1) if row.tobytes() in train_rows]
    assert len(shared) <= 1  # digits holds one image twice in the original data at most


def test_digits_are_the_real_scikit_learn_images(splits):
    train, test = splits["digits"]
    x = np.concatenate([train.arrays["x"], test.arrays["x"]])[..., 0]
    y = np.concatenate([train.arrays["y"], test.arrays["y"]])
    assert x.min() == 0.0
    assert x.max() == 1.0
    raw = sklearn.datasets.load_digits()
    order = np.lexsort(np.c_[x.reshape(len(x), -1) * 16, y].T)
    raw_order = np.lexsort(np.c_[raw.images.reshape(len(x), -1), raw.target].T)
    np.testing.assert_array_equal(x[order] * 16, raw.images[raw_order])
    np.testing.assert_array_equal(y[order], raw.target[raw_order])


def test_xor_train_starts_with_the_exact_corners_and_test_is_the_corners(splits):
    train, test = splits["xor"]
    corners = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], np.float32)
    np.testing.assert_array_equal(train.take(4).arrays["x"], corners)
    np.testing.assert_array_equal(test.arrays["x"], corners)
    np.testing.assert_array_equal(test.arrays["y"], [0, 1, 1, 0])
    rounded = np.round(train.arrays["x"]).astype(np.int32)
    np.testing.assert_array_equal(train.arrays["y"], rounded[:, 0] ^ rounded[:, 1])
    # No line separates XOR: the least-squares linear fit predicts 0.5 at every corner.
    design = np.c_[corners, np.ones(4)]
    weights = np.linalg.lstsq(design, test.arrays["y"], rcond=None)[0]
    np.testing.assert_allclose(design @ weights, 0.5, atol=1e-6)


def test_spirals_need_a_nonlinear_model(splits):
    train, test = splits["spirals"]
    xt, yt, xs, ys = train.arrays["x"], train.arrays["y"], test.arrays["x"], test.arrays["y"]
    nearest = np.argmin(((xs[:, None] - xt[None]) ** 2).sum(-1), axis=1)
    knn_accuracy = np.mean(yt[nearest] == ys)
    weights = np.linalg.lstsq(np.c_[xt, np.ones(len(xt))], yt, rcond=None)[0]
    linear_accuracy = np.mean((np.c_[xs, np.ones(len(xs))] @ weights > 0.5) == ys)
    assert knn_accuracy > 0.9
    assert linear_accuracy < 0.75
    assert np.abs(xt).max() < 1.3


@pytest.mark.parametrize("name", ["xor", "spirals", "housing_synthetic"])
def test_generated_datasets_are_a_function_of_seed(name):
    first, again, other = (load(name, "train", seed=s).arrays["x"] for s in (3, 3, 4))
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)


@pytest.mark.parametrize("name", ["digits", "diabetes", "windsor_housing"])
def test_real_dataset_splits_do_not_depend_on_seed(splits, name):
    for ds in (load(name, "train", seed=7), load(name, "test", seed=7)):
        reference = splits[name][0 if ds.split == "train" else 1]
        np.testing.assert_array_equal(ds.arrays["x"], reference.arrays["x"])


@pytest.mark.parametrize("name", ["diabetes", "housing_synthetic", "windsor_housing"])
def test_regression_is_standardised_with_train_statistics_only(splits, name):
    train, test = splits[name]
    info = train.info
    for key in ("x", "y"):
        np.testing.assert_allclose(train.arrays[key].mean(0), 0.0, atol=1e-5)
        np.testing.assert_allclose(train.arrays[key].std(0), 1.0, atol=1e-5)
    assert np.abs(test.arrays["y"].mean()) > 1e-3  # test targets are not re-centred
    mean = np.asarray(info.extras["feature_mean"])
    std = np.asarray(info.extras["feature_std"])
    raw_train = train.arrays["x"] * std + mean
    raw_test = test.arrays["x"] * std + mean
    np.testing.assert_allclose(raw_train.mean(0), mean, rtol=1e-5)
    assert not np.allclose(np.concatenate([raw_train, raw_test]).mean(0), mean, rtol=1e-4)
    raw_y_train = info.unstandardise_targets(train.arrays["y"])
    np.testing.assert_allclose(raw_y_train.mean(), info.target_mean[0], rtol=1e-5)


def test_diabetes_values_are_the_real_data(splits):
    train, test = splits["diabetes"]
    info = train.info
    x = np.concatenate([train.arrays["x"], test.arrays["x"]])
    y = info.unstandardise_targets(np.concatenate([train.arrays["y"], test.arrays["y"]]))
    raw = sklearn.datasets.load_diabetes(scaled=False)
    x = x * np.asarray(info.extras["feature_std"]) + np.asarray(info.extras["feature_mean"])
    np.testing.assert_allclose(np.sort(y[:, 0]), np.sort(raw.target), rtol=1e-5)
    np.testing.assert_allclose(np.sort(x, axis=0), np.sort(raw.data, axis=0), rtol=1e-4, atol=1e-4)
    assert info.feature_names == tuple(raw.feature_names)


def test_housing_least_squares_recovers_the_standardised_true_coefficients(splits):
    train, _ = splits["housing_synthetic"]
    extras, info = train.info.extras, train.info
    design = np.c_[train.arrays["x"], np.ones(len(train))]
    fit = np.linalg.lstsq(design, train.arrays["y"][:, 0], rcond=None)[0]
    np.testing.assert_allclose(fit[:4], extras["coefficients_standardised"], atol=0.03)
    np.testing.assert_allclose(fit[4], extras["intercept_standardised"], atol=0.03)
    residual_std = np.std(train.arrays["y"][:, 0] - design @ fit)
    np.testing.assert_allclose(residual_std, extras["noise_std_standardised"], rtol=0.1)
    # The raw-unit law maps onto the standardised one through the train statistics.
    np.testing.assert_allclose(
        np.asarray(extras["coefficients"]) * np.asarray(extras["feature_std"]) / info.target_std[0],
        extras["coefficients_standardised"],
    )
    assert info.feature_names == ("area_m2", "bedrooms", "age_years", "distance_km")


def fake_california(calls):
    """A stand-in for fetch_california_housing that records its arguments."""

    def fetch(*, data_home=None, download_if_missing=True):
        calls.append({"data_home": data_home, "download_if_missing": download_if_missing})
        rng = np.random.default_rng(0)
        names = [
            "MedInc",
            "HouseAge",
            "AveRooms",
            "AveBedrms",
            "Population",
            "AveOccup",
            "Latitude",
            "Longitude",
        ]
        return Bunch(
            data=rng.normal(5, 2, (50, 8)), target=rng.uniform(1, 5, 50), feature_names=names
        )

    return fetch


@pytest.mark.parametrize("download", [False, True])
def test_california_housing_goes_through_the_scikit_learn_fetcher(monkeypatch, tmp_path, download):
    calls = []
    monkeypatch.setattr(sklearn.datasets, "fetch_california_housing", fake_california(calls))
    train = load("california_housing", "train", data_dir=str(tmp_path), download=download)
    test = load("california_housing", "test", data_dir=str(tmp_path), download=download)
    assert calls[0] == {"data_home": str(tmp_path), "download_if_missing": download}
    assert (len(train), len(test)) == (40, 10)
    assert train.info.task == "regression"
    assert train.info.input_shape == (8,)
    assert train.arrays["y"].shape == (40, 1)
    assert train.info == test.info
    np.testing.assert_allclose(train.arrays["x"].mean(0), 0.0, atol=1e-5)
    assert train.info.feature_names[0] == "MedInc"


def test_california_housing_not_cached_and_download_false_says_how_to_get_it(tmp_path):
    # The real fetcher, with download_if_missing=False, checks its cache and never connects.
    with pytest.raises(DatasetUnavailableError, match="california_housing") as err:
        load("california_housing", data_dir=str(tmp_path))
    message = str(err.value)
    assert "download=True" in message
    assert str(tmp_path) in message
    assert "network" in message
    assert isinstance(err.value, RuntimeError)


@pytest.mark.parametrize(
    "error", [urllib.error.URLError("[Errno -2] Name or service not known"), OSError("timed out")]
)
def test_california_housing_offline_download_raises_unavailable(monkeypatch, tmp_path, error):
    def offline(**kwargs):
        raise error

    monkeypatch.setattr(sklearn.datasets, "fetch_california_housing", offline)
    with pytest.raises(
        DatasetUnavailableError, match=r"'california_housing' .*network once"
    ) as err:
        load("california_housing", data_dir=str(tmp_path), download=True)
    assert "download failed" in str(err.value)
    assert str(tmp_path) in str(err.value)
    assert err.value.__cause__ is error
