"""ConvNet train steps: adljax vs a minimal hand-written Flax + Optax step vs PyTorch eager.

Two models, each timed in one process with every implementation interleaved
(``benchmarks.timing.time_interleaved``: alternating blocks, medians over clean rounds, paired
per-round ratios):

- ``cnn``: the Flax MNIST example CNN on 28x28x1, batch 128. adljax ``SimpleCNN(num_outputs=10)``;
  the hand-written ``FlaxCNN`` (``Conv 32 3x3 SAME -> relu -> avg pool 2 -> Conv 64 3x3 -> relu
  -> avg pool 2 -> Dense 256 -> relu -> Dense 10``); PyTorch eager in NCHW and channels-last.
- ``resnet18``: ResNet-18 with the CIFAR stem on 32x32x3, batch 64, batch norm in train mode.
  adljax ``create_model("resnet18", num_outputs=10, input_shape=(32, 32, 3), stem="cifar")``;
  the hand-written ``FlaxResNet`` (the structure of flax's ImageNet example with a CIFAR
  stem); a plain-torch ``TorchResNet`` of the same layout (torchvision is not needed).

A train step is forward + backward + Adam(1e-3), float32, softmax cross-entropy, on random data
cycled from ``NUM_BATCHES`` pre-made batches. JAX steps are jitted with donation (adljax's with
``adljax.jit``, which adds adljax's CPU compiler options; Flax's with ``jax.jit``)
and block until ready; PyTorch runs with ``torch.set_num_threads(2)``.

One lever is measured as an extra interleaved variant, ``adljax_xla_defaults``: the same
adljax step under plain ``jax.jit``, i.e. without ``adljax.training.compiler_options()``
(which send convolutions from YNNPACK to XLA's multi-threaded Eigen path). Its numerics are
checked against adljax's after one step from the same state.

FLOPs: XLA's ``cost_analysis()`` of the compiled adljax step; every row's
GFLOP/s divides that count by its own time (the same computation in every implementation), and
``% peak`` compares with the jitted float32 2048^3 matrix product of ``benchmarks.flops``.

Usage::

    python -m benchmarks.bench_convnets [--quick] [--out PATH] [--models cnn resnet18]
"""

import argparse
import dataclasses
import functools
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as `python benchmarks/bench_convnets.py`
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

import adljax
from benchmarks.flops import achieved, compiled_flops, matmul_peak
from benchmarks.implementations import (
    JaxRunner,
    TorchTrainLoop,
    flax_plain_step,
    torch_available,
)
from benchmarks.report import (
    benchmark_arguments,
    finish_machine_info,
    format_table,
    machine_info,
    report,
    rounds_text,
)
from benchmarks.timing import InterleavedResult, Runner, TimingConfig, time_interleaved

DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "convnets.json"
NUM_BATCHES = 4
LEARNING_RATE = 1e-3
FLOPS_SOURCE = "XLA cost_analysis() of the compiled adljax step (same computation in every row)"


# Timing of a full run (frozen, so sharing them as defaults is safe). A ResNet-18 step takes
# about 0.6-1.3 s here: 2 steps per block and 5 rounds keep its section to a few minutes.
CNN_TIMING = TimingConfig(rounds=9, block=10, warmup=5, max_rounds=14)
RESNET_TIMING = TimingConfig(rounds=5, block=2, warmup=1, max_rounds=7)
RESNET18_STAGES = (2, 2, 2, 2)


@dataclasses.dataclass(frozen=True)
class ConvSettings:
    """Sizes and durations of a run.

    Attributes:
      cnn_batch: batch size of the MNIST CNN (28x28x1 images).
      resnet_batch: batch size of ResNet-18 (32x32x3 images).
      resnet_width: channels of ResNet-18's stem and first stage (64 is the real network).
      resnet_stage_sizes: blocks per stage (``(2, 2, 2, 2)`` is the real network).
      cnn_timing, resnet_timing: interleaved timing of each model (``block`` = steps).
      peak_size, peak_repeats: the matrix product that measures the machine's peak.
      torch_threads: ``torch.set_num_threads``.
      models: which models to run, among ``MODELS``.
    """

    cnn_batch: int = 128
    resnet_batch: int = 64
    resnet_width: int = 64
    resnet_stage_sizes: tuple[int, ...] = RESNET18_STAGES
    cnn_timing: TimingConfig = CNN_TIMING
    resnet_timing: TimingConfig = RESNET_TIMING
    peak_size: int = 2048
    peak_repeats: int = 30
    torch_threads: int = 2
    models: tuple[str, ...] = ("cnn", "resnet18")


