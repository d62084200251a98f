"""Training diagnostics: per-layer gradient norms, update-to-weight ratios, activation
statistics (saturated and dead units) and batch-norm drift, as pure functions of a train state
and a batch. See ``adljax.training.diagnostics``; ``fit(diagnostics_every=N)`` records them and
``adljax.plots.plot_diagnostics`` draws them.
"""

from adljax.training.diagnostics import SATURATING_ACTIVATIONS as SATURATING_ACTIVATIONS
from adljax.training.diagnostics import SATURATION_MARGIN as SATURATION_MARGIN
from adljax.training.diagnostics import activation_statistics as activation_statistics
from adljax.training.diagnostics import batch_norm_drift as batch_norm_drift
from adljax.training.diagnostics import layer_norms as layer_norms
from adljax.training.diagnostics import make_diagnostics_step as make_diagnostics_step
from adljax.training.diagnostics import (
    make_update_diagnostics_step as make_update_diagnostics_step,
)
from adljax.training.diagnostics import update_ratios as update_ratios
