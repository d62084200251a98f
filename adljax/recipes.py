"""Training recipes: the settings each model family learns a dataset with.

``adljax train MODEL --dataset D`` with no other flag trains with ``recipe_for(MODEL, D)``;
every flag given replaces that one setting (``--set`` entries join the recipe's model
configuration). The tour's lessons train with the same recipes, so the defaults reach the
tour's figures. A pair without a recipe gets `DEFAULT`, the library's plain defaults.
"""

import dataclasses
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any


@dataclasses.dataclass(frozen=True)
class Recipe:
    """Settings of one training run; ``model_config`` also carries a GAN's game options
    (``loss``, ``n_critic``...), and ``dataset_options`` go to ``adljax.data.load``."""

    epochs: int = 10
    batch_size: int = 64
    optimizer: str = "adam"
    learning_rate: float = 1e-3
    augment: bool = False
    model_config: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    dataset_options: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    source: str = "the library's defaults (no recipe for this model and dataset)"

    def __post_init__(self):
        for name in ("model_config", "dataset_options"):
            object.__setattr__(self, name, MappingProxyType(dict(getattr(self, name))))

    def arguments(self, **overrides: Any) -> dict[str, Any]:
        """Keyword arguments of ``run_experiment`` (and the family runners) for this recipe,
        with ``overrides`` (e.g. ``epochs=4``) replacing recipe settings."""
        arguments = {
            "epochs": self.epochs,
            "batch_size": self.batch_size,
            "optimizer": self.optimizer,
            "learning_rate": self.learning_rate,
            "augment": self.augment,
            "model_config_overrides": dict(self.model_config),
            "dataset_options": dict(self.dataset_options),
        }
        return arguments | overrides


DEFAULT = Recipe()
"""The settings of a model and dataset pair that has no recipe of its own."""

_CONVNET = {"epochs": 12, "batch_size": 64, "learning_rate": 3e-3}
_WGAN_GP = {"loss": "wgan_gp", "n_critic": 5, "gradient_penalty": 1.0, "beta2": 0.9}
_RECURRENT = {
    "epochs": 4,
    "batch_size": 32,
    "learning_rate": 1e-2,
    "model_config": {"hidden_size": 32},
}

# (model, dataset or None for any dataset) -> the settings that differ from DEFAULT, and
# the lesson they come from. A (model, dataset) entry wins over (model, None).
_RECIPES: dict[tuple[str, str | None], dict[str, Any]] = {
    ("linear", "housing_synthetic"): {
        "epochs": 60,
        "batch_size": 32,
        "optimizer": "sgd",
        "learning_rate": 0.05,
        "source": "the tour's recipe (Day 1: line of best fit)",
    },
    ("linear", "windsor_housing"): {
        "epochs": 60,
        "batch_size": 437,  # the whole training split: full-batch gradient descent
        "optimizer": "sgd",
        "learning_rate": 0.3,
        "source": "the tour's recipe (Day 1: the framework in JAX)",
    },
    ("linear", "xor"): {
        "epochs": 300,
        "batch_size": 4,
        "learning_rate": 0.05,
        "source": "the tour's recipe (Day 1: XOR)",
    },
    ("mlp", "xor"): {
        "epochs": 300,
        "batch_size": 4,
        "learning_rate": 0.05,
        "model_config": {"hidden_sizes": (8,), "activation": "tanh"},
        "source": "the tour's recipe (Day 1: XOR)",
    },
    ("mlp", "spirals"): {
        "epochs": 150,
        "batch_size": 32,
        "learning_rate": 1e-2,
        "model_config": {"hidden_sizes": (64, 64)},
        "source": "the tour's recipe (Day 1: neurons and activations)",
    },
    ("mlp", "digits"): {
        **_CONVNET,
        "model_config": {"hidden_sizes": (128, 128), "batch_norm": True},
        "source": "the tour's recipe (Day 2: ConvNets against the MLP)",
    },
    ("cnn", None): {
        **_CONVNET,
        "model_config": {"batch_norm": True},
        "source": "the tour's recipe (Day 2: ConvNets against the MLP)",
    },
    ("detector", None): {
        "epochs": 20,
        "batch_size": 32,
        "learning_rate": 3e-3,
        "augment": True,
        "source": "the tour's recipe (Day 2: object detection)",
    },
    **{
        (cell, "adding"): {**_RECURRENT, "source": "the tour's recipe (Day 3: the adding problem)"}
        for cell in ("rnn", "gru", "lstm")
    },
    ("charlm", "pydoc_chars"): {
        "epochs": 5,
        "learning_rate": 3e-3,
        "model_config": {"hidden_size": 128},
        "dataset_options": {"seq_len": 100},
        "source": "the tour's recipe (Day 3: a character language model)",
    },
    ("gan", "ring8"): {
        "epochs": 150,
        "batch_size": 256,
        "learning_rate": 1e-3,
        "model_config": _WGAN_GP,
        "source": "the tour's recipe (Day 4: an MLP WGAN-GP on a ring of 8 Gaussians)",
    },
    ("dcgan", None): {
        "epochs": 60,
        "batch_size": 64,
        "learning_rate": 5e-4,
        "source": "the tour's recipe (Day 4: a DCGAN on digits)",
    },
}


def recipe_for(model: str, dataset: str) -> Recipe:
    """The recipe registered ``model`` trains ``dataset`` with (`DEFAULT` if none)."""
    settings = _RECIPES.get((model, dataset)) or _RECIPES.get((model, None))
    return Recipe(**settings) if settings is not None else DEFAULT