FULL = ConvSettings()
QUICK = dataclasses.replace(
    FULL,
    cnn_timing=TimingConfig(rounds=3, block=3, warmup=1, max_rounds=3),
    resnet_timing=TimingConfig(rounds=2, block=1, warmup=1, max_rounds=2),
    peak_repeats=5,
)


# ----- hand-written Flax baselines ------------------------------------------------------------


class FlaxCNN(nn.Module):
    """The Flax MNIST example's CNN, written out as a user would (``train`` is unused)."""

    num_classes: int = 10

    @nn.compact
    def __call__(self, x: jax.Array, train: bool) -> jax.Array:
        """Maps NHWC images to logits ``(batch, num_classes)``."""
        x = nn.Conv(32, (3, 3))(x)
        x = nn.avg_pool(nn.relu(x), (2, 2), strides=(2, 2))
        x = nn.Conv(64, (3, 3))(x)
        x = nn.avg_pool(nn.relu(x), (2, 2), strides=(2, 2))
        x = nn.relu(nn.Dense(256)(x.reshape(x.shape[0], -1)))
        return nn.Dense(self.num_classes)(x)


class FlaxResNetBlock(nn.Module):
    """The basic block of flax's ImageNet example (``'SAME'`` padding, 1x1 projection)."""

    filters: int
    conv: Callable[..., nn.Module]
    norm: Callable[..., nn.Module]
    strides: tuple[int, int] = (1, 1)

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        """``relu(norm(conv(relu(norm(conv(x))))) + shortcut(x))``."""
        residual = x
        y = nn.relu(self.norm()(self.conv(self.filters, (3, 3), self.strides)(x)))
        y = self.norm(scale_init=nn.initializers.zeros_init())(self.conv(self.filters, (3, 3))(y))
        if residual.shape != y.shape:
            residual = self.conv(self.filters, (1, 1), self.strides, name="conv_proj")(residual)
            residual = self.norm(name="norm_proj")(residual)
        return nn.relu(residual + y)


class FlaxResNet(nn.Module):
    """flax's ImageNet-example ResNet with a CIFAR stem (one 3x3 stride-1 conv, no max pool)."""

    stage_sizes: tuple[int, ...] = (2, 2, 2, 2)
    num_classes: int = 10
    width: int = 64

    @nn.compact
    def __call__(self, x: jax.Array, train: bool) -> jax.Array:
        """Maps NHWC images to logits; ``train`` uses and updates batch statistics."""
        conv = functools.partial(nn.Conv, use_bias=False)
        norm = functools.partial(
            nn.BatchNorm, use_running_average=not train, momentum=0.9, epsilon=1e-5
        )
        x = nn.relu(norm(name="bn_init")(conv(self.width, (3, 3), name="conv_init")(x)))
        for i, block_size in enumerate(self.stage_sizes):
            for j in range(block_size):
                strides = (2, 2) if i > 0 and j == 0 else (1, 1)
                x = FlaxResNetBlock(self.width * 2**i, conv, norm, strides)(x)
        x = jnp.mean(x, axis=(1, 2))
        return nn.Dense(self.num_classes)(x)


