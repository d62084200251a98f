"""The pieces a first JAX lesson builds by hand: dense layers, an MLP, gradient descent and
checkpoints, with ``jax.numpy``, ``jax.grad`` and Orbax only (no Flax module, no Optax).

Parameters are plain pytrees (dicts and lists of arrays). Nothing is updated in place: a
training step returns a new parameter tree, which is what TensorFlow 1's ``tf.Variable``
becomes in JAX.

Synopsis::

    params = mlp_init(jax.random.key(0), (11, 32, 1))    # [{"kernel": (11, 32), ...}, ...]

    def loss_fn(params, x, y):                            # x (B, 11), y (B, 1) -> scalar
        return mean_squared_error(mlp_apply(params, x), y)

    params, losses = sgd_fit(loss_fn, params, x, y, learning_rate=0.05, batch_size=32,
                             epochs=20, seed=0)
    save_pytree("/tmp/run/epoch_20", {"params": params})
    params = restore_pytree("/tmp/run/epoch_20", {"params": params})["params"]
"""

import os
from collections.abc import Callable, Sequence
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp

from adljax.typing import Array, ArrayLike, PRNGKey, PyTree

DenseParams = dict[str, Array]
"""``{"kernel": (in_features, out_features), "bias": (out_features,)}``."""
LossFn = Callable[[PyTree, Array, Array], Array]
"""``loss_fn(params, x, y) -> scalar``."""


def dense_init(key: PRNGKey, in_features: int, out_features: int) -> DenseParams:
    """Parameters of one dense layer, initialised as ``flax.linen.Dense`` does by default.

    The kernel is LeCun-normal (truncated normal with variance ``1 / in_features``), the
    bias zeros, both float32.

    Returns:
        ``{"kernel": (in_features, out_features), "bias": (out_features,)}``.
    """
    kernel = jax.nn.initializers.lecun_normal()(key, (in_features, out_features), jnp.float32)
    return {"kernel": kernel, "bias": jnp.zeros((out_features,), jnp.float32)}


def dense_apply(params: DenseParams, x: ArrayLike) -> Array:
    """The affine map ``x @ kernel + bias``: ``(B, in_features) -> (B, out_features)``.

    Raises:
        ValueError: ``x`` is not ``(B, in_features)``.
    """
    x = jnp.asarray(x)
    kernel, bias = params["kernel"], params["bias"]
    if x.ndim != 2 or x.shape[1] != kernel.shape[0]:
        raise ValueError(f"`x` must have shape (B, {kernel.shape[0]}), got {x.shape}")
    # The explicit (1, out) bias: adding (B, out) and (out,) is an implicit rank promotion.
    return x @ kernel + bias.reshape(1, -1)


def mlp_init(key: PRNGKey, sizes: Sequence[int]) -> list[DenseParams]:
    """Parameters of a stack of dense layers ``sizes[0] -> sizes[1] -> ... -> sizes[-1]``.

    Layer ``i`` is ``dense_init`` with the ``i``-th key of ``jax.random.split(key, n)``.

    Returns:
        A list of ``len(sizes) - 1`` dense parameter dicts, layer ``i`` with kernel
        ``(sizes[i], sizes[i + 1])``.

    Raises:
        ValueError: fewer than two sizes, or a size that is not a positive int.
    """
    sizes = tuple(sizes)
    if len(sizes) < 2 or any(not isinstance(s, int) or s < 1 for s in sizes):
        raise ValueError(f"`sizes` must be two or more positive ints, got {sizes}")
    keys = jax.random.split(key, len(sizes) - 1)
    return [dense_init(k, m, n) for k, m, n in zip(keys, sizes[:-1], sizes[1:], strict=True)]


def mlp_apply(
    params: Sequence[DenseParams],
    x: ArrayLike,
    activation: Callable[[Array], Array] = jax.nn.relu,
) -> Array:
    """Dense layers with ``activation`` between them (none after the last):
    ``(B, sizes[0]) -> (B, sizes[-1])``."""
    *hidden, last = params
    for layer in hidden:
        x = activation(dense_apply(layer, x))
    return dense_apply(last, x)


def mean_squared_error(predictions: ArrayLike, targets: ArrayLike) -> Array:
    """Mean squared error over all entries of two ``(B, K)`` arrays: a scalar."""
    return jnp.mean((jnp.asarray(predictions) - jnp.asarray(targets)) ** 2)


def sgd_step(
    params: PyTree, x: ArrayLike, y: ArrayLike, *, loss_fn: LossFn, learning_rate: float
) -> tuple[PyTree, Array]:
    """One step of gradient descent on ``loss_fn(params, x, y)``.

    A pure function: `sgd_fit` and `fit_linear_regression` run it compiled, as
    ``jax.jit(sgd_step, static_argnames="loss_fn")``.

    Returns:
        ``(new_params, loss)``: every leaf ``p`` becomes ``p - learning_rate * dloss/dp``;
        ``loss`` is the loss at the old parameters.
    """
    loss, grads = jax.value_and_grad(loss_fn)(params, x, y)
    return jax.tree.map(lambda p, g: p - learning_rate * g, params, grads), loss


