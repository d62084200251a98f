"""PyTorch parity: the layers adljax's ConvNets use compute what PyTorch's do (float32, 1e-5).

Conventions checked here: kernels OIHW -> HWIO, inputs NCHW <-> NHWC, explicit padding
``((p, p), (p, p))`` == ``padding=p``, batch norm momentum 0.9 == PyTorch's 0.1 (and the
running variance difference), max pooling pads with -inf, and the flatten order before a
dense layer.
"""

import flax.linen as nn
import jax
import numpy as np
import pytest
from flax.traverse_util import flatten_dict

from adljax.models import ResNet, SimpleCNN, torch_flatten_permutation

torch = pytest.importorskip("torch")

_TOL = {"rtol": 1e-5, "atol": 1e-5}


@pytest.fixture(autouse=True)
def _seeded():
    torch.manual_seed(0)


def _nhwc(t) -> np.ndarray:
    """A PyTorch NCHW tensor as a NumPy NHWC array."""
    return t.detach().numpy().transpose(0, 2, 3, 1)


def _hwio(weight) -> np.ndarray:
    """A PyTorch conv weight (out, in, kh, kw) as a Flax kernel (kh, kw, in, out)."""
    return weight.detach().numpy().transpose(2, 3, 1, 0)


def _bn_variables(bn) -> tuple[dict, dict]:
    """A PyTorch ``BatchNorm2d``'s (params, batch_stats) in Flax's names."""
    params = {"scale": bn.weight.detach().numpy(), "bias": bn.bias.detach().numpy()}
    stats = {"mean": bn.running_mean.numpy().copy(), "var": bn.running_var.numpy().copy()}
    return params, stats


def _randomise_batch_norms(module) -> None:
    """Non-trivial affine parameters and running statistics for every ``BatchNorm2d``."""
    with torch.no_grad():
        for bn in module.modules():
            if isinstance(bn, torch.nn.BatchNorm2d):
                bn.weight.uniform_(0.5, 1.5)
                bn.bias.normal_()
                bn.running_mean.normal_(0.0, 0.3)
                bn.running_var.uniform_(0.5, 1.5)


@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize(("kernel", "padding"), [(3, 0), (3, 1), (3, 2), (5, 2), (7, 3), (1, 0)])
def test_conv2d(kernel, padding, stride):
    conv = torch.nn.Conv2d(3, 4, kernel, stride=stride, padding=padding)
    x = torch.randn(2, 3, 9, 8)
    flax_conv = nn.Conv(4, (kernel, kernel), strides=stride, padding=((padding,) * 2,) * 2)
    params = {"kernel": _hwio(conv.weight), "bias": conv.bias.detach().numpy()}
    actual = flax_conv.apply({"params": params}, _nhwc(x))
    np.testing.assert_allclose(actual, _nhwc(conv(x)), **_TOL)


def _flax_batch_norm(bn, x, *, train: bool):
    params, stats = _bn_variables(bn)
    layer = nn.BatchNorm(use_running_average=not train, momentum=0.9, epsilon=1e-5)
    return layer.apply({"params": params, "batch_stats": stats}, _nhwc(x), mutable=["batch_stats"])


def test_batch_norm_train_mode_and_the_running_variance_difference():
    bn = torch.nn.BatchNorm2d(4, momentum=0.1, eps=1e-5)
    _randomise_batch_norms(bn)
    old_var = bn.running_var.numpy().copy()
    x = 2.0 * torch.randn(3, 4, 5, 5) + 1.0
    n = 3 * 5 * 5  # values per channel
    flax_out, updates = _flax_batch_norm(bn, x, train=True)
    bn.train()
    torch_out = bn(x)

    np.testing.assert_allclose(flax_out, _nhwc(torch_out), **_TOL)
    flax_mean, flax_var = updates["batch_stats"]["mean"], updates["batch_stats"]["var"]
    np.testing.assert_allclose(flax_mean, bn.running_mean.numpy(), **_TOL)
    # Both normalise with the biased variance, but only Flax also averages it: PyTorch's
    # running_var takes the unbiased one, biased * n / (n - 1).
    biased = x.var(dim=(0, 2, 3), unbiased=False).numpy()
    np.testing.assert_allclose(flax_var, 0.9 * old_var + 0.1 * biased, **_TOL)
    np.testing.assert_allclose(
        bn.running_var.numpy(), 0.9 * old_var + 0.1 * biased * n / (n - 1), **_TOL
    )
    assert not np.allclose(flax_var, bn.running_var.numpy(), rtol=1e-4, atol=0)


