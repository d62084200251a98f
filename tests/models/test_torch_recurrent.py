"""PyTorch parity of adljax.models.torch_recurrent: imported nn.RNN/GRU/LSTM weights give the
same outputs, final states (every layer and direction) and input gradients as PyTorch, padded
sequences against PyTorch's packed ones included. Tolerance: 1e-5 absolute (float32)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from adljax.models.recurrent import Recurrent
from adljax.models.torch_recurrent import params_from_torch

pytestmark = pytest.mark.usefixtures("fast_compiles")

TORCH_MODULES = {"rnn": nn.RNN, "gru": nn.GRU, "lstm": nn.LSTM}
LAYOUTS = [(1, False), (2, False), (1, True), (2, True)]
ATOL = 1e-5
projections = st.sampled_from(["hoisted", "per_step"])


def _torch_module(cell, num_layers, bidirectional, *, input_size=5, hidden_size=6, seed=None):
    torch.manual_seed(num_layers + 2 * bidirectional if seed is None else seed)
    module = TORCH_MODULES[cell](
        input_size,
        hidden_size,
        num_layers=num_layers,
        bidirectional=bidirectional,
        batch_first=True,
    )
    with torch.no_grad():  # biases well away from zero, so a mishandled one shows
        for name, value in module.named_parameters():
            if name.startswith("bias"):
                value.uniform_(-1.0, 1.0)
    return module


def _layer(cell, num_layers, bidirectional, *, hidden_size=6, projection="auto"):
    return Recurrent(
        cell=cell,
        hidden_size=hidden_size,
        num_layers=num_layers,
        bidirectional=bidirectional,
        projection=projection,
    )


def _named(cell, state):
    """PyTorch's ``h`` (or ``(h, c)``) by adljax's carry names: {"h"} (+ {"c"})."""
    if cell == "lstm":
        return dict(zip(("h", "c"), state, strict=True))
    return {"h": state}


def _final_states(cell, state):
    """PyTorch's final states by adljax's names, as arrays (L*D, B, H)."""
    return {k: v.detach().numpy() for k, v in _named(cell, state).items()}


def _assert_carries_match(cell, carry, state):
    """adljax's carry (L, D, B, H) per entry equals PyTorch's state (L*D, B, H), whose rows
    run layer by layer, forward then backward: every layer and direction compared."""
    for name, value in _final_states(cell, state).items():
        num_layers, num_directions = carry[name].shape[:2]
        assert carry[name].shape == (num_layers, num_directions, *value.shape[1:])
        assert value.shape[0] == num_layers * num_directions
        for layer in range(num_layers):
            for direction in range(num_directions):
                np.testing.assert_allclose(
                    carry[name][layer, direction],
                    value[layer * num_directions + direction],
                    atol=ATOL,
                    err_msg=f"{name}, layer {layer}, direction {direction}",
                )


def _initial_carry(cell, shape, seed):
    """A random initial carry {"h"} (+ {"c"}), each ``shape`` (L, D, B, H), and the same as
    PyTorch's ``h_0`` (or ``(h_0, c_0)``), each (L*D, B, H), both tracking gradients."""
    rng = np.random.default_rng(seed)
    names = ("h", "c") if cell == "lstm" else ("h",)
    carry = {k: rng.standard_normal(shape).astype(np.float32) for k in names}
    state = tuple(
        torch.tensor(v.reshape(-1, *shape[2:]), requires_grad=True) for v in carry.values()
    )
    return carry, state if cell == "lstm" else state[0]