def flax_batch_norm_step(model: nn.Module, tx: optax.GradientTransformation) -> Callable:
    """``step(params, batch_stats, opt_state, x, y) -> (params, batch_stats, opt_state, loss)``."""

    def step(params, batch_stats, opt_state, x, y):
        def loss_fn(params):
            logits, updates = model.apply(
                {"params": params, "batch_stats": batch_stats},
                x,
                train=True,
                mutable=["batch_stats"],
            )
            loss = optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()
            return loss, updates["batch_stats"]

        (loss, batch_stats), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
        updates, opt_state = tx.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), batch_stats, opt_state, loss

    return step


# ----- plain-torch baselines ----------------------------------------------------------------


def torch_cnn(num_classes: int = 10, image_size: int = 28) -> Any:
    """The MNIST CNN in torch: ``padding=1`` convs (= ``'SAME'``), 2x2 average pools."""
    from torch import nn as tnn

    flat = 64 * (image_size // 4) ** 2
    return tnn.Sequential(
        tnn.Conv2d(1, 32, 3, padding=1),
        tnn.ReLU(),
        tnn.AvgPool2d(2),
        tnn.Conv2d(32, 64, 3, padding=1),
        tnn.ReLU(),
        tnn.AvgPool2d(2),
        tnn.Flatten(),
        tnn.Linear(flat, 256),
        tnn.ReLU(),
        tnn.Linear(256, num_classes),
    )


def torch_resnet(width: int = 64, num_classes: int = 10, stage_sizes=(2, 2, 2, 2)) -> Any:
    """torchvision's ResNet-18 layout (``BasicBlock``) with the CIFAR stem, in plain torch."""
    import torch
    from torch import nn as tnn

    class BasicBlock(tnn.Module):
        def __init__(self, in_planes: int, planes: int, stride: int):
            super().__init__()
            self.conv1 = tnn.Conv2d(in_planes, planes, 3, stride, 1, bias=False)
            self.bn1 = tnn.BatchNorm2d(planes)
            self.conv2 = tnn.Conv2d(planes, planes, 3, 1, 1, bias=False)
            self.bn2 = tnn.BatchNorm2d(planes)
            self.downsample = None
            if stride != 1 or in_planes != planes:
                self.downsample = tnn.Sequential(
                    tnn.Conv2d(in_planes, planes, 1, stride, bias=False), tnn.BatchNorm2d(planes)
                )

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            out = torch.relu(self.bn1(self.conv1(x)))
            out = self.bn2(self.conv2(out))
            shortcut = x if self.downsample is None else self.downsample(x)
            return torch.relu(out + shortcut)

    class ResNet(tnn.Module):
        def __init__(self):
            super().__init__()
            self.stem = tnn.Sequential(
                tnn.Conv2d(3, width, 3, 1, 1, bias=False), tnn.BatchNorm2d(width), tnn.ReLU()
            )
            blocks, in_planes = [], width
            for i, size in enumerate(stage_sizes):
                for j in range(size):
                    planes = width * 2**i
                    blocks.append(BasicBlock(in_planes, planes, 2 if i > 0 and j == 0 else 1))
                    in_planes = planes
            self.blocks = tnn.Sequential(*blocks)
            self.fc = tnn.Linear(in_planes, num_classes)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            x = self.blocks(self.stem(x))
            return self.fc(torch.flatten(torch.mean(x, dim=(2, 3)), 1))

    return ResNet()


class TorchStepRunner(TorchTrainLoop):
    """PyTorch eager train step of ``model`` (Adam, cross-entropy); ``n`` steps per call.

    ``x`` is NHWC (as for JAX) and is transposed to NCHW; with ``channels_last`` the model and
    the batches use ``torch.channels_last`` memory format.
    """

    def __init__(
        self,
        model: Any,
        x: np.ndarray,
        y: np.ndarray,
        *,
        channels_last: bool = False,
        threads: int = 2,
    ):
        import torch

        torch.set_num_threads(threads)
        fmt = torch.channels_last if channels_last else torch.contiguous_format
        self.torch = torch
        self.model = model.to(memory_format=fmt).train()
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=LEARNING_RATE)
        nchw = np.ascontiguousarray(x.transpose(0, 1, 4, 2, 3))
        self.batches = [
            (torch.from_numpy(nchw[i]).contiguous(memory_format=fmt), torch.from_numpy(y[i]).long())
            for i in range(len(x))
        ]
        self.position = 0


