"""Backpropagation by hand: a two-layer classifier's gradients from the chain rule.

The network, for a batch of ``B`` examples with ``F`` features, ``H`` hidden units and ``C``
classes (the same computation as ``adljax.models.MLP(hidden_sizes=(H,), num_outputs=C)``)::

    z1 = x W1 + b1                 (B, F) @ (F, H) -> (B, H)
    h  = f(z1)                     (B, H), f an activation from adljax.models.ACTIVATIONS
    z2 = h W2 + b2                 (B, H) @ (H, C) -> (B, C), the logits
    L  = mean_i -log softmax(z2_i)[y_i]

``backward`` walks it in reverse, one matrix product per step (``⊙`` is the elementwise
product, ``Σ`` a sum over the batch)::

    dz2 = (softmax(z2) - onehot(y)) / B     (B, C)
    dW2 = hᵀ dz2                            (H, C)     db2 = Σ dz2   (C,)
    dh  = dz2 W2ᵀ                           (B, H)
    dz1 = dh ⊙ f'(z1)                       (B, H)
    dW1 = xᵀ dz1                            (F, H)     db1 = Σ dz1   (H,)

Synopsis::

    from adljax import backprop

    params = backprop.init_two_layer(key, in_features=2, hidden_features=16, num_classes=2)
    loss, grads = backprop.two_layer_gradients(params, x, labels, "tanh")
    # grads == jax.grad(backprop.two_layer_loss)(params, x, labels, "tanh"), up to round-off
    params, losses = backprop.train_two_layer(params, x, labels, "tanh", learning_rate=0.5,
                                              steps=1000)

    loss_fn = backprop.line_fit_loss(x_points, y_points)       # MSE of y = a x + b over (a, b)
    path = backprop.descent_path(loss_fn, [0.0, 0.0], learning_rate=0.1, steps=50)  # (51, 2)

``forward``, ``backward``, ``two_layer_loss``, ``two_layer_gradients`` and
``finite_difference_gradients`` run under ``jax.jit`` and ``jax.vmap`` with ``activation``
static, e.g. ``jax.jit(two_layer_gradients, static_argnames="activation")``, in float32 or
float64 (the dtype of the weights). ``train_two_layer`` and ``descent_path`` take Python
numbers for ``learning_rate`` and ``steps`` and compile their loop (a ``lax.scan``) themselves.
"""

import math
from collections.abc import Callable, Mapping
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree
from jax.typing import DTypeLike

from adljax._validate import check_positive_float, check_positive_int
from adljax.losses import softmax_cross_entropy
from adljax.models.activations import get_activation
from adljax.typing import Array, ArrayLike, PRNGKey, PyTree


class TwoLayerParams(NamedTuple):
    """The weights of the two-layer network; its gradients have the same structure.

    Attributes:
        w1: ``(F, H)``, input features to hidden units.
        b1: ``(H,)``.
        w2: ``(H, C)``, hidden units to class logits.
        b2: ``(C,)``.
    """

    w1: Array
    b1: Array
    w2: Array
    b2: Array


class ForwardCache(NamedTuple):
    """What the forward pass keeps for the backward pass: the input and every layer's output.

    Attributes:
        x: ``(B, F)``, the input.
        z1: ``(B, H)``, the first affine map, before the activation.
        h: ``(B, H)``, the hidden layer ``f(z1)``.
        z2: ``(B, C)``, the logits.
    """

    x: Array
    z1: Array
    h: Array
    z2: Array


class Deltas(NamedTuple):
    """The loss's gradient with respect to each layer's output ("the deltas"), shaped like it.

    Attributes:
        z2: ``(B, C)``, dL/dz2 = (softmax(z2) - onehot(y)) / B.
        h: ``(B, H)``, dL/dh = dL/dz2 W2ᵀ.
        z1: ``(B, H)``, dL/dz1 = dL/dh ⊙ f'(z1).
    """

    z2: Array
    h: Array
    z1: Array


def _gelu_derivative(z: Array, h: Array) -> Array:
    del h  # d/dz [z Φ(z)] = Φ(z) + z φ(z), with Φ and φ the standard normal cdf and density
    cdf = 0.5 * (1.0 + jax.lax.erf(z / math.sqrt(2.0)))
    return cdf + z * jnp.exp(-0.5 * z * z) / math.sqrt(2.0 * math.pi)