@pytest.mark.parametrize("cell", sorted(TORCH_MODULES))
@pytest.mark.parametrize(("num_layers", "bidirectional"), LAYOUTS)
def test_imported_weights_reproduce_pytorch(cell, num_layers, bidirectional):
    module = _torch_module(cell, num_layers, bidirectional)
    x = torch.randn(3, 7, 5)
    expected, state = module(x)
    params = params_from_torch(module.state_dict(), cell)
    layer = _layer(cell, num_layers, bidirectional)
    outputs, carry = jax.jit(lambda p, x: layer.apply({"params": p}, x, train=False))(
        params, x.numpy()
    )
    np.testing.assert_allclose(outputs, expected.detach().numpy(), atol=ATOL)
    _assert_carries_match(cell, carry, state)


@pytest.mark.parametrize("cell", sorted(TORCH_MODULES))
def test_padded_sequences_match_pytorch_packed_sequences(cell):
    module = _torch_module(cell, 2, True)
    x = torch.randn(3, 6, 5)
    lengths = torch.tensor([6, 2, 4])
    packed = nn.utils.rnn.pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
    packed_out, state = module(packed)
    expected, _ = nn.utils.rnn.pad_packed_sequence(packed_out, batch_first=True, total_length=6)
    params = params_from_torch(module.state_dict(), cell)
    outputs, carry = _layer(cell, 2, True).apply(
        {"params": params}, x.numpy(), train=False, seq_lengths=lengths.numpy()
    )
    np.testing.assert_allclose(outputs, expected.detach().numpy(), atol=ATOL)
    _assert_carries_match(cell, carry, state)


