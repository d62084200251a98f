"""Train state, step factories, the ``fit`` loop, ensembles, sharding and checkpoints."""

from adljax.training.checkpoint import CheckpointError as CheckpointError
from adljax.training.checkpoint import CheckpointManager as CheckpointManager
from adljax.training.checkpoint import CheckpointOptions as CheckpointOptions
from adljax.training.checkpoint import CheckpointWarning as CheckpointWarning
from adljax.training.compilation import compiler_options as compiler_options
from adljax.training.compilation import jit as jit
from adljax.training.diagnostics import make_diagnostics_step as make_diagnostics_step
from adljax.training.ensemble import create_ensemble as create_ensemble
from adljax.training.ensemble import member as member
from adljax.training.epoch import make_epoch_fn as make_epoch_fn
from adljax.training.loop import EarlyStopping as EarlyStopping
from adljax.training.loop import FitResult as FitResult
from adljax.training.loop import NonFiniteLossError as NonFiniteLossError
from adljax.training.loop import ResumeWarning as ResumeWarning
from adljax.training.loop import fit as fit
from adljax.training.optimizers import OPTIMIZER_NAMES as OPTIMIZER_NAMES
from adljax.training.optimizers import create_optimizer as create_optimizer
from adljax.training.optimizers import learning_rate_of as learning_rate_of
from adljax.training.sharding import data_mesh as data_mesh
from adljax.training.state import TrainState as TrainState
from adljax.training.state import create_train_state as create_train_state
from adljax.training.steps import make_eval_step as make_eval_step
from adljax.training.steps import make_train_step as make_train_step
from adljax.training.steps import predict_step as predict_step