# ----- one model ----------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class ConvModel:
    """One benchmarked model: its three implementations and its data.

    Attributes:
      name, label: key in the results and human-readable description.
      image_shape: ``(height, width, channels)``.
      batch_size: examples per step.
      adljax_model: the adljax module.
      flax_model: the hand-written module (``__call__(x, train)``).
      batch_norm: whether ``flax_model`` has ``batch_stats``.
      torch_model: builds the torch module (called once per torch runner, seeded).
    """

    name: str
    label: str
    image_shape: tuple[int, int, int]
    batch_size: int
    adljax_model: nn.Module
    flax_model: nn.Module
    batch_norm: bool
    torch_model: Callable[[], Any]


def cnn_model(batch_size: int = 128) -> ConvModel:
    """The Flax MNIST example CNN on 28x28x1."""
    return ConvModel(
        name="cnn",
        label=f"Flax MNIST CNN 28x28x1 (batch {batch_size})",
        image_shape=(28, 28, 1),
        batch_size=batch_size,
        adljax_model=adljax.models.SimpleCNN(num_outputs=10),
        flax_model=FlaxCNN(num_classes=10),
        batch_norm=False,
        torch_model=lambda: torch_cnn(10, 28),
    )


def resnet18_model(
    batch_size: int = 64, width: int = 64, stage_sizes: tuple[int, ...] = RESNET18_STAGES
) -> ConvModel:
    """ResNet-18 with the CIFAR stem on 32x32x3.

    ``width=64`` and ``stage_sizes=(2, 2, 2, 2)`` are the real network (adljax's registered
    ``"resnet18"``); other values (smaller, for smoke tests) use adljax's ``"resnet"``.
    """
    changes = [f"width {width}"] if width != 64 else []
    if tuple(stage_sizes) != RESNET18_STAGES:
        changes.append(f"stages {tuple(stage_sizes)}")
    suffix = "".join(f", {change}" for change in changes)
    common = {"num_outputs": 10, "input_shape": (32, 32, 3), "stem": "cifar", "width": width}
    if tuple(stage_sizes) == RESNET18_STAGES:
        adljax_model = adljax.models.create_model("resnet18", **common)
    else:
        adljax_model = adljax.models.create_model("resnet", stage_sizes=stage_sizes, **common)
    return ConvModel(
        name="resnet18",
        label=f"ResNet-18 CIFAR stem 32x32x3 (batch {batch_size}{suffix})",
        image_shape=(32, 32, 3),
        batch_size=batch_size,
        adljax_model=adljax_model,
        flax_model=FlaxResNet(tuple(stage_sizes), num_classes=10, width=width),
        batch_norm=True,
        torch_model=lambda: torch_resnet(width, 10, tuple(stage_sizes)),
    )


