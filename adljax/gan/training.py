"""Adversarial training: two optimizers in one state, and one compiled step for both players.

Synopsis::

    tx = AdversarialOptimizer(create_optimizer("adam", 2e-4), create_optimizer("adam", 2e-4))
    state = create_gan_state(model, tx, train.arrays["x"][:1], jax.random.key(0))
    step = make_gan_train_step(Generation(loss="hinge"), n_critic=2)
    result = fit(state, train, task=task, epochs=10, batch_size=64, train_step=step)

The state is an ordinary ``TrainState``: ``params`` and ``opt_state`` hold ``"generator"``
and ``"discriminator"`` entries, ``model_state["ema"]["generator"]`` the exponential moving
average of the generator's parameters that `sampling` draws from, and ``step`` counts
generator updates. ``fit``, checkpoints and exact resume therefore work unchanged.
"""

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax

from adljax._validate import check_positive_int
from adljax.gan.losses import gradient_penalty
from adljax.gan.task import Generation
from adljax.training.optimizers import learning_rate_of
from adljax.training.precision import apply_with_policy, get_policy
from adljax.training.state import TrainState, create_train_state
from adljax.training.steps import TrainStep
from adljax.typing import Array, Batch, Metrics, PRNGKey, PyTree

PLAYERS = ("generator", "discriminator")
EMA = "ema"  # the model-state collection holding the generator's moving average


class AdversarialOptimizer(NamedTuple):
    """One Optax optimizer per player, usable wherever a ``TrainState`` expects ``tx``.

    ``init(params)`` gives ``{"generator": state, "discriminator": state}``; ``update``
    updates both players at once (a plain ``GradientTransformation`` over the pair), while
    the adversarial step calls each player's own ``update`` in turn.
    """

    generator: optax.GradientTransformation
    discriminator: optax.GradientTransformation

    def init(self, params: PyTree) -> dict[str, optax.OptState]:
        return {player: getattr(self, player).init(params[player]) for player in PLAYERS}

    def update(
        self, updates: PyTree, state: dict[str, optax.OptState], params: PyTree | None = None
    ) -> tuple[PyTree, dict[str, optax.OptState]]:
        new_updates, new_state = {}, {}
        for player in PLAYERS:
            new_updates[player], new_state[player] = getattr(self, player).update(
                updates[player], state[player], None if params is None else params[player]
            )
        return new_updates, new_state


def create_gan_state(
    model, tx: AdversarialOptimizer, sample_input: Array, key: PRNGKey, *, dtype: str = "float32"
) -> TrainState:
    """``create_train_state`` for a GAN model (``gan``, ``dcgan``), plus the generator's EMA.

    ``sample_input`` is a real batch ``(B, *input_shape)``; the EMA starts at the initial
    generator parameters. ``dtype`` is ``"float32"`` or ``"bfloat16"`` (the adversarial
    step has no loss scaling, so float16 is refused).
    """
    if not isinstance(tx, AdversarialOptimizer):
        raise ValueError(f"`tx` must be an AdversarialOptimizer, got {type(tx).__name__}")
    if get_policy(dtype).loss_scaling:
        raise ValueError(
            "`dtype` 'float16' needs loss scaling, which the adversarial step does not do; "
            "train GANs in 'bfloat16' or 'float32'"
        )
    state = create_train_state(model, tx, sample_input, key, dtype=dtype)
    ema = jax.tree.map(jnp.copy, state.params["generator"])
    return state.replace(model_state={**state.model_state, EMA: {"generator": ema}})


def ema_decay_at(decay: float, step: Array) -> Array:
    """The decay used after generator update ``step`` (0-based): ``min(decay, (1 + s) / (10 + s))``.

    The warm-up keeps early averages from clinging to the random initial weights.
    """
    step = jnp.asarray(step, jnp.float32)
    return jnp.minimum(decay, (1.0 + step) / (10.0 + step))


