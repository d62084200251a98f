"""Smoke tests of the scripts in ``examples/``: each ``main()`` runs with small settings and
its returned numbers show the lesson's point."""

import importlib.util
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def load_example(name: str) -> ModuleType:
    """Imports ``examples/<name>.py`` as a module (the folder is not a package)."""
    spec = importlib.util.spec_from_file_location(f"adljax_example_{name}", EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_linear_regression_gradient_descent_reaches_least_squares():
    out = load_example("linear_regression").main(gd_epochs=100, sgd_epochs=5)
    np.testing.assert_allclose(out["gd_coefficients"], out["lstsq_coefficients"], atol=1e-5)
    assert out["sgd_gap"] < 0.05
    # With 400 houses and noise std 0.11 (standardised), least squares recovers the true law.
    np.testing.assert_allclose(out["lstsq_coefficients"], out["true_coefficients"], atol=0.05)
    assert out["test_r2"] > 0.98


def test_activations_nonlinearity_separates_the_spirals():
    accuracy = load_example("activations").main(epochs=30)
    assert set(accuracy) == {"identity", "sigmoid", "tanh", "relu"}
    assert accuracy["identity"] < 0.7  # one affine map cannot separate the spirals
    assert accuracy["relu"] > 0.9
    assert accuracy["relu"] > accuracy["identity"] + 0.25


def test_losses_and_gradient_descent_hand_step_matches_library_step():
    out = load_example("losses_and_gradient_descent").main(steps=30, sgd_epochs=3)
    np.testing.assert_allclose(out["cross_entropy"], out["cross_entropy_by_hand"], rtol=1e-6)
    np.testing.assert_allclose(out["binary_cross_entropy"], [0.0486, 1.3133, 0.6931], atol=1e-4)
    assert out["mse"] == pytest.approx(0.17, abs=1e-6)
    assert out["one_step_difference"] < 1e-6
    assert out["grad_norm_metric"] == pytest.approx(out["grad_norm"], rel=1e-6)
    loss = out["final_loss_by_learning_rate"]
    assert loss[0.5] < 1e-6 < loss[0.1] < loss[0.01]  # faster with a larger rate ...
    assert loss[1.05] > loss[0.01]  # ... until it diverges
    rates = out["sgd_learning_rates"]
    assert rates[0] == pytest.approx(0.3) and np.all(np.diff(rates) < 0)
    assert out["sgd_w"] == pytest.approx(2.0, abs=0.2)
    assert out["sgd_b"] == pytest.approx(1.0, abs=0.2)


def test_dropout_batchnorm_modes():
    out = load_example("dropout_batchnorm").main(epochs=5, hidden_sizes=(32,))
    for label, accuracies in out["variants"].items():
        assert accuracies["test_accuracy"] > 0.7, label
    assert out["dropout_eval_difference"] == 0.0
    assert out["dropout_train_difference"] > 0.1
    assert out["batchnorm_eval_dependence"] == 0.0
    assert out["batchnorm_train_dependence"] > 1e-3
    assert out["batchnorm_running_mean_change"] > 0.0


def test_checkpoints_resume_exactly_and_predict_from_the_directory(tmp_path):
    out = load_example("checkpoints").main(str(tmp_path), epochs=4)
    assert out["steps_after_stop"]  # something was saved before the stop
    assert out["resumed_epochs"] == [1, 2, 3, 4]
    assert out["bitwise_equal"]
    assert out["predict_accuracy"] == pytest.approx(out["evaluate"]["accuracy"], abs=1e-6)
    assert out["predict_accuracy"] == pytest.approx(out["fit_accuracy"], abs=1e-6)
    assert out["predict_accuracy"] > 0.7


def test_xor_needs_a_hidden_layer_and_its_representation_is_separable():
    out = load_example("xor_representation").main()
    assert out["linear_accuracy"] <= 0.75
    assert out["mlp_accuracy"] == 1.0
    assert out["hidden"].shape == (4, 8)
    assert out["raw_probe_accuracy"] <= 0.75
    assert out["hidden_probe_accuracy"] == 1.0


def test_ensembles_report_members_mean_and_spread():
    out = load_example("ensembles").main(epochs=3, learning_rates=(1e-3, 1e-2))
    members = out["member_accuracy"]
    assert len(members) == 2
    assert out["mean_accuracy"] == pytest.approx(np.mean(members), abs=1e-6)
    assert out["accuracy_std"] == pytest.approx(np.std(members), abs=1e-6)
    assert out["ensemble_accuracy"] > 0.8


# ----- Day 2 ------------------------------------------------------------------------------

# Parameter counts of tests/models/test_cnn.py and tests/models/test_resnet.py.
DAY2_FAMILY_PARAMETERS = {
    "SimpleCNN, 28x28x1": 824_458,
    "LeNet5, 28x28x1": 61_706,
    "VGG, 8x8x1": 288_170,
    "ResNet18 cifar stem, 32x32x3": 11_173_962,
    "ResNet18 imagenet, 224x224x3": 11_689_512,
    "ResNet34 imagenet, 224x224x3": 21_797_672,
    "ResNet50 imagenet, 224x224x3": 25_557_032,
}


@pytest.mark.slow  # ~40-60 s: run by `.ci/run` with `-m slow`
def test_convnets_cnn_beats_the_mlp_and_augmentation_handles_moved_digits():
    out = load_example("convnets").main(epochs=3)
    assert out["family_parameters"] == DAY2_FAMILY_PARAMETERS
    # Digits, batch norm: convs 3*3*1*32 + 3*3*32*64 without bias, 2 x (32 + 64) scale and
    # shift, dense 256*256 + 256, head 256*10 + 10; the MLP 64*128 + 128*128 + 2*2*128 + 1,290.
    assert out["parameters"] == {"cnn": 87_274, "mlp": 26_378}
    accuracy = out["accuracy"]
    assert accuracy["cnn"]["test_accuracy"] > 0.9
    assert accuracy["cnn"]["test_accuracy"] >= accuracy["mlp"]["test_accuracy"]
    for name in ("cnn", "mlp"):  # trained on moved digits, a model recognises moved digits
        augmented = accuracy[f"{name}, augmented"]["shifted_accuracy"]
        assert augmented > accuracy[name]["shifted_accuracy"] + 0.1, name
    assert out["augment_deterministic"]
    assert out["augment_moved_fraction"] > 0.5


def test_convnet_representations_learned_features_cluster_better_than_pixels(tmp_path):
    out = load_example("convnet_representations").main(str(tmp_path), epochs=4, tsne=False)
    assert out["accuracy"] > 0.9
    assert out["shapes"] == {
        "stage_0": (359, 4, 4, 32),
        "stage_1": (359, 2, 2, 64),
        "features": (359, 256),
    }
    scores = out["scores"]
    assert scores["raw pixels"] == out["compared"]["raw"]
    assert scores["trained features"] == out["compared"]["learned"]
    assert out["compared"]["learned"]["ari"] > out["compared"]["raw"]["ari"] + 0.2
    assert out["compared"]["learned"]["nmi"] > out["compared"]["raw"]["nmi"]
    assert scores["trained features"]["ari"] > scores["untrained features"]["ari"]
    same = out["neighbours_same_class"]
    assert same["features"] > same["pixels"]
    assert set(out["paths"]) == {
        "filters",
        "feature_maps",
        "embedding_pca",
        "pixels_pca",
        "neighbours",
        "neighbours_pixels",
    }
    for path in out["paths"].values():
        assert path.parent == tmp_path
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.slow  # ~40-60 s: run by `.ci/run` with `-m slow`
def test_transfer_learning_copies_the_backbone_freezes_and_imports_torch_weights(tmp_path):
    out = load_example("transfer_learning").main(
        str(tmp_path), pretrain_epochs=3, finetune_epochs=10, seeds=(0,)
    )
    report = out["report"]
    backbone = {
        f"params/{layer}/{name}"
        for layer, names in {
            "conv_0": ("kernel",),
            "bn_0": ("scale", "bias"),
            "conv_1": ("kernel",),
            "bn_1": ("scale", "bias"),
            "dense_0": ("kernel", "bias"),
        }.items()
        for name in names
    } | {f"batch_stats/bn_{i}/{s}" for i in (0, 1) for s in ("mean", "var")}
    assert set(report.copied) == backbone
    assert set(report.new) == {"params/head/kernel", "params/head/bias"}
    assert report.mismatched == () and report.unused == ()
    assert out["source_accuracy"] > 0.9
    for kind in ("scratch", "pretrained"):
        assert len(out["accuracy"][kind]) == 1 and out["accuracy"][kind][0] > 0.6, kind
    # The first block's parameters and running statistics, and nothing else, stay bitwise.
    assert out["frozen_unchanged"] == [
        "batch_stats/bn_0/mean",
        "batch_stats/bn_0/var",
        "params/bn_0/bias",
        "params/bn_0/scale",
        "params/conv_0/kernel",
    ]
    assert out["frozen_accuracy"] > 0.6
    assert out["discriminative_accuracy"] > 0.6
    torchvision = out["torchvision"]
    assert torchvision["path"].suffix == ".safetensors"
    assert torchvision["logits_shape"] == (4, 10)
    assert torchvision["same_layout"] and torchvision["same_running_var"]
    assert torchvision["stem_difference"] < 1e-4
    assert torchvision["head_left_out"]


def test_application_export_load_and_serve():
    out = load_example("application").main(epochs=1)
    assert out["max_difference"] < 1e-5
    assert out["served_classes"] == out["exported_classes"]
    assert out["bad_status"] == 422
    assert out["bad_field"] == "inputs"
    assert {"manifest.json", "weights.npz", "predict.jaxexport", "embed.jaxexport"} <= set(
        out["files"]
    )


def test_callbacks_save_gan_samples_stop_on_a_custom_metric_and_change_nothing(tmp_path):
    out = load_example("callbacks").main(
        str(tmp_path), gan_epochs=1, every_steps=10, epochs=8, target=0.6
    )
    # 1 epoch of 22 steps: a grid after steps 10 and 20, each a PNG.
    assert [path.name for path in out["grids"]] == ["step_000010.png", "step_000020.png"]
    assert all(path.read_bytes().startswith(b"\x89PNG") for path in out["grids"])
    metric = out["metric"]
    scores = metric["scores"]
    # It stopped at the first epoch whose score reached the target, and not before.
    assert metric["epochs_run"] == len(scores) < 8
    assert scores[-1] >= 0.6 and all(score < 0.6 for score in scores[:-1])
    assert "macro-F1" in metric["stop_reason"]
    assert metric["same_as_without_callbacks"]
    assert "metrics.csv" in metric["log_files"]
    assert any(name.startswith("events.out.tfevents") for name in metric["log_files"])
