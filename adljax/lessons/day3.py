"""Day 3: recurrent networks: long-range memory, a character language model, and the
representations a sequence classifier learns."""

import jax
import numpy as np

from adljax import plots, representations
from adljax.experiment import run_experiment
from adljax.models.recurrent import sample
from adljax.recipes import recipe_for
from adljax.tour import LessonContext, Result, lesson

_ADDING_LENGTH = 100
_TEMPERATURES = (0.5, 1.0)
_PROMPT = "The "
_SAMPLING_SEED = 3


@lesson("Day 3", "long-range memory: the adding problem at length 100")
def adding_problem(ctx: LessonContext) -> list[Result]:
    options = {"seq_len": _ADDING_LENGTH, "num_train": 4_000 if ctx.quick else 10_000}
    results = []
    for cell in ("rnn", "gru", "lstm"):
        recipe = recipe_for(cell, "adding")
        experiment = run_experiment(
            cell,
            "adding",
            **recipe.arguments(dataset_options=options),
            progress=False,
            callbacks=ctx.callbacks,
        )
        results.append(
            Result(
                "adding problem",
                cell,
                f"adding (T={_ADDING_LENGTH})",
                "eval mse",
                experiment.summary["eval"]["mse"],
                f"hidden {recipe.model_config['hidden_size']}, {recipe.epochs} epochs of "
                f"{options['num_train']}",
            )
        )
    test = experiment.eval_data.arrays["y"]
    mean = experiment.train_data.arrays["y"].mean()
    baseline = float(np.mean((test - mean) ** 2))
    note = "predict the train mean; 1/6 in expectation"
    return [
        Result(
            "adding problem", "mean", f"adding (T={_ADDING_LENGTH})", "eval mse", baseline, note
        ),
        *results,
    ]


def unigram_perplexity(train_ids: np.ndarray, eval_ids: np.ndarray, vocab_size: int) -> float:
    """Perplexity on ``eval_ids`` of the train split's character frequencies (add-one
    smoothed): the baseline a language model that ignores context reaches."""
    counts = np.bincount(train_ids.ravel(), minlength=vocab_size) + 1.0
    log_p = np.log(counts / counts.sum())
    return float(np.exp(-log_p[eval_ids.ravel()].mean()))


@lesson("Day 3", "a character language model on Python's own documentation")
def character_model(ctx: LessonContext) -> list[Result]:
    recipe = recipe_for("charlm", "pydoc_chars")
    epochs = ctx.epochs(recipe.epochs, 1)
    quick = {"model_config_overrides": {"hidden_size": 64}} if ctx.quick else {}
    experiment = run_experiment(
        "charlm",
        "pydoc_chars",
        **recipe.arguments(epochs=epochs, **quick),
        progress=False,
        callbacks=ctx.callbacks,
    )
    train, valid = experiment.train_data, experiment.eval_data
    vocabulary = train.info.extras["vocabulary"]
    baseline = unigram_perplexity(train.arrays["x"], valid.arrays["y"], len(vocabulary))
    state = experiment.result.state
    prompt = np.array([[vocabulary.index(c) for c in _PROMPT]], np.int32)
    samples = {}
    for i, temperature in enumerate(_TEMPERATURES):
        key = jax.random.fold_in(jax.random.key(_SAMPLING_SEED), i)  # not the training key
        ids = sample(
            state.model, state.variables, prompt, key, num_chars=160, temperature=temperature
        )
        samples[temperature] = _PROMPT + "".join(vocabulary[j] for j in np.asarray(ids)[0])
    with open(ctx.output_dir / "charlm_samples.txt", "x") as out:
        for temperature, text in samples.items():
            out.write(f"--- temperature {temperature} ---\n{text}\n")
    perplexity = experiment.summary["eval"]["perplexity"]
    rows = [
        Result("char LM", "unigram", "pydoc_chars", "valid perplexity", baseline, "no context"),
        Result(
            "char LM",
            "charlm (lstm)",
            "pydoc_chars",
            "valid perplexity",
            perplexity,
            f"{epochs} epochs; samples in charlm_samples.txt",
        ),
    ]
    for temperature, text in samples.items():
        rows.append(
            Result(
                "char LM",
                f"sample, T={temperature}",
                "pydoc_chars",
                "characters",
                len(text),
                repr(text[:60]),
            )
        )
    return rows


@lesson("Day 3", "representation learning: final hidden states of a waveform classifier")
def sequence_representations(ctx: LessonContext) -> list[Result]:
    experiment = run_experiment(
        "gru",
        "waveforms",
        epochs=ctx.epochs(5, 1),
        learning_rate=1e-2,
        model_config_overrides={"hidden_size": 32},
        progress=False,
        callbacks=ctx.callbacks,
    )
    test = experiment.eval_data
    x, labels = test.arrays["x"], test.arrays["y"]
    features = representations.capture(experiment.result.state, x, ["features"])["features"]
    scores = representations.compare_representations(x, features, labels)
    names = test.info.class_names
    plots.plot_embedding(
        representations.pca(features),
        labels,
        ctx.output_dir / "waveform_states_pca.png",
        class_names=names,
        title="GRU final hidden states (PCA)",
    )
    plots.plot_embedding(
        representations.pca(x),
        labels,
        ctx.output_dir / "waveform_raw_pca.png",
        class_names=names,
        title="raw signals (PCA)",
    )
    accuracy = experiment.summary["eval"]["accuracy"]
    note = f"k-means, 4 clusters; classifier accuracy {accuracy:.3f}"
    return [
        Result(
            "sequence representations", "raw signal", "waveforms", "ARI", scores["raw"]["ari"], note
        ),
        Result(
            "sequence representations",
            "gru final state",
            "waveforms",
            "ARI",
            scores["learned"]["ari"],
        ),
        Result("sequence representations", "raw signal", "waveforms", "NMI", scores["raw"]["nmi"]),
        Result(
            "sequence representations",
            "gru final state",
            "waveforms",
            "NMI",
            scores["learned"]["nmi"],
        ),
    ]
