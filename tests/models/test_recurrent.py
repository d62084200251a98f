"""Tests for adljax.models.recurrent: the stacked masked RNN/GRU/LSTM layer and its models."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jax.experimental import rnn as jax_rnn
from jax.test_util import check_grads

from adljax.models import create_model
from adljax.models.recurrent import (
    CELLS,
    CharLM,
    Recurrent,
    SequenceModel,
    _lstm_gate_activations,
    cell_step,
    cudnn_lstm_weights,
    reverse_padded,
    sample,
    zero_carry,
)

pytestmark = pytest.mark.usefixtures("fast_compiles")

cells = st.sampled_from(CELLS)


def _layer(cell, hidden=3, **kwargs):
    return Recurrent(cell=cell, hidden_size=hidden, **kwargs)


_COMPILED = {}
_COMPILED_INIT = {}


def _init(layer, x, seed=0):
    """``layer.init(key(seed), x, train=False)`` compiled once per configuration (and shape)."""
    if repr(layer) not in _COMPILED_INIT:
        _COMPILED_INIT[repr(layer)] = jax.jit(lambda k, x: layer.init(k, x, train=False))
    return _COMPILED_INIT[repr(layer)](jax.random.key(seed), x)


def _apply(layer, variables, x, **kwargs):
    """``layer.apply(..., train=False)`` compiled once per layer configuration (and shape)."""
    if repr(layer) not in _COMPILED:
        _COMPILED[repr(layer)] = jax.jit(lambda v, x, **kw: layer.apply(v, x, train=False, **kw))
    return _COMPILED[repr(layer)](variables, x, **kwargs)


def _direction(params, layer, d):
    prefix = f"layer_{layer}_"
    return {k[len(prefix) :]: v[d] for k, v in params.items() if k.startswith(prefix)}


def _loop(cell, params, x, carry):
    """A plain Python loop over `cell_step` with the input projection inside the loop."""
    outputs = []
    for t in range(x.shape[1]):
        projected = x[:, t] @ params["input_kernel"] + params["bias"][None, :]
        carry = cell_step(cell, params, carry, projected)
        outputs.append(carry["h"])
    return jnp.stack(outputs, axis=1), carry


@settings(max_examples=5)
@given(cell=cells, batch=st.integers(1, 3), length=st.integers(1, 5), seed=st.integers(0, 99))
def test_scan_equals_python_loop_over_the_cell(cell, batch, length, seed):
    x = jax.random.normal(jax.random.key(seed), (batch, length, 2))
    layer = _layer(cell)
    variables = _init(layer, x, seed=seed)
    outputs, carry = _apply(layer, variables, x)
    params = _direction(variables["params"], 0, 0)
    start = {k: v[0, 0] for k, v in zero_carry(cell, batch, 3).items()}
    expected, expected_carry = _loop(cell, params, x, start)
    np.testing.assert_allclose(outputs, expected, atol=1e-5)
    for name in carry:
        np.testing.assert_allclose(carry[name][0, 0], expected_carry[name], atol=1e-5)


@settings(max_examples=5)
@given(
    cell=cells,
    bidirectional=st.booleans(),
    lengths=st.lists(st.integers(0, 4), min_size=3, max_size=3),
)
def test_padding_changes_nothing(cell, bidirectional, lengths):
    """Each sequence's outputs and final carry equal those of the sequence run alone, unpadded,
    whatever garbage the padding holds."""
    total = 4
    x = jax.random.normal(jax.random.key(sum(lengths)), (len(lengths), total, 2))
    layer = _layer(cell, num_layers=2, bidirectional=bidirectional)
    variables = _init(layer, x)
    seq_lengths = jnp.array(lengths)
    outputs, carry = _apply(layer, variables, x, seq_lengths=seq_lengths)
    garbage = jnp.where(jnp.arange(total)[None, :, None] < seq_lengths[:, None, None], x, 1e3)
    outputs2, carry2 = _apply(layer, variables, garbage, seq_lengths=seq_lengths)
    chex.assert_trees_all_close(outputs, outputs2, atol=1e-6)
    chex.assert_trees_all_close(carry, carry2, atol=1e-6)
    for b, n in enumerate(lengths):
        np.testing.assert_array_equal(outputs[b, n:], 0.0)
    empty = [b for b, n in enumerate(lengths) if n == 0]
    for value in carry.values():
        np.testing.assert_array_equal(value[:, :, empty], 0.0)
    n = lengths[0]
    if n > 0:
        alone, alone_carry = _apply(layer, variables, x[:1, :n])
        np.testing.assert_allclose(outputs[0, :n], alone[0], atol=1e-5)
        for name in carry:
            np.testing.assert_allclose(carry[name][:, :, 0], alone_carry[name][:, :, 0], atol=1e-5)


@settings(max_examples=5)
@given(cell=cells, length=st.integers(1, 4), ragged=st.booleans())
def test_backward_direction_is_the_reversed_run(cell, length, ragged):
    x = jax.random.normal(jax.random.key(length), (2, length, 3))
    seq_lengths = jnp.array([length, max(length - 2, 1)]) if ragged else None
    bi = _layer(cell, bidirectional=True)
    variables = _init(bi, x)
    outputs, carry = _apply(bi, variables, x, seq_lengths=seq_lengths)
    backward = {k: v[1:] for k, v in variables["params"].items()}
    forward = {k: v[:1] for k, v in variables["params"].items()}
    uni = _layer(cell)
    reversed_out, reversed_carry = _apply(
        uni, {"params": backward}, reverse_padded(x, seq_lengths), seq_lengths=seq_lengths
    )
    forward_out, _ = _apply(uni, {"params": forward}, x, seq_lengths=seq_lengths)
    np.testing.assert_allclose(outputs[..., :3], forward_out, atol=1e-6)
    np.testing.assert_allclose(
        outputs[..., 3:], reverse_padded(reversed_out, seq_lengths), atol=1e-6
    )
    for name in carry:
        np.testing.assert_allclose(carry[name][:, 1], reversed_carry[name][:, 0], atol=1e-6)


def _masked_loop(cell, params, x, carry, lengths):
    """`_loop` with padding: steps at or after ``lengths (B,)`` keep the carry, output zero."""
    outputs = []
    for t in range(x.shape[1]):
        projected = x[:, t] @ params["input_kernel"] + params["bias"][None, :]
        new = cell_step(cell, params, carry, projected)
        keep = (t < lengths)[:, None]
        carry = {k: jnp.where(keep, new[k], carry[k]) for k in carry}
        outputs.append(jnp.where(keep, new["h"], 0.0))
    return jnp.stack(outputs, axis=1), carry


@settings(max_examples=10, deadline=None)
@given(
    cell=cells,
    projection=st.sampled_from(["hoisted", "per_step"]),
    lengths=st.none() | st.lists(st.integers(0, 4), min_size=2, max_size=2),
    seed=st.integers(0, 99),
)
def test_both_projections_equal_autodiff_of_the_step_loop(cell, projection, lengths, seed):
    """Outputs, final carry and gradients (with respect to every parameter, the inputs and the
    initial carry) equal those of a Python loop over `cell_step`, for either projection."""
    keys = jax.random.split(jax.random.key(seed), 4)
    x = jax.random.normal(keys[0], (2, 4, 3))
    layer = _layer(cell, projection=projection)
    params = _init(layer, x, seed=seed)["params"]
    params = jax.tree.map(lambda v: v + 0.3 * jax.random.normal(keys[1], v.shape), params)
    start = jax.tree.map(
        lambda v: jax.random.normal(keys[2], v.shape), zero_carry(cell, 2, 3, num_layers=1)
    )
    weights = jax.random.normal(keys[3], (2, 4, 3))
    seq_lengths = None if lengths is None else jnp.array(lengths)

    def loss(params, x, start):
        out, carry = layer.apply(
            {"params": params}, x, train=False, seq_lengths=seq_lengths, initial_carry=start
        )
        return jnp.sum(out * weights) + sum(jnp.sum(jnp.sin(v)) for v in carry.values())

    def reference(params, x, start):
        full = jnp.full((2,), 4) if seq_lengths is None else seq_lengths
        carry = {k: v[0, 0] for k, v in start.items()}
        out, carry = _masked_loop(cell, _direction(params, 0, 0), x, carry, full)
        return jnp.sum(out * weights) + sum(jnp.sum(jnp.sin(v)) for v in carry.values())

    got = jax.jit(jax.value_and_grad(loss, argnums=(0, 1, 2)))(params, x, start)
    expected = jax.value_and_grad(reference, argnums=(0, 1, 2))(params, x, start)
    chex.assert_trees_all_close(got, expected, atol=2e-5, rtol=2e-5)


@pytest.mark.parametrize("cell", CELLS)
def test_per_step_projection_equals_hoisted_in_a_bidirectional_stack(cell):
    x = jax.random.normal(jax.random.key(7), (3, 5, 2))
    lengths = jnp.array([5, 2, 0])
    layers = {
        projection: _layer(cell, num_layers=2, bidirectional=True, projection=projection)
        for projection in ("hoisted", "per_step")
    }
    params = _init(layers["hoisted"], x)["params"]

    def run(projection):
        def loss(params, x):
            out, carry = layers[projection].apply(
                {"params": params}, x, train=False, seq_lengths=lengths
            )
            return jnp.sum(out**2) + jnp.sum(jnp.cos(carry["h"])), (out, carry)

        return jax.jit(jax.value_and_grad(loss, argnums=(0, 1), has_aux=True))(params, x)

    chex.assert_trees_all_close(run("per_step"), run("hoisted"), atol=1e-5, rtol=1e-5)


def test_reverse_padded_reverses_within_the_length_and_is_an_involution():
    x = jnp.arange(10).reshape(2, 5)
    lengths = jnp.array([3, 5])
    np.testing.assert_array_equal(reverse_padded(x, lengths), [[2, 1, 0, 3, 4], [9, 8, 7, 6, 5]])
    np.testing.assert_array_equal(reverse_padded(reverse_padded(x, lengths), lengths), x)


@settings(max_examples=5)
@given(
    cell=cells,
    batch=st.integers(1, 3),
    length=st.integers(1, 5),
    hidden=st.integers(1, 4),
    num_layers=st.integers(1, 3),
    bidirectional=st.booleans(),
)
def test_shapes(cell, batch, length, hidden, num_layers, bidirectional):
    x = jnp.ones((batch, length, 2))
    layer = _layer(cell, hidden, num_layers=num_layers, bidirectional=bidirectional)
    outputs, carry = jax.eval_shape(
        lambda x: layer.init_with_output(key_of(0), x, train=False)[0], x
    )
    d = 2 if bidirectional else 1
    chex.assert_shape(outputs, (batch, length, d * hidden))
    expected = {"h", "c"} if cell == "lstm" else {"h"}
    assert set(carry) == expected
    chex.assert_tree_shape_prefix(carry, (num_layers, d, batch, hidden))


@pytest.mark.parametrize("cell", CELLS)
def test_carrying_state_across_chunks_equals_one_run(cell):
    """Truncated BPTT: the final carry of one chunk, fed back in, continues the sequence."""
    x = jax.random.normal(jax.random.key(1), (2, 7, 3))
    layer = _layer(cell, num_layers=2)
    variables = _init(layer, x)
    whole, whole_carry = _apply(layer, variables, x)
    first, carry = _apply(layer, variables, x[:, :4])
    second, carry = _apply(layer, variables, x[:, 4:], initial_carry=carry)
    np.testing.assert_allclose(jnp.concatenate([first, second], 1), whole, atol=1e-6)
    chex.assert_trees_all_close(carry, whole_carry, atol=1e-6)


def test_jit_and_eager_agree_and_vmap_over_parameters():
    layer = _layer("gru", num_layers=2, bidirectional=True)
    x = jax.random.normal(jax.random.key(2), (2, 4, 3))
    variables = _init(layer, x)
    lengths = jnp.array([4, 2])

    def forward(variables):
        return layer.apply(variables, x, train=False, seq_lengths=lengths)[0]

    chex.assert_trees_all_close(jax.jit(forward)(variables), forward(variables), atol=1e-6)
    stacked = jax.jit(jax.vmap(lambda k: layer.init(k, x, train=False)))(
        jax.random.split(key_of(3), 2)
    )
    batched = jax.jit(jax.vmap(forward))(stacked)
    chex.assert_trees_all_close(batched[1], forward(jax.tree.map(lambda v: v[1], stacked)))


def key_of(seed):
    return jax.random.key(seed)


@pytest.mark.parametrize("cell", CELLS)
def test_gradients_match_finite_differences(cell):
    layer = _layer(cell, hidden=2, bidirectional=True)
    with jax.enable_x64(True):
        x = jax.random.normal(jax.random.key(4), (2, 3, 2), jnp.float64)
        params = jax.tree.map(lambda v: v.astype(jnp.float64), _init(layer, x)["params"])
        lengths = jnp.array([3, 2])

        def loss(params):
            out, carry = layer.apply({"params": params}, x, train=False, seq_lengths=lengths)
            return jnp.sum(out**2) + jnp.sum(jnp.cos(carry["h"]))

        check_grads(jax.jit(loss), (params,), order=1, modes=["rev"])


def test_dropout_between_layers_acts_in_training_only():
    x = jnp.ones((2, 4, 3))
    rngs = {"dropout": jax.random.key(5)}
    differences = []
    for num_layers in (2, 1):  # a single layer has nothing between layers to drop
        layer = _layer("rnn", hidden=8, num_layers=num_layers, dropout_rate=0.5)
        variables = _init(layer, x)
        train = jax.jit(lambda v, layer=layer: layer.apply(v, x, train=True, rngs=rngs)[0])
        differences.append(
            float(jnp.max(jnp.abs(train(variables) - _apply(layer, variables, x)[0])))
        )
    assert differences[0] > 0.01
    assert differences[1] < 1e-6  # float rounding of two differently compiled programs


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"cell": "elman"}, "unknown cell"),
        ({"hidden_size": 0}, "hidden_size"),
        ({"num_layers": -1}, "num_layers"),
        ({"dropout_rate": 1.0}, "dropout_rate"),
        ({"bidirectional": 1}, "bidirectional"),
        ({"cell": "gru", "use_cudnn": True}, "use_cudnn"),
        ({"projection": "inside"}, "projection"),
    ],
)
def test_bad_configuration_is_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Recurrent(**kwargs)


def test_bad_inputs_are_refused_before_compute():
    layer = _layer("lstm")
    x = jnp.ones((2, 4, 3))
    variables = _init(layer, x)
    with pytest.raises(ValueError, match=r"`x` must have rank 3"):
        layer.apply(variables, jnp.ones((2, 4)), train=False)
    with pytest.raises(ValueError, match=r"`seq_lengths` must have shape \(2,\)"):
        layer.apply(variables, x, train=False, seq_lengths=jnp.ones(3, jnp.int32))
    with pytest.raises(ValueError, match="`initial_carry` must be"):
        layer.apply(variables, x, train=False, initial_carry={"h": jnp.zeros((1, 1, 2, 3))})


def test_cudnn_weight_packing_matches_jax_reference_lstm():
    """The packed vector that the cuDNN path sends, read back by jax.experimental.rnn's own
    unpacking and reference LSTM, gives the scan's outputs (checked here on the CPU)."""
    hidden, num_layers = 3, 2
    layer = _layer("lstm", hidden, num_layers=num_layers, bidirectional=True)
    x = jax.random.normal(jax.random.key(6), (2, 5, 4))
    lengths = jnp.array([5, 3], jnp.int32)
    params = _init(layer, x)["params"]
    params = jax.tree.map(lambda v: v + 0.1 * jax.random.normal(key_of(7), v.shape), params)
    outputs, carry = layer.apply({"params": params}, x, train=False, seq_lengths=lengths)
    layers = [_direction(params, layer_id, slice(None)) for layer_id in range(num_layers)]
    weights = cudnn_lstm_weights(layers)
    unpacked = jax_rnn.unpack_lstm_weights(weights, 4, hidden, num_layers, True)
    zeros = jnp.zeros((2 * num_layers, 2, hidden))
    y, h, c = jax_rnn.lstm_ref(
        x, zeros, zeros, *unpacked, lengths, 4, hidden, num_layers, 0.0, True
    )
    np.testing.assert_allclose(y, outputs, atol=1e-5)
    np.testing.assert_allclose(h, carry["h"].reshape(h.shape), atol=1e-5)
    np.testing.assert_allclose(c, carry["c"].reshape(c.shape), atol=1e-5)


