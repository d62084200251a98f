"""Model families as Flax Linen modules, activations by name, and the model registry."""

from adljax.models.activations import ACTIVATIONS as ACTIVATIONS
from adljax.models.activations import get_activation as get_activation
from adljax.models.linear import LinearRegression as LinearRegression
from adljax.models.mlp import MLP as MLP
from adljax.models.registry import create_model as create_model
from adljax.models.registry import list_models as list_models
from adljax.models.registry import model_config as model_config
from adljax.models.registry import register_model as register_model
