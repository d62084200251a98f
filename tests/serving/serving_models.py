"""Small untrained models of every family, for the serving tests (parity needs no training)."""

import jax
import numpy as np

import adljax
from adljax.experiment import model_for_dataset
from adljax.gan.experiment import generation_data
from adljax.gan.training import AdversarialOptimizer, create_gan_state
from adljax.models import create_model

# name -> (registered model, dataset, dataset options, model config)
FAMILIES = {
    "mlp_digits": ("mlp", "digits", {}, {"hidden_sizes": (16,), "batch_norm": True}),
    "cnn_digits": ("cnn", "digits", {}, {"batch_norm": True}),
    "resnet_digits": ("resnet18", "digits", {}, {"stem": "cifar", "width": 8}),
    "linear_housing": ("linear", "housing_synthetic", {}, {}),
    "mlp_xor": ("mlp", "xor", {}, {"hidden_sizes": (8,), "activation": "tanh"}),
    "lstm_waveforms": ("lstm", "waveforms", {"seq_len": 12}, {"hidden_size": 16}),
    "gru_copy": ("gru", "copy", {"seq_len": 12}, {"hidden_size": 16}),
    "rnn_adding": ("rnn", "adding", {"seq_len": 12}, {"hidden_size": 16}),
    "charlm": ("charlm", "pydoc_chars", {"seq_len": 16}, {"hidden_size": 16, "num_layers": 2}),
    "detector_shapes": ("detector", "shapes", {}, {}),
    "gan_ring": ("gan", "ring8", {}, {}),
    "dcgan_digits": ("dcgan", "digits", {}, {}),
}
GANS = ("gan", "dcgan")


def build_state(family: str):
    """``(state, train data)`` of an initialised model of ``family`` (a key of FAMILIES)."""
    model_name, dataset, options, config = FAMILIES[family]
    data = adljax.data.load(dataset, "train", **options)
    tx = adljax.create_optimizer("adam", 1e-3)
    sample = data.to_arrays().arrays["x"][:2]
    if model_name in GANS:
        data = generation_data(data)
        net = create_model(model_name, input_shape=data.info.input_shape, **config)
        txs = AdversarialOptimizer(tx, tx)
        return create_gan_state(net, txs, sample, jax.random.key(0)), data
    net = model_for_dataset(model_name, data, **config)
    state = adljax.create_train_state(net, tx, sample, jax.random.key(0))
    if model_name == "detector":  # an untrained head scores every box below the threshold
        head = state.params["head"]
        bias = jax.numpy.full_like(head["class_logits"]["bias"], 1.0)
        head = {**head, "class_logits": {**head["class_logits"], "bias": bias}}
        state = state.replace(params={**state.params, "head": head})
    return state, data


def raw(data, n: int) -> np.ndarray:
    """The first ``n`` inputs of ``data`` as an export takes them (uint8 images, raw features)."""
    from adljax.serving.programs import raw_inputs

    x = data.to_arrays().arrays["x"][:n]
    return raw_inputs(data.info, None, x) if np.issubdtype(x.dtype, np.floating) else x
