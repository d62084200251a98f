"""``windsor_housing``: the 546 real Windsor house sales shipped with adljax, checked against
the published table (R's AER ``HousePrices``), split and standardised like the other data."""

import json
import socket
from importlib import resources

import numpy as np
import pytest

from adljax.data import DatasetInfo, list_datasets, load

FEATURES = (
    "lotsize",
    "bedrooms",
    "bathrooms",
    "stories",
    "driveway",
    "recreation",
    "fullbase",
    "gasheat",
    "aircon",
    "garage",
    "prefer",
)
YES_NO = ("driveway", "recreation", "fullbase", "gasheat", "aircon", "prefer")
# Column totals over the 546 houses of AER's HousePrices (read with pandas from the R data):
# sums of the numeric columns, counts of "yes" for the yes/no ones.
PRICE_SUM = 37_194_392
FEATURE_TOTALS = {
    "lotsize": 2_812_045,
    "bedrooms": 1619,
    "bathrooms": 702,
    "stories": 987,
    "driveway": 469,
    "recreation": 97,
    "fullbase": 191,
    "gasheat": 25,
    "aircon": 173,
    "garage": 378,
    "prefer": 128,
}
# The table's first and last rows: price, then FEATURES (yes = 1, no = 0).
FIRST_HOUSE = (42000, 5850, 3, 1, 2, 1, 0, 1, 0, 0, 1, 0)
LAST_HOUSE = (105000, 6000, 3, 1, 2, 1, 0, 0, 0, 1, 1, 0)


@pytest.fixture(scope="module")
def splits():
    return load("windsor_housing", "train"), load("windsor_housing", "test")


@pytest.fixture(scope="module")
def raw_houses(splits):
    """All 546 houses in original units, ``(546, 12)``: price, then FEATURES (train, test)."""
    rows = []
    for ds in splits:
        info = ds.info
        x = ds.arrays["x"] * np.asarray(info.extras["feature_std"]) + info.extras["feature_mean"]
        price = info.unstandardise_targets(ds.arrays["y"])
        rows.append(np.concatenate([price, x], axis=1))
    return np.concatenate(rows)


def test_sizes_shapes_and_info(splits):
    train, test = splits
    assert (len(train), len(test)) == (437, 109)  # a fixed 80/20 split of 546 houses
    for ds in splits:
        assert ds.arrays["x"].shape == (len(ds), 11)
        assert ds.arrays["y"].shape == (len(ds), 1)
        assert ds.arrays["x"].dtype == ds.arrays["y"].dtype == np.float32
    info = train.info
    assert info == test.info
    assert (info.name, info.task, info.input_shape, info.num_outputs) == (
        "windsor_housing",
        "regression",
        (11,),
        1,
    )
    assert info.feature_names == FEATURES
    assert "Anglin" in info.extras["citation"] and "633-648" in info.extras["citation"]
    assert "AER" in info.extras["source"]
    assert info.extras["yes_no_features"] == list(YES_NO)
    assert DatasetInfo.from_dict(json.loads(json.dumps(info.to_dict()))) == info
    assert "windsor_housing" in list_datasets()


def test_values_are_the_published_table(raw_houses):
    np.testing.assert_allclose(raw_houses[:, 0].sum(), PRICE_SUM, rtol=1e-6)
    totals = raw_houses[:, 1:].sum(axis=0)
    np.testing.assert_allclose(totals, [FEATURE_TOTALS[f] for f in FEATURES], rtol=1e-5)
    assert raw_houses[:, 0].min() == pytest.approx(25000) and raw_houses[:, 0].max() == 190000
    for house in (FIRST_HOUSE, LAST_HOUSE):
        matches = np.all(np.isclose(raw_houses, house, rtol=1e-5, atol=1e-3), axis=1)
        assert matches.sum() == 1, house


def test_yes_no_columns_are_zero_or_one_and_counts_are_integers(raw_houses):
    for i, name in enumerate(FEATURES):
        column = raw_houses[:, 1 + i]
        np.testing.assert_allclose(column, np.round(column), atol=1e-3, err_msg=name)
        if name in YES_NO:
            assert set(np.round(column)) == {0.0, 1.0}, name


def test_standardised_with_train_statistics_only(splits):
    train, test = splits
    for key in ("x", "y"):
        np.testing.assert_allclose(train.arrays[key].mean(0), 0.0, atol=1e-5)
        np.testing.assert_allclose(train.arrays[key].std(0), 1.0, atol=1e-5)
        assert np.abs(test.arrays[key].mean(0)).max() > 1e-2  # the test split is not re-centred
    info = train.info
    raw_train_price = info.unstandardise_targets(train.arrays["y"])
    np.testing.assert_allclose(raw_train_price.mean(), info.target_mean[0], rtol=1e-5)
    assert info.target_mean[0] != pytest.approx(PRICE_SUM / 546, rel=1e-4)


def _sorted_rows(a: np.ndarray) -> np.ndarray:
    return a[np.lexsort(a.T[::-1])]


def test_the_split_is_fixed_and_partitions_the_houses(splits, raw_houses):
    again = load("windsor_housing", "test", seed=7)
    np.testing.assert_array_equal(again.arrays["x"], splits[1].arrays["x"])
    text = resources.files("adljax.data").joinpath("windsor_housing.csv").read_text("utf-8")
    lines = [line.split(",") for line in text.splitlines() if not line.startswith("#")]
    assert lines[0] == ["price", *FEATURES]
    table = np.array([[float({"yes": 1, "no": 0}.get(v, v)) for v in row] for row in lines[1:]])
    # Train and test together hold every row of the file once (the table itself has one
    # pair of identical sales, so compare sorted rows, not sets).
    np.testing.assert_allclose(
        _sorted_rows(np.round(raw_houses, 2)), _sorted_rows(table), rtol=1e-6
    )


def test_ships_its_provenance_next_to_the_data():
    header = [
        line
        for line in resources.files("adljax.data")
        .joinpath("windsor_housing.csv")
        .read_text(encoding="utf-8")
        .splitlines()
        if line.startswith("#")
    ]
    text = " ".join(header)
    for fact in ("Anglin", "Journal of Applied Econometrics", "AER", "GPL", "Windsor"):
        assert fact in text, fact


def test_loads_without_the_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise OSError("network access in a test")

    monkeypatch.setattr(socket, "socket", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    assert len(load("windsor_housing", "train")) == 437
