"""Recurrent networks: a stacked, bidirectional, masked RNN / GRU / LSTM layer and its models.

Synopsis::

    layer = Recurrent(cell="lstm", hidden_size=64, num_layers=2, bidirectional=True)
    variables = layer.init(key, x, train=False)                    # x: (B, T, F)
    outputs, carry = layer.apply(variables, x, train=False, seq_lengths=lengths)
    # outputs (B, T, 2 * 64); carry {"h": (2, 2, B, 64), "c": ...}: feed it back as
    # ``initial_carry`` to carry state across batches (truncated backpropagation through time)

Speed: every layer is one ``lax.scan`` (the compiled program and its compile time do not grow
with the length) whose body holds the hidden-to-hidden product and the gate arithmetic; both
directions of a bidirectional layer run in the same scan. The input projection runs where it
is fastest (`PROJECTIONS`): inside the scan body on CPUs, as ONE matrix product for all time
steps and both directions before the scan on GPUs and TPUs. On the per-step path the GRU and
LSTM steps are rematerialised (`jax.checkpoint`, saving only matrix products), so the backward
scan recomputes the gate arithmetic instead of reading ~10 saved tensors per step.

Parameters of layer ``l`` are ``layer_{l}_<name>`` with a leading direction axis D (1, or 2
when bidirectional; index 1 is the backward direction) and the gates in PyTorch's order:
``input_kernel (D, F, G*H)``, ``hidden_kernel (D, H, G*H)``, ``bias (D, G*H)`` and, for the
GRU only, ``candidate_hidden_bias (D, H)``; G = 1 (rnn), 3 (gru: r, z, n), 4 (lstm: i, f,
g, o). Each gate has one bias, except the GRU candidate whose hidden-side bias sits inside
the reset gate's product: ``n = tanh(x W_in + b_in + r * (h W_hn + b_hn))``. See
`adljax.models.torch_recurrent` for the mapping from PyTorch's two-bias convention.
"""

import functools
from collections.abc import Mapping

import chex
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from adljax._validate import check_choice, check_positive_int
from adljax.models._checks import check_input, check_input_shape
from adljax.models.registry import register_model
from adljax.typing import Array, ArrayLike, PRNGKey

CELLS = ("rnn", "gru", "lstm")
"""Recurrent cells by name: Elman RNN (tanh), GRU, LSTM."""

NUM_GATES = {"rnn": 1, "gru": 3, "lstm": 4}
"""Gate blocks per cell: the width of the projections is ``NUM_GATES[cell] * hidden_size``."""

Carry = dict[str, Array]
"""Recurrent state: ``{"h": hidden}`` plus ``"c"`` (cell state) for the LSTM."""

PROJECTIONS = ("auto", "hoisted", "per_step")
"""Where a layer projects its inputs: ``"hoisted"`` (one matrix product for all steps before
the scan), ``"per_step"`` (inside the scan body) or ``"auto"``: ``"per_step"`` on CPUs, where
it trains 13-15% faster (``benchmarks/NOTES.md``), ``"hoisted"`` on GPUs and TPUs."""

CellParams = Mapping[str, Array]
"""One layer's parameters by name (``input_kernel``, ``hidden_kernel``, ``bias``, ...)."""


def zero_carry(
    cell: str,
    batch_size: int,
    hidden_size: int,
    *,
    num_layers: int = 1,
    num_directions: int = 1,
    dtype: jnp.dtype = jnp.float32,
) -> Carry:
    """The all-zero carry: each entry ``(num_layers, num_directions, batch_size, hidden_size)``."""
    check_choice(cell, "cell", CELLS)
    shape = (num_layers, num_directions, batch_size, hidden_size)
    names = ("h", "c") if cell == "lstm" else ("h",)
    return {name: jnp.zeros(shape, dtype) for name in names}


