"""Tests for adljax.models.torch_weights: torchvision-layout ResNets give the same logits."""

import sys

import jax
import numpy as np
import pytest
import safetensors.torch
import torch
from torch import nn

from adljax.models.resnet import ResNet
from adljax.models.torch_weights import (
    load_pretrained_resnet,
    load_torch_state_dict,
    torchvision_resnet_to_flax,
)
from adljax.transfer import transfer_parameters

# ----- a minimal torchvision-layout ResNet (torchvision itself is not a dependency) -------


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, inplanes, planes, stride, downsample):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU()
        self.downsample = downsample

    def forward(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        identity = x if self.downsample is None else self.downsample(x)
        return self.relu(out + identity)


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, inplanes, planes, stride, downsample):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * 4, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * 4)
        self.relu = nn.ReLU()
        self.downsample = downsample

    def forward(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        identity = x if self.downsample is None else self.downsample(x)
        return self.relu(out + identity)


class TorchResNet(nn.Module):
    """torchvision.models.ResNet's attribute names; ``stem="cifar"``: 3x3 conv1, no max pool."""

    def __init__(self, block, layers, num_classes, stem, width):
        super().__init__()
        if stem == "imagenet":
            self.conv1 = nn.Conv2d(3, width, 7, 2, 3, bias=False)
            self.maxpool = nn.MaxPool2d(3, 2, 1)
        else:
            self.conv1 = nn.Conv2d(3, width, 3, 1, 1, bias=False)
            self.maxpool = nn.Identity()
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU()
        inplanes = width
        for i, num_blocks in enumerate(layers):
            planes, blocks = width * 2**i, []
            for j in range(num_blocks):
                stride = 2 if i > 0 and j == 0 else 1
                downsample = None
                if stride != 1 or inplanes != planes * block.expansion:
                    downsample = nn.Sequential(
                        nn.Conv2d(inplanes, planes * block.expansion, 1, stride, bias=False),
                        nn.BatchNorm2d(planes * block.expansion),
                    )
                blocks.append(block(inplanes, planes, stride, downsample))
                inplanes = planes * block.expansion
            setattr(self, f"layer{i + 1}", nn.Sequential(*blocks))
        self.num_stages = len(layers)
        self.fc = nn.Linear(inplanes, num_classes)

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        for i in range(self.num_stages):
            x = getattr(self, f"layer{i + 1}")(x)
        return self.fc(x.mean(dim=(2, 3)))


def _torch_resnet(block, stage_sizes, *, stem, width, num_classes, seed=0):
    """A torch ResNet in eval mode with random batch-norm parameters and statistics."""
    torch.manual_seed(seed)
    model = TorchResNet(
        BasicBlock if block == "basic" else Bottleneck, stage_sizes, num_classes, stem, width
    )
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.weight.uniform_(0.5, 1.5)
                module.bias.normal_(0.0, 0.2)
                module.running_mean.normal_(0.0, 0.2)
                module.running_var.uniform_(0.5, 1.5)
                module.num_batches_tracked.fill_(7)
        model.fc.weight.normal_(0.0, 1.0)  # logits of order 1-10, so 1e-4 is a tight bound
    return model.eval()


def _save(model, directory):
    """The model's state dict as ``.pth`` and ``.safetensors`` files."""
    pth, st = directory / "weights.pth", directory / "weights.safetensors"
    torch.save(model.state_dict(), pth)
    safetensors.torch.save_file(model.state_dict(), st)
    return pth, st


def _logits_gap(torch_model, flax_model, variables, image_size, seed=1):
    x = np.random.default_rng(seed).normal(size=(2, 3, image_size, image_size)).astype(np.float32)
    with torch.no_grad():
        expected = torch_model(torch.from_numpy(x)).numpy()
    actual = np.asarray(flax_model.apply(variables, x.transpose(0, 2, 3, 1), train=False))
    assert actual.shape == expected.shape
    return float(np.max(np.abs(actual - expected)))


_VARIANTS = [
    # block, stage sizes, stem, width, image size
    ("basic", (2, 1, 1), "cifar", 8, 16),
    ("bottleneck", (1, 2, 1), "cifar", 8, 16),
    ("basic", (1, 1, 1, 1), "imagenet", 8, 32),
    ("bottleneck", (1, 1, 1, 1), "imagenet", 8, 32),
]


@pytest.mark.parametrize(("block", "stage_sizes", "stem", "width", "size"), _VARIANTS)
def test_converted_weights_give_torchs_logits(tmp_path, block, stage_sizes, stem, width, size):
    torch_model = _torch_resnet(block, stage_sizes, stem=stem, width=width, num_classes=7)
    pth, st = _save(torch_model, tmp_path)
    from_pth, from_st = load_torch_state_dict(pth), load_torch_state_dict(st)
    assert sorted(from_pth) == sorted(from_st)
    for key, value in from_pth.items():
        np.testing.assert_array_equal(value, from_st[key])

    variables = torchvision_resnet_to_flax(from_st, block=block, stage_sizes=stage_sizes)
    model = ResNet(stage_sizes, block=block, num_outputs=7, stem=stem, width=width)
    x = jax.ShapeDtypeStruct((1, size, size, 3), np.float32)
    expected = jax.eval_shape(lambda x: model.init(jax.random.key(0), x, train=False), x)
    assert jax.tree.map(np.shape, variables) == jax.tree.map(np.shape, expected)
    assert _logits_gap(torch_model, model, variables, size) < 1e-4


def test_conversion_layouts_and_batch_norm_names():
    torch_model = _torch_resnet("bottleneck", (1, 1), stem="cifar", width=4, num_classes=3)
    state_dict = {k: v.numpy() for k, v in torch_model.state_dict().items()}
    variables = torchvision_resnet_to_flax(state_dict, block="bottleneck", stage_sizes=(1, 1))
    params, stats = variables["params"], variables["batch_stats"]
    conv = state_dict["layer2.0.conv2.weight"]  # OIHW (8, 8, 3, 3)
    np.testing.assert_array_equal(
        params["stage1_block0"]["conv1"]["kernel"], conv.transpose(2, 3, 1, 0)
    )
    np.testing.assert_array_equal(params["head"]["kernel"], state_dict["fc.weight"].T)
    np.testing.assert_array_equal(params["head"]["bias"], state_dict["fc.bias"])
    down = params["stage0_block0"]["downsample_bn"]
    np.testing.assert_array_equal(down["scale"], state_dict["layer1.0.downsample.1.weight"])
    np.testing.assert_array_equal(down["bias"], state_dict["layer1.0.downsample.1.bias"])
    np.testing.assert_array_equal(
        stats["stage0_block0"]["downsample_bn"]["mean"],
        state_dict["layer1.0.downsample.1.running_mean"],
    )
    np.testing.assert_array_equal(stats["stem_bn"]["var"], state_dict["bn1.running_var"])
    assert all(
        leaf.dtype == np.float32 and leaf.flags["C_CONTIGUOUS"]
        for leaf in jax.tree.leaves(variables)
    )


def _small_state_dict():
    model = _torch_resnet("basic", (1, 1), stem="cifar", width=8, num_classes=5)
    return {k: v.numpy() for k, v in model.state_dict().items()}


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda sd: sd.pop("layer1.0.bn1.running_var"), "missing key 'layer1.0.bn1.running_var'"),
        (
            lambda sd: sd.update({"layer2.0.conv1.weight": np.zeros((16, 8, 1, 1))}),
            r"shape of 'layer2.0.conv1.weight': expected \(16, 8, 3, 3\), got \(16, 8, 1, 1\)",
        ),
        (
            lambda sd: sd.update({"fc.bias": np.zeros(4)}),
            r"shape of 'fc.bias': expected \(5,\), got \(4,\)",
        ),
        (lambda sd: sd.update({"layer3.0.conv1.weight": np.zeros(1)}), "unexpected key 'layer3"),
        (lambda sd: sd.pop("conv1.weight"), "'conv1.weight'.*missing"),
        (
            lambda sd: sd.update({f"module.{k}": sd.pop(k) for k in list(sd)}),
            r"missing but 'module.conv1.weight' is there: remove the prefix",
        ),
    ],
)
def test_conversion_names_every_problem(edit, message):
    state_dict = _small_state_dict()
    edit(state_dict)
    with pytest.raises(ValueError, match=message):
        torchvision_resnet_to_flax(state_dict, block="basic", stage_sizes=(1, 1))


