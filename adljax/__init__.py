"""adljax: an applied deep-learning course as pure Flax modules with compiled Optax training.

Synopsis::

    import jax, adljax
    train, test = adljax.data.load("digits", "train"), adljax.data.load("digits", "test")
    model = adljax.models.MLP(hidden_sizes=(64,), num_outputs=10)
    tx = adljax.create_optimizer("adam", 1e-3)
    state = adljax.create_train_state(model, tx, train.arrays["x"][:1], jax.random.key(0))
    result = adljax.fit(state, train, task="classification", epochs=20, batch_size=64,
                        eval_data=test)
    print(adljax.evaluate(result.state, test))

The names below are imported on first use, so ``import adljax`` alone loads neither Flax nor
Optax nor Orbax: ``adljax.serving.load`` runs an exported model with JAX and NumPy only.
"""

import importlib
import importlib.metadata
from typing import TYPE_CHECKING, Any

# Public name -> the module that defines it (a sub-module when the name is the module).
_EXPORTS = {
    "checkpoint": "adljax.checkpoint",
    "data": "adljax.data",
    "detection": "adljax.detection",
    "diagnostics": "adljax.diagnostics",
    "gan": "adljax.gan",
    "losses": "adljax.losses",
    "metrics": "adljax.metrics",
    "models": "adljax.models",
    "ops": "adljax.ops",
    "plots": "adljax.plots",
    "representations": "adljax.representations",
    "serving": "adljax.serving",
    "tasks": "adljax.tasks",
    "transfer": "adljax.transfer",
    "evaluate": "adljax.inference",
    "load_checkpoint": "adljax.inference",
    "predict": "adljax.inference",
    "summary": "adljax.model_summary",
    "CheckpointOptions": "adljax.training",
    "EarlyStopping": "adljax.training",
    "FitResult": "adljax.training",
    "NonFiniteLossError": "adljax.training",
    "TrainState": "adljax.training",
    "create_ensemble": "adljax.training",
    "create_optimizer": "adljax.training",
    "create_train_state": "adljax.training",
    "fit": "adljax.training",
    "jit": "adljax.training",
    "make_eval_step": "adljax.training",
    "make_train_step": "adljax.training",
}
__all__ = list(_EXPORTS)


def __getattr__(name: str) -> Any:
    module_name = _EXPORTS.get(name)
    if module_name is None:
        raise AttributeError(f"module 'adljax' has no attribute {name!r}")
    module = importlib.import_module(module_name)
    value = module if module_name == f"adljax.{name}" else getattr(module, name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])


if TYPE_CHECKING:  # what the names are, for type checkers and editors
    from adljax import checkpoint as checkpoint
    from adljax import data as data
    from adljax import detection as detection
    from adljax import gan as gan
    from adljax import losses as losses
    from adljax import metrics as metrics
    from adljax import models as models
    from adljax import ops as ops
    from adljax import plots as plots
    from adljax import representations as representations
    from adljax import serving as serving
    from adljax import tasks as tasks
    from adljax import transfer as transfer
    from adljax.inference import evaluate as evaluate
    from adljax.inference import load_checkpoint as load_checkpoint
    from adljax.inference import predict as predict
    from adljax.model_summary import summary as summary
    from adljax.training import CheckpointOptions as CheckpointOptions
    from adljax.training import EarlyStopping as EarlyStopping
    from adljax.training import FitResult as FitResult
    from adljax.training import NonFiniteLossError as NonFiniteLossError
    from adljax.training import TrainState as TrainState
    from adljax.training import create_ensemble as create_ensemble
    from adljax.training import create_optimizer as create_optimizer
    from adljax.training import create_train_state as create_train_state
    from adljax.training import fit as fit
    from adljax.training import jit as jit
    from adljax.training import make_eval_step as make_eval_step
    from adljax.training import make_train_step as make_train_step

try:
    __version__ = importlib.metadata.version("adljax")
except importlib.metadata.PackageNotFoundError:  # running from a source tree
    __version__ = "0.0.0+unknown"
