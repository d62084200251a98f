"""Tests for adljax.models.registry."""

import functools
import json

import flax.linen as nn
import jax
import jax.numpy as jnp
import pytest

from adljax.models import (
    MLP,
    LinearRegression,
    create_model,
    list_models,
    model_config,
    register_model,
    registry,
)

_CONFIGS = [
    ("linear", {"num_outputs": 3, "input_shape": (2, 2)}),
    (
        "mlp",
        {
            "hidden_sizes": (8, 4),
            "num_outputs": 3,
            "activation": "tanh",
            "dropout_rate": 0.25,
            "batch_norm": True,
            "input_shape": (2, 2),
        },
    ),
]


@pytest.fixture
def scratch_registry(monkeypatch):
    """Lets a test register models without leaking them into other tests."""
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))


def test_builtin_models_are_listed_with_descriptions():
    listed = dict(list_models())
    assert {"linear", "mlp"} <= set(listed)
    assert [name for name, _ in list_models()] == sorted(listed)
    assert all(description and "\n" not in description for description in listed.values())


@pytest.mark.parametrize(("name", "expected"), [("linear", LinearRegression), ("mlp", MLP)])
def test_create_model_builds_the_registered_class(name, expected):
    assert type(create_model(name)) is expected


@pytest.mark.parametrize(("name", "config"), _CONFIGS)
def test_config_round_trips_through_json(name, config):
    model = create_model(name, **config)
    assert model_config(model) == config

    rebuilt = create_model(name, **json.loads(json.dumps(model_config(model))))
    assert rebuilt == model
    x = jnp.ones((1, 2, 2))
    shapes = [
        jax.tree.map(
            jnp.shape, jax.eval_shape(lambda m=m: m.init(jax.random.key(0), x, train=False))
        )
        for m in (model, rebuilt)
    ]
    assert shapes[0] == shapes[1]


def test_model_config_ignores_module_plumbing():
    assert "name" not in model_config(MLP(name="classifier"))
    assert "parent" not in model_config(MLP())


def test_unknown_model_name_lists_known_names():
    with pytest.raises(ValueError, match=r"unknown model 'mpl'; choose one of .*'linear'.*'mlp'"):
        create_model("mpl")


@pytest.mark.parametrize("bad_key", ["hidden_size", "name", "parent"])
def test_unknown_config_key_is_named(bad_key):
    with pytest.raises(
        ValueError, match=rf"unknown config key\(s\) \['{bad_key}'\] for model 'mlp'"
    ):
        create_model("mlp", **{bad_key: 3})


def test_a_missing_required_config_key_is_named():
    with pytest.raises(ValueError, match=r"model 'resnet' needs config key\(s\) \['stage_sizes'\]"):
        create_model("resnet", num_outputs=3)


def test_model_config_rejects_non_modules():
    with pytest.raises(ValueError, match=r"`model` must be a flax\.linen\.Module, got dict"):
        model_config({"num_outputs": 1})


@pytest.mark.usefixtures("scratch_registry")
def test_register_model_decorator_and_duplicates():
    @register_model("tiny")
    class Tiny(nn.Module):
        """A tiny test model.

        More text that is not part of the description.
        """

        width: int = 2

        @nn.compact
        def __call__(self, x, *, train: bool):
            return nn.Dense(self.width)(x)

    assert ("tiny", "A tiny test model.") in list_models()
    assert create_model("tiny", width=5) == Tiny(width=5)
    with pytest.raises(ValueError, match="model name 'tiny' is already registered"):
        register_model("tiny")(Tiny)


@pytest.mark.usefixtures("scratch_registry")
def test_register_a_named_variant_as_a_partial():
    register_model("mlp_wide", description="An MLP with two wide layers.")(
        functools.partial(MLP, hidden_sizes=(256, 256))
    )
    assert ("mlp_wide", "An MLP with two wide layers.") in list_models()
    assert create_model("mlp_wide", num_outputs=2) == MLP(hidden_sizes=(256, 256), num_outputs=2)
    with pytest.raises(ValueError, match=r"unknown config key\(s\) \['width'\]"):
        create_model("mlp_wide", width=3)


@pytest.mark.usefixtures("scratch_registry")
def test_factory_taking_any_keyword_is_not_second_guessed():
    @register_model("any_mlp")
    def any_mlp(**kwargs) -> nn.Module:
        """An MLP factory that forwards every keyword."""
        return MLP(**kwargs)

    assert create_model("any_mlp", num_outputs=4) == MLP(num_outputs=4)
    with pytest.raises(ValueError, match=r"unknown config key\(s\) \['name'\]"):
        create_model("any_mlp", name="x")
