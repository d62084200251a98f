"""Linear models: one affine map from the flattened input to the outputs."""

import flax.linen as nn
import jax.numpy as jnp

from adljax._validate import check_positive_int
from adljax.models._checks import check_input, check_input_shape
from adljax.models.registry import register_model
from adljax.typing import Array, ArrayLike


@register_model("linear")
class LinearRegression(nn.Module):
    """A single dense layer ``y = x W + b`` over the flattened input.

    The loss decides which classical model this is: with mean squared error it is least-squares
    linear regression; with softmax cross-entropy over ``num_outputs`` classes it is softmax
    (multinomial logistic) regression; with sigmoid cross-entropy and ``num_outputs=1`` it is
    logistic regression.

    Attributes:
        num_outputs: number of outputs ``K`` (targets, or classes for softmax regression).
            Default 1.
        input_shape: per-example input shape; when set, ``x.shape[1:]`` is checked against it.
            Default ``None`` (any trailing shape).

    Example:
        >>> import jax, jax.numpy as jnp
        >>> model = LinearRegression(num_outputs=1)
        >>> variables = model.init(jax.random.key(0), jnp.ones((4, 3)), train=False)
        >>> model.apply(variables, jnp.ones((4, 3)), train=False).shape
        (4, 1)
    """

    num_outputs: int = 1
    input_shape: tuple[int, ...] | None = None

    def __post_init__(self) -> None:
        check_positive_int(self.num_outputs, "num_outputs")
        object.__setattr__(self, "input_shape", check_input_shape(self.input_shape))
        super().__post_init__()

    @nn.compact
    def __call__(self, x: ArrayLike, *, train: bool = False) -> Array:
        """Maps ``x`` of shape ``(batch, ...)`` to outputs of shape ``(batch, num_outputs)``.

        ``train`` is accepted so that every model is called the same way; a linear model
        behaves the same in both modes.
        """
        del train  # no dropout or batch statistics
        x = jnp.asarray(x)
        check_input(x, name="x", min_rank=2, input_shape=self.input_shape)
        if not jnp.issubdtype(x.dtype, jnp.inexact):
            x = x.astype(jnp.float32)
        x = x.reshape(x.shape[0], -1)
        return nn.Dense(self.num_outputs, name="dense")(x)