# Compiled once per loss function and batch shape. No buffer donation: the caller's old
# parameters stay valid, so a lesson can compare them with the new ones or train twice from
# one start.
_compiled_sgd_step = jax.jit(sgd_step, static_argnames="loss_fn")


def sgd_fit(
    loss_fn: LossFn,
    params: PyTree,
    x: ArrayLike,
    y: ArrayLike,
    *,
    learning_rate: float,
    batch_size: int,
    epochs: int,
    seed: int = 0,
    start_epoch: int = 0,
) -> tuple[PyTree, list[float]]:
    """Mini-batch SGD: epochs ``start_epoch .. epochs - 1`` of `sgd_step` on shuffled batches.

    Epoch ``e`` visits the examples in the order ``np.random.default_rng((seed,
    e)).permutation(N)`` (the rule of ``adljax.data.epoch_permutation``) and drops the last
    partial batch, so the order is a function of ``(seed, e)`` alone: stopping after epoch
    ``k`` and calling again with ``start_epoch=k`` and the parameters reached gives bitwise
    the parameters of one uninterrupted run.

    Args:
        loss_fn: ``loss_fn(params, x_batch, y_batch) -> scalar``.
        params: the starting parameter pytree.
        x: inputs ``(N, ...)``.
        y: targets ``(N, ...)``.
        learning_rate: step size.
        batch_size: examples per step, at most N.
        epochs: the epoch to stop before (the total count of an uninterrupted run).
        seed: shuffling seed.
        start_epoch: the first epoch to run.

    Returns:
        ``(params, losses)``: the final parameters and the mean batch loss of each epoch run.

    Raises:
        ValueError: ``x`` and ``y`` differ in length, or ``batch_size`` is not in ``1..N``.
    """
    # The data stay on the host and each step gets a NumPy batch, as from an input pipeline:
    # indexing a device array eagerly costs more than the whole compiled step here.
    x, y = np.asarray(x), np.asarray(y)
    if len(x) != len(y):
        raise ValueError(f"`x` and `y` must hold the same examples, got {len(x)} and {len(y)}")
    if not 1 <= batch_size <= len(x):
        raise ValueError(f"`batch_size` must be in 1..{len(x)} (the examples), got {batch_size}")
    num_batches = len(x) // batch_size
    losses = []
    for epoch in range(start_epoch, epochs):
        order = np.random.default_rng((seed, epoch)).permutation(len(x))
        batches = order[: num_batches * batch_size].reshape(num_batches, batch_size)
        epoch_losses = []
        for batch in batches:
            params, loss = _compiled_sgd_step(
                params, x[batch], y[batch], loss_fn=loss_fn, learning_rate=learning_rate
            )
            epoch_losses.append(loss)
        losses.append(float(np.mean(jax.device_get(epoch_losses))))
    return params, losses


def _linear_regression_loss(params: DenseParams, x: Array, y: Array) -> Array:
    return mean_squared_error(dense_apply(params, x), y)


def fit_linear_regression(
    x: ArrayLike, y: ArrayLike, *, learning_rate: float, steps: int
) -> DenseParams:
    """Least squares by full-batch gradient descent from zeros, with `sgd_step`.

    On standardised features a learning rate below ``2 / (largest eigenvalue of
    2 x^T x / N)`` converges to NumPy's ``lstsq`` solution (with an intercept column).

    Args:
        x: features ``(N, D)``.
        y: targets ``(N, K)``.
        learning_rate: step size.
        steps: number of gradient steps.

    Returns:
        ``{"kernel": (D, K), "bias": (K,)}``, for `dense_apply`.

    Raises:
        ValueError: ``x`` is not ``(N, D)`` or ``y`` is not ``(N, K)``.
    """
    x, y = np.asarray(x), np.asarray(y)
    if x.ndim != 2 or y.ndim != 2 or len(x) != len(y):
        raise ValueError(f"`x` and `y` must be (N, D) and (N, K), got {x.shape} and {y.shape}")
    params = jax.device_put(
        {
            "kernel": np.zeros((x.shape[1], y.shape[1]), np.float32),
            "bias": np.zeros((y.shape[1],), np.float32),
        }
    )
    for _ in range(steps):
        params, _ = _compiled_sgd_step(
            params, x, y, loss_fn=_linear_regression_loss, learning_rate=learning_rate
        )
    return params


def save_pytree(directory: str | os.PathLike, tree: PyTree) -> None:
    """Writes a pytree of arrays to the new directory ``directory`` with Orbax.

    Returns once the checkpoint is complete on disk. Orbax refuses to overwrite: the
    directory must not exist yet.
    """
    # Orbax saves asynchronously; leaving the `with` block waits for the write to finish.
    with ocp.StandardCheckpointer() as checkpointer:
        checkpointer.save(Path(directory).absolute(), tree)


def restore_pytree(directory: str | os.PathLike, like: PyTree) -> PyTree:
    """Reads a pytree written by `save_pytree` into the structure, shapes and dtypes of
    ``like`` (a pytree of arrays or of ``jax.ShapeDtypeStruct``)."""
    abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, like)
    with ocp.StandardCheckpointer() as checkpointer:
        return checkpointer.restore(Path(directory).absolute(), abstract)