def test_batch_norm_eval_mode():
    bn = torch.nn.BatchNorm2d(4)
    _randomise_batch_norms(bn)
    bn.eval()
    x = torch.randn(3, 4, 5, 5)
    flax_out, updates = _flax_batch_norm(bn, x, train=False)
    np.testing.assert_allclose(flax_out, _nhwc(bn(x)), **_TOL)
    np.testing.assert_array_equal(updates["batch_stats"]["var"], bn.running_var.numpy())


@pytest.mark.parametrize("size", [8, 9])
def test_max_pool_3x3_stride_2_padding_1_pads_with_minus_infinity(size):
    x = torch.randn(2, 3, size, size) - 10.0  # all negative: zero padding would show
    expected = torch.nn.MaxPool2d(3, stride=2, padding=1)(x)
    actual = nn.max_pool(_nhwc(x), (3, 3), strides=(2, 2), padding=((1, 1), (1, 1)))
    np.testing.assert_allclose(actual, _nhwc(expected), **_TOL)


@pytest.mark.parametrize("size", [8, 7])
def test_avg_pool_2x2(size):
    x = torch.randn(2, 3, size, size)
    expected = torch.nn.AvgPool2d(2)(x)
    np.testing.assert_allclose(
        nn.avg_pool(_nhwc(x), (2, 2), strides=(2, 2)), _nhwc(expected), **_TOL
    )


def test_torch_flatten_permutation_known_values():
    # channels=2, height=1, width=2: NHWC order (w0 c0, w0 c1, w1 c0, w1 c1) in NCHW indices.
    np.testing.assert_array_equal(torch_flatten_permutation(2, 1, 2), [0, 2, 1, 3])
    perm = torch_flatten_permutation(3, 4, 5)
    np.testing.assert_array_equal(np.sort(perm), np.arange(60))
    with pytest.raises(ValueError, match=r"`height` must be a positive integer, got 0"):
        torch_flatten_permutation(3, 0, 5)


def test_linear_after_flatten_equals_dense_after_reshape_with_permuted_rows():
    channels, height, width = 3, 4, 5
    linear = torch.nn.Linear(channels * height * width, 7)
    x = torch.randn(2, channels, height, width)
    expected = linear(x.flatten(1)).detach().numpy()
    weight_t = linear.weight.detach().numpy().T  # (C*H*W, out) in NCHW row order
    bias = linear.bias.detach().numpy()
    flat = _nhwc(x).reshape(2, -1)

    perm = torch_flatten_permutation(channels, height, width)
    actual = nn.Dense(7).apply({"params": {"kernel": weight_t[perm], "bias": bias}}, flat)
    np.testing.assert_allclose(actual, expected, **_TOL)
    unpermuted = nn.Dense(7).apply({"params": {"kernel": weight_t, "bias": bias}}, flat)
    assert not np.allclose(unpermuted, expected, atol=1e-3)


def test_simple_cnn_matches_pytorch_with_imported_weights():
    net = torch.nn.Sequential(
        torch.nn.Conv2d(1, 32, 3, padding=1),
        torch.nn.ReLU(),
        torch.nn.AvgPool2d(2),
        torch.nn.Conv2d(32, 64, 3, padding=1),
        torch.nn.ReLU(),
        torch.nn.AvgPool2d(2),
        torch.nn.Flatten(),
        torch.nn.Linear(64 * 2 * 2, 256),
        torch.nn.ReLU(),
        torch.nn.Linear(256, 10),
    )
    x = torch.rand(3, 1, 8, 8)
    conv_0, conv_1, dense_0, head = net[0], net[3], net[7], net[9]
    perm = torch_flatten_permutation(64, 2, 2)

    def bias(layer):
        return layer.bias.detach().numpy()

    params = {
        "conv_0": {"kernel": _hwio(conv_0.weight), "bias": bias(conv_0)},
        "conv_1": {"kernel": _hwio(conv_1.weight), "bias": bias(conv_1)},
        "dense_0": {"kernel": dense_0.weight.detach().numpy().T[perm], "bias": bias(dense_0)},
        "head": {"kernel": head.weight.detach().numpy().T, "bias": bias(head)},
    }
    actual = jax.jit(lambda p, x: SimpleCNN().apply({"params": p}, x, train=False))(
        params, _nhwc(x)
    )
    np.testing.assert_allclose(actual, net(x).detach().numpy(), **_TOL)