def _lstm_gate_activations(gates: Array) -> Array:
    """``sigmoid`` of the i, f, o quarters and ``tanh`` of the g quarter of ``gates (B, 4H)``.

    In 32- and 64-bit floats, one ``tanh`` pass over the whole array: ``sigmoid(x) =
    tanh(x / 2) / 2 + 1 / 2``, so every column is ``s * tanh(s * x) + 1 - s`` with ``s = 1/2``
    (sigmoid) or ``1`` (tanh). Its gradient is then one elementwise fusion over ``(B, 4H)``
    instead of four quarter-size ones and a concatenation (XLA:CPU LSTM training step x0.96,
    ``benchmarks/NOTES.md``). The sigmoids are exact to half a rounding step at 1 (float32:
    6e-8 absolute; values below ~1e-7 become 0). 16-bit floats, where that step is 2e-3 or
    5e-4, keep ``jax.nn.sigmoid`` per quarter and its relative precision near 0.
    """
    if jnp.finfo(gates.dtype).bits < 32:
        i, f, g, o = jnp.split(gates, 4, axis=-1)
        sigmoid = jax.nn.sigmoid
        return jnp.concatenate([sigmoid(i), sigmoid(f), jnp.tanh(g), sigmoid(o)], axis=-1)
    quarter = gates.shape[-1] // 4
    scale = np.repeat(np.array([0.5, 0.5, 1.0, 0.5], np.float32), quarter).astype(gates.dtype)
    scale = scale.reshape((1,) * (gates.ndim - 1) + scale.shape)
    return scale * jnp.tanh(scale * gates) + (1 - scale)


def _summed_gates_step(cell: str, carry: Carry, gates: Array) -> Carry:
    """The new RNN / LSTM carry from ``gates = x @ input_kernel + bias + h @ hidden_kernel``."""
    if cell == "rnn":
        return {"h": jnp.tanh(gates)}
    i, f, g, o = jnp.split(_lstm_gate_activations(gates), 4, axis=-1)
    c = f * carry["c"] + i * g
    return {"h": o * jnp.tanh(c), "c": c}


def cell_step(cell: str, params: CellParams, carry: Carry, projected: Array) -> Carry:
    """One time step of ``cell`` for one direction, given the projected input.

    Args:
        cell: one of `CELLS`.
        params: ``hidden_kernel (H, G*H)`` and, for ``"gru"``, ``candidate_hidden_bias (H,)``.
        carry: ``{"h": (B, H)}`` (+ ``"c": (B, H)`` for the LSTM).
        projected: this step's ``x @ input_kernel + bias``, shape ``(B, G*H)``.

    Returns:
        The new carry; its ``"h"`` is the step's output.
    """
    h = carry["h"]
    recurrent = h @ params["hidden_kernel"]
    if cell != "gru":
        return _summed_gates_step(cell, carry, projected + recurrent)
    x_r, x_z, x_n = jnp.split(projected, 3, axis=-1)
    h_r, h_z, h_n = jnp.split(recurrent, 3, axis=-1)
    r = jax.nn.sigmoid(x_r + h_r)
    z = jax.nn.sigmoid(x_z + h_z)
    n = jnp.tanh(x_n + r * (h_n + jnp.broadcast_to(params["candidate_hidden_bias"], h_n.shape)))
    return {"h": (1.0 - z) * n + z * h}


def _projected_step(cell: str, params: CellParams, carry: Carry, x: Array) -> Carry:
    """`cell_step` on one step's inputs ``x (B, F)``, projected inside the step.

    RNN / LSTM: ONE product ``[x, h] @ stacked_kernel`` (``(F + H, G*H)``, the input kernel
    over the hidden one) + ``bias``: in XLA:CPU's loop body one product per step instead of
    two makes the LSTM's training step ~11% faster (``benchmarks/NOTES.md``). GRU, whose
    candidate needs ``h``'s product apart: ``x @ input_kernel + bias``, then `cell_step`.
    """
    if cell != "gru":
        inputs = jnp.concatenate([x, carry["h"]], axis=-1)
        return _summed_gates_step(
            cell, carry, inputs @ params["stacked_kernel"] + params["bias"][None, :]
        )
    projected = x @ params["input_kernel"] + params["bias"][None, :]
    return cell_step(cell, params, carry, projected)


