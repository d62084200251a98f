"""GANs (Day 4): the adversarial task and train step, sampling, quality measures, runner.

Synopsis::

    from adljax import gan
    experiment = gan.run_gan_experiment("dcgan", "digits", epochs=60, learning_rate=5e-4)
    experiment.summary["eval"]        # frechet_distance, classes_covered, class_entropy

or by hand, with the engine's ``fit``::

    tx = gan.AdversarialOptimizer(create_optimizer("adam", 1e-3), create_optimizer("adam", 1e-3))
    state = gan.create_gan_state(model, tx, train.arrays["x"][:1], jax.random.key(0))
    task = gan.Generation(loss="hinge")
    result = fit(state, train, task=task, epochs=50, batch_size=256,
                 train_step=gan.make_gan_train_step(task, n_critic=2),
                 evaluate_fn=gan.mixture_evaluator(centres, std))
"""

from adljax.gan import plots as plots
from adljax.gan import quality as quality
from adljax.gan import sampling as sampling
from adljax.gan.evaluation import image_evaluator as image_evaluator
from adljax.gan.evaluation import mixture_evaluator as mixture_evaluator
from adljax.gan.evaluation import real_frechet_distance as real_frechet_distance
from adljax.gan.evaluation import train_feature_classifier as train_feature_classifier
from adljax.gan.experiment import GAN_OPTIONS as GAN_OPTIONS
from adljax.gan.experiment import player_optimizer as player_optimizer
from adljax.gan.experiment import run_gan_experiment as run_gan_experiment
from adljax.gan.losses import LOSSES as LOSSES
from adljax.gan.task import Generation as Generation
from adljax.gan.training import AdversarialOptimizer as AdversarialOptimizer
from adljax.gan.training import create_gan_state as create_gan_state
from adljax.gan.training import make_gan_train_step as make_gan_train_step