@pytest.mark.gpu
@pytest.mark.parametrize("bidirectional", [False, True])
def test_cudnn_path_agrees_with_the_scan(bidirectional):
    x = jax.random.normal(jax.random.key(8), (4, 9, 5))
    lengths = jnp.array([9, 4, 1, 7], jnp.int32)
    scan = _layer("lstm", 16, num_layers=2, bidirectional=bidirectional)
    cudnn = _layer("lstm", 16, num_layers=2, bidirectional=bidirectional, use_cudnn=True)
    variables = _init(scan, x)

    def loss(layer, variables):
        outputs, carry = layer.apply(variables, x, train=False, seq_lengths=lengths)
        return jnp.sum(jnp.sin(outputs)) + jnp.sum(carry["c"] ** 2)

    with jax.default_matmul_precision("highest"):  # no TF32 in either path
        expected = _apply(scan, variables, x, seq_lengths=lengths)
        got = _apply(cudnn, variables, x, seq_lengths=lengths)
        grads = [jax.jit(jax.grad(lambda v, m=m: loss(m, v)))(variables) for m in (scan, cudnn)]
    chex.assert_trees_all_close(got, expected, atol=1e-5)
    chex.assert_trees_all_close(grads[1], grads[0], atol=1e-4)


# ----- models -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cell", "task", "shape"),
    [("rnn", "classification", (2, 5)), ("gru", "tagging", (2, 4, 5)), ("lstm", "binary", (2, 5))],
)
def test_registered_sequence_models_follow_the_task(cell, task, shape):
    tokens = jnp.array([[3, 1, 2, 0], [1, 0, 0, 0]])
    model = create_model(cell, vocab_size=4, num_outputs=shape[-1], task=task, hidden_size=4)
    assert model.cell == cell
    chex.assert_shape(_apply(model, _init(model, tokens), tokens), shape)


