"""Day 1, the framework intro in JAX: Windsor house prices fitted by hand with ``jax.numpy``
and ``jax.grad``, then through adljax; a hand-built MLP against the library's Flax MLP; and
an Orbax checkpoint that stops and resumes hand-written training exactly."""

import functools
from collections.abc import Callable

import jax
import numpy as np

from adljax import from_scratch
from adljax.data import load
from adljax.experiment import run_experiment
from adljax.metrics import r2_score
from adljax.models import MLP
from adljax.recipes import recipe_for
from adljax.tour import LessonContext, Result, lesson

LESSON = "framework intro"
DATASET = "windsor_housing"
# Full-batch gradient descent on the 11 standardised features: the loss's curvature lies
# in [0.81, 4.67], so 0.3 is stable (below 2 / 4.67) and shrinks the error by 0.76 a step.
LEARNING_RATE = 0.3
HAND_STEPS = 100
MLP_SIZES = (11, 32, 1)


def _mlp_loss(params: list[from_scratch.DenseParams], x: jax.Array, y: jax.Array) -> jax.Array:
    return from_scratch.mean_squared_error(from_scratch.mlp_apply(params, x), y)


@functools.partial(jax.jit, static_argnums=0)
def _r2(apply_fn: Callable, params, x: jax.Array, y: jax.Array) -> jax.Array:
    """Test R^2 of ``apply_fn(params, x)``, compiled as one call (not one per array op)."""
    return r2_score(apply_fn(params, x), y)


def _max_gap(a, b) -> float:
    """The largest absolute difference between two pytrees of arrays of the same structure."""
    gaps = jax.tree.map(lambda u, v: np.max(np.abs(np.asarray(u) - np.asarray(v))), a, b)
    return float(max(jax.tree.leaves(gaps)))


def _coefficients(dense: from_scratch.DenseParams) -> np.ndarray:
    """``[w; b]`` of a one-output dense layer, shape ``(features + 1,)``."""
    return np.concatenate([np.asarray(dense["kernel"])[:, 0], np.asarray(dense["bias"])])


@lesson("Day 1", "the framework in JAX: house prices by hand, then through adljax")
def framework_intro(ctx: LessonContext) -> list[Result]:
    train, test = load(DATASET, "train"), load(DATASET, "test")
    x, y = train.arrays["x"], train.arrays["y"]  # (437, 11), (437, 1)

    hand = from_scratch.fit_linear_regression(x, y, learning_rate=LEARNING_RATE, steps=HAND_STEPS)
    design = np.concatenate([x, np.ones((len(x), 1))], axis=1).astype(np.float64)
    lstsq = np.linalg.lstsq(design, y.astype(np.float64), rcond=None)[0][:, 0]
    recipe = recipe_for("linear", DATASET)  # full-batch SGD, the hand loop's settings
    library = run_experiment(
        "linear", DATASET, **recipe.arguments(), progress=False, callbacks=ctx.callbacks
    )
    x_test, y_test = test.arrays["x"], test.arrays["y"]
    hand_r2 = float(_r2(from_scratch.dense_apply, hand, x_test, y_test))
    library_w = _coefficients(library.result.state.params["dense"])

    # The same parameters in the library's Flax MLP give the same outputs, bit for bit.
    params = from_scratch.mlp_init(jax.random.key(0), MLP_SIZES)
    flax_params = {"dense_0": params[0], "head": params[1]}
    flax_mlp = MLP(hidden_sizes=MLP_SIZES[1:-1], num_outputs=1)
    flax_out = jax.jit(flax_mlp.apply, static_argnames="train")(
        {"params": flax_params}, x_test, train=False
    )
    flax_gap = _max_gap(jax.jit(from_scratch.mlp_apply)(params, x_test), flax_out)

    # Train the hand MLP, stop halfway, checkpoint, restore, continue: same as no stop.
    epochs = ctx.epochs(20, 6)
    settings = {"learning_rate": 0.05, "batch_size": 32, "seed": 0}
    uninterrupted, _ = from_scratch.sgd_fit(_mlp_loss, params, x, y, epochs=epochs, **settings)
    half, _ = from_scratch.sgd_fit(_mlp_loss, params, x, y, epochs=epochs // 2, **settings)
    checkpoint = ctx.output_dir / f"mlp_epoch_{epochs // 2}"
    from_scratch.save_pytree(checkpoint, {"params": half, "epoch": epochs // 2})
    restored = from_scratch.restore_pytree(checkpoint, {"params": params, "epoch": 0})
    resumed, _ = from_scratch.sgd_fit(
        _mlp_loss,
        restored["params"],
        x,
        y,
        epochs=epochs,
        start_epoch=restored["epoch"],
        **settings,
    )
    resume_gap = _max_gap(resumed, uninterrupted)
    mlp_r2 = float(_r2(from_scratch.mlp_apply, resumed, x_test, y_test))

    hand_model = "linear by hand (jax.grad)"
    return [
        Result(LESSON, hand_model, DATASET, "eval r2", hand_r2, f"{HAND_STEPS} full-batch steps"),
        Result(
            LESSON,
            hand_model,
            DATASET,
            "max |w - w_lstsq|",
            float(np.max(np.abs(_coefficients(hand) - lstsq))),
            "vs NumPy least squares",
        ),
        Result(
            LESSON,
            "linear (adljax, SGD)",
            DATASET,
            "max |w - w_hand|",
            float(np.max(np.abs(library_w - _coefficients(hand)))),
            f"run_experiment, {recipe.epochs} full-batch epochs",
        ),
        Result(
            LESSON,
            "mlp by hand",
            DATASET,
            "max |y - y_flax|",
            flax_gap,
            "same parameters in adljax.models.MLP",
        ),
        Result(
            LESSON,
            "mlp by hand (SGD)",
            DATASET,
            "max |resumed - uninterrupted|",
            resume_gap,
            f"Orbax checkpoint after {epochs // 2} of {epochs} epochs",
        ),
        Result(LESSON, "mlp by hand (SGD)", DATASET, "eval r2", mlp_r2, f"{epochs} epochs"),
    ]
