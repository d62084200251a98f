"""Recurrent networks: RNN, GRU and LSTM on long-range memory, and a character model.

Synopsis::

    python examples/recurrent.py             # about a minute on 2 CPU cores

1. The layer. ``Recurrent(cell, hidden_size, num_layers, bidirectional)`` maps ``(B, T, F)``
   to ``(B, T, D*H)`` and returns every layer's final carry. ``seq_lengths`` marks padding:
   a padded sequence gets exactly the outputs and final state it gets alone, and its
   backward direction starts at its last real step. Feeding a chunk's final carry into the
   next chunk continues the sequence (truncated backpropagation through time).
2. The adding problem: 2 of T values are marked; the target is their sum. Predicting the
   mean scores MSE 1/6. The gradient reaching step 1 from step T passes through T Jacobians
   of the recurrence: a tanh RNN's shrink it to nothing, so it never learns which values are
   marked; the GRU's and LSTM's gates keep an additive path open and they solve it.
3. A character language model on Python's reference documentation (``pydoc_chars``): its
   validation perplexity against the unigram baseline, and samples at two temperatures from
   the compiled sampler (one ``lax.scan`` over generated characters).
"""

import time

import jax
import jax.numpy as jnp
import numpy as np

import adljax
from adljax.experiment import run_experiment
from adljax.models.recurrent import sample


def layer_properties() -> dict[str, float]:
    """Padding invariance and carried state, measured on a random 2-layer bidirectional GRU."""
    layer = adljax.models.Recurrent(cell="gru", hidden_size=8, num_layers=2, bidirectional=True)
    x = jax.random.normal(jax.random.key(0), (2, 10, 3))
    variables = layer.init(jax.random.key(1), x, train=False)
    outputs, carry = layer.apply(variables, x, train=False, seq_lengths=jnp.array([10, 6]))
    alone, alone_carry = layer.apply(variables, x[1:, :6], train=False)
    print(f"outputs {outputs.shape}, carry h {carry['h'].shape} (layers, directions, B, H)")
    padding_gap = float(jnp.max(jnp.abs(outputs[1, :6] - alone[0])))
    carry_gap = float(jnp.max(jnp.abs(carry["h"][:, :, 1] - alone_carry["h"][:, :, 0])))
    print(f"sequence of 6 padded to 10 vs alone: outputs differ by {padding_gap:.1e}")

    forward = adljax.models.Recurrent(cell="lstm", hidden_size=8, num_layers=2)
    variables = forward.init(jax.random.key(2), x, train=False)
    whole, _ = forward.apply(variables, x, train=False)
    first, state = forward.apply(variables, x[:, :4], train=False)
    rest, _ = forward.apply(variables, x[:, 4:], train=False, initial_carry=state)
    chunk_gap = float(jnp.max(jnp.abs(jnp.concatenate([first, rest], axis=1) - whole)))
    print(f"two chunks with the carry passed on vs one run: {chunk_gap:.1e}")
    return {"padding_gap": max(padding_gap, carry_gap), "chunk_gap": chunk_gap}


def adding_problem(seq_len: int, epochs: int) -> dict[str, float]:
    """Test MSE of each cell on the adding problem (``adljax train rnn adding --seq-len T``)."""
    mse = {}
    for cell in ("rnn", "gru", "lstm"):
        experiment = run_experiment(
            cell,
            "adding",
            epochs=epochs,
            batch_size=32,
            learning_rate=1e-2,
            model_config_overrides={"hidden_size": 32},
            dataset_options={"seq_len": seq_len},
            progress=False,
        )
        mse[cell] = experiment.summary["eval"]["mse"]
    y = experiment.eval_data.arrays["y"]
    mse["mean"] = float(np.mean((y - experiment.train_data.arrays["y"].mean()) ** 2))
    print(
        f"adding problem, T={seq_len}, {epochs} epochs: test MSE "
        + ", ".join(f"{name} {value:.4f}" for name, value in mse.items())
    )
    return mse


def character_model(epochs: int, hidden_size: int) -> dict[str, object]:
    """Validation perplexity of a character LSTM, the unigram baseline, and two samples."""
    experiment = run_experiment(
        "charlm",
        "pydoc_chars",
        epochs=epochs,
        learning_rate=3e-3,
        model_config_overrides={"hidden_size": hidden_size},
        progress=False,
    )
    train, valid = experiment.train_data, experiment.eval_data
    vocabulary = train.info.extras["vocabulary"]
    counts = np.bincount(train.arrays["x"].ravel(), minlength=len(vocabulary)) + 1.0
    unigram = float(np.exp(-np.log(counts / counts.sum())[valid.arrays["y"]].mean()))
    perplexity = experiment.summary["eval"]["perplexity"]
    print(f"character LSTM: validation perplexity {perplexity:.2f} (unigram {unigram:.2f})")
    state = experiment.result.state
    prompt = np.array([[vocabulary.index(c) for c in "The "]], np.int32)
    samples = {}
    for temperature in (0.5, 1.0):
        ids = sample(
            state.model,
            state.variables,
            prompt,
            jax.random.key(0),
            num_chars=120,
            temperature=temperature,
        )
        samples[temperature] = "The " + "".join(vocabulary[i] for i in np.asarray(ids)[0])
        print(f"--- temperature {temperature}:\n{samples[temperature]}")
    return {"perplexity": perplexity, "unigram_perplexity": unigram, "samples": samples}


def main(
    seq_len: int = 100, epochs: int = 4, charlm_epochs: int = 3, hidden_size: int = 128
) -> dict[str, object]:
    """Runs the three parts; returns their numbers."""
    start = time.perf_counter()
    out = {
        "layer": layer_properties(),
        "adding_mse": adding_problem(seq_len, epochs),
        "charlm": character_model(charlm_epochs, hidden_size),
    }
    print(f"done in {time.perf_counter() - start:.0f} s")
    return out


if __name__ == "__main__":
    main()