def make_gan_train_step(
    task: Generation, *, n_critic: int = 1, ema_decay: float = 0.999
) -> TrainStep:
    """Returns ``train_step(state, batch) -> (state, metrics)``: D updates, then one G update.

    Each step makes ``n_critic`` discriminator updates (each against fresh samples and the
    same real batch ``batch["x"]`` ``(B, ...)``; in WGAN-GP plus ``task.gradient_penalty``
    times the penalty), then one generator update against the updated discriminator, then
    moves the generator's EMA. Both players run in train mode; the generator's batch
    statistics follow its own update, the discriminator's its updates. Randomness comes from
    ``fold_in(state.key, state.step)``. Metrics: the task's metrics on the last
    discriminator update's logits, ``generator_loss`` of the generator update,
    ``gradient_penalty`` (``wgan_gp``) and ``learning_rate``.
    """
    check_positive_int(n_critic, "n_critic")
    if not 0.0 <= ema_decay < 1.0:
        raise ValueError(f"`ema_decay` must be in [0, 1), got {ema_decay!r}")
    wgan = task.loss == "wgan_gp"

    def train_step(state: TrainState, batch: Batch) -> tuple[TrainState, Metrics]:
        model = state.model
        real = batch["x"]
        num = real.shape[0]
        stats_of = {k: v for k, v in state.model_state.items() if k != EMA}
        if wgan and "discriminator" in stats_of.get("batch_stats", {}):
            raise ValueError(
                "the wgan_gp loss needs a discriminator without batch norm (its penalty is "
                "per example); build the model with discriminator_norm='layer' or 'none'"
            )

        def apply(params, model_state, method, x):
            """``method`` in train mode; returns the output and the updated model state."""
            variables = {"params": params, **model_state}
            run = functools.partial(apply_with_policy, state.policy, model.apply, variables, x)
            if not model_state:
                return run(train=True, method=method), model_state
            return run(train=True, method=method, mutable=list(model_state))

        def latents(key):
            return jax.random.normal(key, (num, model.latent_dim), jnp.float32)

        def critic_update(carry, key):
            params, model_state, opt_state = carry
            latent_key, penalty_key = jax.random.split(key)
            fake, _ = apply(params, model_state, "generate", latents(latent_key))
            fake = jax.lax.stop_gradient(fake)

            def loss_fn(d_params):
                both = {**params, "discriminator": d_params}
                real_logits, updated = apply(both, model_state, "discriminate", real)
                fake_logits, updated = apply(both, updated, "discriminate", fake)
                outputs = {"real": real_logits, "fake": fake_logits}
                loss, statistics = task.loss_and_statistics(outputs, batch)
                penalty = jnp.zeros((), jnp.float32)
                if wgan:
                    critic = lambda x: apply(both, updated, "discriminate", x)[0]  # noqa: E731
                    penalty = gradient_penalty(critic, real, fake, penalty_key)
                total = loss + task.gradient_penalty * penalty
                return total, (statistics, updated, penalty)

            grads, (statistics, model_state, penalty) = jax.grad(loss_fn, has_aux=True)(
                params["discriminator"]
            )
            updates, d_state = state.tx.discriminator.update(
                grads, opt_state["discriminator"], params["discriminator"]
            )
            params = {
                **params,
                "discriminator": optax.apply_updates(params["discriminator"], updates),
            }
            opt_state = {**opt_state, "discriminator": d_state}
            return (params, model_state, opt_state), (statistics, penalty)

        step_key = jax.random.fold_in(state.key, state.step)
        critic_keys = jax.random.split(step_key, n_critic + 1)
        # A Python loop, not lax.scan: XLA:CPU runs convolutions inside a scan several times
        # slower, and n_critic is small.
        carry = (state.params, stats_of, state.opt_state)
        for key in critic_keys[:n_critic]:
            carry, (statistics, penalty) = critic_update(carry, key)
        params, model_state, opt_state = carry
        z = latents(critic_keys[n_critic])

        def generator_loss_fn(g_params):
            both = {**params, "generator": g_params}
            fake, updated = apply(both, model_state, "generate", z)
            fake_logits, _ = apply(both, updated, "discriminate", fake)
            return task.generator_loss(fake_logits), updated

        (g_loss, model_state), grads = jax.value_and_grad(generator_loss_fn, has_aux=True)(
            params["generator"]
        )
        updates, g_state = state.tx.generator.update(
            grads, opt_state["generator"], params["generator"]
        )
        generator = optax.apply_updates(params["generator"], updates)
        decay = ema_decay_at(ema_decay, state.step)
        ema = jax.tree.map(
            lambda average, new: decay * average + (1.0 - decay) * new,
            state.model_state[EMA]["generator"],
            generator,
        )
        metrics = task.metrics(statistics)
        metrics["generator_loss"] = g_loss
        if wgan:
            metrics["gradient_penalty"] = penalty
        metrics["learning_rate"] = learning_rate_of(opt_state["generator"])
        new_state = state.replace(
            step=state.step + 1,
            params={**params, "generator": generator},
            model_state={**model_state, EMA: {"generator": ema}},
            opt_state={**opt_state, "generator": g_state},
        )
        return new_state, metrics

    return train_step
