"""Datasets that need no download: generated from a seed, shipped with scikit-learn, or
shipped with adljax (``windsor_housing``, a CSV file next to this module).

Every embedded dataset has the splits ``"train"`` and ``"test"``. Except ``xor``, the test
split is a fixed 20% of the examples (stratified by class for classification), chosen with a
fixed split seed, so it never changes with ``seed``; ``seed`` only changes what the generated
datasets (``xor`` jitter, ``spirals``, ``housing_synthetic``) draw. Both splits are stored in
shuffled order. Regression features and targets are standardised with the train split's
statistics; ``info.extras["feature_mean"/"feature_std"]`` and ``info.target_mean/target_std``
hold them, identical for both splits.
"""

import csv
from collections.abc import Callable, Mapping
from importlib import resources
from typing import Any, NamedTuple

import numpy as np

from adljax.data import sequences
from adljax.data.dataset import ArrayDataset
from adljax.data.errors import DatasetUnavailableError
from adljax.data.info import DatasetInfo
from adljax.data.mixtures import grid25, ring8
from adljax.data.shapes import build_shapes

EMBEDDED_SPLITS = ("train", "test")
_SPLIT_SEED = 2024
_TEST_FRACTION = 0.2

Splits = dict[str, ArrayDataset]


class _Standardised(NamedTuple):
    """Train/test arrays standardised with the train split's mean and std."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    x_mean: np.ndarray
    x_std: np.ndarray
    y_mean: np.ndarray
    y_std: np.ndarray


def _split_indices(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Fixed 80/20 split, stratified by ``labels`` (all-equal labels: a plain random split).

    Returns:
        (train, test) index arrays, each in shuffled order.
    """
    rng = np.random.default_rng(_SPLIT_SEED)
    test = []
    for value in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == value))
        test.append(members[: round(_TEST_FRACTION * len(members))])
    test_idx = np.concatenate(test)
    train_idx = np.setdiff1d(np.arange(len(labels)), test_idx)
    return rng.permutation(train_idx), rng.permutation(test_idx)


def _mean_std(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    std = a.std(axis=0)
    return a.mean(axis=0), np.where(std > 0, std, 1.0)  # a constant column stays constant


def _standardise(x: np.ndarray, y: np.ndarray) -> _Standardised:
    """Splits ``x (N, d)``, ``y (N, k)`` 80/20 and standardises both with train stats."""
    train, test = _split_indices(np.zeros(len(y)))
    x_mean, x_std = _mean_std(x[train])
    y_mean, y_std = _mean_std(y[train])
    return _Standardised(
        x_train=((x[train] - x_mean) / x_std).astype(np.float32),
        y_train=((y[train] - y_mean) / y_std).astype(np.float32),
        x_test=((x[test] - x_mean) / x_std).astype(np.float32),
        y_test=((y[test] - y_mean) / y_std).astype(np.float32),
        x_mean=x_mean,
        x_std=x_std,
        y_mean=y_mean,
        y_std=y_std,
    )


def _regression_splits(
    name: str,
    data: _Standardised,
    *,
    feature_names: tuple[str, ...],
    description: str,
    extras: Mapping[str, Any] | None = None,
) -> Splits:
    info = DatasetInfo(
        name=name,
        task="regression",
        input_shape=data.x_train.shape[1:],
        num_outputs=data.y_train.shape[1],
        feature_names=feature_names,
        target_mean=tuple(data.y_mean),
        target_std=tuple(data.y_std),
        description=description,
        extras={
            "feature_mean": data.x_mean.tolist(),
            "feature_std": data.x_std.tolist(),
            **(extras or {}),
        },
    )
    return {
        "train": ArrayDataset(info, {"x": data.x_train, "y": data.y_train}, "train"),
        "test": ArrayDataset(info, {"x": data.x_test, "y": data.y_test}, "test"),
    }


def _classification_splits(info: DatasetInfo, x: np.ndarray, y: np.ndarray) -> Splits:
    train, test = _split_indices(y)
    return {
        "train": ArrayDataset(info, {"x": x[train], "y": y[train]}, "train"),
        "test": ArrayDataset(info, {"x": x[test], "y": y[test]}, "test"),
    }


XOR_CORNERS = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], np.float32)
XOR_LABELS = np.array([0, 1, 1, 0], np.int32)
_XOR_COPIES = 16
_XOR_JITTER = 0.1


