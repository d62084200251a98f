"""Multilayer perceptron: dense layers with a chosen activation, dropout and batch norm."""

import flax.linen as nn
import jax.numpy as jnp

from adljax._validate import check_positive_int, check_positive_ints
from adljax.models._checks import check_input, check_input_shape
from adljax.models.activations import get_activation
from adljax.models.cnn import _batch_norm
from adljax.models.registry import register_model
from adljax.typing import Array, ArrayLike


@register_model("mlp")
class MLP(nn.Module):
    """A multilayer perceptron over the flattened input, returning logits or predictions.

    Each hidden layer is ``Dense -> [BatchNorm] -> activation -> [Dropout]``; a dense head maps
    the last hidden layer to ``num_outputs``. A dense layer that feeds batch norm has no bias
    (batch norm's own shift replaces it). Each hidden activation ``h`` (before dropout) is sown
    as ``intermediates/hidden_{i}``, so ``apply(..., mutable=["intermediates"])`` returns the
    learned representations.

    Attributes:
        hidden_sizes: width of each hidden layer; ``()`` gives a linear model. Default ``(64,)``.
        num_outputs: width of the head (classes or regression targets). Default 10.
        activation: a name from ``ACTIVATIONS``. Default ``"relu"``.
        dropout_rate: probability of zeroing a hidden unit in training, in ``[0, 1)``.
            Default 0.0 (no dropout layers, no ``"dropout"`` key needed).
        batch_norm: normalise each hidden layer (momentum 0.9, epsilon 1e-5). Default False.
        input_shape: per-example input shape; when set, ``x.shape[1:]`` is checked against it.
            Default ``None`` (any trailing shape).

    Example:
        >>> import jax, jax.numpy as jnp
        >>> model = MLP(hidden_sizes=(32,), num_outputs=3, dropout_rate=0.1, batch_norm=True)
        >>> x = jnp.ones((8, 5))
        >>> variables = model.init(jax.random.key(0), x, train=False)
        >>> logits, updates = model.apply(
        ...     variables, x, train=True, rngs={"dropout": jax.random.key(1)},
        ...     mutable=["batch_stats"])
        >>> logits.shape
        (8, 3)
    """

    hidden_sizes: tuple[int, ...] = (64,)
    num_outputs: int = 10
    activation: str = "relu"
    dropout_rate: float = 0.0
    batch_norm: bool = False
    input_shape: tuple[int, ...] | None = None

    def __post_init__(self) -> None:
        object.__setattr__(
            self,
            "hidden_sizes",
            check_positive_ints(self.hidden_sizes, "hidden_sizes", allow_empty=True),
        )
        check_positive_int(self.num_outputs, "num_outputs")
        get_activation(self.activation)
        if (
            isinstance(self.dropout_rate, bool)
            or not isinstance(self.dropout_rate, int | float)
            or not 0.0 <= self.dropout_rate < 1.0
        ):
            raise ValueError(f"`dropout_rate` must be in [0, 1), got {self.dropout_rate!r}")
        if not isinstance(self.batch_norm, bool):
            raise ValueError(f"`batch_norm` must be a bool, got {self.batch_norm!r}")
        object.__setattr__(self, "input_shape", check_input_shape(self.input_shape))
        super().__post_init__()

    @nn.compact
    def __call__(self, x: ArrayLike, *, train: bool) -> Array:
        """Maps ``x`` of shape ``(batch, ...)`` to outputs of shape ``(batch, num_outputs)``.

        Args:
            x: inputs, flattened to ``(batch, features)``.
            train: use batch statistics and dropout (pass ``rngs={"dropout": key}`` when
                ``dropout_rate > 0`` and ``mutable=["batch_stats"]`` when ``batch_norm``);
                otherwise use the running averages and no dropout.
        """
        x = jnp.asarray(x)
        check_input(x, name="x", min_rank=2, input_shape=self.input_shape)
        if not jnp.issubdtype(x.dtype, jnp.inexact):
            x = x.astype(jnp.float32)
        h = x.reshape(x.shape[0], -1)
        activation = get_activation(self.activation)
        for i, size in enumerate(self.hidden_sizes):
            h = nn.Dense(size, use_bias=not self.batch_norm, name=f"dense_{i}")(h)
            if self.batch_norm:
                h = _batch_norm(train, f"bn_{i}")(h)
            h = activation(h)
            self.sow("intermediates", f"hidden_{i}", h)
            if self.dropout_rate > 0:
                h = nn.Dropout(self.dropout_rate, deterministic=not train, name=f"dropout_{i}")(h)
        return nn.Dense(self.num_outputs, name="head")(h)
