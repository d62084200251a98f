"""Transfer learning: reuse a trained backbone, freeze layers, import torchvision ResNet weights.

Synopsis::

    python examples/transfer_learning.py      # 19-36 s on 2 busy CPU cores

Expected: the backbone transfers 12 of 14 arrays (all but the head); with 10 labels per
class (seed 0), fine-tuning the pretrained backbone scores 0.989 against 0.972 from scratch
(``main(seeds=(0, 1, 2))``: 0.989 / 0.927 / 0.916 against 0.972 / 0.927 / 0.905, mean 0.944
vs 0.935); the frozen first block stays bitwise unchanged (0.983); backbone at a tenth of the
head's rate 0.933; imported torchvision-layout weights give the stem PyTorch computes.

Source task: digits 0-4, every training example. Target task: digits 5-9 (relabelled 0-4)
with only 10 labelled examples per class, tested on every test digit 5-9. The model is a
``SimpleCNN`` with batch norm and dropout 0.5: ``(B, 8, 8, 1) -> conv_0/bn_0 (B, 4, 4, 32)
-> conv_1/bn_1 (B, 2, 2, 64) -> dense_0 (B, 256) -> head (B, 5)``.

1. Pretrain on the source task (with the digits augmentation) and save a checkpoint.
2. ``adljax.transfer.load_backbone(checkpoint_dir, state)`` copies every parameter and batch
   statistic whose path and shape match from the checkpoint into a fresh model, except
   ``params/head/*``, and returns a ``TransferReport`` of what was copied.
3. Fine-tune on the 50 labels; train the same architecture from scratch on them for
   comparison (a seed picks the 50 examples, the initialisation and the order; ``seeds``
   compares several).
4. Freeze the first conv block: ``freeze`` gives its parameters zero updates inside the
   optimizer (``optax.multi_transform``), and ``freeze_batch_stats`` wraps the train step so
   its batch-norm running statistics are put back after each step.
5. Discriminative learning rates: ``discriminative`` runs the backbone at a tenth of the
   head's learning rate.
6. Import PyTorch weights: a ResNet-18 state dict in torchvision's layout (here made with
   NumPy: width 8, CIFAR stem) saved as ``.safetensors`` and read by
   ``load_pretrained_resnet``, checked against the stem computed PyTorch's way in NumPy.
"""

import sys
import tempfile
import warnings
from pathlib import Path

import jax
import numpy as np
from safetensors.numpy import save_file

import adljax
from adljax import transfer
from adljax.models import torch_weights

SHOTS = 10  # labelled examples per new class
FROZEN = ["conv_0", "bn_0"]  # the first conv block: names of layers inside params/batch_stats
BACKBONE_FACTORS = {"conv_*": 0.1, "bn_*": 0.1, "dense_0": 0.1}  # times the head's rate


def relabelled(data: adljax.data.ArrayDataset, split: str) -> adljax.data.ArrayDataset:
    """Digits 5-9 of ``data`` as classes 0-4."""
    return adljax.data.from_arrays(
        data.arrays["x"],
        data.arrays["y"] - 5,
        task="classification",
        num_classes=5,
        name="digits 5-9",
        split=split,
    )


def fresh_state(seed: int, learning_rate: float = 1e-3) -> adljax.TrainState:
    """A new ``SimpleCNN`` for 5 classes (batch norm, dropout 0.5) with Adam."""
    model = adljax.models.SimpleCNN(
        num_outputs=5, batch_norm=True, dropout_rate=0.5, input_shape=(8, 8, 1)
    )
    tx = adljax.create_optimizer("adam", learning_rate)
    return adljax.create_train_state(model, tx, np.zeros((1, 8, 8, 1)), jax.random.key(seed))


def fine_tune(state, data, test, epochs: int, seed: int, train_step=None) -> tuple:
    """Trains on the few labels (batch 10) and returns the state and the test accuracy."""
    result = adljax.fit(
        state,
        data,
        task="classification",
        epochs=epochs,
        batch_size=10,
        seed=seed,
        train_step=train_step,
        progress=False,
    )
    return result.state, adljax.evaluate(result.state, test)["accuracy"]


