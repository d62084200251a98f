"""Day 2: convolutional networks, their representations, and transfer learning."""

import jax
import numpy as np

from adljax import plots, representations, transfer
from adljax.experiment import run_experiment
from adljax.recipes import recipe_for
from adljax.tour import LessonContext, Result, lesson


@lesson("Day 2", "ConvNets: a small CNN against the MLP on handwritten digits")
def convnet_vs_mlp(ctx: LessonContext) -> list[Result]:
    cnn_recipe, mlp_recipe = recipe_for("cnn", "digits"), recipe_for("mlp", "digits")
    epochs = ctx.epochs(cnn_recipe.epochs, 6)
    cnn = run_experiment(
        "cnn",
        "digits",
        **cnn_recipe.arguments(epochs=epochs),
        progress=False,
        callbacks=ctx.callbacks,
    )
    mlp = run_experiment(
        "mlp",
        "digits",
        **mlp_recipe.arguments(epochs=epochs),
        progress=False,
        callbacks=ctx.callbacks,
    )
    return [
        Result(
            "ConvNets",
            name,
            "digits",
            "eval accuracy",
            e.summary["eval"]["accuracy"],
            f"batch norm, {epochs} epochs, {_parameter_count(e)} parameters",
        )
        for name, e in (("cnn", cnn), ("mlp (128, 128)", mlp))
    ]


@lesson("Day 2", "representation learning: what a trained ConvNet's features cluster into")
def convnet_representations(ctx: LessonContext) -> list[Result]:
    recipe = recipe_for("cnn", "digits")
    experiment = run_experiment(
        "cnn",
        "digits",
        **recipe.arguments(epochs=ctx.epochs(recipe.epochs, 6)),
        progress=False,
        callbacks=ctx.callbacks,
    )
    state, test = experiment.result.state, experiment.eval_data
    images, labels = test.arrays["x"], test.arrays["y"]
    captured = representations.capture(state, images, ["stage_0", "stage_1", "features"])
    scores = representations.compare_representations(images, captured["features"], labels)

    views = ctx.output_dir
    plots.plot_filters(state.params["conv_0"]["kernel"], views / "filters.png")
    plots.plot_feature_maps(
        {name: captured[name][0] for name in ("stage_0", "stage_1")}, views / "feature_maps.png"
    )
    plots.plot_embedding(
        representations.pca(captured["features"]),
        labels,
        views / "embedding_pca.png",
        title="CNN features of the test digits (PCA)",
    )
    neighbours = representations.nearest_neighbours(captured["features"], 0, k=8)
    plots.plot_neighbours(images, 0, neighbours, views / "neighbours.png")

    note = "k-means on 359 test digits"
    return [
        Result("representations", "raw pixels", "digits", "ARI", scores["raw"]["ari"], note),
        Result("representations", "cnn features", "digits", "ARI", scores["learned"]["ari"]),
        Result("representations", "raw pixels", "digits", "NMI", scores["raw"]["nmi"]),
        Result("representations", "cnn features", "digits", "NMI", scores["learned"]["nmi"]),
        Result(
            "representations",
            "neighbours share the label",
            "digits",
            "fraction",
            float(np.mean(labels[neighbours] == labels[0])),
            "8 nearest of test digit 0",
        ),
    ]


def _parameter_count(experiment) -> int:
    return sum(int(np.size(p)) for p in jax.tree.leaves(experiment.result.state.params))


@lesson("Day 2", "transfer learning: pretrain on digits 0-4, fine-tune on 50 labels of 5-9")
def transfer_learning(ctx: LessonContext) -> list[Result]:
    outcome = transfer.few_label_transfer_lesson(quick=ctx.quick)
    note = "50 labelled examples of digits 5-9; test on all of their test digits"
    return [
        Result(
            "transfer",
            "cnn, pretrained backbone",
            "digits 5-9",
            "eval accuracy",
            outcome["pretrained"],
            note,
        ),
        Result("transfer", "cnn, from scratch", "digits 5-9", "eval accuracy", outcome["scratch"]),
    ]
