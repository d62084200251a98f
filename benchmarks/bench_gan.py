"""The DCGAN step: adljax vs a hand-written Flax + Optax step vs PyTorch eager.

One step is one discriminator update then one generator update (non-saturating loss, Adam
2e-4 with betas 0.5/0.999 for each player), on 28x28x1 images, batch 64, float32:

- ``adljax``: ``make_gan_train_step`` on ``DCGAN(input_shape=(28, 28, 1))`` (latent 32,
  widths 64/128), whose convolutions default to matrix products on the CPU
  (``adljax.models.matmul_conv``); it also moves the generator's EMA.
- ``adljax_xla``: the same step with ``convolutions="xla"`` (Flax's ``Conv`` and
  ``ConvTranspose``): the lever, measured in the same run.
- ``flax``: a hand-written Flax DCGAN of the same layout with ``nn.Conv`` /
  ``nn.ConvTranspose`` and a plain two-update step, no EMA.
- ``torch``: the same networks in PyTorch eager (``ConvTranspose2d(k=4, s=2, p=1)``),
  ``torch.set_num_threads(2)``.

All four are timed in one process, interleaved (``benchmarks.timing.time_interleaved``:
alternating blocks, medians over clean rounds, paired per-round ratios).

Usage::

    python -m benchmarks.bench_gan [--quick] [--out PATH]
"""

import dataclasses
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as `python benchmarks/bench_gan.py`
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

import adljax
from adljax import gan
from adljax.models import DCGAN
from benchmarks.flops import achieved, compiled_flops, matmul_peak
from benchmarks.implementations import JaxRunner, torch_available
from benchmarks.report import (
    benchmark_arguments,
    finish_machine_info,
    format_table,
    machine_info,
    report,
)
from benchmarks.timing import TimingConfig, time_interleaved

DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "gan.json"
LEARNING_RATE = 2e-4
BETAS = (0.5, 0.999)
NUM_BATCHES = 4


@dataclasses.dataclass(frozen=True)
class GanSettings:
    """Image size, batch, widths and how long to time."""

    image_size: int = 28
    batch_size: int = 64
    latent_dim: int = 32
    features: int = 64
    timing: TimingConfig = dataclasses.field(
        default_factory=lambda: TimingConfig(rounds=5, block=5, warmup=3, max_rounds=8)
    )
    torch_threads: int = 2
    peak_size: int = 2048
    peak_repeats: int = 20


FULL = GanSettings()
QUICK = GanSettings(
    image_size=8,
    batch_size=8,
    latent_dim=4,
    features=4,
    timing=TimingConfig(rounds=1, block=1, warmup=1, max_rounds=1),
    peak_size=256,
    peak_repeats=3,
)


def _adam() -> optax.GradientTransformation:
    return optax.adam(LEARNING_RATE, b1=BETAS[0], b2=BETAS[1])


# ----- adljax --------------------------------------------------------------------------------


def adljax_runner(settings: GanSettings, batches: list[jax.Array], convolutions: str):
    size = settings.image_size
    model = DCGAN(
        input_shape=(size, size, 1),
        latent_dim=settings.latent_dim,
        features=settings.features,
        convolutions=convolutions,
    )
    tx = gan.AdversarialOptimizer(_adam(), _adam())
    state = gan.create_gan_state(model, tx, batches[0][:1], jax.random.key(0))
    step = adljax.jit(gan.make_gan_train_step(gan.Generation()), donate_argnums=0)
    return JaxRunner(step, (state,), [({"x": x},) for x in batches])


# ----- hand-written Flax ---------------------------------------------------------------------


class FlaxGenerator(nn.Module):
    """``z -> Dense -> BN -> ReLU -> ConvT(2f) ... -> ConvT(1) -> sigmoid`` (two stages)."""

    size: int
    features: int

    @nn.compact
    def __call__(self, z, train: bool = True):
        start = self.size // 4
        h = nn.Dense(start * start * 2 * self.features, use_bias=False)(z)
        h = nn.relu(nn.BatchNorm(use_running_average=not train, momentum=0.9)(h))
        h = h.reshape(z.shape[0], start, start, 2 * self.features)
        h = nn.ConvTranspose(self.features, (4, 4), (2, 2), padding="SAME", use_bias=False)(h)
        h = nn.relu(nn.BatchNorm(use_running_average=not train, momentum=0.9)(h))
        return nn.sigmoid(nn.ConvTranspose(1, (4, 4), (2, 2), padding="SAME")(h))