# f'(z), given z and h = f(z): the sigmoid and tanh derivatives reuse the forward value h.
_DERIVATIVES: Mapping[str, Callable[[Array, Array], Array]] = {
    "sigmoid": lambda z, h: h * (1.0 - h),
    "tanh": lambda z, h: 1.0 - h * h,
    "relu": lambda z, h: (z > 0).astype(z.dtype),
    "leaky_relu": lambda z, h: jnp.where(z >= 0, 1.0, 0.01).astype(z.dtype),
    "elu": lambda z, h: jnp.where(z > 0, 1.0, h + 1.0).astype(z.dtype),
    "gelu": _gelu_derivative,
    "softplus": lambda z, h: jax.nn.sigmoid(z),
    "identity": lambda z, h: jnp.ones_like(z),
}


def activation_derivative(name: str) -> Callable[[Array, Array], Array]:
    """The derivative ``f'`` of the activation called ``name``, written out by hand.

    Args:
        name: a key of ``adljax.models.ACTIVATIONS``.

    Returns:
        ``derivative(z, h) -> f'(z)``, elementwise, where ``h = f(z)`` is the forward value
        (sigmoid and tanh express their derivative through it). At a kink (ReLU at 0) it
        takes the same side as ``jax.grad`` of the activation.

    Raises:
        ValueError: if ``name`` is unknown; the message lists the allowed names.
    """
    get_activation(name)
    return _DERIVATIVES[name]


def init_two_layer(
    key: PRNGKey,
    in_features: int,
    hidden_features: int,
    num_classes: int,
    *,
    dtype: DTypeLike = jnp.float32,
) -> TwoLayerParams:
    """Random weights with variance ``1 / fan_in`` (LeCun normal, as ``flax.linen.Dense``) and
    zero biases.

    Returns:
        ``TwoLayerParams`` with ``w1 (in_features, hidden_features)``,
        ``b1 (hidden_features,)``, ``w2 (hidden_features, num_classes)``, ``b2 (num_classes,)``.

    Raises:
        ValueError: if a size is not a positive integer.
    """
    check_positive_int(in_features, "in_features")
    check_positive_int(hidden_features, "hidden_features")
    check_positive_int(num_classes, "num_classes")
    key1, key2 = jax.random.split(key)
    return TwoLayerParams(
        w1=_lecun_normal(key1, in_features, hidden_features, dtype),
        b1=jnp.zeros(hidden_features, dtype),
        w2=_lecun_normal(key2, hidden_features, num_classes, dtype),
        b2=jnp.zeros(num_classes, dtype),
    )


def _lecun_normal(key: PRNGKey, fan_in: int, fan_out: int, dtype: DTypeLike) -> Array:
    """A ``(fan_in, fan_out)`` matrix of normal entries with variance ``1 / fan_in``."""
    return jax.random.normal(key, (fan_in, fan_out), dtype) / math.sqrt(fan_in)


def _check_network(params: TwoLayerParams, x: Array, labels: Array | None = None) -> None:
    """Raises ``ValueError`` unless the shapes of ``params``, ``x`` and ``labels`` fit."""
    if not isinstance(params, TwoLayerParams):
        raise ValueError(f"`params` must be a TwoLayerParams, got {type(params).__name__}")
    (features, hidden), (classes,) = params.w1.shape, params.b2.shape
    expected = {"w1": (features, hidden), "b1": (hidden,), "w2": (hidden, classes)}
    for name, shape in expected.items():
        if getattr(params, name).shape != shape:
            raise ValueError(
                f"`params.{name}` must have shape {shape} to fit w1 {params.w1.shape} and "
                f"b2 {params.b2.shape}, got {getattr(params, name).shape}"
            )
    if x.ndim != 2 or x.shape[1] != features:
        raise ValueError(f"`x` must have shape (B, {features}), got {x.shape}")
    if labels is not None:
        if labels.shape != x.shape[:1]:
            raise ValueError(f"`labels` must have shape ({x.shape[0]},), got {labels.shape}")
        if not jnp.issubdtype(labels.dtype, jnp.integer):
            raise ValueError(f"`labels` must be integer class indices, got dtype {labels.dtype}")


