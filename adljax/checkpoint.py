"""Orbax checkpoints: ``adljax.checkpoint.CheckpointManager`` and friends.

See ``adljax.training.checkpoint`` for the on-disk layout.
"""

from adljax.training.checkpoint import CheckpointError as CheckpointError
from adljax.training.checkpoint import CheckpointManager as CheckpointManager
from adljax.training.checkpoint import CheckpointOptions as CheckpointOptions
from adljax.training.checkpoint import CheckpointWarning as CheckpointWarning
from adljax.training.checkpoint import library_versions as library_versions