class FlaxDiscriminator(nn.Module):
    """``x -> Conv(f)/2 -> lrelu -> Conv(2f)/2 -> BN -> lrelu -> Dense(1)``."""

    features: int

    @nn.compact
    def __call__(self, x, train: bool = True):
        h = nn.leaky_relu(nn.Conv(self.features, (4, 4), (2, 2), padding="SAME")(x), 0.2)
        h = nn.Conv(2 * self.features, (4, 4), (2, 2), padding="SAME", use_bias=False)(h)
        h = nn.leaky_relu(nn.BatchNorm(use_running_average=not train, momentum=0.9)(h), 0.2)
        return nn.Dense(1)(h.reshape(h.shape[0], -1))[:, 0]


def flax_runner(settings: GanSettings, batches: list[jax.Array]) -> JaxRunner:
    generator = FlaxGenerator(settings.image_size, settings.features)
    discriminator = FlaxDiscriminator(settings.features)
    z0 = jnp.zeros((1, settings.latent_dim))
    g_vars = generator.init(jax.random.key(0), z0, train=False)
    d_vars = discriminator.init(jax.random.key(1), batches[0][:1], train=False)
    tx = _adam()
    carry = (g_vars, d_vars, tx.init(g_vars["params"]), tx.init(d_vars["params"]), jnp.int32(0))

    def step(g_vars, d_vars, g_opt, d_opt, count, real):
        key = jax.random.fold_in(jax.random.key(2), count)
        z_d, z_g = jax.random.normal(key, (2, real.shape[0], settings.latent_dim))
        fake, _ = generator.apply(g_vars, z_d, mutable=["batch_stats"])
        fake = jax.lax.stop_gradient(fake)

        def d_loss(params):
            variables = {**d_vars, "params": params}
            real_logits, s = discriminator.apply(variables, real, mutable=["batch_stats"])
            variables = {**variables, **s}
            fake_logits, s = discriminator.apply(variables, fake, mutable=["batch_stats"])
            loss = jnp.mean(jax.nn.softplus(-real_logits) + jax.nn.softplus(fake_logits))
            return loss, s

        grads, stats = jax.grad(d_loss, has_aux=True)(d_vars["params"])
        updates, d_opt = tx.update(grads, d_opt, d_vars["params"])
        d_vars = {"params": optax.apply_updates(d_vars["params"], updates), **stats}

        def g_loss(params):
            images, s = generator.apply({**g_vars, "params": params}, z_g, mutable=["batch_stats"])
            logits, _ = discriminator.apply(d_vars, images, mutable=["batch_stats"])
            return jnp.mean(jax.nn.softplus(-logits)), s

        grads, stats = jax.grad(g_loss, has_aux=True)(g_vars["params"])
        updates, g_opt = tx.update(grads, g_opt, g_vars["params"])
        g_vars = {"params": optax.apply_updates(g_vars["params"], updates), **stats}
        return g_vars, d_vars, g_opt, d_opt, count + 1, None

    return JaxRunner(jax.jit(step, donate_argnums=(0, 1, 2, 3)), carry, [(x,) for x in batches])


# ----- PyTorch -------------------------------------------------------------------------------


