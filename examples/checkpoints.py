"""Checkpoints: save while training, stop, continue exactly, predict from the directory alone.

Synopsis::

    python examples/checkpoints.py            # about 11 s on 2 CPU cores

Expected: resumed parameters bitwise equal to an uninterrupted run; test accuracy 0.916.

A digits ``MLP`` (``(B, 8, 8, 1) -> (B, 64) -> (B, 10)``) trains for half its epochs with
``checkpoint_dir`` set, which saves an Orbax checkpoint at the end of every epoch (keeping the
last two and the best by test loss). A second ``fit`` with ``resume=True``, given a freshly
initialised state as a new process would have, restores the latest checkpoint, including the
data position, and trains on to the full number of epochs: the parameters are bitwise those
of a run that never stopped. Each checkpoint's metadata records the model's registry name and
configuration, so ``adljax.predict`` and ``adljax.evaluate`` rebuild the model from the
directory alone.
"""

import tempfile
from pathlib import Path

import jax
import numpy as np

import adljax


def main(checkpoint_dir: str | None = None, epochs: int = 10) -> dict:
    """Trains, stops, resumes and predicts from ``checkpoint_dir`` (default: a temporary one)."""
    if checkpoint_dir is None:
        with tempfile.TemporaryDirectory() as directory:
            return main(directory, epochs)
    directory = Path(checkpoint_dir) / "digits_mlp"
    train, test = adljax.data.load("digits", "train"), adljax.data.load("digits", "test")
    model = adljax.models.MLP(hidden_sizes=(64,), num_outputs=10)

    def fresh_state() -> adljax.TrainState:
        tx = adljax.create_optimizer("adam", 1e-3)
        return adljax.create_train_state(model, tx, train.arrays["x"][:1], jax.random.key(0))

    def train_until(total_epochs: int, **checkpointing) -> adljax.FitResult:
        return adljax.fit(
            fresh_state(),
            train,
            task="classification",
            epochs=total_epochs,
            batch_size=64,
            eval_data=test,
            progress=False,
            **checkpointing,
        )

    first = train_until(epochs // 2, checkpoint_dir=directory)
    print(f"trained epochs 1-{first.history[-1]['epoch']}, then stopped")
    with adljax.checkpoint.CheckpointManager(directory, create=False) as manager:
        steps, best = manager.all_steps(), manager.best_step()
        position = manager.read_meta()["data_position"]
    print(
        f"  {directory.name}/ holds steps {steps} (best by eval/loss: {best}) and "
        f"{sorted(p.name for p in directory.iterdir() if not p.name.isdigit())}"
    )
    print(f"  the latest records its data position: {position}")

    try:
        train_until(epochs, checkpoint_dir=directory)
    except adljax.checkpoint.CheckpointError as error:
        print(f"  fit without resume=True refuses to overwrite it:\n    {error}")

    resumed = train_until(epochs, checkpoint_dir=directory, resume=True)
    resumed_epochs = [record["epoch"] for record in resumed.history]
    print(f"resumed: the history now has epochs {resumed_epochs}")
    uninterrupted = train_until(epochs)
    same = all(
        np.array_equal(a, b)
        for a, b in zip(
            jax.tree.leaves(resumed.state.params),
            jax.tree.leaves(uninterrupted.state.params),
            strict=True,
        )
    )
    print(f"  parameters bitwise equal to a run of {epochs} epochs that never stopped: {same}")

    # From here on only the directory is used: no model object, no train state.
    predictions = adljax.predict(directory, test.arrays["x"]).argmax(axis=-1)  # (359,)
    predict_accuracy = float(np.mean(predictions == test.arrays["y"]))
    evaluated = adljax.evaluate(directory, test)
    _, meta = adljax.load_checkpoint(directory)
    print(f"from the directory alone: rebuilt {meta['model']['name']} {meta['model']['config']}")
    shown = ", ".join(f"{name} {value:.4f}" for name, value in evaluated.items())
    print(f"  predict: test accuracy {predict_accuracy:.4f}; evaluate: {shown}")
    return {
        "steps_after_stop": steps,
        "resumed_epochs": resumed_epochs,
        "bitwise_equal": same,
        "predict_accuracy": predict_accuracy,
        "evaluate": evaluated,
        "fit_accuracy": resumed.history[-1]["eval"]["accuracy"],
    }


if __name__ == "__main__":
    main()
