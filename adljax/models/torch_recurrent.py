"""Import PyTorch ``nn.RNN`` / ``nn.GRU`` / ``nn.LSTM`` weights into `Recurrent` parameters.

Synopsis::

    torch_lstm = torch.nn.LSTM(8, 32, num_layers=2, bidirectional=True, batch_first=True)
    params = params_from_torch(torch_lstm.state_dict(), "lstm")
    layer = Recurrent(cell="lstm", hidden_size=32, num_layers=2, bidirectional=True)
    outputs, carry = layer.apply({"params": params}, x, train=False)   # == torch_lstm(x)

Conventions, PyTorch -> adljax (per layer ``l``, direction suffix ``_reverse`` -> index 1):

* Layout: PyTorch stores ``weight_ih_l{l}`` as ``(G*H, F)`` and ``weight_hh_l{l}`` as
  ``(G*H, H)`` (output rows); adljax multiplies ``x @ kernel``, so its ``input_kernel[d]``
  and ``hidden_kernel[d]`` are their transposes.
* Gate order: adljax uses PyTorch's, so no reordering: LSTM ``i, f, g, o`` (Flax's
  ``OptimizedLSTMCell`` uses the same order in separate per-gate dense layers), GRU
  ``r, z, n`` (Flax's ``GRUCell`` too). Keras' LSTM uses ``i, f, c, o`` with ``c`` = ``g``.
* Biases: PyTorch keeps two per gate, ``b_ih`` and ``b_hh``; they always appear as a sum,
  so adljax keeps one, ``bias = b_ih + b_hh`` - **except the GRU candidate**, where the
  hidden bias sits inside the reset gate's product, ``n = tanh(W_in x + b_in + r * (W_hn h
  + b_hn))``: there ``bias`` takes ``b_in`` alone and ``candidate_hidden_bias`` keeps
  ``b_hn``. Flax's ``GRUCell`` follows the same rule (its input dense for ``r, z`` has no
  bias; its ``hn`` dense keeps one); its ``SimpleCell`` and LSTM cells keep a single bias
  on the hidden side.
* ``proj_size`` LSTMs have no adljax counterpart and are refused. Neither has
  ``nn.RNN(nonlinearity="relu")``, but its state dict looks exactly like a tanh RNN's:
  import tanh RNNs only. A module built with ``bias=False`` imports with zero biases.
"""

import re
from collections.abc import Mapping
from typing import Any

import numpy as np

from adljax._validate import check_choice
from adljax.models.recurrent import CELLS, NUM_GATES

_KEY = re.compile(r"(weight|bias)_(ih|hh)_l\d+(_reverse)?")


def _numpy(value: Any) -> np.ndarray:
    """A torch tensor (on any device) or array as a float32 NumPy array."""
    if hasattr(value, "detach"):
        value = value.detach().cpu().numpy()
    return np.asarray(value, np.float32)


def _layer_count(keys: set[str]) -> int:
    layers = 0
    while f"weight_ih_l{layers}" in keys:
        layers += 1
    return layers


def params_from_torch(
    state_dict: Mapping[str, Any], cell: str, *, prefix: str = ""
) -> dict[str, np.ndarray]:
    """`Recurrent` parameters from a PyTorch recurrent module's ``state_dict``.

    The number of layers, the direction count and the sizes are read from the keys and
    shapes; build the `Recurrent` with the same ``hidden_size``, ``num_layers`` and
    ``bidirectional``.

    Args:
        state_dict: ``torch.nn.RNN/GRU/LSTM(...).state_dict()`` (tensors or arrays).
        cell: ``"rnn"``, ``"gru"`` or ``"lstm"``, matching the PyTorch module.
        prefix: prefix of the module's keys in a larger model's state dict (e.g. ``"rnn."``).

    Returns:
        ``{"layer_{l}_input_kernel": (D, F, G*H), "layer_{l}_hidden_kernel": (D, H, G*H),
        "layer_{l}_bias": (D, G*H)}`` (+ ``"layer_{l}_candidate_hidden_bias": (D, H)`` for the
        GRU), float32.

    Raises:
        ValueError: unknown ``cell``; no recurrent weights under ``prefix``; shapes that do
            not fit ``cell``; keys adljax cannot represent (projections); keys left unused.
    """
    check_choice(cell, "cell", CELLS)
    entries = {k[len(prefix) :]: v for k, v in state_dict.items() if k.startswith(prefix)}
    keys = set(entries)
    num_layers = _layer_count(keys)
    if num_layers == 0:
        raise ValueError(f"`state_dict` has no 'weight_ih_l0' under prefix {prefix!r}")
    unsupported = sorted(k for k in keys if not _KEY.fullmatch(k))
    if unsupported:
        raise ValueError(
            f"`state_dict` has keys adljax cannot import: {[prefix + k for k in unsupported]} "
            "(only plain tanh RNN / GRU / LSTM layers without projections are supported)"
        )
    suffixes = ("", "_reverse") if "weight_ih_l0_reverse" in keys else ("",)
    gates = NUM_GATES[cell]
    params: dict[str, np.ndarray] = {}
    used: set[str] = set()
    for layer in range(num_layers):
        per_direction: dict[str, list[np.ndarray]] = {}
        for suffix in suffixes:
            names = {
                kind: f"{kind}_l{layer}{suffix}"
                for kind in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
            }
            missing = [names[k] for k in ("weight_ih", "weight_hh") if names[k] not in keys]
            if missing:
                raise ValueError(f"`state_dict` lacks {[prefix + m for m in missing]}")
            w_ih, w_hh = _numpy(entries[names["weight_ih"]]), _numpy(entries[names["weight_hh"]])
            hidden = w_hh.shape[1]
            if w_ih.shape[0] != gates * hidden or w_hh.shape != (gates * hidden, hidden):
                raise ValueError(
                    f"{prefix}{names['weight_hh']} has shape {w_hh.shape} and "
                    f"{prefix}{names['weight_ih']} {w_ih.shape}: a {cell!r} layer needs "
                    f"({gates}*H, H) and ({gates}*H, F); is `cell` right?"
                )
            zeros = np.zeros(gates * hidden, np.float32)
            b_ih = _numpy(entries[names["bias_ih"]]) if names["bias_ih"] in keys else zeros
            b_hh = _numpy(entries[names["bias_hh"]]) if names["bias_hh"] in keys else zeros
            used |= {name for name in names.values() if name in keys}
            bias = b_ih + b_hh
            if cell == "gru":  # the candidate's hidden bias stays inside r * (...)
                bias[2 * hidden :] = b_ih[2 * hidden :]
                per_direction.setdefault("candidate_hidden_bias", []).append(b_hh[2 * hidden :])
            per_direction.setdefault("input_kernel", []).append(w_ih.T)
            per_direction.setdefault("hidden_kernel", []).append(w_hh.T)
            per_direction.setdefault("bias", []).append(bias)
        for name, values in per_direction.items():
            params[f"layer_{layer}_{name}"] = np.stack(values)
    unused = sorted(keys - used)
    if unused:
        raise ValueError(
            f"`state_dict` has keys beyond {num_layers} layer(s) of {len(suffixes)} "
            f"direction(s): {[prefix + k for k in unused]}"
        )
    return params