def reverse_padded(x: Array, seq_lengths: Array | None) -> Array:
    """Reverses each sequence of ``x (B, T, ...)`` within its length; padding stays in place.

    ``seq_lengths (B,)`` None reverses the whole time axis. The map is its own inverse.
    """
    if seq_lengths is None:
        return jnp.flip(x, axis=1)
    steps = jnp.arange(x.shape[1])[None, :]
    lengths = seq_lengths[:, None]
    index = jnp.where(steps < lengths, lengths - 1 - steps, steps)
    index = index.reshape(index.shape + (1,) * (x.ndim - 2))
    return jnp.take_along_axis(x, index, axis=1)


def scan_layer(
    cell: str,
    params: CellParams,
    x: Array,
    carry: Carry,
    seq_lengths: Array | None,
    *,
    hoist_projection: bool = True,
) -> tuple[Array, Carry]:
    """Runs one (possibly bidirectional) recurrent layer over ``x`` with one ``lax.scan``.

    Args:
        cell: one of `CELLS`.
        params: ``input_kernel (D, F, G*H)``, ``bias (D, G*H)``, ``hidden_kernel (D, H, G*H)``
            (+ ``candidate_hidden_bias (D, H)`` for the GRU); direction 1 runs backwards.
        x: inputs ``(B, T, F)``.
        carry: initial carry, each entry ``(D, B, H)``.
        seq_lengths: int ``(B,)`` real lengths (steps at or after it are padding), or None.
        hoist_projection: project the inputs of all steps with one matrix product before the
            scan (True), or each step's inputs inside the scan body (False). Same function.

    Returns:
        outputs ``(B, T, D*H)`` (zero at padded steps) and the final carry ``(D, B, H)`` per
        entry: each direction's carry after the last real step it processed.
    """
    num_directions = params["input_kernel"].shape[0]
    batch, length = x.shape[:2]
    hidden = params["hidden_kernel"].shape[1]
    chex.assert_shape(carry["h"], (num_directions, batch, hidden))
    if hoist_projection:  # one matrix product for all steps; the scan body gets (B, G*H)
        step_params = {k: v for k, v in params.items() if k not in ("input_kernel", "bias")}
        step = functools.partial(cell_step, cell)
    else:  # each step projects its own inputs (B, F)
        if cell == "gru":
            step_params = dict(params)
        else:  # RNN / LSTM: one product per step against the stacked kernel
            stacked = jnp.concatenate([params["input_kernel"], params["hidden_kernel"]], axis=-2)
            step_params = {"stacked_kernel": stacked, "bias": params["bias"]}
        step = functools.partial(_projected_step, cell)
        if cell != "rnn":
            # Keep only the step's matrix products for the backward pass and recompute the
            # gate arithmetic there: XLA:CPU's loop body then writes one residual per step
            # instead of ~10 (LSTM training step x0.80, GRU x0.85; the RNN's single tanh is
            # cheaper to keep). Same values; gradients equal up to float rounding
            # (`benchmarks/NOTES.md`).
            step = jax.checkpoint(
                step, policy=jax.checkpoint_policies.dots_saveable, prevent_cse=False
            )
    if num_directions == 1:  # no direction axis inside the scan: plain matrix products
        scanned = jnp.swapaxes(x, 0, 1)  # time-major for the scan: (T, B, F)
        if hoist_projection:
            scanned = scanned @ params["input_kernel"][0] + params["bias"][0][None, None, :]
        step_params = {k: v[0] for k, v in step_params.items()}
        carry = {k: v[0] for k, v in carry.items()}
        keep_shape = (batch, 1)
    else:  # both directions in one scan, the backward one over the reversed sequences
        scanned = jnp.stack([x, reverse_padded(x, seq_lengths)], axis=1)  # (B, D, T, F)
        scanned = jnp.transpose(scanned, (2, 1, 0, 3))  # (T, D, B, F)
        if hoist_projection:
            scanned = jnp.einsum("tdbf,dfg->tdbg", scanned, params["input_kernel"])
            scanned = scanned + params["bias"][None, :, None, :]
        step = jax.vmap(step)
        keep_shape = (1, batch, 1)

    if seq_lengths is None:

        def body(carry: Carry, inputs_t: Array) -> tuple[Carry, Array]:
            carry = step(step_params, carry, inputs_t)
            return carry, carry["h"]

        carry, outputs = jax.lax.scan(body, carry, scanned)
    else:
        valid = jnp.arange(length)[:, None] < seq_lengths[None, :]  # (T, B)

        def body(carry: Carry, inputs_t: tuple[Array, Array]) -> tuple[Carry, Array]:
            scanned_t, valid_t = inputs_t
            new = step(step_params, carry, scanned_t)
            keep = valid_t.reshape(keep_shape)
            carry = {k: jnp.where(keep, new[k], carry[k]) for k in carry}
            return carry, jnp.where(keep, new["h"], 0.0)

        carry, outputs = jax.lax.scan(body, carry, (scanned, valid))
    if num_directions == 1:
        return jnp.swapaxes(outputs, 0, 1), {k: v[None] for k, v in carry.items()}
    outputs = jnp.moveaxis(outputs, 0, 2)  # (D, B, T, H)
    outputs = jnp.concatenate([outputs[0], reverse_padded(outputs[1], seq_lengths)], axis=-1)
    chex.assert_shape(outputs, (batch, length, num_directions * hidden))
    return outputs, carry