def forward(params: TwoLayerParams, x: ArrayLike, activation: str) -> ForwardCache:
    """The forward pass, keeping every layer's output for ``backward``.

    Args:
        params: the weights, ``w1 (F, H)``, ``b1 (H,)``, ``w2 (H, C)``, ``b2 (C,)``.
        x: inputs, ``(B, F)``.
        activation: the hidden layer's activation, a key of ``adljax.models.ACTIVATIONS``.

    Returns:
        ``ForwardCache(x, z1, h, z2)``, shapes ``(B, F)``, ``(B, H)``, ``(B, H)``, ``(B, C)``.

    Raises:
        ValueError: if a shape does not fit or ``activation`` is unknown.
    """
    x = jnp.asarray(x)
    _check_network(params, x)
    f = get_activation(activation)
    z1 = x @ params.w1 + params.b1[None, :]  # (B, H)
    h = f(z1)  # (B, H)
    z2 = h @ params.w2 + params.b2[None, :]  # (B, C)
    return ForwardCache(x=x, z1=z1, h=h, z2=z2)


def backward(
    params: TwoLayerParams, cache: ForwardCache, labels: ArrayLike, activation: str
) -> tuple[TwoLayerParams, Deltas]:
    """The backward pass: the chain rule in matrix form, from the loss back to ``W1``.

    Args:
        params: the weights the forward pass used.
        cache: ``forward(params, x, activation)``.
        labels: integer classes in ``[0, C)``, ``(B,)``.
        activation: the activation the forward pass used.

    Returns:
        ``(grads, deltas)``: ``grads`` are ``dL/dparams`` as a ``TwoLayerParams`` (each shaped
        like its parameter) of the mean cross-entropy ``L``; ``deltas`` are ``dL/dz2``,
        ``dL/dh`` and ``dL/dz1``, each shaped like its layer.

    Raises:
        ValueError: if a shape does not fit or ``activation`` is unknown.
    """
    labels = jnp.asarray(labels)
    _check_network(params, cache.x, labels)
    derivative = activation_derivative(activation)
    batch_size, num_classes = cache.z2.shape
    onehot = jax.nn.one_hot(labels, num_classes, dtype=cache.z2.dtype)  # (B, C)
    dz2 = (jax.nn.softmax(cache.z2, axis=-1) - onehot) / batch_size  # (B, C)
    dw2 = cache.h.T @ dz2  # (H, B) @ (B, C) -> (H, C)
    db2 = dz2.sum(axis=0)  # (C,)
    dh = dz2 @ params.w2.T  # (B, C) @ (C, H) -> (B, H)
    dz1 = dh * derivative(cache.z1, cache.h)  # (B, H)
    dw1 = cache.x.T @ dz1  # (F, B) @ (B, H) -> (F, H)
    db1 = dz1.sum(axis=0)  # (H,)
    grads = TwoLayerParams(w1=dw1, b1=db1, w2=dw2, b2=db2)
    return grads, Deltas(z2=dz2, h=dh, z1=dz1)


def two_layer_loss(
    params: TwoLayerParams, x: ArrayLike, labels: ArrayLike, activation: str
) -> Array:
    """The mean softmax cross-entropy of the network on ``(x (B, F), labels (B,))``: a scalar.

    This is the function that ``backward`` differentiates; ``jax.grad`` of it gives the same
    gradients up to round-off.
    """
    cache = forward(params, x, activation)
    return softmax_cross_entropy(cache.z2, labels).mean()


def two_layer_gradients(
    params: TwoLayerParams, x: ArrayLike, labels: ArrayLike, activation: str
) -> tuple[Array, TwoLayerParams]:
    """The loss and its gradients by hand, the analogue of ``jax.value_and_grad``.

    Args:
        params: the weights, ``w1 (F, H)``, ``b1 (H,)``, ``w2 (H, C)``, ``b2 (C,)``.
        x: inputs, ``(B, F)``.
        labels: integer classes in ``[0, C)``, ``(B,)``.
        activation: the hidden layer's activation, a key of ``adljax.models.ACTIVATIONS``.

    Returns:
        ``(loss, grads)``: the mean cross-entropy (a scalar) and ``dL/dparams``.

    Raises:
        ValueError: if a shape does not fit, ``labels`` is not integer or ``activation`` is
            unknown.
    """
    cache = forward(params, x, activation)
    grads, _ = backward(params, cache, labels, activation)
    return softmax_cross_entropy(cache.z2, labels).mean(), grads


