"""PyTorch (torchvision-layout) ResNet weights as adljax ``ResNet`` variables.

Synopsis::

    model = ResNet18(num_outputs=10, stem="imagenet")
    pretrained = load_pretrained_resnet("resnet18.safetensors", model)  # 1000-class head
    fresh = model.init(jax.random.key(0), jnp.zeros((1, 224, 224, 3)), train=False)
    variables, report = adljax.transfer.transfer_parameters(pretrained, fresh)

Conventions (PyTorch -> adljax):

* Names: ``conv1``/``bn1`` -> ``stem_conv``/``stem_bn``; ``layer{i+1}.{j}.conv{k+1}`` and
  ``.bn{k+1}`` -> ``stage{i}_block{j}/conv{k}`` and ``bn{k}``; ``.downsample.0``/``.1`` ->
  ``downsample_conv``/``downsample_bn``; ``fc`` -> ``head``.
* Layouts: a ``Conv2d`` weight ``(out, in, kh, kw)`` (OIHW) becomes a kernel ``(kh, kw, in,
  out)`` (HWIO); a ``Linear`` weight ``(out, in)`` becomes a kernel ``(in, out)``. Images are
  NCHW in PyTorch and NHWC here: ``x_nhwc = x_nchw.transpose(0, 2, 3, 1)``.
* Batch norm: ``weight`` -> ``params/.../scale``, ``bias`` -> ``params/.../bias``,
  ``running_mean`` -> ``batch_stats/.../mean``, ``running_var`` -> ``batch_stats/.../var``;
  ``num_batches_tracked`` is dropped. PyTorch's momentum 0.1 is Flax's 0.9; epsilon is 1e-5 in
  both. Flax updates the running variance with the biased batch variance, PyTorch with the
  unbiased one, so only further training lets the two drift apart (see ``ResNet``).
* Padding: adljax's convs and max pool use PyTorch's explicit padding, so eval-mode logits
  agree with torchvision's (to about 1e-5) for any input size.

Arrays are returned as float32 NumPy arrays; ``load_torch_state_dict`` reads ``.safetensors``
files with NumPy alone and ``.pth``/``.pt`` files only when torch is installed.
"""

import os
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from adljax._validate import check_choice, check_positive_int
from adljax.models.resnet import BLOCKS, ResNet

_SUFFIXES = (".safetensors", ".pth", ".pt")
_BOTTLENECK_EXPANSION = 4
_SHOWN = 20  # problems listed in one error message

# torch key -> (kind: "conv" | "linear" | "copy", adljax path, expected torch shape or None
# when it cannot be known)
_Layout = dict[str, tuple[str, tuple[str, ...], tuple[int, ...] | None]]


def torchvision_resnet_to_flax(
    state_dict: Mapping[str, Any],
    *,
    block: str = "basic",
    stage_sizes: Sequence[int],
) -> dict[str, dict]:
    """Converts a torchvision ResNet ``state_dict`` to ``{"params", "batch_stats"}``.

    The width, the stem's kernel size, the input channels and the number of classes are read
    from the ``conv1`` and ``fc`` weights; every other shape must follow from them.

    Args:
      state_dict: torch key -> array (NumPy arrays, or CPU tensors), as ``model.state_dict()``.
      block: ``"basic"`` (ResNet-18/34) or ``"bottleneck"`` (ResNet-50 and up).
      stage_sizes: blocks per stage, e.g. ``(2, 2, 2, 2)``.

    Returns:
      Nested dicts of float32 NumPy arrays in the layout of ``adljax.models.ResNet``.

    Raises:
      ValueError: listing every missing key, unexpected key and shape mismatch (the key,
        the expected and the actual torch shape).
    """
    check_choice(block, "block", BLOCKS)
    stage_sizes = tuple(
        check_positive_int(s, f"stage_sizes[{i}]") for i, s in enumerate(stage_sizes)
    )
    if not stage_sizes:
        raise ValueError("`stage_sizes` must name at least one stage, got ()")
    arrays = {key: np.asarray(value) for key, value in state_dict.items()}
    stem = arrays.get("conv1.weight")
    if stem is None or stem.ndim != 4:
        found = "missing" if stem is None else f"of shape {stem.shape}"
        prefixed = [k for k in arrays if k.endswith("conv1.weight") and not k.startswith("layer")]
        if stem is None and prefixed:
            found += f" but {prefixed[0]!r} is there: remove the prefix from every key"
        raise ValueError(
            f"`state_dict` must hold the stem conv 'conv1.weight' (out, in, kh, kw), from which "
            f"the width is read; it is {found}"
        )
    fc = arrays.get("fc.weight")
    num_classes = fc.shape[0] if fc is not None and fc.ndim == 2 else None
    layout = _layout(block, stage_sizes, stem.shape, num_classes)

    batch_norms = {
        key.removesuffix(".running_mean") for key in layout if key.endswith(".running_mean")
    }
    problems = [f"missing key {key!r}" for key in layout if key not in arrays]
    problems += [
        f"unexpected key {key!r}"
        for key in arrays
        if key not in layout
        and not (key.endswith(".num_batches_tracked") and key.rsplit(".", 1)[0] in batch_norms)
    ]
    problems += [
        f"shape of {key!r}: expected {shape}, got {arrays[key].shape}"
        for key, (_, _, shape) in layout.items()
        if key in arrays and shape is not None and arrays[key].shape != shape
    ]
    if problems:
        shown = "\n  ".join(problems[:_SHOWN])
        more = f"\n  ... and {len(problems) - _SHOWN} more" if len(problems) > _SHOWN else ""
        raise ValueError(
            f"`state_dict` does not match a torchvision ResNet with block={block!r}, "
            f"stage_sizes={stage_sizes}:\n  {shown}{more}"
        )

    variables: dict[str, dict] = {"params": {}, "batch_stats": {}}
    for key, (kind, path, _) in layout.items():
        value = arrays[key].astype(np.float32)
        if kind == "conv":
            collection, value = "params", value.transpose(2, 3, 1, 0)
        elif kind == "linear":
            collection, value = "params", value.T
        else:
            collection = "batch_stats" if path[-1] in ("mean", "var") else "params"
        node = variables[collection]
        for name in path[:-1]:
            node = node.setdefault(name, {})
        node[path[-1]] = np.ascontiguousarray(value)
    return variables