def test_another_variant_is_refused_with_its_extra_keys():
    state_dict = _small_state_dict()  # basic (1, 1)
    with pytest.raises(ValueError, match=r"missing key 'layer1.1.conv1.weight'"):
        torchvision_resnet_to_flax(state_dict, block="basic", stage_sizes=(2, 1))
    with pytest.raises(ValueError, match=r"block='bottleneck'.*\n.*missing key"):
        torchvision_resnet_to_flax(state_dict, block="bottleneck", stage_sizes=(1, 1))


def test_load_state_dict_file_errors(tmp_path):
    with pytest.raises(ValueError, match=r"must end in one of .safetensors, .pth, .pt"):
        load_torch_state_dict(tmp_path / "weights.bin")
    with pytest.raises(FileNotFoundError, match=r"absent\.safetensors"):
        load_torch_state_dict(tmp_path / "absent.safetensors")
    wrapped = tmp_path / "checkpoint.pt"
    torch.save({"model": {"w": torch.zeros(1)}, "epoch": 3}, wrapped)
    with pytest.raises(ValueError, match=r"not hold a state_dict.*keys \['model', 'epoch'\]"):
        load_torch_state_dict(wrapped)


def test_pth_needs_torch_but_safetensors_does_not(tmp_path, monkeypatch):
    pth, st = _save(_torch_resnet("basic", (1,), stem="cifar", width=4, num_classes=2), tmp_path)
    monkeypatch.setitem(sys.modules, "torch", None)  # `import torch` now fails
    with pytest.raises(ImportError, match=r"needs PyTorch: install torch, or convert"):
        load_torch_state_dict(pth)
    assert "conv1.weight" in load_torch_state_dict(st)