def _xor(*, seed: int, data_dir: str | None, download: bool) -> Splits:
    """XOR: the 4 corners of the unit square, label ``x0 xor x1``.

    Train: the 4 exact corners first (so ``take(4)`` is the pure XOR problem), then 15
    jittered copies of each corner (Gaussian noise, std 0.1, from ``seed``) keeping the
    corner's label: 64 examples, ``x`` shape ``(2,)``. Test: the 4 exact corners. No linear
    model separates them; a small MLP does.
    """
    del data_dir, download
    noise = np.random.default_rng(seed).normal(0.0, _XOR_JITTER, (_XOR_COPIES - 1, 4, 2))
    info = DatasetInfo(
        name="xor",
        task="binary",
        input_shape=(2,),
        num_outputs=1,
        num_classes=2,
        class_names=("0", "1"),
        feature_names=("x0", "x1"),
        description="XOR of two bits: 4 exact corners plus jittered copies (train); corners (test)",
    )
    x_train = np.concatenate([XOR_CORNERS, (XOR_CORNERS + noise).reshape(-1, 2)])
    return {
        "train": ArrayDataset(
            info,
            {"x": x_train.astype(np.float32), "y": np.tile(XOR_LABELS, _XOR_COPIES)},
            "train",
        ),
        "test": ArrayDataset(info, {"x": XOR_CORNERS.copy(), "y": XOR_LABELS.copy()}, "test"),
    }


_SPIRAL_POINTS_PER_CLASS = 200
_SPIRAL_TURNS = 1.5
_SPIRAL_NOISE = 0.05


def _spirals(*, seed: int, data_dir: str | None, download: bool) -> Splits:
    """Two interleaved spirals in the plane, one per class: 400 points, ``x`` shape ``(2,)``.

    A point at angle ``t`` (1.5 turns) has radius ``t / t_max`` in [0, 1]; class 1 is class 0
    rotated by half a turn; Gaussian noise (std 0.05) from ``seed`` is added. Binary labels.
    """
    del data_dir, download
    rng = np.random.default_rng(seed)
    t_max = 2 * np.pi * _SPIRAL_TURNS
    t = t_max * np.sqrt(rng.uniform(size=_SPIRAL_POINTS_PER_CLASS))  # even density along arcs
    arm = (t / t_max)[:, None] * np.stack([np.cos(t), np.sin(t)], axis=1)
    x = np.concatenate([arm, -arm]) + rng.normal(0.0, _SPIRAL_NOISE, (2 * len(t), 2))
    y = np.repeat(np.array([0, 1], np.int32), len(t))
    info = DatasetInfo(
        name="spirals",
        task="binary",
        input_shape=(2,),
        num_outputs=1,
        num_classes=2,
        class_names=("spiral 0", "spiral 1"),
        feature_names=("x0", "x1"),
        description="two interleaved noisy spirals in [-1, 1]^2, one per class",
    )
    return _classification_splits(info, x.astype(np.float32), y)


def _digits(*, seed: int, data_dir: str | None, download: bool) -> Splits:
    """scikit-learn's 1797 real 8x8 handwritten digits: ``x`` (8, 8, 1) in [0, 1], 10 classes."""
    del seed, data_dir, download
    from sklearn import datasets  # imported here: sklearn.datasets takes ~1 s to import

    bunch = datasets.load_digits()
    info = DatasetInfo(
        name="digits",
        task="classification",
        input_shape=(8, 8, 1),
        num_outputs=10,
        num_classes=10,
        class_names=tuple(str(d) for d in range(10)),
        description="real 8x8 handwritten digits (UCI, shipped with scikit-learn), 10 classes",
    )
    x = (bunch.images[..., None] / 16.0).astype(np.float32)
    return _classification_splits(info, x, bunch.target.astype(np.int32))


def _diabetes(*, seed: int, data_dir: str | None, download: bool) -> Splits:
    """scikit-learn's real diabetes data: 442 patients, 10 features -> disease progression.

    Features and target are standardised with the train split's statistics.
    """
    del seed, data_dir, download
    from sklearn import datasets

    bunch = datasets.load_diabetes(scaled=False)
    return _regression_splits(
        "diabetes",
        _standardise(bunch.data, bunch.target[:, None]),
        feature_names=tuple(bunch.feature_names),
        description="real diabetes data (scikit-learn): 10 baseline features -> progression "
        "one year later",
    )


