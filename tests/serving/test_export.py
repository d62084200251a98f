"""Exports of every family equal the in-process model; damaged files and bad inputs are refused."""

import json
import os
import subprocess
import sys
import textwrap

import jax
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from serving_models import build_state, raw

import adljax
from adljax.detection.experiment import detect
from adljax.gan import sampling
from adljax.serving import ArtifactError, export, load

pytestmark = pytest.mark.usefixtures("fast_compiles")
batch_sizes = st.integers(min_value=1, max_value=48)


def model_input(info, x_raw: np.ndarray) -> np.ndarray:
    """What the model saw for raw inputs: images / 255, standardised features, or as given."""
    if x_raw.dtype == np.uint8:
        return x_raw.astype(np.float32) / np.float32(255.0)
    mean, std = info.extras.get("feature_mean"), info.extras.get("feature_std")
    if mean is not None:
        return ((x_raw - np.float32(mean)) / np.float32(std)).astype(np.float32)
    return x_raw


@pytest.mark.parametrize(
    "family",
    ["mlp_digits", "cnn_digits", "resnet_digits", "mlp_xor", "lstm_waveforms", "gru_copy"],
)
@settings(max_examples=3)
@given(batch=batch_sizes)
def test_class_probabilities_equal_predict(exported, family, batch):
    state, data, path = exported(family)
    x = raw(data, batch)
    got = load(path)(x)["probabilities"]
    logits = adljax.predict(state, model_input(data.info, x))
    if data.info.task == "binary":
        p = jax.nn.sigmoid(logits[:, 0])
        want = np.stack([1 - p, p], axis=-1)
    else:
        want = jax.nn.softmax(logits, axis=-1)
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("family", ["linear_housing", "rnn_adding"])
@settings(max_examples=3)
@given(batch=batch_sizes)
def test_regression_is_in_the_targets_units(exported, family, batch):
    state, data, path = exported(family)
    x = raw(data, batch)
    got = load(path)(x)["prediction"]
    want = data.info.unstandardise_targets(adljax.predict(state, model_input(data.info, x)))
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


def test_house_prices_take_features_in_their_own_units(exported):
    _, data, path = exported("linear_housing")
    artifact = load(path)
    spec = artifact.entry.inputs[0]
    assert spec.dtype == "float32"
    assert "area_m2" in spec.description
    assert artifact.manifest["feature_names"] == list(data.info.feature_names)
    mean = np.asarray(data.info.extras["feature_mean"], np.float32)
    assert np.isfinite(artifact(mean[None])["prediction"]).all()


def test_embed_equals_the_sown_features(exported):
    state, data, path = exported("cnn_digits")
    x = raw(data, 5)
    got = load(path).call("embed", x)["embedding"]
    features = adljax.representations.capture(state, model_input(data.info, x), ["features"])
    np.testing.assert_allclose(got, features["features"].reshape(5, -1), rtol=1e-5, atol=1e-6)


def test_a_linear_model_has_no_embedding(exported):
    _, _, path = exported("linear_housing")
    artifact = load(path)
    assert sorted(artifact.functions) == ["predict"]
    with pytest.raises(ValueError, match="no function 'embed'"):
        artifact.call("embed", np.zeros((1, 4), np.float32))


