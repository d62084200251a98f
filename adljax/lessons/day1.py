"""Day 1: linear regression, neurons and activations, losses, dropout, batch norm,
checkpoints and ensembles, each trained through ``run_experiment``."""

import numpy as np

from adljax import plots
from adljax.experiment import run_experiment
from adljax.inference import evaluate, predict
from adljax.recipes import recipe_for
from adljax.tour import LessonContext, Result, lesson


@lesson("Day 1", "line of best fit: gradient descent reaches least squares")
def line_of_best_fit(ctx: LessonContext) -> list[Result]:
    recipe = recipe_for("linear", "housing_synthetic")
    experiment = run_experiment(
        "linear",
        "housing_synthetic",
        **recipe.arguments(epochs=ctx.epochs(recipe.epochs, 30)),
        progress=False,
        callbacks=ctx.callbacks,
    )
    x = experiment.train_data.arrays["x"].reshape(len(experiment.train_data), -1)
    y = experiment.train_data.arrays["y"]
    design = np.concatenate([x, np.ones((len(x), 1), np.float32)], axis=1)
    solution = np.linalg.lstsq(design, y, rcond=None)[0]
    params = experiment.result.state.params["dense"]
    learned = np.concatenate([np.asarray(params["kernel"]), np.asarray(params["bias"])[None]])
    gap = float(np.max(np.abs(learned - solution)))
    return [
        Result(
            "line of best fit",
            "linear (SGD)",
            "housing_synthetic",
            "eval r2",
            experiment.summary["eval"]["r2"],
        ),
        Result(
            "line of best fit",
            "linear (SGD)",
            "housing_synthetic",
            "max |w - w_lstsq|",
            gap,
            "vs NumPy least squares",
        ),
    ]


@lesson("Day 1", "XOR: a linear model cannot separate it, one hidden layer can")
def xor(ctx: LessonContext) -> list[Result]:
    rows = []
    for model in ("linear", "mlp"):
        recipe = recipe_for(model, "xor")
        experiment = run_experiment(
            model,
            "xor",
            **recipe.arguments(epochs=ctx.epochs(recipe.epochs, 200)),
            progress=False,
            callbacks=ctx.callbacks,
        )
        rows.append(Result("XOR", model, "xor", "accuracy", experiment.summary["eval"]["accuracy"]))
    warp = _xor_with_two_hidden_units(ctx)
    plots.plot_xor_warp(warp.result.state, ctx.output_dir / "xor_warp.png")
    return rows


def _xor_with_two_hidden_units(ctx: LessonContext):
    """An XOR MLP whose 2-unit hidden layer can be drawn; the first seed that fits it."""
    for seed in range(5):
        experiment = run_experiment(
            "mlp",
            "xor",
            epochs=ctx.epochs(300, 200),
            batch_size=16,
            learning_rate=0.05,
            seed=seed,
            model_config_overrides={"hidden_sizes": (2,), "activation": "tanh"},
            progress=False,
            callbacks=ctx.callbacks,
        )
        if experiment.summary["eval"]["accuracy"] == 1.0:
            break
    return experiment


@lesson("Day 1", "neurons and activations on two spirals")
def activations(ctx: LessonContext) -> list[Result]:
    rows = []
    recipe = recipe_for("mlp", "spirals")
    for activation in ("sigmoid", "tanh", "relu"):
        experiment = run_experiment(
            "mlp",
            "spirals",
            **recipe.arguments(
                epochs=ctx.epochs(recipe.epochs, 60),
                model_config_overrides={**recipe.model_config, "activation": activation},
            ),
            progress=False,
            callbacks=ctx.callbacks,
        )
        rows.append(
            Result(
                "activations",
                f"mlp ({activation})",
                "spirals",
                "eval accuracy",
                experiment.summary["eval"]["accuracy"],
            )
        )
    return rows


