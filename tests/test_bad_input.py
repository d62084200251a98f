"""Bad input to the Python API is refused with a ValueError naming it, before any compute."""

import math
import re

import jax
import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

import adljax
from adljax import inference
from adljax.data import ArrayDataset, DatasetInfo, from_arrays
from adljax.detection.experiment import run_detection_experiment
from adljax.experiment import run_experiment
from adljax.gan.experiment import run_gan_experiment
from adljax.models import MLP

pytestmark = pytest.mark.usefixtures("fast_compiles")

RNG = np.random.default_rng(0)

# Every value a positive finite hyperparameter must refuse.
NOT_POSITIVE = st.one_of(st.floats(max_value=0.0), st.sampled_from([math.inf, -math.inf, math.nan]))
NOT_NON_NEGATIVE = st.one_of(
    st.floats(max_value=0.0, exclude_max=True), st.sampled_from([math.inf, math.nan])
)
NOT_A_FRACTION = st.one_of(
    st.floats(max_value=0.0, exclude_max=True), st.floats(min_value=1.0), st.just(math.nan)
)

# (runner, keyword arguments built from the bad value, the option named in the message).
HYPERPARAMETERS = [
    (run_experiment, lambda v: {"learning_rate": v}, "learning_rate", NOT_POSITIVE),
    (run_experiment, lambda v: {"clip_norm": v}, "clip_norm", NOT_POSITIVE),
    (
        run_experiment,
        lambda v: {"ensemble": 2, "learning_rates": [1e-3, v]},
        "learning_rates[1]",
        NOT_POSITIVE,
    ),
    (run_detection_experiment, lambda v: {"learning_rate": v}, "learning_rate", NOT_POSITIVE),
    (run_gan_experiment, lambda v: {"learning_rate": v}, "learning_rate", NOT_POSITIVE),
    (run_gan_experiment, lambda v: {"clip_norm": v}, "clip_norm", NOT_POSITIVE),
    *[
        (
            run_gan_experiment,
            lambda v, option=option: {"model_config_overrides": {option: v}},
            option,
            values,
        )
        for option, values in (
            ("gradient_penalty", NOT_NON_NEGATIVE),
            ("ema_decay", NOT_A_FRACTION),
            ("beta1", NOT_A_FRACTION),
            ("beta2", NOT_A_FRACTION),
        )
    ],
]


@pytest.mark.parametrize(
    ("runner", "arguments", "option", "values"),
    HYPERPARAMETERS,
    ids=[f"{runner.__name__}-{option}" for runner, _, option, _ in HYPERPARAMETERS],
)
def test_bad_hyperparameters_are_refused_before_anything_is_made(
    tmp_path, runner, arguments, option, values
):
    model, dataset = {
        run_experiment: ("mlp", "xor"),
        run_detection_experiment: ("detector", "shapes"),
        run_gan_experiment: ("gan", "ring8"),
    }[runner]

    @given(values)
    def check(value):
        run = tmp_path / "run"
        message = rf"`{re.escape(option)}` must be .*, got {re.escape(repr(value))}"
        with pytest.raises(ValueError, match=message):
            runner(model, dataset, checkpoint_dir=run, progress=False, **arguments(value))
        assert not run.exists()

    check()


@given(st.sampled_from([True, "0.1", None, [0.1]]))
def test_learning_rates_must_be_real_numbers(value):
    with pytest.raises(ValueError, match="`learning_rate` must be a positive finite number"):
        run_experiment("mlp", "xor", learning_rate=value, progress=False)


def test_create_optimizer_refuses_non_finite_values_but_allows_a_zero_learning_rate():
    adljax.create_optimizer("sgd", 0.0)  # holds the parameters still (tests, GAN players)
    for value in (math.inf, math.nan, -1.0):
        with pytest.raises(ValueError, match=f"`learning_rate` must be .*, got {value}"):
            adljax.create_optimizer("sgd", value)
    with pytest.raises(ValueError, match="`clip_norm` must be a positive finite number, got 0"):
        adljax.create_optimizer("sgd", 1e-3, clip_norm=0.0)


NON_NUMERIC = ["complex64", "complex128", "object", "<U3", "S2", "datetime64[s]"]


@pytest.mark.parametrize("dtype", NON_NUMERIC)
@pytest.mark.parametrize("which", ["x", "y"])
def test_from_arrays_refuses_arrays_that_do_not_hold_real_numbers(dtype, which):
    arrays = {"x": np.ones((6, 2)), "y": np.array([0, 1, 2, 0, 1, 2])}
    arrays[which] = arrays[which].astype(dtype)
    with pytest.raises(
        ValueError,
        match=rf"`{which}` must hold numbers, got dtype {re.escape(str(np.dtype(dtype)))}",
    ):
        from_arrays(arrays["x"], arrays["y"], task="classification", num_classes=3)


def _classification(features: int, num_classes: int = 3, size: int = 16):
    x = RNG.normal(size=(size, features))
    y = np.arange(size) % num_classes
    return from_arrays(x, y, task="classification", num_classes=num_classes)


def _state(features: int, num_outputs: int = 3, **mlp):
    model = MLP(hidden_sizes=(8,), num_outputs=num_outputs, **mlp)
    tx = adljax.create_optimizer("adam", 1e-3)
    return adljax.create_train_state(model, tx, np.zeros((1, features)), jax.random.key(0))


def _fit(state, data, checkpoint_dir, **options):
    options = {"task": data.info.task, "epochs": 1, "batch_size": 8, "progress": False} | options
    return adljax.fit(state, data, checkpoint_dir=checkpoint_dir, **options)