def make_batches(model: ConvModel, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``NUM_BATCHES`` random NHWC float32 batches ``x`` and int32 labels ``y`` (10 classes)."""
    rng = np.random.default_rng(seed)
    shape = (NUM_BATCHES, model.batch_size)
    x = rng.standard_normal((*shape, *model.image_shape), dtype=np.float32)
    y = rng.integers(0, 10, shape, dtype=np.int32)
    return x, y


@dataclasses.dataclass
class CompiledStep:
    """A jitted step, its compile wall time and XLA's FLOP count."""

    jitted: Callable
    compile_s: float
    flops: float | None


def compile_step(
    step: Callable, donate: Sequence[int], args: tuple, jit: Callable = jax.jit
) -> CompiledStep:
    """Jits ``step`` with donation, times ``lower(*args).compile()`` and reads its FLOPs.

    The compiled executable stays in JAX's in-process cache, so the jitted function's first
    call (and ``compiled_flops``) reuse it instead of compiling again.
    """
    jitted = jit(step, donate_argnums=tuple(donate))
    start = time.perf_counter()
    jitted.lower(*args).compile()
    seconds = time.perf_counter() - start
    return CompiledStep(jitted, seconds, compiled_flops(jitted, *args))


def _max_abs_diff(a: Any, b: Any) -> float:
    """Largest absolute elementwise difference between two pytrees of the same structure.

    Computed in NumPy: eager JAX would compile one small function per leaf shape.
    """
    diffs = jax.tree.leaves(
        jax.tree.map(lambda u, v: float(np.max(np.abs(np.asarray(u) - np.asarray(v)))), a, b)
    )
    return max(diffs) if diffs else 0.0


def _max_abs(tree: Any) -> float:
    """Largest absolute value in a pytree (in NumPy)."""
    return max(float(np.max(np.abs(np.asarray(leaf)))) for leaf in jax.tree.leaves(tree))


def path_numerics(
    default: Callable, other: Callable, state: adljax.TrainState, batch: dict
) -> dict[str, float]:
    """One step of each path (``default``: adljax's; ``other``: the same step under XLA's
    default options) from copies of ``state``: loss, parameter and statistic diffs.

    ``state`` must be fresh (Adam's moments zero): the gradients are read back from Adam's
    first moment. Adam's first update is about ``lr * sign(grad)``, so a parameter whose
    gradient is near zero and changes sign between the paths differs by up to ``2 * lr``:
    ``grads_max_abs_diff`` is the finer check.
    """
    copy = functools.partial(jax.tree.map, jnp.copy)
    before = copy(state.params)
    new_default, metrics_default = default(copy(state), batch)
    new_other, metrics_other = other(copy(state), batch)
    loss_default, loss_other = float(metrics_default["loss"]), float(metrics_other["loss"])
    update = _max_abs_diff(new_default.params, before)
    result = {
        "loss_adljax": loss_default,
        "loss_xla_defaults": loss_other,
        "loss_abs_diff": abs(loss_default - loss_other),
        "params_max_abs_diff": _max_abs_diff(new_default.params, new_other.params),
        "params_max_abs": _max_abs(new_default.params),
        "update_max_abs": update,
    }
    # After one Adam step from zero moments, ``mu = (1 - b1) * grads`` with b1 = 0.9.
    grads_default = jax.tree.map(lambda m: m / 0.1, optax.tree.get(new_default.opt_state, "mu"))
    grads_other = jax.tree.map(lambda m: m / 0.1, optax.tree.get(new_other.opt_state, "mu"))
    result["grads_max_abs_diff"] = _max_abs_diff(grads_default, grads_other)
    result["grads_max_abs"] = _max_abs(grads_default)
    if jax.tree.leaves(new_default.model_state):
        result["model_state_max_abs_diff"] = _max_abs_diff(
            new_default.model_state, new_other.model_state
        )
    return result


def run_model(
    model: ConvModel,
    timing: TimingConfig,
    peak_gflops: float,
    torch_threads: int = 2,
    with_torch: bool = True,
) -> dict[str, Any]:
    """Times adljax (and its step under XLA's defaults), hand-written Flax and PyTorch.

    Returns:
      Every implementation's median ms/step, GFLOP/s, % of peak, compile seconds (JAX), the
      paired ratios, the numerics check of the two adljax paths and the raw timings.
    """
    x, y = make_batches(model)
    xs, ys = jax.device_put(x), jax.device_put(y)
    key = jax.random.key(0)

    tx = adljax.create_optimizer("adam", LEARNING_RATE)
    # Initialisation under jit: one compilation instead of one per initializer and shape
    # (eager init of ResNet-18 compiles hundreds of small functions).
    state = jax.jit(lambda x0, k: adljax.create_train_state(model.adljax_model, tx, x0, k))(
        xs[0][:1], key
    )
    adljax_batches = [({"x": xs[i], "y": ys[i]},) for i in range(NUM_BATCHES)]
    args = (state, *adljax_batches[0])
    step = adljax.make_train_step(adljax.tasks.Classification())
    steps = {
        "adljax": compile_step(step, [0], args, adljax.jit),
        "adljax_xla_defaults": compile_step(step, [0], args),
    }
    numerics = path_numerics(
        steps["adljax"].jitted, steps["adljax_xla_defaults"].jitted, state, args[1]
    )

    variables = jax.jit(functools.partial(model.flax_model.init, train=False))(key, xs[0][:1])
    params = variables["params"]
    opt_state = optax.adam(LEARNING_RATE).init(params)
    if model.batch_norm:
        flax_step = flax_batch_norm_step(model.flax_model, optax.adam(LEARNING_RATE))
        flax_carry: tuple = (params, variables["batch_stats"], opt_state)
    else:
        flax_step = flax_plain_step(model.flax_model, optax.adam(LEARNING_RATE))
        flax_carry = (params, opt_state)
    donate = range(len(flax_carry))  # everything but the batch
    flax_batches = [(xs[i], ys[i]) for i in range(NUM_BATCHES)]
    steps["flax"] = compile_step(flax_step, donate, (*flax_carry, *flax_batches[0]))

    copy = functools.partial(jax.tree.map, jnp.copy)
    runners: dict[str, Runner] = {
        "adljax": JaxRunner(steps["adljax"].jitted, (copy(state),), adljax_batches),
        "adljax_xla_defaults": JaxRunner(
            steps["adljax_xla_defaults"].jitted, (copy(state),), adljax_batches
        ),
        "flax": JaxRunner(steps["flax"].jitted, flax_carry, flax_batches),
    }
    notes = []
    if with_torch and torch_available():
        import torch

        for name, channels_last in (("torch", False), ("torch_channels_last", True)):
            torch.manual_seed(0)
            runners[name] = TorchStepRunner(
                model.torch_model(), x, y, channels_last=channels_last, threads=torch_threads
            )
    else:
        notes.append("PyTorch not run (not importable, JAX not on the CPU, or disabled)")

    result = time_interleaved(runners, timing)
    flops = steps["adljax"].flops
    implementations = {}
    for name in result.names:
        median_ms = result.median_ms(name)
        implementations[name] = {
            "median_ms": median_ms,
            **achieved(flops, median_ms, peak_gflops),
            "time_ratio_to_adljax": result.paired_ratio(name, "adljax"),
            "compile_s": steps[name].compile_s if name in steps else None,
            "xla_flops_own": steps[name].flops if name in steps else None,
        }
    return {
        "model": model.label,
        "batch_size": model.batch_size,
        "image_shape": list(model.image_shape),
        "flops": flops,
        "flops_source": FLOPS_SOURCE,
        "implementations": implementations,
        "ratios": _ratios(result),
        "path_numerics": numerics,
        "timing": result.to_json(),
        "notes": notes,
    }


def _ratios(result: InterleavedResult) -> dict[str, float]:
    """The paired (per-round) time ratios of interest, among those implementations timed."""
    pairs = [
        ("adljax", "flax"),
        ("torch", "adljax"),
        ("torch_channels_last", "adljax"),
        ("adljax_xla_defaults", "adljax"),
        ("adljax_xla_defaults", "flax"),
    ]
    names = set(result.names)
    return {f"{a}/{b}": result.paired_ratio(a, b) for a, b in pairs if {a, b} <= names}


# ----- the whole run ------------------------------------------------------------------------

MODELS: dict[str, Callable[[ConvSettings], tuple[ConvModel, TimingConfig]]] = {
    "cnn": lambda s: (cnn_model(s.cnn_batch), s.cnn_timing),
    "resnet18": lambda s: (
        resnet18_model(s.resnet_batch, s.resnet_width, s.resnet_stage_sizes),
        s.resnet_timing,
    ),
}


def run_convnets(
    settings: ConvSettings, *, quick: bool = False, with_torch: bool = True
) -> dict[str, Any]:
    """Measures the peak, then every model of ``settings.models``.

    Returns:
      ``{"machine", "quick", "settings", "peak", "models": {name: results}, "model_seconds"}``.
    """
    results: dict[str, Any] = {
        "machine": machine_info(),
        "quick": quick,
        "settings": dataclasses.asdict(settings),
        "adljax_compiler_options": adljax.training.compiler_options(),
        "models": {},
        "model_seconds": {},
    }
    print("[bench_convnets] peak ...", flush=True)
    results["peak"] = matmul_peak(settings.peak_size, settings.peak_repeats)
    for name in settings.models:
        model, timing = MODELS[name](settings)
        print(f"[bench_convnets] {name} ...", flush=True)
        start = time.perf_counter()
        results["models"][name] = run_model(
            model, timing, results["peak"]["gflops"], settings.torch_threads, with_torch
        )
        results["model_seconds"][name] = time.perf_counter() - start
    finish_machine_info(results)
    return results


def _number(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


HEADERS = ("model", "impl", "ms/step", "range", "÷ adljax", "GFLOP/s", "% peak", "compile s")


def summary(results: dict[str, Any]) -> str:
    """The table, the paired ratios and the two adljax paths' numerics, as printed at the end."""
    machine, peak = results["machine"], results["peak"]
    parts = [
        f"{machine['cpu_count']} CPUs ({machine['cpu_model']}), jax {machine['versions']['jax']}, "
        f"flax {machine['versions']['flax']}, torch {machine['versions']['torch']}; "
        f"{machine['date_utc']}; load average start {machine['load_average_start']}, "
        f"end {machine.get('load_average_end')}",
        f"Peak: jitted float32 {peak['size']}^3 matmul, median {1e3 * peak['median_s']:.2f} ms"
        f" = {peak['gflops']:.0f} GFLOP/s",
    ]
    rows = []
    for section in results["models"].values():
        spread = section["timing"]["spread"]
        for name, row in section["implementations"].items():
            rows.append(
                [
                    section["model"],
                    name,
                    _number(row["median_ms"], 1),
                    f"{100 * spread[name]:.0f}%",
                    _number(row["time_ratio_to_adljax"], 3),
                    _number(row["gflops"], 0),
                    _number(row["percent_of_peak"], 0),
                    _number(row["compile_s"], 2),
                ]
            )
    parts.append(format_table(HEADERS, rows))
    notes = [
        f"GFLOP/s: {FLOPS_SOURCE}; adljax = adljax.jit (compiler options "
        f"{results['adljax_compiler_options']}); adljax_xla_defaults = the same step under jax.jit"
    ]
    for section in results["models"].values():
        ratios = ", ".join(f"{name} = {value:.3f}" for name, value in section["ratios"].items())
        check = section["path_numerics"]
        notes.append(f"{section['model']}: paired ratios {ratios}")
        notes.append(f"  {rounds_text(section['timing'])}")
        state = check.get("model_state_max_abs_diff")
        notes.append(
            f"  adljax vs XLA defaults after one step: loss {check['loss_adljax']:.6f} vs "
            f"{check['loss_xla_defaults']:.6f} (|diff| {check['loss_abs_diff']:.1e}), "
            f"params max |diff| {check['params_max_abs_diff']:.1e} "
            f"(largest update {check['update_max_abs']:.1e}), "
            f"grads max |diff| {check['grads_max_abs_diff']:.1e} (largest grad "
            f"{check['grads_max_abs']:.1e})"
            + ("" if state is None else f", batch_stats max |diff| {state:.1e}")
        )
        notes.extend(f"  note: {note}" for note in section["notes"])
    parts.append("\n".join(notes))
    return "\n\n".join(parts)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The command line: ``--quick``, ``--out PATH``, ``--models cnn resnet18``."""
    return benchmark_arguments(__doc__, DEFAULT_OUT, argv, models=tuple(MODELS))


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the ConvNet benchmarks, prints the table and writes the JSON; returns 0."""
    args = parse_args(argv)
    settings = dataclasses.replace(QUICK if args.quick else FULL, models=tuple(args.models))
    results = run_convnets(settings, quick=args.quick)
    return report(results, "\n" + summary(results), args.out)


if __name__ == "__main__":
    sys.exit(main())