def flat(tree) -> dict[str, np.ndarray]:
    """``{"conv_0/kernel": array, ...}``: a pytree's leaves by path."""
    return {
        jax.tree_util.keystr(path, simple=True, separator="/"): np.asarray(leaf)
        for path, leaf in jax.tree_util.tree_leaves_with_path(tree)
    }


def few_labels(directory: Path, pretrain_epochs: int, finetune_epochs: int, seeds) -> dict:
    """Steps 1 to 5 of the module docstring; returns the numbers."""
    train, test = adljax.data.load("digits", "train"), adljax.data.load("digits", "test")
    labels, test_labels = train.arrays["y"], test.arrays["y"]
    source = train.subset(np.flatnonzero(labels < 5))
    source_test = test.subset(np.flatnonzero(test_labels < 5))
    target_test = relabelled(test.subset(np.flatnonzero(test_labels >= 5)), "test")

    # 1. Pretrain on digits 0-4; keep one checkpoint, at the end.
    checkpoint_dir = directory / "digits_0_4"
    adljax.fit(
        fresh_state(0),
        source,
        task="classification",
        epochs=pretrain_epochs,
        batch_size=32,
        augment=adljax.data.augmentation_for(train.info),
        checkpoint_dir=checkpoint_dir,
        checkpoint_options=adljax.CheckpointOptions(every_epochs=pretrain_epochs, keep_last=1),
        progress=False,
    )
    source_accuracy = adljax.evaluate(checkpoint_dir, source_test)["accuracy"]
    print(f"pretrained on digits 0-4 ({len(source)} examples): test accuracy {source_accuracy:.4f}")

    # 2 and 3. For each seed: 10 labels per class of 5-9, scratch against pretrained.
    accuracy = {"scratch": [], "pretrained": []}
    for seed in seeds:
        rng = np.random.default_rng(seed)
        chosen = [
            rng.choice(np.flatnonzero(labels == c), SHOTS, replace=False) for c in range(5, 10)
        ]
        target = relabelled(train.subset(np.concatenate(chosen)), "train")
        scratch = fresh_state(seed + 1)
        pretrained, report = transfer.load_backbone(checkpoint_dir, scratch)
        if seed == seeds[0]:
            print(f"\nload_backbone into a fresh model for digits 5-9:\n{report}")
            first = {"target": target, "pretrained": pretrained, "report": report}
        for kind, state in (("scratch", scratch), ("pretrained", pretrained)):
            accuracy[kind].append(fine_tune(state, target, target_test, finetune_epochs, seed)[1])
    print(
        f"\n{len(target)} labels of digits 5-9, {finetune_epochs} epochs; "
        f"test on all {len(target_test)} test digits 5-9"
    )
    print(f"{'seed':>4s} {'scratch':>8s} {'pretrained':>10s}")
    for seed, a, b in zip(seeds, accuracy["scratch"], accuracy["pretrained"], strict=True):
        print(f"{seed:4d} {a:8.4f} {b:10.4f}")
    mean = {kind: float(np.mean(values)) for kind, values in accuracy.items()}
    print(f"{'mean':>4s} {mean['scratch']:8.4f} {mean['pretrained']:10.4f}")

    # 4. Freeze the first conv block: parameters in the optimizer, statistics in the step.
    target, pretrained, seed = first["target"], first["pretrained"], seeds[0]
    tx = transfer.freeze(adljax.create_optimizer("adam", 1e-3), pretrained.params, FROZEN)
    frozen_start = transfer.replace_optimizer(pretrained, tx)  # a fresh optimizer state
    step = transfer.freeze_batch_stats(
        adljax.make_train_step(adljax.tasks.get_task("classification")), FROZEN
    )
    frozen, frozen_accuracy = fine_tune(
        frozen_start, target, target_test, finetune_epochs, seed, train_step=step
    )
    before = flat({"params": pretrained.params, **pretrained.model_state})
    after = flat({"params": frozen.params, **frozen.model_state})
    unchanged = sorted(path for path in before if np.array_equal(before[path], after[path]))
    print(f"\nfrozen {FROZEN}: test accuracy {frozen_accuracy:.4f}; bitwise unchanged: {unchanged}")

    # 5. Discriminative learning rates: the backbone at 1e-4, the head at 1e-3.
    tx = transfer.discriminative(
        pretrained.params, BACKBONE_FACTORS, default=adljax.create_optimizer("adam", 1e-3)
    )
    _, discriminative_accuracy = fine_tune(
        transfer.replace_optimizer(pretrained, tx), target, target_test, finetune_epochs, seed
    )
    print(f"backbone at 0.1x the head's rate: test accuracy {discriminative_accuracy:.4f}")
    return {
        "source_accuracy": source_accuracy,
        "report": first["report"],
        "accuracy": accuracy,
        "mean": mean,
        "frozen_accuracy": frozen_accuracy,
        "frozen_unchanged": unchanged,
        "discriminative_accuracy": discriminative_accuracy,
    }