def test_regressor_reads_any_length_with_the_trained_feature_size():
    regressor = create_model("lstm", num_outputs=1, task="regression", input_shape=(6, 2))
    x = jnp.ones((3, 6, 2))
    variables = _init(regressor, x)
    chex.assert_shape(_apply(regressor, variables, x), (3, 1))
    chex.assert_shape(_apply(regressor, variables, jnp.ones((3, 9, 2))), (3, 1))
    with pytest.raises(ValueError, match=r"`x` must have shape \(batch, time, 2\)"):
        _apply(regressor, variables, jnp.ones((3, 6, 3)))


@given(pooling=st.sampled_from(["last", "mean"]), bidirectional=st.booleans())
def test_padding_token_makes_the_classifier_ignore_padding(pooling, bidirectional):
    model = SequenceModel(
        cell="gru",
        hidden_size=4,
        vocab_size=6,
        padding_token=0,
        num_outputs=3,
        pooling=pooling,
        bidirectional=bidirectional,
    )
    short = jnp.array([[4, 2, 5]])
    padded = jnp.array([[4, 2, 5, 0, 0, 0]])
    variables = _init(model, padded)
    np.testing.assert_allclose(
        _apply(model, variables, short), _apply(model, variables, padded), atol=1e-6
    )


def test_a_few_steps_reduce_the_loss():
    model = SequenceModel(cell="lstm", hidden_size=8, num_outputs=1, task="regression")
    x = jax.random.uniform(jax.random.key(9), (16, 5, 2))
    y = jnp.sum(x[..., :1], axis=1)
    params = _init(model, x)["params"]
    tx = optax.adam(1e-2)
    opt_state = tx.init(params)

    def loss(params):
        return jnp.mean((model.apply({"params": params}, x, train=False) - y) ** 2)

    @jax.jit
    def step(params, opt_state):
        value, grads = jax.value_and_grad(loss)(params)
        updates, opt_state = tx.update(grads, opt_state)
        return optax.apply_updates(params, updates), opt_state, value

    params, opt_state, first = step(params, opt_state)
    for _ in range(30):
        params, opt_state, last = step(params, opt_state)
    assert last < 0.5 * first


