"""Representations: capturing any layer, PCA and t-SNE, clustering scores, nearest neighbours,
and the lesson's property: a trained network's hidden layer clusters digits better than pixels."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from sklearn.datasets import make_blobs
from sklearn.decomposition import PCA
from threadpoolctl import threadpool_limits

from adljax import representations as rep
from adljax.data import load
from adljax.inference import InferenceState
from adljax.models import MLP
from adljax.training import create_optimizer, create_train_state, fit


@pytest.fixture(scope="module")
def digits():
    return load("digits", "train"), load("digits", "test")


@pytest.fixture(scope="module")
def x(digits):
    return digits[1].arrays["x"][:50]  # (50, 8, 8, 1)


@pytest.fixture(scope="module")
def mlp_state(digits):
    model = MLP(hidden_sizes=(16, 8), num_outputs=10)
    return create_train_state(
        model, create_optimizer("adam", 1e-3), digits[0].arrays["x"][:1], jax.random.key(0)
    )


TRACES: list[int] = []


class _Block(nn.Module):
    """Conv + ReLU (sown inside the block) + 2x2 max pool."""

    @nn.compact
    def __call__(self, x):
        h = nn.relu(nn.Conv(4, (3, 3), name="conv")(x))
        self.sow("intermediates", "pre_pool", h)
        return nn.max_pool(h, (2, 2), strides=(2, 2))


class _TinyConvNet(nn.Module):
    """A ConvNet with the contract of adljax's ConvNets (``stage_{i}`` and ``features`` sown),
    a value sown inside a submodule, a module called twice and a sown value without batch axis.
    """

    @nn.compact
    def __call__(self, x, *, train: bool):
        TRACES.append(1)  # runs once per trace
        h = _Block(name="block")(x)
        self.sow("intermediates", "stage_0", h)
        features = h.reshape(h.shape[0], -1)
        self.sow("intermediates", "features", features)
        self.sow("intermediates", "mean_activation", jnp.mean(h))
        shared = nn.Dense(3, name="shared")
        return shared(features) - shared(2 * features)


@pytest.fixture(scope="module")
def conv_state(x):
    return create_train_state(
        _TinyConvNet(), create_optimizer("sgd", 0.1), x[:1], jax.random.key(1)
    )


def test_capture_equals_the_models_own_sown_values(mlp_state, x):
    _, collections = mlp_state.model.apply(
        mlp_state.variables, x, train=False, mutable=["intermediates"]
    )
    captured = rep.capture(mlp_state, x)
    assert list(captured) == ["hidden_0", "hidden_1"]
    for name, value in captured.items():
        assert value.shape == (50, {"hidden_0": 16, "hidden_1": 8}[name])
        np.testing.assert_allclose(value, collections["intermediates"][name][0], atol=1e-6)


def test_capture_does_not_depend_on_the_batch_size(mlp_state, x):
    layers = ["hidden_1", "head"]
    small, whole = (
        rep.capture(mlp_state, x, layers, batch_size=7),
        rep.capture(mlp_state, x, layers, batch_size=1000),
    )
    for name in layers:
        np.testing.assert_allclose(small[name], whole[name], atol=1e-6)


def test_capture_any_submodule_output_equals_the_manual_matmul(mlp_state, x):
    dense = rep.capture(mlp_state, x, ["dense_0"])["dense_0"]
    params = mlp_state.params["dense_0"]
    expected = x.reshape(len(x), -1) @ np.asarray(params["kernel"]) + np.asarray(params["bias"])
    np.testing.assert_allclose(dense, expected, atol=1e-5)


def test_capture_runs_in_eval_mode_from_an_inference_state(digits, x):
    model = MLP(hidden_sizes=(8,), dropout_rate=0.5, batch_norm=True)
    train_state = create_train_state(
        model, create_optimizer("adam", 1e-3), x[:1], jax.random.key(2)
    )
    state = InferenceState(
        params=train_state.params, model_state=train_state.model_state, model=model
    )
    _, collections = model.apply(state.variables, x, train=False, mutable=["intermediates"])
    first, again = rep.capture(state, x, ["hidden_0"]), rep.capture(state, x, ["hidden_0"])
    np.testing.assert_array_equal(first["hidden_0"], again["hidden_0"])
    np.testing.assert_allclose(
        first["hidden_0"], collections["intermediates"]["hidden_0"][0], atol=1e-6
    )


def test_capture_names_every_layer_of_any_linen_model(conv_state, x):
    sown = rep.capture(conv_state, x)
    assert list(sown) == ["block/pre_pool", "stage_0", "features"]  # execution order
    assert sown["block/pre_pool"].shape == (50, 8, 8, 4)
    pooled = sown["block/pre_pool"].reshape(50, 4, 2, 4, 2, 4).max(axis=(2, 4))
    np.testing.assert_allclose(sown["stage_0"], pooled)
    np.testing.assert_allclose(sown["features"], sown["stage_0"].reshape(50, -1))

    outputs = rep.capture(conv_state, x, ["block", "block/conv", "shared[0]", "shared[1]"])
    np.testing.assert_allclose(outputs["block"], sown["stage_0"])
    np.testing.assert_allclose(np.maximum(outputs["block/conv"], 0), sown["block/pre_pool"])
    bias = np.asarray(conv_state.params["shared"]["bias"])
    np.testing.assert_allclose(
        outputs["shared[1]"] - bias, 2 * (outputs["shared[0]"] - bias), rtol=1e-5, atol=1e-5
    )


def test_capture_compiles_once_for_all_batches(conv_state, x):
    TRACES.clear()
    rep.capture(conv_state, x, ["stage_0"], batch_size=7)  # 8 batches, the last one padded
    assert len(TRACES) <= 3  # 2 shape-only probes to find the layers + at most 1 compilation


@pytest.mark.parametrize(
    ("layers", "message"),
    [
        (["nope"], r"unknown layer\(s\) \['nope'\].*'stage_0'.*'block/conv'"),
        (["mean_activation"], r"\['mean_activation'\].* no batch axis"),
        ("stage_0", r"`layers` must be a sequence"),
        ([], r"`layers` is empty"),
    ],
)
def test_capture_rejects_bad_layers(conv_state, x, layers, message):
    with pytest.raises(ValueError, match=message):
        rep.capture(conv_state, x, layers)


@pytest.mark.parametrize(
    ("inputs", "kwargs", "message"),
    [
        (np.zeros((0, 8, 8, 1), np.float32), {}, r"`x` must be a non-empty batch"),
        (np.full((3, 8, 8, 1), np.nan, np.float32), {}, r"`x` contains NaN"),
        (np.zeros((3, 8, 8, 1), np.float32), {"batch_size": 0}, r"`batch_size`"),
    ],
)
def test_capture_rejects_bad_inputs(mlp_state, inputs, kwargs, message):
    with pytest.raises(ValueError, match=message):
        rep.capture(mlp_state, inputs, **kwargs)


def test_capture_rejects_an_object_without_a_model(x):
    with pytest.raises(ValueError, match=r"`state` must have a Linen `.model`"):
        rep.capture(object(), x)


def _singular_values(data: np.ndarray) -> np.ndarray:
    return np.linalg.svd(data - data.mean(axis=0), compute_uv=False)


@given(
    num=st.integers(3, 25),
    dim=st.integers(2, 8),
    components=st.integers(1, 8),
    seed=st.integers(0, 2**31 - 1),
)
def test_pca_matches_scikit_learn_up_to_sign(num, dim, components, seed):
    components = min(components, num - 1, dim)  # beyond N - 1 a component is arbitrary
    data = np.random.default_rng(seed).normal(size=(num, dim)) * 2.0 ** -np.arange(dim)
    values = _singular_values(data)[: components + 1]
    assume(np.all(-np.diff(values) > 1e-3 * values[0]))  # distinct, so components are unique
    ours = rep.pca(data, components)
    theirs = PCA(n_components=components, svd_solver="full").fit_transform(data)
    assert ours.shape == (num, components)
    signs = np.sign(np.sum(ours * theirs, axis=0))
    np.testing.assert_allclose(ours * signs, theirs, atol=1e-5 * (1 + np.abs(theirs).max()))
    variances = ours.astype(np.float64).var(axis=0)
    assert np.all(np.diff(variances) <= 1e-6 * variances[0])


def test_pca_flattens_images_and_checks_n_components(x):
    assert rep.pca(x).shape == (50, 2)
    with pytest.raises(ValueError, match=r"`n_components` must be at most min\(N, D\) = 3"):
        rep.pca(np.ones((3, 5)), 4)


def test_tsne_embeds_and_clamps_perplexity():
    points, _ = make_blobs(n_samples=30, n_features=5, centers=3, random_state=0)
    # One OpenMP thread: on a busy 2-core machine scikit-learn's spinning threads make this
    # 30-point fit take 5-20 s instead of 0.1 s.
    with threadpool_limits(1, user_api="openmp"):
        embedding = rep.tsne(points, seed=0)
        np.testing.assert_array_equal(embedding, rep.tsne(points, seed=0))
        assert rep.tsne(points[:5], perplexity=30.0).shape == (5, 2)
    assert embedding.shape == (30, 2)


def test_perfectly_separated_blobs_score_one():
    points, labels = make_blobs(
        n_samples=300,
        n_features=4,
        centers=4,
        cluster_std=0.1,
        center_box=(-20, 20),
        random_state=0,
    )
    assert rep.cluster_scores(points, labels) == {
        "ari": pytest.approx(1.0),
        "nmi": pytest.approx(1.0),
    }


def test_random_labels_score_near_zero():
    rng = np.random.default_rng(0)
    scores = rep.cluster_scores(rng.normal(size=(600, 6)), rng.integers(0, 5, 600))
    assert abs(scores["ari"]) < 0.02
    assert scores["nmi"] < 0.05


def test_cluster_scores_flattens_and_takes_n_clusters():
    points, labels = make_blobs(n_samples=60, n_features=4, centers=3, random_state=1)
    scores = rep.cluster_scores(points.reshape(60, 2, 2), labels, n_clusters=3, seed=3)
    assert set(scores) == {"ari", "nmi"}


@pytest.mark.parametrize(
    ("features", "labels", "message"),
    [
        (np.ones((0, 3)), np.ones(0), r"`features` must be a non-empty"),
        (np.ones(5), np.ones(5), r"`features` must be a non-empty"),
        (np.ones((5, 3)), np.ones(4), r"`labels` must have shape \(5,\)"),
        (np.full((5, 3), np.nan), np.ones(5), r"`features` contains NaN"),
        (np.ones((5, 3)), np.array([0, 1, np.nan, 1, 0]), r"`labels` contains NaN"),
    ],
)
def test_cluster_scores_rejects_bad_input(features, labels, message):
    with pytest.raises(ValueError, match=message):
        rep.cluster_scores(features, labels)


def test_cluster_scores_rejects_too_many_clusters():
    with pytest.raises(ValueError, match=r"`n_clusters` must be at most N = 3"):
        rep.cluster_scores(np.eye(3), [0, 1, 2], n_clusters=4)


def test_compare_representations_scores_both_and_checks_lengths():
    points, labels = make_blobs(n_samples=40, n_features=3, centers=2, random_state=0)
    scores = rep.compare_representations(points, points[:, :2], labels)
    assert set(scores) == {"raw", "learned"}
    assert set(scores["raw"]) == set(scores["learned"]) == {"ari", "nmi"}
    with pytest.raises(ValueError, match=r"`raw` and `learned` must hold the same N"):
        rep.compare_representations(points, points[:30], labels)


NEIGHBOUR_FEATURES = np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [-1.0, 0.0], [2.0, 0.0]])


@pytest.mark.parametrize(
    ("query", "k", "metric", "expected"),
    [
        (0, 4, "cosine", [4, 1, 2, 3]),
        (0, 4, "euclidean", [1, 4, 2, 3]),
        (np.array([1.0, 0.0]), 2, "cosine", [0, 4]),  # a tie goes to the lower index
        (np.array([1.0, 0.0]), 2, "euclidean", [0, 1]),
    ],
)
def test_nearest_neighbours(query, k, metric, expected):
    found = rep.nearest_neighbours(NEIGHBOUR_FEATURES, query, k=k, metric=metric)
    np.testing.assert_array_equal(found, expected)
    assert found.dtype == np.int64


@pytest.mark.parametrize(
    ("query", "k", "metric", "message"),
    [
        (0, 5, "cosine", r"`k` must be at most 4"),
        (5, 1, "cosine", r"`query` index must be in \[0, 5\)"),
        (np.ones(3), 1, "cosine", r"`query` must be an index or a finite vector of 2"),
        (0, 1, "manhattan", r"unknown metric 'manhattan'"),
        (0, 0, "cosine", r"`k` must be a positive integer"),
    ],
)
def test_nearest_neighbours_rejects_bad_input(query, k, metric, message):
    with pytest.raises(ValueError, match=message):
        rep.nearest_neighbours(NEIGHBOUR_FEATURES, query, k=k, metric=metric)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_trained_hidden_layer_clusters_digits_better_than_pixels(digits, seed):
    # Measured on the 359 test digits (k-means, 10 clusters, standardised features): pixels
    # ARI 0.46 / NMI 0.63; hidden_0 after 15 epochs ARI 0.85-0.86 / NMI 0.89-0.90 (seeds 0-2).
    train, test = digits
    state = create_train_state(
        MLP(hidden_sizes=(64,)),
        create_optimizer("adam", 1e-2),
        train.arrays["x"][:1],
        jax.random.key(seed),
    )
    state = fit(
        state,
        train,
        task="classification",
        epochs=15,
        batch_size=64,
        seed=seed,
        progress=False,
    ).state
    x, y = test.arrays["x"], test.arrays["y"]
    hidden = rep.capture(state, x, ["hidden_0"])["hidden_0"]
    scores = rep.compare_representations(x, hidden, y)
    assert scores["learned"]["ari"] > scores["raw"]["ari"] + 0.1
    assert scores["learned"]["nmi"] > scores["raw"]["nmi"] + 0.1