def torchvision_state_dict(width: int = 8, channels: int = 3, num_classes: int = 10) -> dict:
    """A ResNet-18 ``state_dict`` in torchvision's layout and names, made with NumPy.

    CIFAR stem (``conv1`` is 3x3, stride 1; no max pool), ``width`` channels in the first
    stage; He-normal convs and random batch-norm statistics, as trained weights would have.
    Conv weights are ``(out, in, kh, kw)`` (OIHW), ``fc.weight`` is ``(out, in)``.
    """
    rng = np.random.default_rng(0)
    state_dict = {}

    def conv(name: str, out: int, inp: int, kernel: int) -> None:
        scale = np.sqrt(2.0 / (out * kernel * kernel))
        state_dict[f"{name}.weight"] = rng.normal(0, scale, (out, inp, kernel, kernel))

    def batch_norm(name: str, size: int) -> None:
        state_dict[f"{name}.weight"] = rng.uniform(0.5, 1.5, size)
        state_dict[f"{name}.bias"] = rng.normal(0, 0.1, size)
        state_dict[f"{name}.running_mean"] = rng.normal(0, 0.1, size)
        state_dict[f"{name}.running_var"] = rng.uniform(0.5, 2.0, size)
        state_dict[f"{name}.num_batches_tracked"] = np.array(1000, np.int64)

    conv("conv1", width, channels, 3)
    batch_norm("bn1", width)
    inputs = width
    for i, blocks in enumerate((2, 2, 2, 2)):
        planes = width * 2**i
        for j in range(blocks):
            block = f"layer{i + 1}.{j}"
            conv(f"{block}.conv1", planes, inputs, 3)
            batch_norm(f"{block}.bn1", planes)
            conv(f"{block}.conv2", planes, planes, 3)
            batch_norm(f"{block}.bn2", planes)
            if i > 0 and j == 0:  # stride 2: a 1x1 strided conv on the shortcut
                conv(f"{block}.downsample.0", planes, inputs, 1)
                batch_norm(f"{block}.downsample.1", planes)
            inputs = planes
    state_dict["fc.weight"] = rng.normal(0, 0.1, (num_classes, inputs))
    state_dict["fc.bias"] = np.zeros(num_classes)
    return {
        key: value if value.dtype == np.int64 else value.astype(np.float32)
        for key, value in state_dict.items()
    }


def torch_stem(images_nchw: np.ndarray, state_dict: dict) -> np.ndarray:
    """``bn1(conv1(x))`` in eval mode as PyTorch computes it: NCHW, OIHW, padding 1."""
    weight = state_dict["conv1.weight"]  # (out, in, 3, 3)
    n, _, h, w = images_nchw.shape
    padded = np.pad(images_nchw, ((0, 0), (0, 0), (1, 1), (1, 1)))
    out = np.zeros((n, weight.shape[0], h, w))
    for dy in range(3):
        for dx in range(3):
            window = padded[:, :, dy : dy + h, dx : dx + w]
            out += np.einsum("nihw,oi->nohw", window, weight[:, :, dy, dx])

    def per_channel(name: str) -> np.ndarray:
        return state_dict[f"bn1.{name}"][None, :, None, None]

    normalised = (out - per_channel("running_mean")) / np.sqrt(per_channel("running_var") + 1e-5)
    return normalised * per_channel("weight") + per_channel("bias")


