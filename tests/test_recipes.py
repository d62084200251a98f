"""Recipes: what ``adljax train MODEL --dataset D`` trains with when no flag says otherwise."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adljax.cli import _training_settings, build_parser, main
from adljax.data import from_arrays, list_datasets
from adljax.experiment import model_for_dataset
from adljax.gan.experiment import GAN_OPTIONS
from adljax.inference import load_checkpoint
from adljax.models import model_parameters
from adljax.recipes import _RECIPES, DEFAULT, recipe_for


@pytest.mark.parametrize(("model", "dataset"), sorted(_RECIPES, key=str))
def test_every_recipe_names_a_model_dataset_and_settings_that_exist(model, dataset):
    recipe = recipe_for(model, dataset or "any")
    assert recipe != DEFAULT
    assert dataset is None or dataset in list_datasets()
    assert set(recipe.model_config) <= model_parameters(model) | set(GAN_OPTIONS)
    assert recipe.epochs > 0 and recipe.batch_size > 0 and recipe.learning_rate > 0


def test_a_pair_without_a_recipe_gets_the_library_defaults():
    assert recipe_for("mlp", "diabetes") == DEFAULT
    assert recipe_for("cnn", "mnist") == recipe_for("cnn", None)  # a model-wide recipe


FLAGS = {
    "--epochs": st.integers(1, 50).map(str),
    "--batch-size": st.integers(1, 512).map(str),
    "--optimizer": st.sampled_from(["sgd", "adam", "adamw"]),
    "--learning-rate": st.floats(1e-5, 1.0).map(repr),
    "--seed": st.integers(0, 99).map(str),
}
ARGUMENT = {
    "--epochs": "epochs",
    "--batch-size": "batch_size",
    "--optimizer": "optimizer",
    "--learning-rate": "learning_rate",
    "--seed": "seed",
}


@settings(max_examples=40, deadline=None)
@given(
    pair=st.sampled_from(
        [("mlp", "digits"), ("detector", "shapes"), ("gan", "ring8"), ("gru", "x")]
    ),
    given_flags=st.dictionaries(st.sampled_from(sorted(FLAGS)), st.just(None)).flatmap(
        lambda chosen: st.fixed_dictionaries({flag: FLAGS[flag] for flag in chosen})
    ),
    hidden=st.none() | st.integers(1, 64),
)
def test_each_flag_given_replaces_its_recipe_setting_and_set_joins_the_config(
    pair, given_flags, hidden, capsys
):
    model, dataset = pair
    argv = ["train", model, "--dataset", dataset]
    for flag, value in given_flags.items():
        argv += [flag, value]
    if hidden is not None:
        argv += ["--set", f"hidden_size={hidden}"]
    chosen = _training_settings(build_parser().parse_args(argv))
    recipe = recipe_for(model, dataset).arguments(seed=0)
    for flag, name in ARGUMENT.items():
        expected = type(recipe[name])(given_flags[flag]) if flag in given_flags else recipe[name]
        assert chosen[name] == expected
    expected_config = dict(recipe["model_config_overrides"])
    if hidden is not None:
        expected_config["hidden_size"] = hidden
    assert chosen["model_config_overrides"] == expected_config
    assert capsys.readouterr().err.startswith(f"adljax train: {model} on {dataset} with ")


def test_the_recipe_is_what_trains_and_a_resume_keeps_the_saved_settings(tmp_path, capsys):
    run = str(tmp_path / "run")
    base = ["train", "mlp", "--dataset", "digits", "--no-progress", "--checkpoint-dir", run]
    assert (
        main([*base, "--epochs", "1", "--learning-rate", "0.01", "--set", "dropout_rate=0.1"]) == 0
    )
    _, meta = load_checkpoint(run)
    assert meta["optimizer"]["learning_rate"] == 0.01  # the flag
    assert meta["data_position"]["batch_size"] == recipe_for("mlp", "digits").batch_size
    config = meta["model"]["config"]
    assert (config["hidden_sizes"], config["batch_norm"], config["dropout_rate"]) == (
        [128, 128],
        True,
        0.1,
    )
    capsys.readouterr()
    assert main([*base, "--epochs", "2", "--resume"]) == 0  # no flags: the saved run's settings
    assert "from the run being resumed" in capsys.readouterr().err
    _, meta = load_checkpoint(run)
    assert meta["data_position"]["epoch"] == 2
    assert meta["optimizer"]["learning_rate"] == 0.01


@pytest.mark.parametrize(
    ("side", "stem"), [(8, "cifar"), (32, "cifar"), (63, "cifar"), (64, "imagenet")]
)
def test_a_resnet_gets_the_stem_that_fits_the_images(side, stem):
    images = np.zeros((4, side, side, 3), np.float32)
    data = from_arrays(images, np.arange(4) % 2, task="classification", num_classes=2)
    assert model_for_dataset("resnet18", data).stem == stem
    assert model_for_dataset("resnet18", data, stem="cifar").stem == "cifar"  # set: kept
