"""PyTorch parity of adljax.models.torch_recurrent: imported nn.RNN/GRU/LSTM weights give the
same outputs and final states as PyTorch, padded sequences included."""

import jax
import numpy as np
import pytest
import torch
from torch import nn

from adljax.models.recurrent import Recurrent
from adljax.models.torch_recurrent import params_from_torch

pytestmark = pytest.mark.usefixtures("fast_compiles")

TORCH_MODULES = {"rnn": nn.RNN, "gru": nn.GRU, "lstm": nn.LSTM}
LAYOUTS = [(1, False), (2, False), (1, True), (2, True)]


def _torch_module(cell, num_layers, bidirectional, **kwargs):
    torch.manual_seed(num_layers + 2 * bidirectional)
    module = TORCH_MODULES[cell](
        5, 6, num_layers=num_layers, bidirectional=bidirectional, batch_first=True, **kwargs
    )
    with torch.no_grad():  # biases well away from zero, so a mishandled one shows
        for name, value in module.named_parameters():
            if name.startswith("bias"):
                value.uniform_(-1.0, 1.0)
    return module


def _layer(cell, num_layers, bidirectional):
    return Recurrent(cell=cell, hidden_size=6, num_layers=num_layers, bidirectional=bidirectional)


def _final_states(cell, state):
    """PyTorch's (L*D, B, H) final states as adljax's {"h", "c"} (L, D, B, H)."""
    h, c = state if cell == "lstm" else (state, None)
    named = {"h": h} if c is None else {"h": h, "c": c}
    return {k: v.detach().numpy() for k, v in named.items()}


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
    np.testing.assert_allclose(outputs, expected.detach().numpy(), atol=1e-5)
    for name, value in _final_states(cell, state).items():
        np.testing.assert_allclose(carry[name].reshape(value.shape), value, atol=1e-5)


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
    np.testing.assert_allclose(outputs, expected.detach().numpy(), atol=1e-5)
    for name, value in _final_states(cell, state).items():
        np.testing.assert_allclose(carry[name].reshape(value.shape), value, atol=1e-5)


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
    np.testing.assert_allclose(outputs, module(x)[0].detach().numpy(), atol=1e-5)


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
