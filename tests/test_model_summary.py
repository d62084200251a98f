"""``adljax.summary`` and ``adljax models --summary``: counts, bytes, shapes and FLOPs."""

import itertools
import json
import math
import re

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import adljax
from adljax.cli import main
from adljax.model_summary import WIDTH
from adljax.models import create_model


def _variables(model, x):
    return model.init(jax.random.key(0), x, train=False)


@settings(max_examples=15, deadline=None)
@given(
    hidden=st.lists(st.integers(1, 24), min_size=1, max_size=3),
    features=st.integers(1, 9),
    batch=st.integers(1, 4),
    batch_norm=st.booleans(),
    depth=st.one_of(st.none(), st.integers(0, 2)),
)
def test_mlp_counts_bytes_and_dense_flops(hidden, features, batch, batch_norm, depth):
    model = create_model("mlp", num_outputs=3, hidden_sizes=tuple(hidden), batch_norm=batch_norm)
    x = jnp.ones((batch, features))
    variables = _variables(model, x)
    table = adljax.summary(model, x, depth=depth)
    params = sum(leaf.size for leaf in jax.tree.leaves(variables["params"]))
    state = sum(leaf.size for leaf in jax.tree.leaves(variables.get("batch_stats", {})))
    assert table.params == params and table.state_entries == state
    assert table.bytes == sum(leaf.nbytes for leaf in jax.tree.leaves(variables))
    rows = {row.path: row for row in table.rows}
    assert rows[""].output_shapes == ((batch, 3),)
    if depth == 0:
        assert list(rows) == [""]
    widths = [features, *hidden, 3]
    dense = [f"dense_{i}" for i in range(len(hidden))] + ["head"]
    for name, (n_in, n_out) in zip(dense, itertools.pairwise(widths), strict=True):
        if depth == 0:
            break
        row = rows[name]
        assert row.output_shapes == ((batch, n_out),)
        bias = name == "head" or not batch_norm
        assert row.params == n_in * n_out + (n_out if bias else 0)
        # A dense layer is one multiply-add per weight, and one add per bias entry.
        assert row.flops == pytest.approx(2 * n_in * n_out + (n_out if bias else 0))
    assert all(len(line) <= WIDTH for line in str(table).splitlines())


@pytest.mark.parametrize("depth", [None, 1])
def test_resnet_counts_match_its_variables_and_flops_the_compiled_model(depth):
    model = create_model("resnet18", num_outputs=10, stem="cifar")
    x = jnp.ones((2, 16, 16, 3))
    variables = jax.eval_shape(lambda x: _variables(model, x), x)
    table = adljax.summary(model, x, depth=depth)
    assert table.params == sum(math.prod(v.shape) for v in jax.tree.leaves(variables["params"]))
    # The first row is the whole forward pass: the same cost analysis, per example.
    whole = jax.jit(lambda v, x: model.apply(v, x, train=False)).lower(variables, x)
    assert table.flops == pytest.approx(whole.cost_analysis()["flops"] / 2)
    rows = {row.path: row for row in table.rows}
    conv = rows["stem_conv"]  # 3x3, 3 -> 64 channels, stride 1, no bias
    assert conv.params == 3 * 3 * 3 * 64 and conv.output_shapes == ((2, 16, 16, 64),)
    # The textbook count; XLA's skips some of the taps that fall on the zero padding.
    assert conv.flops == pytest.approx(2 * 16 * 16 * 3 * 3 * 3 * 64, rel=0.05)
    assert ("stage0_block0/conv0" in rows) == (depth is None)
    assert all(len(line) <= WIDTH for line in str(table).splitlines())