class TorchGanRunner:
    """The same DCGAN in PyTorch eager; ``n`` steps (one D, one G update each) per call."""

    def __init__(self, settings: GanSettings, batches: list[np.ndarray]):
        import torch
        from torch import nn as tnn

        torch.set_num_threads(settings.torch_threads)
        torch.manual_seed(0)
        f, start, latent = settings.features, settings.image_size // 4, settings.latent_dim
        self.torch, self.latent = torch, latent
        self.generator = tnn.Sequential(
            tnn.Linear(latent, start * start * 2 * f, bias=False),
            tnn.BatchNorm1d(start * start * 2 * f),
            tnn.ReLU(),
            tnn.Unflatten(1, (2 * f, start, start)),
            tnn.ConvTranspose2d(2 * f, f, 4, 2, 1, bias=False),
            tnn.BatchNorm2d(f),
            tnn.ReLU(),
            tnn.ConvTranspose2d(f, 1, 4, 2, 1),
            tnn.Sigmoid(),
        )
        self.discriminator = tnn.Sequential(
            tnn.Conv2d(1, f, 4, 2, 1),
            tnn.LeakyReLU(0.2),
            tnn.Conv2d(f, 2 * f, 4, 2, 1, bias=False),
            tnn.BatchNorm2d(2 * f),
            tnn.LeakyReLU(0.2),
            tnn.Flatten(),
            tnn.Linear(2 * f * start * start, 1),
        )
        adam = lambda m: torch.optim.Adam(m.parameters(), lr=LEARNING_RATE, betas=BETAS)  # noqa: E731
        self.g_opt, self.d_opt = adam(self.generator), adam(self.discriminator)
        self.batches = [torch.from_numpy(x.transpose(0, 3, 1, 2).copy()) for x in batches]
        self.position = 0

    def __call__(self, steps: int) -> None:
        softplus = self.torch.nn.functional.softplus
        for _ in range(steps):
            real = self.batches[self.position % len(self.batches)]
            z = self.torch.randn(2, real.shape[0], self.latent)
            with self.torch.no_grad():
                fake = self.generator(z[0])
            self.d_opt.zero_grad(set_to_none=True)
            d_loss = softplus(-self.discriminator(real)) + softplus(self.discriminator(fake))
            d_loss.mean().backward()
            self.d_opt.step()
            self.g_opt.zero_grad(set_to_none=True)
            softplus(-self.discriminator(self.generator(z[1]))).mean().backward()
            self.g_opt.step()
            self.position += 1


# ----- the run -------------------------------------------------------------------------------


def run_gan(settings: GanSettings, *, quick: bool = False, with_torch: bool = True) -> dict:
    """Times every implementation interleaved; returns the results dict (JSON-ready)."""
    results: dict[str, Any] = {
        "machine": machine_info(),
        "quick": quick,
        "settings": dataclasses.asdict(settings),
    }
    rng = np.random.default_rng(0)
    size = settings.image_size
    host = [
        rng.uniform(size=(settings.batch_size, size, size, 1)).astype(np.float32)
        for _ in range(NUM_BATCHES)
    ]
    device = [jax.device_put(x) for x in host]
    runners = {
        "adljax": adljax_runner(settings, device, "auto"),
        "adljax_matmul": adljax_runner(settings, device, "matmul"),
        "adljax_xla": adljax_runner(settings, device, "xla"),
        "flax": flax_runner(settings, device),
    }
    adljax_step = runners["adljax"]
    results["flops"] = compiled_flops(adljax_step.step, *adljax_step.carry, *adljax_step.batches[0])
    results["peak"] = matmul_peak(settings.peak_size, settings.peak_repeats)
    if with_torch and torch_available():
        runners["torch"] = TorchGanRunner(settings, host)
    timed = time_interleaved(runners, settings.timing)
    results["timing"] = timed.to_json()
    results["ratio_to_adljax"] = {
        name: timed.paired_ratio(name, "adljax") for name in runners if name != "adljax"
    }
    results["percent_of_peak"] = {
        name: achieved(results["flops"], timed.median_ms(name), results["peak"]["gflops"])[
            "percent_of_peak"
        ]
        for name in runners
    }
    finish_machine_info(results)
    return results


def summary(results: dict[str, Any]) -> str:
    """The table: ms/step, spread and the paired ratio of each implementation to adljax."""
    timing, ratios = results["timing"], results["ratio_to_adljax"]
    rows = [
        [
            name,
            f"{timing['median_ms'][name]:.2f}",
            f"{timing['spread'][name]:.2f}",
            "1.00" if name == "adljax" else f"{ratios[name]:.2f}",
            _percent(results["percent_of_peak"][name]),
        ]
        for name in timing["median_ms"]
    ]
    peak = results["peak"]["gflops"]
    return "\n".join(
        [
            format_table(("impl", "ms/step", "spread", "÷ adljax", "% peak"), rows),
            f"% peak: XLA cost_analysis() FLOPs of the adljax step ({results['flops'] or 0:.3g}, "
            f"the same computation in every row) / time, against the {peak:.0f} GFLOP/s "
            "float32 matrix-product peak",
        ]
    )


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}%"


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the DCGAN step benchmark, prints the table and writes the JSON; returns 0."""
    args = benchmark_arguments(__doc__, DEFAULT_OUT, argv)
    results = run_gan(QUICK if args.quick else FULL, quick=args.quick)
    return report(results, summary(results), args.out)


if __name__ == "__main__":
    sys.exit(main())
