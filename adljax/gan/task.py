"""The GAN's two-player objective as an adljax task: ``generation``."""

import dataclasses
from typing import ClassVar

import jax.numpy as jnp

from adljax._validate import check_choice
from adljax.gan.losses import LOSSES, discriminator_losses, generator_losses
from adljax.tasks import register_task
from adljax.typing import Array, Batch, Metrics


@dataclasses.dataclass(frozen=True)
class Generation:
    """Unconditional generation: the discriminator's and the generator's losses.

    ``outputs`` are the discriminator's logits ``{"real": (B,), "fake": (B,)}`` on a real
    batch and on as many samples. ``loss`` (the metric and the returned scalar) is the
    discriminator's adversarial loss, without WGAN-GP's penalty, which the train step adds
    with weight ``gradient_penalty``. Metrics: ``loss``, ``real_score`` and ``fake_score``
    (mean logits; their difference is the critic's Wasserstein estimate for ``wgan_gp``).
    The generator minimises `generator_loss`.

    Attributes:
        loss: one of ``LOSSES``. Default ``"non_saturating"``.
        gradient_penalty: weight of WGAN-GP's gradient penalty (used by ``wgan_gp`` only).
            Default 10.0.
        monitor: the metric checkpoints keep the best of and early stopping watches, e.g.
            ``"frechet_distance"`` (images) or ``"high_quality"`` (2-D mixtures), which the
            runs' ``evaluate_fn`` adds. Default ``"loss"``.
        monitor_mode: ``"min"`` or ``"max"``. Default ``"min"``.
    """

    name: ClassVar[str] = "generation"
    loss: str = "non_saturating"
    gradient_penalty: float = 10.0
    monitor: str = "loss"
    monitor_mode: str = "min"

    def __post_init__(self) -> None:
        check_choice(self.loss, "loss", LOSSES)
        check_choice(self.monitor_mode, "monitor_mode", ("min", "max"))
        penalty = self.gradient_penalty
        if isinstance(penalty, bool) or not isinstance(penalty, int | float) or penalty < 0:
            raise ValueError(f"`gradient_penalty` must be a number >= 0, got {penalty!r}")

    def loss_and_statistics(self, outputs: dict[str, Array], batch: Batch) -> tuple[Array, Metrics]:
        real, fake = outputs["real"], outputs["fake"]
        mask = jnp.asarray(batch["mask"], jnp.float32) if "mask" in batch else jnp.ones_like(real)
        count = jnp.sum(mask)
        d_losses = discriminator_losses(self.loss, real, fake)
        statistics = {
            "count": count,
            "loss_sum": jnp.sum(d_losses * mask),
            "real_score_sum": jnp.sum(real * mask),
            "fake_score_sum": jnp.sum(fake * mask),
        }
        return statistics["loss_sum"] / jnp.maximum(count, 1.0), statistics

    def generator_loss(self, fake: Array) -> Array:
        """The generator's mean loss from the discriminator's logits on its samples ``(B,)``."""
        return jnp.mean(generator_losses(self.loss, fake))

    def metrics(self, statistics: Metrics) -> Metrics:
        count = jnp.maximum(statistics["count"], 1.0)
        return {
            name: statistics[f"{name}_sum"] / count for name in ("loss", "real_score", "fake_score")
        }


register_task(Generation())