@settings(max_examples=3)
@given(batch=st.integers(min_value=1, max_value=6))
def test_detections_equal_detect(exported, batch):
    state, data, path = exported("detector_shapes")
    x = raw(data, batch)
    got = load(path)(x)
    want = detect(state, model_input(data.info, x))
    assert got["valid"].any(), "the fixture's detector should find boxes"
    np.testing.assert_array_equal(got["valid"], want["valid"])
    np.testing.assert_array_equal(got["classes"], want["classes"])
    np.testing.assert_allclose(got["scores"], want["scores"], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(got["boxes"], want["boxes"], rtol=1e-5, atol=1e-3)


@pytest.mark.parametrize("family", ["gan_ring", "dcgan_digits"])
@settings(max_examples=3)
@given(batch=batch_sizes, seed=st.integers(0, 2**31 - 1))
def test_generator_samples_equal_sampling(exported, family, batch, seed):
    state, _, path = exported(family)
    artifact = load(path)
    z = artifact.latents(seed, batch)
    np.testing.assert_array_equal(
        z, sampling.latents(jax.random.key(seed), batch, state.model.latent_dim)
    )
    got = artifact(z)["samples"]
    np.testing.assert_allclose(got, sampling.generate(state, z), rtol=1e-5, atol=1e-6)


@settings(max_examples=3)
@given(batch=st.integers(min_value=1, max_value=5), length=st.integers(min_value=1, max_value=9))
def test_character_steps_equal_the_whole_sequence(exported, batch, length):
    state, data, path = exported("charlm")
    tokens = data.to_arrays().arrays["x"][:batch, :length]
    step = load(path).entry
    carry = step.initial_state(batch)
    want = jax.nn.softmax(adljax.predict(state, tokens), axis=-1)
    for t in range(length):
        out = step(tokens[:, t], *carry.values())
        carry = {name: out[name] for name in step.state}
        np.testing.assert_allclose(out["probabilities"], want[:, t], rtol=1e-5, atol=1e-6)


def test_text_generation_is_seeded_and_checked(exported):
    _, _, path = exported("charlm")
    artifact = load(path)
    text = artifact.generate_text("def ", length=12, temperature=0.8, seed=3)
    assert len(text) == 12
    assert set(text) <= set(artifact.manifest["vocabulary"])
    assert text == artifact.generate_text("def ", length=12, temperature=0.8, seed=3)
    with pytest.raises(ValueError, match="does not know"):
        artifact.generate_text("\x00", length=3)
    with pytest.raises(ValueError, match="temperature"):
        artifact.generate_text("def", length=3, temperature=0.0)
    with pytest.raises(ValueError, match="language_model"):
        load(exported("gan_ring")[2]).generate_text("a", length=1)


def test_the_manifest_describes_the_artifact(exported):
    _, data, path = exported("cnn_digits")
    manifest = json.loads((path / "manifest.json").read_text())
    assert manifest["family"] == "classifier"
    assert manifest["entry"] == "predict"
    assert manifest["class_names"] == list(data.info.class_names)
    assert manifest["model"]["name"] == "cnn"
    assert manifest["dataset"]["info"] == data.info.to_dict()
    assert {"jax", "jaxlib", "flax", "adljax"} <= set(manifest["versions"])
    (image,) = manifest["functions"]["predict"]["inputs"]
    assert image == {
        "name": "image",
        "shape": ["batch", 8, 8, 1],
        "dtype": "uint8",
        "description": image["description"],
        "low": 0,
        "high": 255,
    }
    (out,) = manifest["functions"]["predict"]["outputs"]
    assert out["shape"] == ["batch", 10]
    assert out["dtype"] == "float32"
    assert sorted(manifest["files"]) == sorted(
        p.name for p in path.iterdir() if p.name != "manifest.json"
    )


def test_one_file_for_every_platform_runs_here(tmp_path):
    state, data = build_state("mlp_xor")
    path = export(state, tmp_path / "e", info=data.info)
    artifact = load(path)
    assert artifact.manifest["platforms"] == ["cpu", "cuda", "tpu"]
    for batch in (1, 7, 256):
        assert artifact(np.zeros((batch, 2), np.float32))["probabilities"].shape == (batch, 2)


def _copy(path, tmp_path):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(path, copy)
    return copy


@pytest.mark.parametrize("file", ["weights.npz", "predict.jaxexport"])
def test_a_flipped_byte_is_refused(exported, tmp_path, file):
    copy = _copy(exported("mlp_digits")[2], tmp_path)
    blob = bytearray((copy / file).read_bytes())
    blob[len(blob) // 2] ^= 0x01
    (copy / file).write_bytes(bytes(blob))
    with pytest.raises(ArtifactError, match=f"{file}.*damaged"):
        load(copy)


def test_truncated_deleted_and_foreign_files_are_refused(exported, tmp_path):
    copy = _copy(exported("mlp_digits")[2], tmp_path)
    weights = copy / "weights.npz"
    weights.write_bytes(weights.read_bytes()[:100])
    with pytest.raises(ArtifactError, match="damaged"):
        load(copy)
    weights.unlink()
    with pytest.raises(ArtifactError, match=r"missing 'weights\.npz'"):
        load(copy)
    (copy / "manifest.json").write_text("{not json")
    with pytest.raises(ArtifactError, match="not valid JSON"):
        load(copy)
    with pytest.raises(ArtifactError, match="not an adljax export"):
        load(tmp_path / "nothing")


def test_bad_inputs_are_refused_with_their_name(exported):
    artifact = load(exported("cnn_digits")[2])
    good = np.zeros((2, 8, 8, 1), np.uint8)
    cases = {
        "must have shape \\(N, 8, 8, 1\\), got \\(2, 8, 8\\)": good[..., 0],
        "must hold integers .* got dtype float32": good.astype(np.float32),
        "must hold integers .* got dtype <U1": np.full((1, 8, 8, 1), "a"),
        "must be <= 255, got a value 256": good.astype(np.int64) + 256,
        "must be >= 0": good.astype(np.int64) - 1,
        "has batch size 0": good[:0],
        "is not a rectangular array": [[[[0]] * 8] * 8, [[[0]] * 8] * 7],
    }
    for message, value in cases.items():
        with pytest.raises(ValueError, match=f"input 'image' {message}"):
            artifact(value)
    floats = load(exported("linear_housing")[2])
    with pytest.raises(ValueError, match="NaN or infinite"):
        floats(np.full((1, 4), np.nan, np.float32))
    step = load(exported("charlm")[2]).entry
    carry = step.initial_state(3)
    with pytest.raises(ValueError, match="has batch size 3; expected 2"):
        step(np.zeros(2, np.int32), *carry.values())


def test_export_refuses_before_writing(exported, tmp_path):
    state, data, path = exported("mlp_xor")
    before = sorted(p.name for p in path.iterdir())
    with pytest.raises(ValueError, match="exists"):
        export(state, path, info=data.info)
    assert sorted(p.name for p in path.iterdir()) == before
    with pytest.raises(ValueError, match="needs `info`"):
        export(state, tmp_path / "a")
    with pytest.raises(ValueError, match="platforms"):
        export(state, tmp_path / "b", info=data.info, platforms=("rocm",))
    ensemble = adljax.create_ensemble(
        state.model, adljax.create_optimizer("adam", 1e-3), np.zeros((1, 2)), jax.random.key(0), 2
    )
    with pytest.raises(ValueError, match="ensemble"):
        export(ensemble, tmp_path / "c", info=data.info)
    assert sorted(os.listdir(tmp_path)) == []


def test_loading_needs_neither_flax_nor_the_models(exported):
    _, data, path = exported("cnn_digits")
    np.save(path.parent / "x.npy", raw(data, 3))
    script = textwrap.dedent(
        f"""
        import sys
        import numpy as np
        import adljax.serving
        artifact = adljax.serving.load({str(path)!r})
        print(artifact(np.load({str(path.parent / "x.npy")!r}))["probabilities"].shape)
        banned = ("flax", "optax", "orbax", "adljax.models", "adljax.training")
        print(sorted(m for m in sys.modules if m.startswith(banned)))
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    )
    assert result.stdout.split("\n")[:2] == ["(3, 10)", "[]"]
