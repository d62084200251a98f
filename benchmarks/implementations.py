"""The three MLP train steps under comparison, each wrapped as a ``Runner``.

- ``adljax``: ``adljax.jit(make_train_step(Classification()), donate_argnums=0)`` on a
  ``create_train_state`` state with ``create_optimizer("adam", lr)``.
- ``flax``: the minimal idiomatic hand-written step: a Linen module, ``optax.adam`` and a
  jitted ``(params, opt_state, x, y) -> (params, opt_state, loss)`` with the first two donated.
- ``torch``: PyTorch eager, the same layers, ``torch.optim.Adam`` (when torch is installed).

Every runner cycles through the same 8 pre-made random batches (on the device for JAX).
"""

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

import adljax
from benchmarks.flops import compiled_flops

NUM_BATCHES = 8
LEARNING_RATE = 1e-3


@dataclasses.dataclass(frozen=True)
class MLPConfig:
    """One MLP benchmark: ``in_features -> hidden... -> num_classes``, ReLU, float32."""

    in_features: int = 784
    hidden: tuple[int, ...] = (512, 512)
    num_classes: int = 10
    batch_size: int = 128
    batch_norm: bool = False
    dropout_rate: float = 0.0

    @property
    def layer_sizes(self) -> tuple[int, ...]:
        """Every layer's width, input and output included."""
        return (self.in_features, *self.hidden, self.num_classes)

    @property
    def label(self) -> str:
        """A short human-readable name, e.g. ``MLP 784-512-512-10 + BN + Dropout``."""
        name = "MLP " + "-".join(str(size) for size in self.layer_sizes)
        if self.batch_norm:
            name += " + BN"
        if self.dropout_rate > 0:
            name += " + Dropout"
        return name


