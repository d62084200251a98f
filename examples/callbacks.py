"""Callbacks and metric logs: code that watches a run on the host without changing it.

Synopsis::

    python examples/callbacks.py [DIR]      # about 40 s on 2 CPU cores; DIR: callbacks_out/

Expected: the DCGAN on digits leaves a grid of its EMA generator's samples every 44 steps
(``DIR/gan_samples/step_000044.png`` ...); the digits MLP reports a custom metric, the test
set's macro-averaged F1 (scikit-learn), after every epoch and stops itself once it passes
0.95 (after 20 of at most 30 epochs); its history is also written as TensorBoard event
files and ``metrics.csv`` in ``DIR/logs/``; and the run with callbacks has bitwise the
parameters of the same run without them.

``fit`` calls a callback's hooks between its compiled calls: ``on_train_begin``, ``on_step``
every ``every_steps`` steps, ``on_epoch_end`` after the epoch's evaluation and
``on_train_end``. Each hook gets an `adljax.training.Event` (the state, the step, the
metrics, the history) and may return ``Stop(reason)`` to end training. Steps where no hook
is due run as they would without callbacks: a whole-epoch ``lax.scan`` is only split where
a step hook needs the state.
"""

import sys
from pathlib import Path

import jax
import numpy as np
from sklearn.metrics import f1_score

import adljax
from adljax import gan
from adljax.training import Callback, Event, Stop, metric_loggers


class SampleGrid(Callback):
    """Saves an 8x8 grid of the generator's samples every ``every_steps`` steps, always from
    the same latent vectors, so the grids show one set of digits taking shape."""

    def __init__(self, directory: Path, every_steps: int):
        self.directory, self.every_steps = directory, every_steps
        self.paths: list[Path] = []

    def on_step(self, event: Event) -> None:
        images = gan.sampling.sample(event.state, jax.random.key(0), 64)  # (64, 8, 8, 1)
        path = self.directory / f"step_{event.step:06d}.png"
        self.paths.append(gan.plots.plot_samples(images, path, title=f"step {event.step}"))


class MacroF1(Callback):
    """The test set's macro-averaged F1 after every epoch; stops at ``target``."""

    def __init__(self, test: adljax.data.ArrayDataset, target: float):
        self.test, self.target = test, target
        self.scores: list[float] = []

    def on_epoch_end(self, event: Event) -> Stop | None:
        logits = adljax.predict(event.state, self.test.arrays["x"])  # (N, 10)
        score = f1_score(self.test.arrays["y"], np.argmax(logits, -1), average="macro")
        self.scores.append(float(score))
        print(f"  epoch {event.epoch}: test macro-F1 {score:.4f}")
        if score >= self.target:
            return Stop(f"test macro-F1 {score:.4f} reached {self.target}")
        return None


def gan_samples(directory: Path, epochs: int, every_steps: int) -> list[Path]:
    """A DCGAN on digits (22 steps per epoch) with a `SampleGrid` callback."""
    grids = SampleGrid(directory / "gan_samples", every_steps)
    experiment = gan.run_gan_experiment(
        "dcgan", "digits", epochs=epochs, learning_rate=5e-4, progress=False, callbacks=[grids]
    )
    fd = experiment.result.history[-1]["eval"]["frechet_distance"]
    print(f"DCGAN, {epochs} epochs (Fréchet distance {fd:.1f}): {len(grids.paths)} grids")
    for path in grids.paths:
        print(f"  {path}")
    return grids.paths


def custom_metric(directory: Path, epochs: int, target: float) -> dict:
    """A digits MLP trained until a `MacroF1` callback stops it, logged for TensorBoard."""
    train, test = adljax.data.load("digits", "train"), adljax.data.load("digits", "test")
    model = adljax.models.MLP(hidden_sizes=(64,), num_outputs=10)
    state = adljax.create_train_state(
        model, adljax.create_optimizer("adam", 1e-3), train.arrays["x"][:1], jax.random.key(0)
    )
    settings = dict(task="classification", batch_size=64, eval_data=test, progress=False)
    f1 = MacroF1(test, target)
    logs = directory / "logs"
    result = adljax.fit(
        state, train, epochs=epochs, callbacks=[f1, *metric_loggers(logs)], **settings
    )
    print(f"stopped after {len(result.history)} of {epochs} epochs: {result.stop_reason}")
    print(f"  TensorBoard: tensorboard --logdir {logs}; CSV: {logs / 'metrics.csv'}")
    # Callbacks observe: the same number of epochs without them trains to the same bits.
    plain = adljax.fit(state, train, epochs=len(result.history), **settings)
    same = all(
        np.array_equal(a, b)
        for a, b in zip(
            jax.tree.leaves(result.state.params), jax.tree.leaves(plain.state.params), strict=True
        )
    )
    print(f"  parameters equal to the same run without callbacks: {same}")
    return {
        "scores": f1.scores,
        "epochs_run": len(result.history),
        "stop_reason": result.stop_reason,
        "same_as_without_callbacks": same,
        "log_files": sorted(path.name for path in logs.iterdir()),
    }


def main(
    directory: str = "callbacks_out",
    gan_epochs: int = 6,
    every_steps: int = 44,
    epochs: int = 30,
    target: float = 0.95,
) -> dict:
    directory = Path(directory)
    return {
        "grids": gan_samples(directory, gan_epochs, every_steps),
        "metric": custom_metric(directory, epochs, target),
    }


if __name__ == "__main__":
    main(*sys.argv[1:2])