def test_sample_at_low_temperature_is_greedy_decoding():
    """The compiled sampler continues from the carry: near-zero temperature gives exactly the
    greedy characters found by re-running the whole model on the growing text."""
    model = CharLM(num_outputs=7, hidden_size=8, embedding_size=4, cell="gru", num_layers=2)
    prompt = jnp.array([[1, 2, 3], [4, 4, 0]])
    variables = _init(model, prompt)
    variables = jax.tree.map(lambda v: 3 * v, variables)  # sharper logits, no near-ties
    got = sample(model, variables, prompt, key_of(10), num_chars=5, temperature=1e-6)
    text = prompt
    for _ in range(5):
        nxt = jnp.argmax(_apply(model, variables, text)[:, -1], axis=-1)
        text = jnp.concatenate([text, nxt[:, None].astype(text.dtype)], axis=1)
    np.testing.assert_array_equal(got, text[:, 3:])


def test_sample_shapes_range_determinism_and_checks():
    model = CharLM(num_outputs=5, hidden_size=4, embedding_size=3)
    prompt = jnp.array([[1, 2]])
    variables = _init(model, prompt)
    a = sample(model, variables, prompt, key_of(1), num_chars=20, temperature=2.0)
    b = sample(model, variables, prompt, key_of(1), num_chars=20, temperature=2.0)
    assert a.shape == (1, 20) and a.dtype == jnp.int32
    assert int(a.min()) >= 0 and int(a.max()) < 5
    np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="temperature"):
        sample(model, variables, prompt, key_of(1), num_chars=3, temperature=0.0)
    with pytest.raises(ValueError, match="prompt"):
        sample(model, variables, jnp.ones((1, 2)), key_of(1), num_chars=3)
    with pytest.raises(ValueError, match="num_chars"):
        sample(model, variables, prompt, key_of(1), num_chars=0)