def make_batches(config: MLPConfig, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``NUM_BATCHES`` random batches: float32 ``x (8, B, F)`` and int32 labels ``y (8, B)``."""
    rng = np.random.default_rng(seed)
    shape = (NUM_BATCHES, config.batch_size)
    x = rng.standard_normal((*shape, config.in_features), dtype=np.float32)
    y = rng.integers(0, config.num_classes, shape, dtype=np.int32)
    return x, y


# ----- JAX ----------------------------------------------------------------------------------


class JaxRunner:
    """Runs a jitted ``step(*carry, *batch) -> (*carry, output)``, threading ``carry``.

    ``carry`` holds what the step donates and returns (a train state, or params and optimizer
    state); batches cycle through ``batches``. Calling it with ``n`` runs ``n`` steps and
    blocks until they are done.
    """

    def __init__(self, step: Callable, carry: tuple, batches: Sequence[tuple]):
        self.step, self.carry, self.batches, self.position = step, carry, list(batches), 0

    def __call__(self, steps: int) -> None:
        for _ in range(steps):
            batch = self.batches[self.position % len(self.batches)]
            *carry, _ = self.step(*self.carry, *batch)
            self.carry = tuple(carry)
            self.position += 1
        jax.block_until_ready(self.carry)

    def flops(self) -> float | None:
        """XLA's FLOP count of one step (compiles the step once more)."""
        return compiled_flops(self.step, *self.carry, *self.batches[0])


def adljax_state(config: MLPConfig, sample_x: jax.Array, seed: int = 0) -> adljax.TrainState:
    """A fresh adljax train state of the configured MLP with Adam."""
    model = adljax.models.MLP(
        hidden_sizes=config.hidden,
        num_outputs=config.num_classes,
        batch_norm=config.batch_norm,
        dropout_rate=config.dropout_rate,
    )
    tx = adljax.create_optimizer("adam", LEARNING_RATE)
    return adljax.create_train_state(model, tx, sample_x[:1], jax.random.key(seed))


def adljax_step(grad_norm: bool = False) -> Callable:
    """A fresh (un-jitted) adljax classification train step."""
    return adljax.make_train_step(adljax.tasks.Classification(), grad_norm=grad_norm)


def adljax_runner(
    config: MLPConfig, x: np.ndarray, y: np.ndarray, donate: bool = True, grad_norm: bool = False
):
    """The adljax step as a ``JaxRunner`` (``donate=False`` jits it without donation)."""
    xs, ys = jax.device_put(x), jax.device_put(y)
    batches = [({"x": xs[i], "y": ys[i]},) for i in range(len(xs))]
    state = adljax_state(config, xs[0])
    step = adljax.jit(adljax_step(grad_norm), donate_argnums=0 if donate else ())
    return JaxRunner(step, (state,), batches)


class FlaxMLP(nn.Module):
    """The hand-written baseline: ``Dense -> [BatchNorm] -> ReLU -> [Dropout]`` per hidden layer.

    As in adljax, a dense layer that feeds batch norm has no bias.
    """

    hidden: tuple[int, ...]
    num_classes: int
    batch_norm: bool = False
    dropout_rate: float = 0.0

    @nn.compact
    def __call__(self, x: jax.Array, train: bool) -> jax.Array:
        for size in self.hidden:
            x = nn.Dense(size, use_bias=not self.batch_norm)(x)
            if self.batch_norm:
                x = nn.BatchNorm(use_running_average=not train, momentum=0.9, epsilon=1e-5)(x)
            x = nn.relu(x)
            if self.dropout_rate > 0:
                x = nn.Dropout(self.dropout_rate, deterministic=not train)(x)
        return nn.Dense(self.num_classes)(x)


def flax_plain_step(model: nn.Module, tx: optax.GradientTransformation) -> Callable:
    """``step(params, opt_state, x, y) -> (params, opt_state, loss)``: the minimal idiom."""

    def step(params, opt_state, x, y):
        def loss_fn(params):
            logits = model.apply({"params": params}, x, train=True)
            return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()

        loss, grads = jax.value_and_grad(loss_fn)(params)
        updates, opt_state = tx.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss

    return step


def flax_stateful_step(model: nn.Module, tx: optax.GradientTransformation) -> Callable:
    """``step(params, batch_stats, opt_state, key, count, x, y) -> (..., loss)`` for BN/Dropout.

    The dropout key of step ``count`` is ``fold_in(key, count)``.
    """

    def step(params, batch_stats, opt_state, key, count, x, y):
        def loss_fn(params):
            logits, updates = model.apply(
                {"params": params, "batch_stats": batch_stats},
                x,
                train=True,
                rngs={"dropout": jax.random.fold_in(key, count)},
                mutable=["batch_stats"],
            )
            loss = optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()
            return loss, updates["batch_stats"]

        (loss, batch_stats), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
        updates, opt_state = tx.update(grads, opt_state, params)
        params = optax.apply_updates(params, updates)
        return params, batch_stats, opt_state, key, count + 1, loss

    return step


def flax_model(config: MLPConfig) -> FlaxMLP:
    """The hand-written module for ``config``."""
    return FlaxMLP(config.hidden, config.num_classes, config.batch_norm, config.dropout_rate)


def _has_model_state(config: MLPConfig) -> bool:
    """Whether the hand-written step needs batch statistics, a dropout key and a counter."""
    return config.batch_norm or config.dropout_rate > 0


def flax_step(config: MLPConfig) -> tuple[Callable, tuple[int, ...]]:
    """A fresh un-jitted hand-written step for ``config`` and the argument positions to donate."""
    model, tx = flax_model(config), optax.adam(LEARNING_RATE)
    if _has_model_state(config):
        return flax_stateful_step(model, tx), (0, 1, 2)
    return flax_plain_step(model, tx), (0, 1)


def flax_carry(config: MLPConfig, sample_x: jax.Array, seed: int = 0) -> tuple:
    """The hand-written step's initial carry: ``(params, opt_state)`` or the stateful one."""
    init_key, train_key = jax.random.split(jax.random.key(seed))
    variables = flax_model(config).init({"params": init_key}, sample_x[:1], train=False)
    params = variables["params"]
    opt_state = optax.adam(LEARNING_RATE).init(params)
    if not _has_model_state(config):
        return params, opt_state
    count = jnp.zeros((), jnp.int32)
    return params, variables.get("batch_stats", {}), opt_state, train_key, count


def flax_runner(config: MLPConfig, x: np.ndarray, y: np.ndarray) -> JaxRunner:
    """The hand-written Flax + Optax step as a ``JaxRunner``."""
    xs, ys = jax.device_put(x), jax.device_put(y)
    step, donated = flax_step(config)
    batches = [(xs[i], ys[i]) for i in range(len(xs))]
    return JaxRunner(jax.jit(step, donate_argnums=donated), flax_carry(config, xs[0]), batches)


# ----- PyTorch ------------------------------------------------------------------------------


def torch_available() -> bool:
    """Whether the PyTorch rows run: PyTorch imports and JAX runs on the CPU (the PyTorch
    baselines are CPU implementations, compared only with JAX on the same processor)."""
    if jax.default_backend() != "cpu":
        return False
    try:
        import torch  # noqa: F401
    except ImportError:
        return False
    return True


class TorchTrainLoop:
    """Runs ``n`` eager PyTorch train steps per call, cycling through ``self.batches``.

    Subclasses set ``torch``, ``model``, ``optimizer``, ``batches`` and ``position = 0``.
    """

    def __call__(self, steps: int) -> None:
        cross_entropy = self.torch.nn.functional.cross_entropy
        for _ in range(steps):
            x, y = self.batches[self.position % len(self.batches)]
            self.optimizer.zero_grad(set_to_none=True)
            loss = cross_entropy(self.model(x), y)
            loss.backward()
            self.optimizer.step()
            self.position += 1


class TorchRunner(TorchTrainLoop):
    """PyTorch eager: the same MLP, ``torch.optim.Adam``, cross-entropy; ``n`` steps per call."""

    def __init__(self, config: MLPConfig, x: np.ndarray, y: np.ndarray, threads: int = 2):
        import torch

        torch.set_num_threads(threads)
        torch.manual_seed(0)
        self.torch = torch
        self.model = torch_model(config).train()
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=LEARNING_RATE)
        self.batches = [
            (torch.from_numpy(x[i]), torch.from_numpy(y[i]).long()) for i in range(len(x))
        ]
        self.position = 0


def torch_model(config: MLPConfig) -> Any:
    """``torch.nn.Sequential`` of the configured MLP (BatchNorm momentum 0.1 = Flax's 0.9)."""
    from torch import nn as tnn

    layers: list[Any] = []
    width = config.in_features
    for size in config.hidden:
        layers.append(tnn.Linear(width, size, bias=not config.batch_norm))
        if config.batch_norm:
            layers.append(tnn.BatchNorm1d(size, momentum=0.1, eps=1e-5))
        layers.append(tnn.ReLU())
        if config.dropout_rate > 0:
            layers.append(tnn.Dropout(config.dropout_rate))
        width = size
    layers.append(tnn.Linear(width, config.num_classes))
    return tnn.Sequential(*layers)