class _TorchBlock(torch.nn.Module):
    """torchvision's BasicBlock / Bottleneck (v1.5: stride on the 3x3), written out."""

    def __init__(self, bottleneck: bool, in_channels: int, features: int, stride: int):
        super().__init__()
        out = 4 * features if bottleneck else features
        if bottleneck:
            specs = [(in_channels, features, 1, 1), (features, features, 3, stride)]
            specs.append((features, out, 1, 1))
        else:
            specs = [(in_channels, features, 3, stride), (features, features, 3, 1)]
        self.convs = torch.nn.ModuleList(
            torch.nn.Conv2d(i, o, k, stride=s, padding=k // 2, bias=False) for i, o, k, s in specs
        )
        self.bns = torch.nn.ModuleList(torch.nn.BatchNorm2d(o) for _, o, _, _ in specs)
        self.downsample = None
        if stride != 1 or in_channels != out:
            self.downsample = torch.nn.Sequential(
                torch.nn.Conv2d(in_channels, out, 1, stride=stride, bias=False),
                torch.nn.BatchNorm2d(out),
            )
        self.out_channels = out

    def forward(self, x):
        h = x
        for i, (conv, bn) in enumerate(zip(self.convs, self.bns, strict=True)):
            h = bn(conv(h))
            if i < len(self.convs) - 1:
                h = torch.relu(h)
        return torch.relu(h + (x if self.downsample is None else self.downsample(x)))


class _TorchResNet(torch.nn.Module):
    """torchvision's ResNet (ImageNet stem) for given stages, block type and width."""

    def __init__(self, stage_sizes, bottleneck: bool, width: int, num_outputs: int):
        super().__init__()
        self.stem_conv = torch.nn.Conv2d(3, width, 7, stride=2, padding=3, bias=False)
        self.stem_bn = torch.nn.BatchNorm2d(width)
        channels, stages = width, []
        for i, num_blocks in enumerate(stage_sizes):
            blocks = []
            for j in range(num_blocks):
                stride = 2 if i > 0 and j == 0 else 1
                blocks.append(_TorchBlock(bottleneck, channels, width * 2**i, stride))
                channels = blocks[-1].out_channels
            stages.append(torch.nn.ModuleList(blocks))
        self.stages = torch.nn.ModuleList(stages)
        self.fc = torch.nn.Linear(channels, num_outputs)

    def forward(self, x):
        h = torch.relu(self.stem_bn(self.stem_conv(x)))
        h = torch.nn.functional.max_pool2d(h, 3, stride=2, padding=1)
        for stage in self.stages:
            for block in stage:
                h = block(h)
        return self.fc(h.mean(dim=(2, 3)))


def _resnet_variables(net: _TorchResNet) -> dict:
    """The torch replica's weights under adljax's ResNet parameter names."""
    params, stats = {"stem_conv": {"kernel": _hwio(net.stem_conv.weight)}}, {}
    params["stem_bn"], stats["stem_bn"] = _bn_variables(net.stem_bn)
    for i, stage in enumerate(net.stages):
        for j, block in enumerate(stage):
            name, block_params, block_stats = f"stage{i}_block{j}", {}, {}
            for k, (conv, bn) in enumerate(zip(block.convs, block.bns, strict=True)):
                block_params[f"conv{k}"] = {"kernel": _hwio(conv.weight)}
                block_params[f"bn{k}"], block_stats[f"bn{k}"] = _bn_variables(bn)
            if block.downsample is not None:
                conv, bn = block.downsample
                block_params["downsample_conv"] = {"kernel": _hwio(conv.weight)}
                block_params["downsample_bn"], block_stats["downsample_bn"] = _bn_variables(bn)
            params[name], stats[name] = block_params, block_stats
    params["head"] = {
        "kernel": net.fc.weight.detach().numpy().T,
        "bias": net.fc.bias.detach().numpy(),
    }
    return {"params": params, "batch_stats": stats}


@pytest.mark.parametrize("block", ["basic", "bottleneck"])
def test_resnet_matches_a_torchvision_layout_replica(block):
    net = _TorchResNet((1, 2), block == "bottleneck", width=4, num_outputs=5)
    _randomise_batch_norms(net)
    model = ResNet((1, 2), block, num_outputs=5, stem="imagenet", width=4)
    variables = _resnet_variables(net)
    x = torch.randn(2, 3, 32, 32)

    @jax.jit
    def forward(variables, x):
        eval_logits = model.apply(variables, x, train=False)
        train_logits, updates = model.apply(variables, x, train=True, mutable=["batch_stats"])
        return eval_logits, train_logits, updates["batch_stats"]

    eval_logits, train_logits, stats = forward(variables, _nhwc(x))
    net.eval()
    np.testing.assert_allclose(eval_logits, net(x).detach().numpy(), **_TOL)
    net.train()
    np.testing.assert_allclose(train_logits, net(x).detach().numpy(), **_TOL)
    torch_stats = flatten_dict(_resnet_variables(net)["batch_stats"])
    flax_stats = flatten_dict(stats)
    assert flax_stats.keys() == torch_stats.keys()
    for path in (path for path in flax_stats if path[-1] == "mean"):
        np.testing.assert_allclose(flax_stats[path], torch_stats[path], **_TOL)
