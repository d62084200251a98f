"""``adljax evaluate`` and ``adljax predict`` for GAN checkpoints (task ``generation``).

``evaluate`` scores the checkpoint's EMA generator on a split exactly as training did after
each epoch (same latents, same feature classifier). ``predict`` writes a sample grid (a
scatter for points) and a latent interpolation strip as PNGs.
"""

import argparse
from pathlib import Path
from typing import Any

import jax
import numpy as np

from adljax.cli import checkpoint_dataset, evaluation_summary, load_input_array, path_text
from adljax.gan import plots, sampling
from adljax.gan.evaluation import (
    CLASSIFIER_DIR,
    EVAL_SEED,
    image_evaluator,
    mixture_evaluator,
)
from adljax.gan.experiment import generation_data
from adljax.inference import load_checkpoint
from adljax.training.checkpoint import CheckpointManager

INTERPOLATION_STEPS = 10


def evaluate(args: argparse.Namespace) -> dict[str, Any]:
    """Quality of the checkpoint's generator against ``args.split`` of its dataset.

    Images: ``frechet_distance``, ``classes_covered``, ``class_entropy`` (features of the
    run's stored classifier); 2-D mixtures: ``modes`` and ``high_quality``.
    """
    state, meta = load_checkpoint(args.checkpoint_dir, args.step)
    dataset, data = checkpoint_dataset(args, meta)
    info = data.info
    if info.task == "classification":
        classifier, _ = load_checkpoint(Path(args.checkpoint_dir) / CLASSIFIER_DIR)
        images = generation_data(data).arrays["x"]
        metrics = image_evaluator(classifier, images, info.num_classes)(state)
    elif "centres" in info.extras:
        metrics = mixture_evaluator(np.asarray(info.extras["centres"]), info.extras["std"])(state)
    else:
        raise ValueError(
            f"dataset {dataset!r} has neither class labels nor mixture centres to measure "
            "a GAN's samples against"
        )
    return evaluation_summary(args, meta, dataset, len(data), metrics)


def _output_paths(args: argparse.Namespace, step: int) -> tuple[Path, Path]:
    """The sample grid's and the interpolation strip's paths; neither may exist yet."""
    grid = args.output or Path(args.checkpoint_dir) / f"samples_step{step}.png"
    if grid.suffix.lower() != ".png":
        raise ValueError(f"--output must end in .png, got {str(grid)!r}")
    strip = grid.with_name(f"{grid.stem}_interpolation.png")
    for path in (grid, strip):
        if path.exists():
            raise ValueError(f"{str(path)!r} exists; not overwriting it")
    return grid, strip


def _input_latents(path: Path, latent_dim: int) -> np.ndarray:
    z = load_input_array(path)
    if z.ndim != 2 or z.shape[1] != latent_dim or len(z) == 0 or not np.all(np.isfinite(z)):
        raise ValueError(
            f"--input must hold finite latents of shape (N, {latent_dim}), got {z.shape}"
        )
    return z.astype(np.float32)


def predict(args: argparse.Namespace) -> dict[str, Any]:
    """Writes ``args.limit`` samples (or those of the latents in ``--input``, an ``.npy`` of
    shape ``(N, latent_dim)``) and an interpolation between the first two latents.

    The grid goes to ``--output`` (default ``<checkpoint_dir>/samples_step<N>.png``), the
    strip next to it as ``<name>_interpolation.png``; existing files are never replaced.
    """
    if args.dataset is not None:
        raise ValueError("a GAN generates without inputs; pass --input latents or nothing")
    if args.limit < 2:
        raise ValueError(f"--limit must be at least 2 samples, got {args.limit}")
    with CheckpointManager(args.checkpoint_dir, create=False) as manager:
        step = manager.intact_step()
    grid, strip = _output_paths(args, step)
    state, meta = load_checkpoint(args.checkpoint_dir, step)
    latent_dim = state.model.latent_dim
    if args.input is not None:
        z = _input_latents(args.input, latent_dim)
    else:
        z = np.asarray(sampling.latents(jax.random.key(EVAL_SEED), args.limit, latent_dim))
    ends = z[:2] if len(z) >= 2 else np.asarray(sampling.latents(jax.random.key(1), 2, latent_dim))
    samples = sampling.generate(state, z)
    frames = sampling.generate(state, sampling.interpolate(ends[0], ends[1], INTERPOLATION_STEPS))
    centres = meta.get("dataset", {}).get("info", {}).get("extras", {}).get("centres")
    name = meta["model"]["name"]
    plots.plot_samples(samples, grid, centres=centres, title=f"{name}, step {step}")
    plots.plot_interpolation(frames, strip, centres=centres, title="latent interpolation")
    if not args.json:
        print(f"{name}: {len(samples)} samples -> {grid}")
        print(f"  interpolation ({INTERPOLATION_STEPS} steps) -> {strip}")
    return {
        "model": name,
        "count": len(samples),
        "samples": path_text(grid),
        "interpolation": path_text(strip),
        "output": path_text(grid),
    }