def cudnn_lstm_weights(layers: list[CellParams]) -> Array:
    """Packs LSTM layer parameters into the flat vector of `jax.experimental.rnn.lstm`.

    cuDNN's layout (PyTorch's gate order i, f, g, o): for every pseudo-layer (layer 0
    forward, layer 0 backward, layer 1 forward, ...) ``W_ih (4H, F)`` then ``W_hh (4H, H)``;
    then for every pseudo-layer ``b_ih (4H,)`` then ``b_hh (4H,)``. adljax's single bias goes
    to ``b_ih``; ``b_hh`` is zero.
    """
    kernels, biases = [], []
    for params in layers:
        for d in range(params["input_kernel"].shape[0]):
            kernels += [params["input_kernel"][d].T.ravel(), params["hidden_kernel"][d].T.ravel()]
            biases += [params["bias"][d], jnp.zeros_like(params["bias"][d])]
    return jnp.concatenate(kernels + biases)


def _lstm_forget_bias(key: PRNGKey, shape: tuple[int, ...], dtype=jnp.float32) -> Array:
    """LSTM bias ``(D, 4H)``: zero except the forget gate's 1 (remembers by default)."""
    del key
    hidden = shape[-1] // 4
    return jnp.zeros(shape, dtype).at[..., hidden : 2 * hidden].set(1.0)


