"""GANs: an MLP GAN on a ring of 8 Gaussians, a DCGAN on digits, and how to tell they work.

Synopsis::

    python examples/gan.py                # about 2 minutes on 2 CPU cores

Expected (150 and 60 epochs): the ring GAN covers all 8 modes with about 85% of its samples
within 3 standard deviations of a mode; the DCGAN's Fréchet distance falls from about 250
to about 5 (real held-out digits against as many training digits: 2.4) and its samples
cover all 10 classes almost evenly. Figures go to ``gan_figures/`` (never overwritten).

A GAN is two networks in one pytree: the generator maps Gaussian noise ``z`` to samples,
the discriminator (a critic, for WGAN) scores samples as real or fake. One compiled step
updates the discriminator ``n_critic`` times against fresh samples, then the generator
against the updated discriminator, each with its own Adam, and moves an exponential moving
average of the generator's weights, which is what we sample from. The loss curves of a GAN
say little (each player's loss depends on the other), so every epoch ends with measured
quality: for the ring, how many modes get samples and what fraction of samples is good; for
digits, the Fréchet distance between real and generated images in the feature space of a
classifier trained on the digits, and which classes that classifier sees in the samples.
"""

from pathlib import Path

import jax
import numpy as np

import adljax
from adljax import gan

FIGURES = Path("gan_figures")


def ring(epochs: int) -> dict:
    """The ring GAN built from the library's parts and trained with the engine's ``fit``."""
    train = adljax.data.load("ring8", "train")
    centres, std = np.asarray(train.info.extras["centres"]), train.info.extras["std"]
    model = adljax.models.GAN(input_shape=(2,))  # MLPs (128, 128), latent size 16
    # WGAN-GP: the critic's gradient norm is pulled to 1 along real-fake lines; 5 critic
    # updates per generator update; Adam with beta1 0.5, beta2 0.9 for both players.
    players = [gan.player_optimizer("adam", 1e-3, None, 0.5, 0.9) for _ in range(2)]
    state = gan.create_gan_state(
        model, gan.AdversarialOptimizer(*players), train.arrays["x"][:1], jax.random.key(0)
    )
    task = gan.Generation(loss="wgan_gp", gradient_penalty=1.0)
    result = adljax.fit(
        state,
        train,
        task=task,
        epochs=epochs,
        batch_size=256,
        train_step=gan.make_gan_train_step(task, n_critic=5),
        evaluate_fn=gan.mixture_evaluator(centres, std),
        progress=False,
    )
    samples = gan.sampling.sample(result.state, jax.random.key(0), 2500)
    figure = gan.plots.plot_samples(samples, FIGURES / f"ring8_{epochs}.png", centres=centres)
    history = [record["eval"] for record in result.history]
    print(f"ring8: {history[-1]['modes']:.0f} of 8 modes, "
          f"{history[-1]['high_quality']:.1%} high-quality samples -> {figure}")  # fmt: skip
    return {"modes": [h["modes"] for h in history], "hq": [h["high_quality"] for h in history]}


def digits(epochs: int) -> dict:
    """The DCGAN through the runner that ``adljax train dcgan`` uses."""
    experiment = gan.run_gan_experiment(
        "dcgan", "digits", epochs=epochs, learning_rate=5e-4, progress=False
    )
    history = [record["eval"] for record in experiment.result.history]
    distances = [h["frechet_distance"] for h in history]
    samples = gan.sampling.sample(experiment.result.state, jax.random.key(0), 64)
    figure = gan.plots.plot_samples(samples, FIGURES / f"digits_{epochs}.png")
    print(f"digits: Fréchet distance {distances[0]:.1f} -> {distances[-1]:.1f} "
          f"(real vs real {experiment.summary['real_frechet_distance']:.1f}), "
          f"{history[-1]['classes_covered']:.0f} of 10 classes -> {figure}")  # fmt: skip
    return {
        "fd": distances,
        "real_fd": experiment.summary["real_frechet_distance"],
        "classes": history[-1]["classes_covered"],
    }


def main(ring_epochs: int = 150, digits_epochs: int = 60) -> dict:
    return {"ring": ring(ring_epochs), "digits": digits(digits_epochs)}


if __name__ == "__main__":
    main()
