"""The train state: one pytree holding everything that changes during training."""

from collections.abc import Mapping

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax
from flax import struct

from adljax.training.precision import FLOAT32, Policy, dynamic_loss_scale, get_policy
from adljax.typing import PRNGKey, PyTree


class TrainState(struct.PyTreeNode):
    """Step, parameters, model state, optimizer state and PRNG key of one model.

    Attributes:
      step: number of optimizer updates applied so far (int32 scalar; shape ``(K,)`` for an
        ensemble of ``K`` members).
      params: the model's ``params`` collection.
      model_state: every other mutable collection of the model, e.g. ``{"batch_stats": ...}``
        (empty for models without batch normalisation).
      opt_state: the Optax optimizer state.
      key: a typed PRNG key; the key of step ``s`` is ``jax.random.fold_in(key, s)``, so
        randomness never depends on how training was split into calls or processes.
      model: the Flax module (static).
      tx: the Optax transformation (static).
      policy: the mixed-precision `Policy` the steps run the model under (static; default
        float32). A float16 ``tx`` is wrapped in ``dynamic_loss_scale``, whose scale is
        part of ``opt_state``.
    """

    step: jax.Array
    params: PyTree
    model_state: PyTree
    opt_state: optax.OptState
    key: PRNGKey
    model: nn.Module = struct.field(pytree_node=False)
    tx: optax.GradientTransformation = struct.field(pytree_node=False)
    policy: Policy = struct.field(pytree_node=False, default=FLOAT32)

    @property
    def apply_fn(self):
        """``self.model.apply``."""
        return self.model.apply

    @property
    def variables(self) -> dict[str, PyTree]:
        """``{"params": params, **model_state}``, as ``model.apply`` expects."""
        return {"params": self.params, **self.model_state}

    def apply_gradients(self, grads: PyTree, model_state: PyTree) -> "TrainState":
        """One optimizer update: returns the state with ``step + 1``."""
        updates, opt_state = self.tx.update(grads, self.opt_state, self.params)
        return self.replace(
            step=self.step + 1,
            params=optax.apply_updates(self.params, updates),
            model_state=model_state,
            opt_state=opt_state,
        )


def create_train_state(
    model: nn.Module,
    tx: optax.GradientTransformation,
    sample_input: jax.Array,
    key: PRNGKey,
    *,
    dtype: str | Policy = "float32",
) -> TrainState:
    """Initialises ``model`` on ``sample_input`` (a batch, any batch size) and ``tx``.

    ``key`` is split into the initialisation key and the state's training key, so the same
    key always gives the same state. Works under ``jax.vmap`` over ``key`` (ensembles) and
    ``jax.eval_shape`` (abstract states for restoring checkpoints). ``dtype`` names the
    mixed-precision policy (`adljax.training.precision.get_policy`): parameters are always
    float32; ``"bfloat16"``/``"float16"`` compute in that type, float16 with dynamic loss
    scaling (``tx`` wrapped in ``dynamic_loss_scale``).
    """
    policy = get_policy(dtype)
    if policy.loss_scaling:
        tx = dynamic_loss_scale(tx)
    init_key, train_key = jax.random.split(key)
    variables = model.init({"params": init_key, "dropout": init_key}, sample_input, train=False)
    variables = dict(variables)
    params = variables.pop("params")
    model_state = {name: value for name, value in variables.items() if name != "intermediates"}
    return TrainState(
        step=jnp.zeros((), jnp.int32),
        params=params,
        model_state=model_state,
        opt_state=tx.init(params),
        key=train_key,
        model=model,
        tx=tx,
        policy=policy,
    )


def mutable_collections(state: TrainState) -> list[str]:
    """Names of the model-state collections a training ``apply`` must mark mutable."""
    return sorted(state.model_state) if isinstance(state.model_state, Mapping) else []


def ensemble_size(state: TrainState) -> int | None:
    """``K`` for an ensemble state (``step`` of shape ``(K,)``), ``None`` for a single model."""
    return int(state.step.shape[0]) if jnp.ndim(state.step) == 1 else None
