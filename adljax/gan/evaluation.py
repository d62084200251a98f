"""Per-epoch quality of a GAN: the ``evaluate_fn`` of ``fit`` and of ``adljax evaluate``.

Samples always come from the same latents (key ``EVAL_SEED``), so successive epochs, and a
later ``adljax evaluate`` of a checkpoint on the same split, score the same draws.

Images are scored in the feature space of an adljax classifier trained on the same images
and labels (`train_feature_classifier`). The runner stores it in the run's directory
(``<checkpoint_dir>/feature_classifier``, an ordinary adljax checkpoint) rather than
retraining it for each evaluation: every later ``evaluate`` measures with exactly the
features the training run reported, whatever machine or library version it runs on, and
without minutes of retraining for the larger datasets.
"""

import math
from collections.abc import Callable
from pathlib import Path

import jax
import numpy as np

from adljax import representations
from adljax.data import ArrayDataset
from adljax.gan import quality, sampling
from adljax.models import create_model
from adljax.training import create_optimizer, create_train_state, fit

EVAL_SEED = 0
MIXTURE_SAMPLES = 2500
CLASSIFIER_DIR = "feature_classifier"
CLASSIFIER_MODEL = "cnn"
CLASSIFIER_CONFIG = {"batch_norm": True}
CLASSIFIER_STEPS = 300  # about 14 epochs of digits, 1 of MNIST, at batch 64
CLASSIFIER_BATCH = 64
CLASSIFIER_LEARNING_RATE = 3e-3
FEATURE_LAYER = "features"  # SimpleCNN's 256 ReLU features before its head
LOGITS_LAYER = "head"

Evaluator = Callable[[object], dict[str, float]]


def mixture_evaluator(
    centres: np.ndarray, std: float, *, num_samples: int = MIXTURE_SAMPLES
) -> Evaluator:
    """``evaluate(state) -> {"modes", "high_quality"}`` of ``num_samples`` samples.

    ``centres`` ``(K, D)`` and ``std`` describe the mixture (``info.extras`` of ``ring8`` and
    ``grid25``); see ``quality.mode_coverage``.
    """
    centres = np.asarray(centres, np.float64)

    def evaluate(state) -> dict[str, float]:
        samples = sampling.sample(state, jax.random.key(EVAL_SEED), num_samples)
        return quality.mode_coverage(samples, centres, std)

    return evaluate


def classifier_epochs(num_examples: int) -> int:
    """Epochs giving the feature classifier about ``CLASSIFIER_STEPS`` steps of batch 64."""
    return max(1, math.ceil(CLASSIFIER_STEPS * CLASSIFIER_BATCH / num_examples))


def train_feature_classifier(
    train_data: ArrayDataset, *, seed: int, checkpoint_dir: str | Path | None = None
):
    """Trains the feature classifier (SimpleCNN with batch norm) on labelled images.

    ``train_data`` is a classification dataset of NHWC images; the run is saved to
    ``checkpoint_dir`` (a new directory) when given, loadable with
    ``adljax.load_checkpoint``. Returns the trained ``TrainState``.
    """
    info = train_data.info
    model = create_model(
        CLASSIFIER_MODEL,
        num_outputs=info.num_outputs,
        input_shape=info.input_shape,
        **CLASSIFIER_CONFIG,
    )
    tx = create_optimizer("adam", CLASSIFIER_LEARNING_RATE)
    state = create_train_state(model, tx, train_data.arrays["x"][:1], jax.random.key(seed))
    result = fit(
        state,
        train_data,
        task="classification",
        epochs=classifier_epochs(len(train_data)),
        batch_size=min(CLASSIFIER_BATCH, len(train_data)),
        seed=seed,
        checkpoint_dir=checkpoint_dir,
        progress=False,
        run_info={
            "model": {"name": CLASSIFIER_MODEL, "config": dict(CLASSIFIER_CONFIG)},
            "dataset": {"name": info.name, "info": info.to_dict()},
        },
    )
    return result.state


def classifier_outputs(classifier, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The classifier's features ``(N, 256)`` and predicted classes ``(N,)`` for images."""
    captured = representations.capture(classifier, images, [FEATURE_LAYER, LOGITS_LAYER])
    return captured[FEATURE_LAYER], captured[LOGITS_LAYER].argmax(axis=-1)


def image_evaluator(classifier, real_images: np.ndarray, num_classes: int) -> Evaluator:
    """``evaluate(state) -> {"frechet_distance", "classes_covered", "class_entropy"}``.

    Draws as many samples as ``real_images`` ``(N, H, W, C)`` (held-out images) and compares
    them in ``classifier``'s feature space; see ``quality``.
    """
    real_statistics = quality.feature_statistics(classifier_outputs(classifier, real_images)[0])

    def evaluate(state) -> dict[str, float]:
        samples = sampling.sample(state, jax.random.key(EVAL_SEED), len(real_images))
        features, classes = classifier_outputs(classifier, samples)
        distance = quality.frechet_distance(*quality.feature_statistics(features), *real_statistics)
        return {"frechet_distance": distance, **quality.class_coverage(classes, num_classes)}

    return evaluate


def real_frechet_distance(
    classifier, train_images: np.ndarray, held_out_images: np.ndarray, *, seed: int = EVAL_SEED
) -> float:
    """The Fréchet distance between real images: held-out vs as many training images.

    The scale a GAN's ``frechet_distance`` (with as many samples) can be read against.
    """
    count = min(len(train_images), len(held_out_images))
    rows = np.random.default_rng(seed).permutation(len(train_images))[:count]
    return quality.frechet_distance_of(
        classifier_outputs(classifier, train_images[rows])[0],
        classifier_outputs(classifier, held_out_images[:count])[0],
    )