def test_models_are_sized_for_sequence_datasets():
    """`model_for_dataset` passes the task and the token vocabulary to the models taking them."""
    from adljax.data import load
    from adljax.experiment import model_for_dataset
    from adljax.models import model_parameters

    assert {"task", "vocab_size", "padding_token"} <= model_parameters("gru")
    assert "task" not in model_parameters("charlm")
    tagger = model_for_dataset("gru", load("copy", "test", seq_len=15))
    assert (tagger.task, tagger.vocab_size, tagger.num_outputs) == ("tagging", 10, 10)
    regressor = model_for_dataset("rnn", load("adding", "test", seq_len=12), hidden_size=7)
    assert (regressor.task, regressor.vocab_size, regressor.hidden_size) == ("regression", None, 7)
    language_model = model_for_dataset("charlm", load("pydoc_chars", "test"), cell="gru")
    assert language_model.cell == "gru" and language_model.num_outputs == 103
    with pytest.raises(ValueError, match="unknown model"):
        model_parameters("nope")


def test_auto_projection_is_per_step_on_cpu_and_hoisted_elsewhere():
    x = jnp.ones((2, 3, 4))
    programs = {}
    for projection in ("auto", "per_step", "hoisted"):
        layer = _layer("lstm", projection=projection)
        variables = _init(layer, x)
        programs[projection] = str(
            jax.make_jaxpr(lambda v, x, layer=layer: layer.apply(v, x, train=False))(variables, x)
        )
    expected = "per_step" if jax.default_backend() == "cpu" else "hoisted"
    assert programs["per_step"] != programs["hoisted"]
    assert programs["auto"] == programs[expected]