def _orthogonal_gates(key: PRNGKey, shape: tuple[int, ...], dtype=jnp.float32) -> Array:
    """Hidden kernel ``(D, H, G*H)``: an independent orthogonal ``(H, H)`` block per gate."""
    directions, hidden, width = shape
    keys = jax.random.split(key, directions * (width // hidden))
    blocks = jax.vmap(lambda k: nn.initializers.orthogonal()(k, (hidden, hidden), dtype))(keys)
    blocks = blocks.reshape(directions, width // hidden, hidden, hidden)
    return jnp.transpose(blocks, (0, 2, 1, 3)).reshape(shape)


def _check_rate(rate: object, name: str) -> None:
    if isinstance(rate, bool) or not isinstance(rate, int | float) or not 0.0 <= rate < 1.0:
        raise ValueError(f"`{name}` must be in [0, 1), got {rate!r}")


class Recurrent(nn.Module):
    """A stacked recurrent layer: RNN, GRU or LSTM, optionally bidirectional and masked.

    Attributes:
        cell: one of `CELLS`. Default ``"lstm"``.
        hidden_size: H, units per direction. Default 128.
        num_layers: stacked layers; layer ``l + 1`` reads layer ``l``'s outputs. Default 1.
        bidirectional: add a backward direction per layer (outputs concatenated). Default False.
        dropout_rate: dropout on the outputs of every layer but the last, in training, in
            ``[0, 1)`` (PyTorch's ``dropout``). Default 0.0.
        use_cudnn: run the LSTM through ``jax.experimental.rnn`` (cuDNN; GPU only, LSTM only,
            no dropout). It uses the same parameters and agrees with the scan. Default False.
        projection: one of `PROJECTIONS`: where the input projection runs; every choice
            computes the same function (``use_cudnn`` ignores it). Default ``"auto"``.
    """

    cell: str = "lstm"
    hidden_size: int = 128
    num_layers: int = 1
    bidirectional: bool = False
    dropout_rate: float = 0.0
    use_cudnn: bool = False
    projection: str = "auto"

    def __post_init__(self) -> None:
        check_choice(self.cell, "cell", CELLS)
        check_choice(self.projection, "projection", PROJECTIONS)
        check_positive_int(self.hidden_size, "hidden_size")
        check_positive_int(self.num_layers, "num_layers")
        if not isinstance(self.bidirectional, bool):
            raise ValueError(f"`bidirectional` must be a bool, got {self.bidirectional!r}")
        _check_rate(self.dropout_rate, "dropout_rate")
        if self.use_cudnn and (self.cell != "lstm" or self.dropout_rate):
            raise ValueError(
                "`use_cudnn` needs cell='lstm' and dropout_rate=0, got "
                f"cell={self.cell!r}, dropout_rate={self.dropout_rate!r}"
            )
        super().__post_init__()

    @property
    def num_directions(self) -> int:
        """D: 2 when bidirectional, else 1."""
        return 2 if self.bidirectional else 1

    def _layer_params(self, layer: int, input_size: int) -> dict[str, Array]:
        d, h = self.num_directions, self.hidden_size
        width = NUM_GATES[self.cell] * h
        scope = f"layer_{layer}"
        kernel_init = nn.initializers.variance_scaling(1.0, "fan_in", "truncated_normal", 1, 2)
        params = {
            "input_kernel": self.param(
                f"{scope}_input_kernel", kernel_init, (d, input_size, width)
            ),
            "hidden_kernel": self.param(f"{scope}_hidden_kernel", _orthogonal_gates, (d, h, width)),
            "bias": self.param(
                f"{scope}_bias",
                _lstm_forget_bias if self.cell == "lstm" else nn.initializers.zeros,
                (d, width),
            ),
        }
        if self.cell == "gru":
            params["candidate_hidden_bias"] = self.param(
                f"{scope}_candidate_hidden_bias", nn.initializers.zeros, (d, h)
            )
        return params

    @nn.compact
    def __call__(
        self,
        x: ArrayLike,
        *,
        train: bool,
        seq_lengths: ArrayLike | None = None,
        initial_carry: Carry | None = None,
    ) -> tuple[Array, Carry]:
        """Runs the stack over ``x``.

        Args:
            x: float inputs ``(B, T, F)``.
            train: apply dropout between layers (needs ``rngs={"dropout": key}`` when
                ``dropout_rate > 0``).
            seq_lengths: int ``(B,)`` in ``[0, T]``: steps at or after a sequence's length are
                padding. Its outputs there are zero, its final carry is the carry at its last
                real step, and the backward direction starts at its last real step, so the
                result does not depend on the padding. None: every step is real.
            initial_carry: the carry to start from (e.g. the last batch's final carry), each
                entry ``(num_layers, D, B, H)``; None starts from zeros (`zero_carry`).

        Returns:
            ``(outputs (B, T, D*H), final_carry)``: the last layer's outputs and every layer's
            final carry, each entry ``(num_layers, D, B, H)``.
        """
        x = jnp.asarray(x)
        check_input(x, name="x", min_rank=3, max_rank=3)
        if not jnp.issubdtype(x.dtype, jnp.floating):
            raise ValueError(f"`x` must be a float array (B, T, F), got {x.dtype}")
        batch = x.shape[0]
        expected = zero_carry(
            self.cell,
            batch,
            self.hidden_size,
            num_layers=self.num_layers,
            num_directions=self.num_directions,
            dtype=x.dtype,
        )
        if initial_carry is None:
            initial_carry = expected
        elif jax.tree.map(jnp.shape, dict(initial_carry)) != jax.tree.map(jnp.shape, expected):
            raise ValueError(
                f"`initial_carry` must be {jax.tree.map(jnp.shape, expected)}, "
                f"got {jax.tree.map(jnp.shape, dict(initial_carry))}"
            )
        if seq_lengths is not None:
            seq_lengths = jnp.asarray(seq_lengths, jnp.int32)
            if seq_lengths.shape != (batch,):
                raise ValueError(
                    f"`seq_lengths` must have shape ({batch},), got {seq_lengths.shape}"
                )
        layers = []
        input_size = x.shape[-1]
        for layer in range(self.num_layers):
            layers.append(self._layer_params(layer, input_size))
            input_size = self.num_directions * self.hidden_size
        if self.use_cudnn:
            return self._cudnn(x, layers, initial_carry, seq_lengths)
        hoist = self.projection == "hoisted" or (
            self.projection == "auto" and jax.default_backend() != "cpu"
        )
        outputs, finals = x, []
        for layer, params in enumerate(layers):
            if layer > 0 and self.dropout_rate > 0:
                outputs = nn.Dropout(self.dropout_rate)(outputs, deterministic=not train)
            carry = {k: v[layer] for k, v in initial_carry.items()}
            outputs, carry = scan_layer(
                self.cell, params, outputs, carry, seq_lengths, hoist_projection=hoist
            )
            finals.append(carry)
        return outputs, {k: jnp.stack([c[k] for c in finals]) for k in initial_carry}

    def _cudnn(
        self, x: Array, layers: list[CellParams], carry: Carry, seq_lengths: Array | None
    ) -> tuple[Array, Carry]:
        from jax.experimental import rnn

        batch, length, input_size = x.shape
        pseudo = (self.num_layers * self.num_directions, batch, self.hidden_size)
        if seq_lengths is None:
            seq_lengths = jnp.full((batch,), length, jnp.int32)
        outputs, h, c = rnn.lstm(
            x,
            carry["h"].reshape(pseudo),
            carry["c"].reshape(pseudo),
            cudnn_lstm_weights(layers),
            seq_lengths,
            input_size=input_size,
            hidden_size=self.hidden_size,
            num_layers=self.num_layers,
            dropout=0.0,
            bidirectional=self.bidirectional,
        )
        shape = carry["h"].shape
        return outputs, {"h": h.reshape(shape), "c": c.reshape(shape)}


SEQUENCE_TASKS = ("classification", "binary", "regression", "tagging")
"""The tasks `SequenceModel` has a head for."""
POOLINGS = ("last", "mean")
"""How `SequenceModel` summarises a sequence: its final state, or its mean output."""


def padding_lengths(tokens: Array, padding_token: int) -> Array:
    """Lengths ``(B,)`` of right-padded token sequences ``(B, T)``: the non-padding count."""
    return jnp.sum(tokens != padding_token, axis=1).astype(jnp.int32)


def _check_embedding(vocab_size: int | None, embedding_size: int) -> None:
    if vocab_size is not None:
        check_positive_int(vocab_size, "vocab_size")
    check_positive_int(embedding_size, "embedding_size")


def _embed_tokens(
    x: ArrayLike, vocab_size: int | None, embedding_size: int, input_shape: tuple[int, ...] | None
) -> Array:
    """Int ids ``(B, T)`` through an ``embedding`` (when ``vocab_size`` is set) to
    ``(B, T, embedding_size)``, or float inputs ``(B, T, F)`` checked and passed on.

    Recurrent models read any length T: of ``input_shape`` (the training data's per-example
    shape) only the feature size F is checked. Call this inside a compact method: the
    embedding becomes the caller's submodule."""
    x = jnp.asarray(x)
    if vocab_size is None:
        check_input(x, name="x", min_rank=3, max_rank=3)
        if input_shape is not None and x.shape[2:] != input_shape[1:]:
            raise ValueError(f"`x` must have shape (batch, time, {input_shape[-1]}), got {x.shape}")
        return x.astype(jnp.float32)
    if not jnp.issubdtype(x.dtype, jnp.integer):
        raise ValueError(f"`x` must hold int token ids (batch, time), got {x.dtype}")
    check_input(x, name="x", min_rank=2, max_rank=2)
    return nn.Embed(vocab_size, embedding_size, name="embedding")(x)


class SequenceModel(nn.Module):
    """A recurrent sequence model whose head follows the task.

    ``classification`` / ``binary`` / ``regression``: one output row per sequence from its
    final state (``pooling="last"``: the last layer's final hidden state, both directions
    concatenated) or the mean of its outputs over real steps (``"mean"``); the features are
    sown as ``intermediates/features``. ``tagging``: outputs at every step.

    Attributes:
        cell, hidden_size, num_layers, bidirectional, dropout_rate, use_cudnn, projection: as
            `Recurrent`.
        num_outputs: head width (classes, 1 for binary, regression targets). Default 10.
        task: one of `SEQUENCE_TASKS`. Default ``"classification"``.
        pooling: one of `POOLINGS`. Default ``"last"``.
        vocab_size: set for int token inputs ``(B, T)``, embedded to ``embedding_size``;
            None for float inputs ``(B, T, F)``. Default None.
        embedding_size: token embedding width. Default 64.
        padding_token: with token inputs, the id that right-pads sequences: lengths are the
            non-padding counts and padding changes nothing. None: no padding. Default None.
        input_shape: the training data's per-example shape; float inputs must have its
            feature size (any length T is accepted). Default None.
    """

    cell: str = "lstm"
    hidden_size: int = 128
    num_layers: int = 1
    bidirectional: bool = False
    dropout_rate: float = 0.0
    num_outputs: int = 10
    task: str = "classification"
    pooling: str = "last"
    vocab_size: int | None = None
    embedding_size: int = 64
    padding_token: int | None = None
    input_shape: tuple[int, ...] | None = None
    use_cudnn: bool = False
    projection: str = "auto"

    def __post_init__(self) -> None:
        _check_embedding(self.vocab_size, self.embedding_size)
        object.__setattr__(self, "input_shape", check_input_shape(self.input_shape))
        check_positive_int(self.num_outputs, "num_outputs")
        check_choice(self.task, "task", SEQUENCE_TASKS)
        check_choice(self.pooling, "pooling", POOLINGS)
        if self.padding_token is not None and self.vocab_size is None:
            raise ValueError("`padding_token` needs token inputs: set `vocab_size`")
        super().__post_init__()

    @nn.compact
    def __call__(self, x: ArrayLike, *, train: bool, seq_lengths: ArrayLike | None = None) -> Array:
        """Maps ``x`` (tokens ``(B, T)`` or floats ``(B, T, F)``) to ``(B, num_outputs)``, or
        ``(B, T, num_outputs)`` for tagging. ``seq_lengths (B,)`` marks right padding (with
        ``padding_token`` set, lengths come from the tokens)."""
        if self.padding_token is not None and seq_lengths is None:
            seq_lengths = padding_lengths(jnp.asarray(x), self.padding_token)
        inputs = _embed_tokens(x, self.vocab_size, self.embedding_size, self.input_shape)
        outputs, carry = Recurrent(
            cell=self.cell,
            hidden_size=self.hidden_size,
            num_layers=self.num_layers,
            bidirectional=self.bidirectional,
            dropout_rate=self.dropout_rate,
            use_cudnn=self.use_cudnn,
            projection=self.projection,
            name="recurrent",
        )(inputs, train=train, seq_lengths=seq_lengths)
        head = nn.Dense(self.num_outputs, name="head")
        if self.task == "tagging":
            return head(outputs)
        if self.pooling == "last":
            last = carry["h"][-1]  # (D, B, H)
            features = jnp.concatenate(list(last), axis=-1)
        else:
            steps = (
                jnp.ones(outputs.shape[:2])
                if seq_lengths is None
                else (jnp.arange(outputs.shape[1])[None, :] < jnp.asarray(seq_lengths)[:, None])
            )
            count = jnp.maximum(jnp.sum(steps, axis=1, keepdims=True), 1.0)
            features = jnp.sum(outputs, axis=1) / count  # padded outputs are zero
        self.sow("intermediates", "features", features)
        return head(features)


for _cell in CELLS:
    register_model(
        _cell,
        description=f"{_cell.upper()} sequence model: classifier, regressor or tagger by task",
    )(functools.partial(SequenceModel, cell=_cell))


@register_model("charlm")
class CharLM(nn.Module):
    """A character language model: embedding, recurrent stack, per-step softmax head.

    Attributes:
        num_outputs: vocabulary size V (inputs are int ids in ``[0, V)``, outputs logits over
            them). Default 128.
        cell: one of `CELLS`. Default ``"lstm"``.
        hidden_size, num_layers, dropout_rate: as `Recurrent`.
        embedding_size: character embedding width. Default 64.
        input_shape: the training windows' shape ``(T,)``; any length is accepted (the
            engine passes it; sampling reads one character at a time). Default None.
    """

    num_outputs: int = 128
    cell: str = "lstm"
    hidden_size: int = 256
    num_layers: int = 1
    dropout_rate: float = 0.0
    embedding_size: int = 64
    input_shape: tuple[int, ...] | None = None

    def __post_init__(self) -> None:
        _check_embedding(self.num_outputs, self.embedding_size)
        object.__setattr__(self, "input_shape", check_input_shape(self.input_shape))
        super().__post_init__()

    @nn.compact
    def __call__(
        self,
        x: ArrayLike,
        *,
        train: bool,
        initial_carry: Carry | None = None,
        return_carry: bool = False,
    ) -> Array | tuple[Array, Carry]:
        """Maps int ids ``(B, T)`` to next-character logits ``(B, T, V)``; with
        ``return_carry`` also the final carry (to continue from, as in `sample`)."""
        inputs = _embed_tokens(x, self.num_outputs, self.embedding_size, self.input_shape)
        outputs, carry = Recurrent(
            cell=self.cell,
            hidden_size=self.hidden_size,
            num_layers=self.num_layers,
            dropout_rate=self.dropout_rate,
            name="recurrent",
        )(inputs, train=train, initial_carry=initial_carry)
        logits = nn.Dense(self.num_outputs, name="head")(outputs)
        return (logits, carry) if return_carry else logits


def sample(
    model: CharLM,
    variables: Mapping,
    prompt: ArrayLike,
    key: PRNGKey,
    *,
    num_chars: int,
    temperature: float = 1.0,
) -> Array:
    """Samples ``num_chars`` characters after ``prompt``, compiled as one ``lax.scan``.

    Each step draws from ``softmax(logits / temperature)`` and feeds the character back in,
    continuing from the carry (no re-reading of the prompt).

    Args:
        model: a `CharLM`.
        variables: its variables.
        prompt: int ids ``(B, P)``, P >= 1.
        key: a typed PRNG key.
        num_chars: characters to generate.
        temperature: > 0; low values are nearly greedy, high ones nearly uniform.

    Returns:
        int32 ids ``(B, num_chars)``.
    """
    prompt = jnp.asarray(prompt)
    if prompt.ndim != 2 or prompt.shape[1] < 1 or not jnp.issubdtype(prompt.dtype, jnp.integer):
        raise ValueError(
            f"`prompt` must be int ids of shape (batch, length >= 1), got {prompt.dtype} "
            f"{prompt.shape}"
        )
    check_positive_int(num_chars, "num_chars")
    if (
        isinstance(temperature, bool)
        or not isinstance(temperature, int | float)
        or temperature <= 0
    ):
        raise ValueError(f"`temperature` must be a positive number, got {temperature!r}")
    return _sample(model, variables, prompt, key, num_chars, jnp.float32(temperature))


@functools.partial(jax.jit, static_argnames=("model", "num_chars"))
def _sample(
    model: CharLM, variables: Mapping, prompt: Array, key: PRNGKey, num_chars: int, temperature
) -> Array:
    logits, carry = model.apply(variables, prompt, train=False, return_carry=True)

    def body(state: tuple[Array, Carry], step_key: PRNGKey) -> tuple[tuple[Array, Carry], Array]:
        last_logits, carry = state
        token = jax.random.categorical(step_key, last_logits / temperature).astype(jnp.int32)
        logits, carry = model.apply(
            variables, token[:, None], train=False, initial_carry=carry, return_carry=True
        )
        return (logits[:, -1], carry), token

    _, tokens = jax.lax.scan(body, (logits[:, -1], carry), jax.random.split(key, num_chars))
    return tokens.T
