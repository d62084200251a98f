"""DatasetInfo: validation and the JSON round trip that checkpoints rely on."""

import json

import numpy as np
import pytest

from adljax.data import DatasetInfo

REGRESSION = DatasetInfo(
    name="r",
    task="regression",
    input_shape=(3,),
    num_outputs=2,
    feature_names=("a", "b", "c"),
    target_mean=(1.0, -2.0),
    target_std=(2.0, 0.5),
    description="two targets",
    extras={"coefficients": [1.0, 2.0, 3.0], "nested": {"k": [1, 2]}},
)


@pytest.mark.parametrize(
    "info",
    [
        REGRESSION,
        DatasetInfo(
            name="digits",
            task="classification",
            input_shape=(8, 8, 1),
            num_outputs=10,
            num_classes=10,
            class_names=tuple("0123456789"),
        ),
        DatasetInfo(name="xor", task="binary", input_shape=(2,), num_outputs=1, num_classes=2),
    ],
    ids=["regression", "classification", "binary"],
)
def test_json_round_trip_restores_an_equal_info(info):
    text = json.dumps(info.to_dict())
    restored = DatasetInfo.from_dict(json.loads(text))
    assert restored == info
    assert isinstance(restored.input_shape, tuple)
    assert json.loads(text)["input_shape"] == list(info.input_shape)


def test_lists_are_stored_as_tuples_and_extras_are_copied():
    extras = {"k": 1}
    info = DatasetInfo(
        name="r",
        task="regression",
        input_shape=[4],
        num_outputs=1,
        target_mean=[0],
        target_std=[1],
        extras=extras,
    )
    extras["k"] = 2
    assert info.input_shape == (4,)
    assert info.target_mean == (0.0,)
    assert info.extras == {"k": 1}


def test_from_dict_rejects_unknown_fields():
    d = REGRESSION.to_dict() | {"colour": "red"}
    with pytest.raises(ValueError, match=r"unknown DatasetInfo fields \['colour'\]"):
        DatasetInfo.from_dict(d)


def test_unstandardise_targets_inverts_the_train_standardisation():
    y = np.array([[0.0, 0.0], [1.0, -2.0]], np.float32)
    np.testing.assert_allclose(REGRESSION.unstandardise_targets(y), [[1.0, -2.0], [3.0, -3.0]])
    raw = DatasetInfo(name="raw", task="regression", input_shape=(1,), num_outputs=1)
    np.testing.assert_array_equal(raw.unstandardise_targets(y[:, :1]), y[:, :1])


BASE = {"name": "t", "task": "classification", "input_shape": (2,), "num_outputs": 3}


@pytest.mark.parametrize(
    ("changes", "match"),
    [
        ({"task": "ranking"}, "unknown task 'ranking'; choose one of 'classification'"),
        ({"input_shape": ()}, r"`input_shape` must be a non-empty tuple of positive sizes"),
        ({"input_shape": (0, 2)}, r"`input_shape` must be a non-empty tuple .*got \(0, 2\)"),
        ({"num_outputs": 0, "num_classes": 3}, "`num_outputs` must be a positive integer"),
        ({}, "classification needs `num_classes` >= 2, got None"),
        ({"num_classes": 4}, "a classification dataset has `num_outputs`=4, got 3"),
        ({"task": "binary", "num_classes": 3}, "a binary dataset has `num_classes`=2, got 3"),
        ({"task": "binary", "num_classes": 2}, "a binary dataset has `num_outputs`=1, got 3"),
        ({"task": "regression", "num_classes": 3}, "a regression dataset has no classes"),
        ({"num_classes": 3, "class_names": ("a",)}, "`class_names` must have num_classes=3"),
        ({"num_classes": 3, "feature_names": ("a",)}, r"`feature_names` must have 2 entries"),
        ({"num_classes": 3, "target_mean": (0.0,)}, "must be given together"),
        (
            {"num_classes": 3, "target_mean": (0.0,), "target_std": (1.0,)},
            "target statistics only apply to regression",
        ),
        (
            {"task": "regression", "target_mean": (0.0,), "target_std": (1.0,)},
            "`target_mean` must have num_outputs=3 entries",
        ),
        (
            {"task": "regression", "num_outputs": 1, "target_mean": (0.0,), "target_std": (0.0,)},
            "`target_std` must be positive",
        ),
    ],
)
def test_inconsistent_info_raises(changes, match):
    with pytest.raises(ValueError, match=match):
        DatasetInfo(**(BASE | changes))