HOUSING_FEATURES = ("area_m2", "bedrooms", "age_years", "distance_km")
HOUSING_COEFFICIENTS = np.array([3.0, 12.0, -1.5, -6.0])  # thousands per feature unit
HOUSING_INTERCEPT = 40.0  # thousands
HOUSING_NOISE_STD = 20.0  # thousands
_HOUSING_SIZE = 500


def _housing_synthetic(*, seed: int, data_dir: str | None, download: bool) -> Splits:
    """Synthetic house prices with a known linear law, for the line-of-best-fit lesson.

    500 houses with independent features: area in m^2 ~ U(35, 220), bedrooms ~ {1..5},
    age in years ~ U(0, 80), distance to the centre in km ~ U(0.5, 30). Price in thousands =
    40 + 3.0 area + 12.0 bedrooms - 1.5 age - 6.0 distance + N(0, 20^2), all drawn from
    ``seed``. Features and price are standardised with the train split's statistics.

    ``info.extras`` holds the true law twice, lists aligned with ``info.feature_names``:
    ``"coefficients"``, ``"intercept"``, ``"noise_std"`` in raw units (thousands of currency
    units per feature unit), and ``"coefficients_standardised"``,
    ``"intercept_standardised"``, ``"noise_std_standardised"`` in the standardised units
    that ``batch["x"]`` and ``batch["y"]`` use, i.e. what a fit on this data should recover.
    """
    del data_dir, download
    rng = np.random.default_rng(seed)
    n = _HOUSING_SIZE
    x = np.stack(
        [
            rng.uniform(35, 220, n),
            rng.integers(1, 6, n).astype(np.float64),
            rng.uniform(0, 80, n),
            rng.uniform(0.5, 30, n),
        ],
        axis=1,
    )
    price = HOUSING_INTERCEPT + x @ HOUSING_COEFFICIENTS + rng.normal(0, HOUSING_NOISE_STD, n)
    data = _standardise(x, price[:, None])
    y_mean, y_std = data.y_mean[0], data.y_std[0]
    extras = {
        "coefficients": HOUSING_COEFFICIENTS.tolist(),
        "intercept": HOUSING_INTERCEPT,
        "noise_std": HOUSING_NOISE_STD,
        "coefficients_standardised": (HOUSING_COEFFICIENTS * data.x_std / y_std).tolist(),
        "intercept_standardised": float(
            (HOUSING_INTERCEPT + HOUSING_COEFFICIENTS @ data.x_mean - y_mean) / y_std
        ),
        "noise_std_standardised": float(HOUSING_NOISE_STD / y_std),
    }
    return _regression_splits(
        "housing_synthetic",
        data,
        feature_names=HOUSING_FEATURES,
        description="synthetic house prices (thousands) = known linear law of 4 features + noise",
        extras=extras,
    )