def test_a_checkpoints_variables_and_a_gan_method_are_summarised():
    model = create_model("dcgan", input_shape=(8, 8, 1))
    variables = model.init(jax.random.key(0), jnp.zeros((1, 8, 8, 1)), train=False)
    z = jnp.zeros((1, model.latent_dim))
    generator = adljax.summary(model, z, variables=variables, method="generate", flops=False)
    assert generator.rows[0].output_shapes == ((1, 8, 8, 1),)
    assert generator.flops is None
    # Every variable counts; those of the discriminator, which `generate` does not call,
    # land in the model's own row.
    assert generator.params == sum(v.size for v in jax.tree.leaves(variables["params"]))
    own = sum(v.size for v in jax.tree.leaves(variables["params"]["discriminator"]))
    assert generator.rows[0].params == own
    assert {row.path.split("/")[0] for row in generator.rows[1:]} == {"generator"}


def test_any_flax_module_without_train_is_summarised():
    class Tiny(nn.Module):
        @nn.compact
        def __call__(self, x):
            return nn.Dense(2, name="out")(nn.relu(nn.Dense(4, name="hidden")(x)))

    table = adljax.summary(Tiny(), jax.ShapeDtypeStruct((5, 3), jnp.float32))
    assert [row.path for row in table.rows] == ["", "hidden", "out"]
    assert table.params == 3 * 4 + 4 + 4 * 2 + 2
    assert json.loads(json.dumps(table.to_dict()))["params"] == table.params


@pytest.mark.parametrize(
    ("sample", "depth", "message"),
    [
        (np.float32(1.0), None, "must be a batch"),
        (np.ones((0, 3)), None, "B >= 1"),
        (np.ones((2, 3)), -1, "depth must be None or >= 0"),
    ],
)
def test_bad_arguments_are_named(sample, depth, message):
    model = create_model("mlp", num_outputs=2, hidden_sizes=(4,))
    with pytest.raises(ValueError, match=message):
        adljax.summary(model, sample, depth=depth)


def test_cli_summary_sizes_the_model_for_the_dataset(capsys):
    assert (
        main(
            [
                "models",
                "--summary",
                "mlp",
                "--dataset",
                "spirals",
                "--set",
                "hidden_sizes=[8]",
                "--json",
            ]
        )
        == 0
    )
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    table = out["summaries"]["model"]
    assert out["dataset"] == "spirals" and table["input_shape"] == [1, 2]
    assert table["params"] == 2 * 8 + 8 + 8 * 1 + 1
    assert [layer["path"] for layer in table["layers"]] == ["", "dense_0", "head"]
    assert main(["models", "--summary", "gan"]) == 0
    text = capsys.readouterr().out
    assert "gan sized for ring8: generator" in text and ": discriminator" in text
    assert max(len(line) for line in text.splitlines()) <= WIDTH


def test_cli_summary_of_a_tfds_image_dataset_needs_no_download(capsys, tmp_path):
    # An empty data directory: MNIST and CIFAR-10 are not prepared, their shapes are known.
    data_dir = str(tmp_path)
    assert main(["models", "--summary", "lenet", "--data-dir", data_dir, "--json"]) == 0
    lenet = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert lenet["dataset"] == "mnist"
    assert lenet["summaries"]["model"]["input_shape"] == [1, 28, 28, 1]
    argv = ["models", "--summary", "resnet18", "--dataset", "cifar10", "--data-dir", data_dir]
    assert main([*argv, "--depth", "1", "--json"]) == 0
    resnet = json.loads(capsys.readouterr().out.strip().splitlines()[-1])["summaries"]["model"]
    assert resnet["input_shape"] == [1, 32, 32, 3]
    assert resnet["params"] == 11_173_962  # ResNet-18, CIFAR stem (He et al.'s 11.2M)
    assert list(tmp_path.iterdir()) == []  # nothing downloaded or prepared


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--summary", "nope"], "unknown model 'nope'"),
        (["--summary", "resnet"], r"needs config key\(s\) \['stage_sizes'\]"),
        (["--summary", "charlm", "--dataset", "digits"], "language_modeling dataset"),
        (["--depth", "1"], "go with --summary NAME"),
        (["--summary", "mlp", "--depth", "-1"], "--depth must be >= 0"),
    ],
)
def test_cli_summary_errors_name_the_problem(capsys, argv, message):
    assert main(["models", *argv]) == 2
    err = capsys.readouterr().err
    assert re.search(message, err), err