def _refused(match, state, data, tmp_path, **options):
    """Asserts that ``fit`` refuses, and that it made no checkpoint directory."""
    run = tmp_path / "run"
    with pytest.raises(ValueError, match=match):
        _fit(state, data, run, **options)
    assert not run.exists(), "a refused fit left its checkpoint directory behind"


@given(
    built_for=st.integers(1, 9),
    given_features=st.integers(1, 9),
    ensemble=st.booleans(),
)
def test_fit_refuses_inputs_of_another_shape_than_the_state_was_built_for(
    tmp_path, built_for, given_features, ensemble
):
    assume(built_for != given_features)
    data = _classification(given_features)
    state = _state(built_for)
    if ensemble:
        model, tx = state.model, state.tx
        sample = np.zeros((1, built_for))
        state = adljax.create_ensemble(model, tx, sample, jax.random.key(0), 2)
    message = (
        rf"`train_data` does not fit the model: inputs of shape \(batch, {given_features}\) .*"
        rf"'dense_0/kernel' has shape \({built_for}, 8\), but these inputs need "
        rf"\({given_features}, 8\)"
    )
    _refused(message, state, data, tmp_path)


def test_fit_checks_eval_data_too_before_training(tmp_path):
    message = r"`eval_data` does not fit the model: .*\(batch, 5\)"
    _refused(message, _state(4), _classification(4), tmp_path, eval_data=_classification(5))


def test_a_model_that_checks_its_input_shape_says_so_for_the_dataset(tmp_path):
    message = r"`train_data` does not fit the model: `x` must have shape \(batch, 4\), got \(8, 6\)"
    _refused(message, _state(4, input_shape=(4,)), _classification(6), tmp_path)


@given(num_classes=st.integers(2, 6), width=st.integers(1, 12))
def test_classification_needs_one_output_per_class(tmp_path, num_classes, width):
    assume(width != num_classes)
    message = (
        rf"(?=.*the model outputs {width} classes \(outputs \(batch, {width}\)\))"
        rf"(?=.*\b{num_classes} classes)"
    )
    _refused(message, _state(2, width), _classification(2, num_classes), tmp_path)


def test_a_narrower_head_fits_a_subset_of_the_classes(tmp_path):
    data = _classification(2, num_classes=6, size=24)
    subset = data.subset(np.flatnonzero(data.arrays["y"] < 4))  # keeps info.num_classes=6
    result = _fit(_state(2, 4), subset, tmp_path / "run")
    assert len(result.history) == 1


def test_labels_beyond_the_output_width_are_refused(tmp_path):
    info = DatasetInfo(
        name="mine", task="classification", input_shape=(2,), num_outputs=3, num_classes=3
    )
    arrays = {"x": np.zeros((8, 2), np.float32), "y": np.array([0, 1, 2, 5] * 2, np.int32)}
    message = r"`train_data` has labels in \[0, 5\] \(3 classes in its info\), .* outputs 3"
    _refused(message, _state(2, 3), ArrayDataset(info, arrays), tmp_path)


@given(width=st.integers(2, 5))
def test_binary_classification_needs_one_logit(tmp_path, width):
    x = RNG.normal(size=(16, 2))
    data = from_arrays(x, np.arange(16) % 2, task="binary")
    _refused(
        rf"one logit per example.*outputs \(batch, {width}\)", _state(2, width), data, tmp_path
    )


@given(targets=st.integers(1, 4), width=st.integers(1, 4))
def test_regression_needs_one_output_per_target(tmp_path, targets, width):
    assume(targets != width)
    data = from_arrays(RNG.normal(size=(16, 3)), RNG.normal(size=(16, targets)), task="regression")
    message = (
        rf"outputs \(batch, {width}\) but the targets of `train_data` are \(batch, {targets}\)"
    )
    _refused(message, _state(3, width), data, tmp_path)


def test_a_model_that_fits_its_data_trains(tmp_path):
    result = _fit(_state(2, 3), _classification(2), tmp_path / "run")
    assert len(result.history) == 1


@pytest.fixture
def no_compute(monkeypatch):
    """Fails a test if ``adljax.predict`` reaches its compiled function."""

    def compiled(*_):
        raise AssertionError("predict computed before refusing its input")

    monkeypatch.setattr(inference, "_compiled_predict_step", compiled)


@pytest.mark.usefixtures("no_compute")
@given(built_for=st.integers(1, 6), trailing=st.lists(st.integers(1, 6), min_size=1, max_size=2))
def test_predict_refuses_inputs_of_another_shape(built_for, trailing):
    assume(trailing != [built_for])
    x = np.zeros((3, *trailing), np.float32)
    if math.prod(trailing) != built_for:  # the MLP flattens each example
        message = rf"`x` does not fit the model: .*'dense_0/kernel' has shape \({built_for}, 8\)"
        with pytest.raises(ValueError, match=message):
            adljax.predict(_state(built_for), x)
    with pytest.raises(
        ValueError, match=rf"`x` must have shape \(batch, {built_for}\), got \(3, {trailing[0]}"
    ):
        adljax.predict(_state(built_for, input_shape=(built_for,)), x)


@pytest.mark.usefixtures("no_compute")
@pytest.mark.parametrize("dtype", NON_NUMERIC)
def test_predict_refuses_inputs_that_do_not_hold_real_numbers(dtype):
    with pytest.raises(
        ValueError, match=rf"`x` must hold numbers, got dtype {re.escape(str(np.dtype(dtype)))}"
    ):
        adljax.predict(_state(2), np.ones((3, 2)).astype(dtype))


def test_evaluate_refuses_data_the_model_does_not_fit():
    with pytest.raises(ValueError, match=r"`data` does not fit the model: .*\(batch, 3\)"):
        adljax.evaluate(_state(2), _classification(3))
    with pytest.raises(ValueError, match="the model outputs 4 classes"):
        adljax.evaluate(_state(2, 4), _classification(2))
