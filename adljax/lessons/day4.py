"""Day 4: generative adversarial networks, with the numbers that say whether training worked,
and an application: a trained model exported, served over HTTP and measured."""

import sys

import jax
import numpy as np

from adljax import serving
from adljax.experiment import run_experiment
from adljax.gan import plots, sampling
from adljax.gan.evaluation import EVAL_SEED
from adljax.gan.experiment import run_gan_experiment
from adljax.recipes import recipe_for
from adljax.tour import LessonContext, Result, lesson


@lesson("Day 4", "GANs: an MLP WGAN-GP on a ring of 8 Gaussians, modes and sample quality")
def ring_gan(ctx: LessonContext) -> list[Result]:
    # The recipe, WGAN-GP (5 critic updates per generator update, penalty weight 1, Adam
    # 0.5/0.9), covers every mode; the non-saturating and hinge losses drop modes on this budget.
    recipe = recipe_for("gan", "ring8")
    epochs = ctx.epochs(recipe.epochs, 45)
    experiment = run_gan_experiment(
        "gan", "ring8", **recipe.arguments(epochs=epochs), progress=False, callbacks=ctx.callbacks
    )
    state, info = experiment.result.state, experiment.train_data.info
    samples = sampling.sample(state, jax.random.key(EVAL_SEED), 2500)
    path = plots.plot_samples(
        samples,
        ctx.output_dir / "ring8_samples.png",
        centres=info.extras["centres"],
        title=f"gan (wgan_gp), {epochs} epochs",
    )
    history = [record["eval"]["modes"] for record in experiment.result.history]
    first_full = next((i + 1 for i, modes in enumerate(history) if modes == 8), None)
    when = f"all 8 from epoch {first_full}" if first_full else "never all 8"
    note = f"2500 EMA samples, {epochs} epochs; {when}; {path.name}"
    eval_ = experiment.summary["eval"]
    return [
        Result("GANs", "gan (wgan_gp)", "ring8", "modes covered (of 8)", int(eval_["modes"]), note),
        Result("GANs", "gan (wgan_gp)", "ring8", "high-quality fraction", eval_["high_quality"]),
    ]


@lesson("Day 4", "GANs: a DCGAN on digits, Fréchet distance and class coverage")
def dcgan_digits(ctx: LessonContext) -> list[Result]:
    recipe = recipe_for("dcgan", "digits")
    epochs = ctx.epochs(recipe.epochs, 12)
    experiment = run_gan_experiment(
        "dcgan",
        "digits",
        **recipe.arguments(epochs=epochs),
        progress=False,
        callbacks=ctx.callbacks,
    )
    state = experiment.result.state
    samples = sampling.sample(state, jax.random.key(EVAL_SEED), 64)
    plots.plot_samples(samples, ctx.output_dir / "digits_samples.png", title="dcgan samples")
    z = sampling.latents(jax.random.key(EVAL_SEED), 2, state.model.latent_dim)
    plots.plot_interpolation(
        sampling.generate(state, sampling.interpolate(z[0], z[1], 10)),
        ctx.output_dir / "digits_interpolation.png",
    )
    distances = np.array([r["eval"]["frechet_distance"] for r in experiment.result.history])
    checkpoints = np.linspace(0, len(distances) - 1, 4).round().astype(int)
    trend = " -> ".join(f"{distances[i]:.1f}" for i in checkpoints)
    eval_, real = experiment.summary["eval"], experiment.summary["real_frechet_distance"]
    note = f"{epochs} epochs, 359 held-out digits vs 359 EMA samples; FD {trend}"
    return [
        Result("GANs", "dcgan", "digits", "Fréchet distance", eval_["frechet_distance"], note),
        Result("GANs", "real vs real", "digits", "Fréchet distance", real, "train vs held-out"),
        Result("GANs", "dcgan", "digits", "classes covered (of 10)", int(eval_["classes_covered"])),
        Result("GANs", "dcgan", "digits", "class entropy (1 = even)", eval_["class_entropy"]),
    ]


CONCURRENCY = (1, 8, 32)


@lesson("Day 4", "Build an application: export a digits CNN, serve it over HTTP, measure it")
def application(ctx: LessonContext) -> list[Result]:
    from adljax.serving.loadgen import measure_load
    from adljax.serving.programs import raw_inputs
    from adljax.serving.service import create_app, running

    checkpoint = ctx.output_dir / "digits_cnn"
    experiment = run_experiment(
        "cnn",
        "digits",
        epochs=ctx.epochs(15, 4),
        checkpoint_dir=checkpoint,
        progress=False,
        callbacks=ctx.callbacks,
    )
    path = serving.export(checkpoint, ctx.output_dir / "digits_cnn.export")
    test = experiment.eval_data.to_arrays().arrays
    images = raw_inputs(experiment.eval_data.info, None, test["x"])  # uint8, as a page sends
    classes, rows = [], []
    with running(create_app(serving.load(path), max_batch_size=64)) as url:
        for start in range(0, len(images), 64):
            body = {"inputs": images[start : start + 64].tolist()}
            answer = _post_json(f"{url}/classify", body)
            classes += [p["class_id"] for p in answer["predictions"]]
        last = answer["predictions"][-1]
        shown = f"class {last['class']} (p={last['probability']:.3f}), label {test['y'][-1]}"
        print(f"   POST /classify, the last test digit: {shown}", file=sys.stderr)
        bodies = [{"inputs": images[i : i + 1].tolist()} for i in range(64)]
        for level in CONCURRENCY:
            load = measure_load(
                url, "/classify", bodies, concurrency=level, requests=ctx.epochs(600, 150)
            )
            note = f"p50 {load.p50_ms:.1f} ms, p99 {load.p99_ms:.1f} ms, {load.errors} errors"
            metric = f"requests/s at concurrency {level}"
            rows.append(
                Result("Application", "cnn (served)", "digits", metric, load.requests_per_s, note)
            )
    print(f"   the page: adljax serve {path}, then open http://127.0.0.1:8000/", file=sys.stderr)
    accuracy = float(np.mean(np.asarray(classes) == test["y"]))
    direct = experiment.summary["eval"]["accuracy"]
    note = f"{len(images)} test digits over HTTP (in-process {direct:.4f}); {path.name}"
    return [Result("Application", "cnn (served)", "digits", "accuracy", accuracy, note), *rows]


def _post_json(url: str, body: dict) -> dict:
    """POSTs ``body`` as JSON and returns the JSON answer (the standard library's client)."""
    import json
    import urllib.request

    request = urllib.request.Request(
        url, json.dumps(body).encode(), {"content-type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=60) as answer:
        return json.loads(answer.read())