@lesson("Day 1", "regression on real diabetes data: a bigger model can fit worse")
def diabetes(ctx: LessonContext) -> list[Result]:
    rows = []
    for model, settings in (("linear", {}), ("mlp", {"hidden_sizes": (16,)})):
        experiment = run_experiment(
            model,
            "diabetes",
            epochs=ctx.epochs(100, 40),
            batch_size=32,
            learning_rate=1e-2 if model == "linear" else 1e-3,
            model_config_overrides=settings,
            progress=False,
            callbacks=ctx.callbacks,
        )
        summary = experiment.summary
        rows.append(
            Result(
                "regression",
                model,
                "diabetes",
                "eval r2",
                summary["eval"]["r2"],
                f"train r2 {summary['train']['r2']:.3f}",
            )
        )
    return rows


@lesson("Day 1", "dropout and batch normalisation on handwritten digits")
def regularisation(ctx: LessonContext) -> list[Result]:
    rows = []
    variants = (
        ("mlp", {}),
        ("mlp + dropout", {"dropout_rate": 0.3}),
        ("mlp + batch norm", {"batch_norm": True}),
    )
    for label, settings in variants:
        experiment = run_experiment(
            "mlp",
            "digits",
            epochs=ctx.epochs(30, 10),
            batch_size=64,
            learning_rate=1e-3,
            model_config_overrides={"hidden_sizes": (128, 128), **settings},
            progress=False,
            callbacks=ctx.callbacks,
        )
        rows.append(
            Result(
                "dropout / batch norm",
                label,
                "digits",
                "eval accuracy",
                experiment.summary["eval"]["accuracy"],
            )
        )
    return rows


@lesson("Day 1", "checkpoints: save, stop, continue training, predict from a checkpoint")
def checkpoints(ctx: LessonContext) -> list[Result]:
    directory = ctx.output_dir / "digits_mlp"
    total = ctx.epochs(20, 6)
    settings = {"hidden_sizes": (64,)}
    run_experiment(
        "mlp",
        "digits",
        epochs=total // 2,
        checkpoint_dir=directory,
        model_config_overrides=settings,
        progress=False,
        callbacks=ctx.callbacks,
    )
    resumed = run_experiment(
        "mlp",
        "digits",
        epochs=total,
        checkpoint_dir=directory,
        resume=True,
        model_config_overrides=settings,
        progress=False,
        callbacks=ctx.callbacks,
    )
    test = resumed.eval_data
    predictions = predict(directory, test.arrays["x"]).argmax(axis=-1)
    from_checkpoint = float(np.mean(predictions == test.arrays["y"]))
    return [
        Result(
            "checkpoints",
            "mlp (resumed)",
            "digits",
            "eval accuracy",
            resumed.summary["eval"]["accuracy"],
            f"{total // 2} + {total - total // 2} epochs",
        ),
        Result(
            "checkpoints",
            "mlp (from checkpoint)",
            "digits",
            "predict accuracy",
            from_checkpoint,
            "adljax.predict(checkpoint_dir, x)",
        ),
        Result(
            "checkpoints",
            "mlp (from checkpoint)",
            "digits",
            "evaluate accuracy",
            evaluate(directory, test)["accuracy"],
            "adljax.evaluate(checkpoint_dir, data)",
        ),
    ]


@lesson("Day 1", "ensembles: several seeds and learning rates in one compiled step")
def ensemble(ctx: LessonContext) -> list[Result]:
    rates = (3e-4, 1e-3, 3e-3, 1e-2)
    experiment = run_experiment(
        "mlp",
        "digits",
        epochs=ctx.epochs(20, 6),
        ensemble=len(rates),
        learning_rates=rates,
        model_config_overrides={"hidden_sizes": (64,)},
        progress=False,
        callbacks=ctx.callbacks,
    )
    summary = experiment.summary["eval"]
    return [
        Result(
            "ensemble",
            f"mlp x{len(rates)}",
            "digits",
            "mean eval accuracy",
            summary["accuracy"],
            f"spread (std) {summary['accuracy_std']:.4f}",
        )
    ]