@pytest.mark.parametrize("cell", sorted(TORCH_MODULES))
@settings(max_examples=8, deadline=None)
@given(
    num_layers=st.integers(2, 3),
    batch=st.integers(1, 3),
    length=st.integers(1, 6),
    input_size=st.integers(1, 4),
    hidden_size=st.integers(1, 5),
    projection=projections,
    from_zeros=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_stacked_bidirectional_final_carries_match_pytorch(
    cell, num_layers, batch, length, input_size, hidden_size, projection, from_zeros, seed
):
    """h_n (and c_n) of every layer and direction, from zeros or a given h_0 (and c_0)."""
    module = _torch_module(
        cell, num_layers, True, input_size=input_size, hidden_size=hidden_size, seed=seed
    )
    x = torch.randn(batch, length, input_size)
    shape = (num_layers, 2, batch, hidden_size)
    initial, torch_initial = (None, None) if from_zeros else _initial_carry(cell, shape, seed)
    expected, state = module(x, torch_initial)
    layer = _layer(cell, num_layers, True, hidden_size=hidden_size, projection=projection)
    outputs, carry = jax.jit(
        lambda p, x, c: layer.apply({"params": p}, x, train=False, initial_carry=c)
    )(params_from_torch(module.state_dict(), cell), x.numpy(), initial)
    np.testing.assert_allclose(outputs, expected.detach().numpy(), atol=ATOL)
    _assert_carries_match(cell, carry, state)


@st.composite
def _ragged_batches(draw):
    """Per-example lengths (a permutation holding 1 and the full length T) and T."""
    length = draw(st.integers(1, 6))
    others = draw(st.lists(st.integers(1, length), min_size=0, max_size=2))
    return draw(st.permutations([1, length, *others])), length


@pytest.mark.parametrize("cell", sorted(TORCH_MODULES))
@settings(max_examples=5, deadline=None)
@given(
    batch=_ragged_batches(),
    num_layers=st.integers(2, 3),
    bidirectional=st.booleans(),
    input_size=st.integers(1, 4),
    hidden_size=st.integers(1, 5),
    projection=projections,
    seed=st.integers(0, 2**16),
)
def test_masked_batches_match_pytorch_packed_sequences(
    cell, batch, num_layers, bidirectional, input_size, hidden_size, projection, seed
):
    """``seq_lengths`` against ``pack_padded_sequence(..., enforce_sorted=False)``: outputs at
    the real steps (zero at padding), h_n (and c_n) of every layer and direction (the state
    at each sequence's last real step; backwards: after reading it from there to step 0),
    and the gradients of a weighted sum of both with respect to the inputs and h_0 (c_0)."""
    lengths, length = batch
    num_directions = 1 + bidirectional
    module = _torch_module(
        cell, num_layers, bidirectional, input_size=input_size, hidden_size=hidden_size, seed=seed
    )
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((len(lengths), length, input_size)).astype(np.float32)
    output_weights = rng.standard_normal((len(lengths), length, num_directions * hidden_size))
    shape = (num_layers, num_directions, len(lengths), hidden_size)
    initial, torch_initial = _initial_carry(cell, shape, seed)
    carry_weights = {k: rng.standard_normal(shape) for k in initial}

    torch_x = torch.tensor(x, requires_grad=True)
    packed = nn.utils.rnn.pack_padded_sequence(
        torch_x, torch.tensor(lengths), batch_first=True, enforce_sorted=False
    )
    packed_out, state = module(packed, torch_initial)
    expected, _ = nn.utils.rnn.pad_packed_sequence(
        packed_out, batch_first=True, total_length=length
    )
    torch_loss = torch.sum(expected * torch.tensor(output_weights, dtype=torch.float32))
    for name, value in _named(cell, state).items():
        weights = torch.tensor(carry_weights[name].reshape(value.shape), dtype=torch.float32)
        torch_loss = torch_loss + torch.sum(value * weights)
    torch_loss.backward()

    layer = _layer(cell, num_layers, bidirectional, hidden_size=hidden_size, projection=projection)

    def loss(params, x, initial):
        outputs, carry = layer.apply(
            {"params": params},
            x,
            train=False,
            seq_lengths=jnp.array(lengths),
            initial_carry=initial,
        )
        total = jnp.sum(outputs * output_weights)
        for name in carry:
            total = total + jnp.sum(carry[name] * carry_weights[name])
        return total, (outputs, carry)

    (_, (outputs, carry)), (x_grad, initial_grad) = jax.jit(
        jax.value_and_grad(loss, argnums=(1, 2), has_aux=True)
    )(params_from_torch(module.state_dict(), cell), x, initial)

    expected = expected.detach().numpy()
    for b, n in enumerate(lengths):
        np.testing.assert_allclose(outputs[b, :n], expected[b, :n], atol=ATOL)
        np.testing.assert_array_equal(outputs[b, n:], 0.0)
    _assert_carries_match(cell, carry, state)
    np.testing.assert_allclose(x_grad, torch_x.grad.numpy(), atol=ATOL)
    for name, value in _named(cell, torch_initial).items():
        np.testing.assert_allclose(initial_grad[name], value.grad.numpy().reshape(shape), atol=ATOL)


def test_prefix_and_bias_free_modules():
    module = nn.GRU(3, 4, batch_first=True, bias=False)
    wrapped = {f"encoder.{k}": v for k, v in module.state_dict().items()}
    params = params_from_torch(wrapped, "gru", prefix="encoder.")
    assert not np.any(params["layer_0_bias"]) and not np.any(
        params["layer_0_candidate_hidden_bias"]
    )
    x = torch.randn(2, 5, 3)
    outputs, _ = Recurrent(cell="gru", hidden_size=4).apply(
        {"params": params}, x.numpy(), train=False
    )
    np.testing.assert_allclose(outputs, module(x)[0].detach().numpy(), atol=ATOL)


@pytest.mark.parametrize(
    ("module", "cell", "message"),
    [
        (nn.LSTM(3, 4, proj_size=2), "lstm", "cannot import"),
        (nn.GRU(3, 4), "lstm", "is `cell` right"),
        (nn.GRU(3, 4), "elman", "unknown cell"),
    ],
)
def test_unsupported_modules_are_refused(module, cell, message):
    with pytest.raises(ValueError, match=message):
        params_from_torch(module.state_dict(), cell)


def test_missing_weights_are_reported():
    with pytest.raises(ValueError, match="no 'weight_ih_l0'"):
        params_from_torch({}, "lstm")