WINDSOR_FEATURES = (
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
WINDSOR_YES_NO_FEATURES = ("driveway", "recreation", "fullbase", "gasheat", "aircon", "prefer")
WINDSOR_CITATION = (
    "Anglin, P. M. and Gencay, R. (1996). Semiparametric estimation of a hedonic price "
    "function. Journal of Applied Econometrics 11(6), 633-648."
)
_WINDSOR_FILE = "windsor_housing.csv"
_YES_NO = {"yes": 1.0, "no": 0.0}


def _read_windsor() -> tuple[np.ndarray, np.ndarray]:
    """The shipped CSV as float64 ``x (546, 11)`` in `WINDSOR_FEATURES` order, ``price (546,)``."""
    text = resources.files(__package__).joinpath(_WINDSOR_FILE).read_text(encoding="utf-8")
    rows = list(csv.DictReader(line for line in text.splitlines() if not line.startswith("#")))
    x = [
        [
            _YES_NO[row[f]] if f in WINDSOR_YES_NO_FEATURES else float(row[f])
            for f in WINDSOR_FEATURES
        ]
        for row in rows
    ]
    return np.array(x), np.array([float(row["price"]) for row in rows])


def _windsor_housing(*, seed: int, data_dir: str | None, download: bool) -> Splits:
    """Real house prices: 546 houses sold in Windsor, Canada, in 1987, 11 features -> price.

    The data of Anglin and Gencay (1996) (`WINDSOR_CITATION`), from the Journal of Applied
    Econometrics Data Archive by way of R's AER package (``HousePrices``; GPL-2 | GPL-3),
    shipped as ``adljax/data/windsor_housing.csv``, whose header gives the provenance. The
    features (`WINDSOR_FEATURES`, in the table's order): lot size (square feet), bedrooms,
    full bathrooms, stories, driveway, recreation room, full finished basement, gas hot-water
    heating, central air conditioning, garage places, preferred neighbourhood; the six yes/no
    ones (`WINDSOR_YES_NO_FEATURES`) as 1.0/0.0. The target is the sale price in dollars; the
    paper models log(price), this dataset does not. Features and price are standardised with
    the train split's statistics (437 train, 109 test houses).
    """
    del seed, data_dir, download
    x, price = _read_windsor()
    return _regression_splits(
        "windsor_housing",
        _standardise(x, price[:, None]),
        feature_names=WINDSOR_FEATURES,
        description="real house prices (Windsor, Canada, 1987; Anglin and Gencay 1996): "
        "11 features -> sale price",
        extras={
            "citation": WINDSOR_CITATION,
            "source": "Journal of Applied Econometrics Data Archive, via R package AER "
            "(HousePrices; GPL-2 | GPL-3)",
            "target_units": "dollars",
            "yes_no_features": list(WINDSOR_YES_NO_FEATURES),
        },
    )


def _california_housing(*, seed: int, data_dir: str | None, download: bool) -> Splits:
    """scikit-learn's California housing (20640 districts, 8 features -> median value).

    Fetched by ``sklearn.datasets.fetch_california_housing`` into scikit-learn's cache
    (``data_dir``, default ``~/scikit_learn_data``); the download happens only with
    ``download=True``. Features and target are standardised with the train split's stats.
    """
    del seed
    from sklearn import datasets

    try:
        bunch = datasets.fetch_california_housing(data_home=data_dir, download_if_missing=download)
    except OSError as err:  # urllib's URLError is an OSError; so is "not in the cache"
        cache = datasets.get_data_home(data_dir)
        how = (
            f"the download failed ({err})"
            if download
            else "pass download=True (CLI: --download) to fetch it"
        )
        raise DatasetUnavailableError(
            f"dataset 'california_housing' is not in scikit-learn's cache at {cache} and needs "
            f"the network once to download it: {how}; scikit-learn keeps it there afterwards"
        ) from err
    return _regression_splits(
        "california_housing",
        _standardise(bunch.data, bunch.target[:, None]),
        feature_names=tuple(bunch.feature_names),
        description="real California housing (1990 census, scikit-learn): 8 district "
        "features -> median house value",
    )


class _Embedded(NamedTuple):
    description: str
    build: Callable[..., Splits]


EMBEDDED: dict[str, _Embedded] = {
    "xor": _Embedded("XOR of two bits, binary, 2 features (generated)", _xor),
    "spirals": _Embedded("two interleaved spirals, binary, 2 features (generated)", _spirals),
    "digits": _Embedded("real 8x8 handwritten digits, 10 classes (scikit-learn)", _digits),
    "diabetes": _Embedded("real diabetes progression, regression, 10 features", _diabetes),
    "housing_synthetic": _Embedded(
        "house prices with known linear coefficients, regression, 4 features (generated)",
        _housing_synthetic,
    ),
    "windsor_housing": _Embedded(
        "real Windsor (Canada) house prices, regression, 11 features (shipped with adljax)",
        _windsor_housing,
    ),
    "california_housing": _Embedded(
        "real California house values, regression, 8 features (downloads once)",
        _california_housing,
    ),
    "ring8": _Embedded("8 Gaussians on a ring, generation, 2-D points (generated)", ring8),
    "grid25": _Embedded("25 Gaussians on a 5x5 grid, generation, 2-D points (generated)", grid25),
    "adding": _Embedded(
        "adding problem: sum of 2 marked values, regression, option seq_len (generated)",
        sequences.adding_splits,
    ),
    "copy": _Embedded(
        "copy/recall symbols after a delay, tagging, option seq_len (generated)",
        sequences.copy_splits,
    ),
    "sines": _Embedded(
        "next value of a noisy sine, regression, option seq_len (generated)",
        sequences.sines_splits,
    ),
    "waveforms": _Embedded(
        "sine, square, triangle or sawtooth, sequence classification, option seq_len",
        sequences.waveforms_splits,
    ),
    "pydoc_chars": _Embedded(
        "Python's reference topics as characters, language modeling, option seq_len",
        sequences.pydoc_chars_splits,
    ),
    "shapes": _Embedded(
        "ellipses, rectangles and triangles in cluttered scenes, detection, 3 classes (generated)",
        build_shapes,
    ),
}