def test_bfloat16_tensors_load_as_float32(tmp_path):
    path = tmp_path / "half.pth"
    torch.save({"w": torch.ones(2, dtype=torch.bfloat16)}, path)
    loaded = load_torch_state_dict(path)
    assert loaded["w"].dtype == np.float32


def test_pretrained_resnet_keeps_a_fitting_head(tmp_path):
    torch_model = _torch_resnet("basic", (1, 1), stem="cifar", width=8, num_classes=5)
    _, st = _save(torch_model, tmp_path)
    model = ResNet((1, 1), num_outputs=5, stem="cifar", width=8)
    variables = load_pretrained_resnet(st, model)
    assert _logits_gap(torch_model, model, variables, 8) < 1e-4


def test_pretrained_resnet_with_a_new_head(tmp_path):
    _, st = _save(_torch_resnet("basic", (1, 1), stem="cifar", width=8, num_classes=5), tmp_path)
    model = ResNet((1, 1), num_outputs=3, stem="cifar", width=8)
    with pytest.warns(UserWarning, match="has 5 outputs and the model 3"):
        pretrained = load_pretrained_resnet(st, model)
    assert "head" not in pretrained["params"]
    x = jax.ShapeDtypeStruct((1, 8, 8, 3), np.float32)
    shapes = jax.eval_shape(lambda x: model.init(jax.random.key(0), x, train=False), x)
    fresh = jax.tree.map(lambda leaf: np.zeros(leaf.shape, leaf.dtype), shapes)
    _, report = transfer_parameters(pretrained, fresh)
    assert set(report.new) == {"params/head/kernel", "params/head/bias"}
    assert not report.mismatched and not report.unused
    assert load_pretrained_resnet(st, model, include_head=False).keys() == pretrained.keys()
    with pytest.raises(ValueError, match=r"params/head/kernel: model \(16, 3\), file \(16, 5\)"):
        load_pretrained_resnet(st, model, include_head=True)


@pytest.mark.parametrize(
    ("model", "message"),
    [
        (
            ResNet((1, 1), num_outputs=5, stem="cifar", width=16),
            r"params/stem_conv/kernel: model \(3, 3, 3, 16\), file \(3, 3, 3, 8\)",
        ),
        (
            ResNet((1, 1), num_outputs=5, stem="imagenet", width=8),
            r"params/stem_conv/kernel: model \(7, 7, 3, 8\), file \(3, 3, 3, 8\)",
        ),
        (
            ResNet((1, 1), num_outputs=5, stem="cifar", width=8, input_shape=(8, 8, 1)),
            r"model \(3, 3, 1, 8\), file \(3, 3, 3, 8\)",
        ),
        (ResNet((2, 1), num_outputs=5, stem="cifar", width=8), "missing key 'layer1.1.conv1"),
    ],
)
def test_pretrained_resnet_refuses_weights_of_another_shape(tmp_path, model, message):
    _, st = _save(_torch_resnet("basic", (1, 1), stem="cifar", width=8, num_classes=5), tmp_path)
    with pytest.raises(ValueError, match=message):
        load_pretrained_resnet(st, model)


def test_full_resnet18_parity(tmp_path):
    torch_model = _torch_resnet("basic", (2, 2, 2, 2), stem="imagenet", width=64, num_classes=1000)
    _, st = _save(torch_model, tmp_path)
    model = ResNet((2, 2, 2, 2), block="basic", num_outputs=1000, stem="imagenet")
    variables = load_pretrained_resnet(st, model)
    assert _logits_gap(torch_model, model, variables, 64) < 1e-4