def train_two_layer(
    params: TwoLayerParams,
    x: ArrayLike,
    labels: ArrayLike,
    activation: str,
    *,
    learning_rate: float,
    steps: int,
) -> tuple[TwoLayerParams, Array]:
    """Full-batch gradient descent ``θ ← θ - learning_rate · dL/dθ`` with the hand-written
    gradients, all steps in one ``lax.scan``.

    Returns:
        ``(params, losses)``: the weights after ``steps`` updates and the loss before each
        update, ``(steps,)``.

    Raises:
        ValueError: if ``learning_rate`` is not a positive number, ``steps`` not a positive
            integer, or ``two_layer_gradients`` refuses the inputs.
    """
    learning_rate = check_positive_float(learning_rate, "learning_rate")
    check_positive_int(steps, "steps")

    def step(params: TwoLayerParams, _: None) -> tuple[TwoLayerParams, Array]:
        loss, grads = two_layer_gradients(params, x, labels, activation)
        return jax.tree.map(lambda p, g: p - learning_rate * g, params, grads), loss

    return jax.lax.scan(step, params, length=steps)


def finite_difference_gradients(
    loss_fn: Callable[[PyTree], Array], params: PyTree, *, epsilon: float = 1e-6
) -> PyTree:
    """The gradient by central differences, one parameter entry at a time: the check that
    needs no calculus, ``dL/dθ_i ≈ (L(θ + ε e_i) - L(θ - ε e_i)) / 2ε``.

    Its error is ``O(ε²)`` plus the loss's round-off divided by ``ε``: run it in float64
    (``with jax.enable_x64(True):``), where ``ε = 1e-6`` leaves about 1e-9 relative error; in
    float32 the round-off alone is tens of percent.

    Args:
        loss_fn: ``loss(params) -> scalar``.
        params: the point, any pytree of float arrays (``P`` entries in all).
        epsilon: the step ``ε``, a positive number.

    Returns:
        A pytree like ``params``; it costs ``2 P`` evaluations of ``loss_fn``.

    Raises:
        ValueError: if ``epsilon`` is not a positive number.
    """
    epsilon = check_positive_float(epsilon, "epsilon")
    flat, unflatten = ravel_pytree(params)  # (P,)

    def central_difference(index: Array) -> Array:
        up = loss_fn(unflatten(flat.at[index].add(epsilon)))
        down = loss_fn(unflatten(flat.at[index].add(-epsilon)))
        return (up - down) / (2 * epsilon)

    return unflatten(jax.lax.map(central_difference, jnp.arange(flat.size)))


def line_fit_loss(x: ArrayLike, y: ArrayLike) -> Callable[[Array], Array]:
    """The mean squared error of the line ``y ≈ a x + b`` as a function of ``theta = (a, b)``.

    Args:
        x, y: the points, each ``(N,)``.

    Returns:
        ``loss(theta (2,)) -> scalar``, ``mean((a x + b - y)²)``; its minimum is the
        least-squares line.

    Raises:
        ValueError: if ``x`` and ``y`` are not two non-empty vectors of the same length.
    """
    x, y = jnp.asarray(x), jnp.asarray(y)
    if x.ndim != 1 or x.shape != y.shape or x.size == 0:
        raise ValueError(f"`x` and `y` must both have shape (N,), got {x.shape} and {y.shape}")

    def loss(theta: Array) -> Array:
        return jnp.mean((theta[0] * x + theta[1] - y) ** 2)

    return loss


def descent_path(
    loss_fn: Callable[[Array], Array], start: ArrayLike, learning_rate: float, steps: int
) -> Array:
    """Plain gradient descent ``θ ← θ - learning_rate · ∇loss(θ)``, every iterate kept.

    Args:
        loss_fn: ``loss(theta (P,)) -> scalar``, differentiable by ``jax.grad``, e.g.
            ``line_fit_loss(x, y)`` (``P = 2``).
        start: the first iterate, ``(P,)``.
        learning_rate: the step size, a positive number.
        steps: how many updates.

    Returns:
        The iterates ``θ_0 = start, θ_1, ..., θ_steps``, shape ``(steps + 1, P)``.

    Raises:
        ValueError: if ``start`` is not a non-empty vector, ``learning_rate`` not a positive
            number or ``steps`` not a positive integer.
    """
    start = jnp.asarray(start)
    if start.ndim != 1 or start.size == 0:
        raise ValueError(f"`start` must be a parameter vector (P,), got shape {start.shape}")
    if not jnp.issubdtype(start.dtype, jnp.inexact):
        start = start.astype(jnp.float32)
    learning_rate = check_positive_float(learning_rate, "learning_rate")
    check_positive_int(steps, "steps")
    gradient = jax.grad(loss_fn)

    def step(theta: Array, _: None) -> tuple[Array, Array]:
        theta = theta - learning_rate * gradient(theta)
        return theta, theta

    _, iterates = jax.lax.scan(step, start, length=steps)
    return jnp.concatenate([start[None], iterates])  # (steps + 1, P)