def load_torch_state_dict(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Reads a PyTorch ``state_dict`` file as ``{key: NumPy array}``.

    ``.safetensors`` files are read with ``safetensors.numpy`` (no torch needed); ``.pth`` and
    ``.pt`` files with ``torch.load(path, map_location="cpu", weights_only=True)``, which
    never runs code from the file. bfloat16 tensors come back as float32.

    Raises:
      ValueError: an unknown suffix, or a pickle that is not a state dict.
      FileNotFoundError: ``path`` does not exist.
      ImportError: a ``.pth``/``.pt`` file without torch installed.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in _SUFFIXES:
        raise ValueError(f"`path` must end in one of {', '.join(_SUFFIXES)}, got {str(path)!r}")
    if not path.is_file():
        raise FileNotFoundError(f"no weights file at {str(path)!r}")
    if suffix == ".safetensors":
        from safetensors.numpy import load_file

        return dict(load_file(str(path)))
    try:
        import torch
    except ImportError as error:
        raise ImportError(
            f"reading {str(path)!r} needs PyTorch: install torch, or convert the file once "
            f"with safetensors.torch.save_file(torch.load(path), 'weights.safetensors') and "
            f"load that"
        ) from error
    loaded = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(loaded, Mapping) or not all(
        isinstance(value, torch.Tensor) for value in loaded.values()
    ):
        keys = list(loaded)[:5] if isinstance(loaded, Mapping) else []
        raise ValueError(
            f"{str(path)!r} does not hold a state_dict (a mapping of names to tensors); "
            f"got a {type(loaded).__name__}"
            + (f" with keys {keys}: pass its state dict entry instead" if keys else "")
        )
    return {
        key: (value.float() if value.dtype == torch.bfloat16 else value).detach().numpy()
        for key, value in loaded.items()
    }


def load_pretrained_resnet(
    path: str | os.PathLike, model: ResNet, *, include_head: bool | None = None
) -> dict[str, dict]:
    """Reads torchvision ResNet weights for ``model`` and checks that they fit it.

    Args:
      path: a ``.safetensors``, ``.pth`` or ``.pt`` state dict file.
      model: the adljax ``ResNet`` (its ``stage_sizes``, ``block``, ``width``, ``stem`` and
        input channels must match the file).
      include_head: ``True`` requires the file's head to fit ``model.num_outputs``;
        ``False`` leaves the head out; ``None`` (default) includes it when it fits and
        otherwise leaves it out with a ``UserWarning``.

    Returns:
      ``{"params", "batch_stats"}`` of float32 NumPy arrays; without ``params/head`` when
      the head is left out (fill it from ``model.init`` with ``transfer_parameters``).

    Raises:
      ValueError: the file does not fit the model (every differing array is named).
    """
    if not isinstance(model, ResNet):
        raise ValueError(f"`model` must be an adljax ResNet, got {type(model).__name__}")
    state_dict = load_torch_state_dict(path)
    variables = torchvision_resnet_to_flax(
        state_dict, block=model.block, stage_sizes=model.stage_sizes
    )
    expected = _model_shapes(model, variables)
    found = _shapes(variables)
    head_fits = all(found[p] == expected.get(p) for p in found if p.startswith("params/head/"))
    problems = [
        f"{p}: model {expected[p]}, file {found.get(p, 'missing')}"
        for p in expected
        if not p.startswith("params/head/") and found.get(p) != expected[p]
    ]
    if include_head and not head_fits:
        problems.append(
            f"params/head/kernel: model {expected['params/head/kernel']}, "
            f"file {found['params/head/kernel']} (pass include_head=False to keep a fresh head)"
        )
    if problems:
        raise ValueError(
            f"the weights in {str(path)!r} do not fit {_describe(model)}:\n  "
            + "\n  ".join(problems)
        )
    if include_head is None and not head_fits:
        warnings.warn(
            f"the head in {str(path)!r} has {found['params/head/bias'][0]} outputs and the "
            f"model {model.num_outputs}: returning the variables without params/head; take the "
            f"model's fresh head with transfer_parameters(pretrained, model.init(...))",
            UserWarning,
            stacklevel=2,
        )
    if include_head is False or not head_fits:
        variables["params"] = {k: v for k, v in variables["params"].items() if k != "head"}
    return variables


def _layout(
    block: str,
    stage_sizes: tuple[int, ...],
    stem_shape: tuple[int, ...],
    num_classes: int | None,
) -> _Layout:
    """Every torch key of the ResNet, its kind, adljax path and expected torch shape."""
    width, in_channels, kernel_h, kernel_w = stem_shape
    layout: _Layout = {}

    def conv(key, path, out, inp, kernel):
        layout[f"{key}.weight"] = ("conv", (*path, "kernel"), (out, inp, *kernel))

    def bn(key, path, channels):
        for name, target in (
            ("weight", "scale"),
            ("bias", "bias"),
            ("running_mean", "mean"),
            ("running_var", "var"),
        ):
            layout[f"{key}.{name}"] = ("copy", (*path, target), (channels,))

    conv("conv1", ("stem_conv",), width, in_channels, (kernel_h, kernel_w))
    bn("bn1", ("stem_bn",), width)
    expansion = 1 if block == "basic" else _BOTTLENECK_EXPANSION
    channels = width
    for i, num_blocks in enumerate(stage_sizes):
        planes = width * 2**i
        for j in range(num_blocks):
            key, name = f"layer{i + 1}.{j}", f"stage{i}_block{j}"
            if block == "basic":
                convs = [(channels, planes, (3, 3)), (planes, planes, (3, 3))]
            else:
                convs = [
                    (channels, planes, (1, 1)),
                    (planes, planes, (3, 3)),
                    (planes, planes * expansion, (1, 1)),
                ]
            for k, (inp, out, kernel) in enumerate(convs):
                conv(f"{key}.conv{k + 1}", (name, f"conv{k}"), out, inp, kernel)
                bn(f"{key}.bn{k + 1}", (name, f"bn{k}"), out)
            strides = 2 if i > 0 and j == 0 else 1
            if strides != 1 or channels != planes * expansion:
                conv(
                    f"{key}.downsample.0",
                    (name, "downsample_conv"),
                    planes * expansion,
                    channels,
                    (1, 1),
                )
                bn(f"{key}.downsample.1", (name, "downsample_bn"), planes * expansion)
            channels = planes * expansion
    fc_shape = (num_classes, channels) if num_classes is not None else None
    layout["fc.weight"] = ("linear", ("head", "kernel"), fc_shape)
    layout["fc.bias"] = ("copy", ("head", "bias"), (num_classes,) if num_classes else None)
    return layout


def _model_shapes(model: ResNet, variables: dict[str, dict]) -> dict[str, tuple[int, ...]]:
    """``{path: shape}`` of ``model``'s variables, initialised abstractly (no compute)."""
    if model.input_shape is not None:
        input_shape = model.input_shape
    else:  # the smallest image the model takes: shapes do not depend on the size
        side = (4 if model.stem == "imagenet" else 1) * 2 ** (len(model.stage_sizes) - 1)
        input_shape = (side, side, variables["params"]["stem_conv"]["kernel"].shape[2])
    x = jax.ShapeDtypeStruct((1, *input_shape), jnp.float32)
    abstract = jax.eval_shape(lambda x: model.init(jax.random.key(0), x, train=False), x)
    return _shapes(abstract)


def _shapes(tree: Mapping[str, Any], prefix: str = "") -> dict[str, tuple[int, ...]]:
    shapes = {}
    for key, value in tree.items():
        if isinstance(value, Mapping):
            shapes.update(_shapes(value, f"{prefix}{key}/"))
        else:
            shapes[f"{prefix}{key}"] = tuple(value.shape)
    return shapes


def _describe(model: ResNet) -> str:
    return (
        f"ResNet(stage_sizes={model.stage_sizes}, block={model.block!r}, stem={model.stem!r}, "
        f"width={model.width}, num_outputs={model.num_outputs})"
    )