def torchvision_weights(directory: Path) -> dict:
    """Step 6: save a torchvision-layout state dict, import it, check it, predict."""
    state_dict = torchvision_state_dict()
    path = directory / "resnet18_cifar_width8.safetensors"
    save_file(state_dict, str(path))
    print(f"\nwrote {path.name}: {len(state_dict)} torch tensors, e.g.")
    for key in ("conv1.weight", "layer2.0.downsample.0.weight", "fc.weight"):
        print(f"  {key:30s} {state_dict[key].shape}")

    model = adljax.models.ResNet18(num_outputs=10, stem="cifar", width=8)
    variables = torch_weights.load_pretrained_resnet(path, model)  # NumPy, checked against model
    kernel = variables["params"]["stage1_block0"]["downsample_conv"]["kernel"]
    print(f"as adljax variables: stage1_block0/downsample_conv/kernel {kernel.shape} (HWIO)")
    same_layout = np.array_equal(
        kernel, state_dict["layer2.0.downsample.0.weight"].transpose(2, 3, 1, 0)
    )
    same_var = np.array_equal(
        variables["batch_stats"]["stem_bn"]["var"], state_dict["bn1.running_var"]
    )

    # Predict (eval mode: the imported running statistics normalise). NHWC images here.
    images = np.random.default_rng(1).uniform(size=(4, 32, 32, 3)).astype(np.float32)
    apply = jax.jit(lambda v, x: model.apply(v, x, train=False, capture_intermediates=True))
    logits, intermediates = apply(variables, images)
    stem = np.asarray(intermediates["intermediates"]["stem_bn"]["__call__"][0])  # (4, 32, 32, 8)
    reference = torch_stem(images.transpose(0, 3, 1, 2), state_dict).transpose(0, 2, 3, 1)
    stem_difference = float(np.max(np.abs(stem - reference)))
    print(
        f"logits {logits.shape}, predicted classes {np.asarray(logits.argmax(-1)).tolist()}; "
        f"stem vs PyTorch's computation in NumPy: max difference {stem_difference:.1e}"
    )

    # Another number of classes: the file's head does not fit, so it is left out.
    five = adljax.models.ResNet18(num_outputs=5, stem="cifar", width=8)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        backbone = torch_weights.load_pretrained_resnet(path, five)
    print(f"into a 5-class ResNet18: 'head' in params: {'head' in backbone['params']}")
    print(f"  UserWarning: {caught[0].message}" if caught else "  no warning")
    return {
        "path": path,
        "logits_shape": tuple(logits.shape),
        "same_layout": bool(same_layout),
        "same_running_var": bool(same_var),
        "stem_difference": stem_difference,
        "head_left_out": "head" not in backbone["params"],
    }


def main(
    output_dir: str | None = None,
    pretrain_epochs: int = 10,
    finetune_epochs: int = 30,
    seeds: tuple[int, ...] = (0,),
) -> dict:
    """Runs steps 1 to 6 in ``output_dir`` (default: a temporary one); returns the numbers.

    ``seeds`` are the few-label draws compared in step 3, e.g. ``(0, 1, 2)``; steps 4 and 5
    use the first.
    """
    if output_dir is None:
        with tempfile.TemporaryDirectory() as directory:
            return main(directory, pretrain_epochs, finetune_epochs, seeds)
    directory = Path(output_dir)
    out = few_labels(directory, pretrain_epochs, finetune_epochs, seeds)
    return {**out, "torchvision": torchvision_weights(directory)}


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else None)