@pytest.mark.parametrize("cell", CELLS)
def test_per_step_gru_and_lstm_rematerialise_all_but_the_products(cell):
    """The per-step path wraps the GRU / LSTM step in `jax.checkpoint` (the RNN step is left
    alone), so its forward scan stacks fewer per-step residuals than the hoisted path's."""
    x = jnp.ones((2, 3, 4))

    def stacked_residuals(projection):
        layer = _layer(cell, projection=projection)
        params = _init(layer, x)["params"]
        jaxpr = jax.make_jaxpr(
            jax.grad(lambda p: jnp.sum(layer.apply({"params": p}, x, train=False)[0]))
        )(params)
        scans = [e for e in jaxpr.jaxpr.eqns if e.primitive.name == "scan"]
        text = str(jaxpr)
        return len(scans[0].outvars), "checkpoint" in text or "remat" in text

    per_step, rematerialised = stacked_residuals("per_step")
    hoisted, _ = stacked_residuals("hoisted")
    assert rematerialised == (cell != "rnn")
    if cell != "rnn":
        assert per_step < hoisted


@given(
    hidden=st.integers(1, 9),
    batch=st.integers(1, 3),
    scale=st.sampled_from([0.1, 1.0, 10.0, 60.0]),
    seed=st.integers(0, 2**16),
)
def test_lstm_gate_activations_are_sigmoid_sigmoid_tanh_sigmoid(hidden, batch, scale, seed):
    """The one-pass activations equal sigmoid / tanh per quarter (values and gradients), also
    in saturation."""
    gates = scale * jax.random.normal(jax.random.key(seed), (batch, 4 * hidden))

    def reference(gates):
        i, f, g, o = jnp.split(gates, 4, axis=-1)
        sig = jax.nn.sigmoid
        return jnp.concatenate([sig(i), sig(f), jnp.tanh(g), sig(o)], axis=-1)

    cotangent = jax.random.normal(jax.random.key(seed + 1), gates.shape)
    got, got_vjp = jax.vjp(_lstm_gate_activations, gates)
    expected, expected_vjp = jax.vjp(reference, gates)
    # sigmoid(x) as tanh(x/2)/2 + 1/2 rounds values within ~1.5 ulp of 1.0 of zero to 0 (seen:
    # 1.04e-7 -> 0 at seed 403, scale 60), so the absolute tolerance is 2 ulp of 1.0.
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=2.4e-7)
    np.testing.assert_allclose(got_vjp(cotangent)[0], expected_vjp(cotangent)[0], atol=1e-6)


@pytest.mark.parametrize("dtype", [jnp.bfloat16, jnp.float16])
def test_lstm_gate_activations_keep_small_sigmoids_in_16_bit_floats(dtype):
    """16-bit gates keep sigmoid's relative precision near 0 (tanh(x/2) rounds to -1 there)."""
    gates = jnp.array([[-8.0, -6.0, 0.5, -7.0]], dtype)  # i, f, g, o with H = 1
    got = _lstm_gate_activations(gates)
    assert got.dtype == dtype
    expected = [jax.nn.sigmoid(-8.0), jax.nn.sigmoid(-6.0), jnp.tanh(0.5), jax.nn.sigmoid(-7.0)]
    np.testing.assert_allclose(np.asarray(got, np.float32)[0], expected, rtol=1e-2)
