"""Representation learning in a ConvNet: what its layers compute, and what they cluster into.

Synopsis::

    python examples/convnet_representations.py                  # PNGs in a new temp directory
    python examples/convnet_representations.py views/           # PNGs in views/

Expected (about 34 s on 2 busy CPU cores, 18 s with ``OMP_NUM_THREADS=1``, which keeps
scikit-learn's k-means and t-SNE threads from fighting over them): k-means on the 359 test
digits recovers the classes with ARI 0.460 from raw pixels and 0.975 from the trained CNN's
256 features (NMI 0.626 and 0.980); 98% of a digit's 8 nearest neighbours in feature space
share its class, 86% in pixel space.

A ``SimpleCNN`` with batch norm (``(B, 8, 8, 1) -> stage_0 (B, 4, 4, 32) -> stage_1 (B, 2, 2,
64) -> features (B, 256) -> (B, 10)``) trains on digits for 12 epochs. The model *sows* each
stage's output and the head's input into the ``intermediates`` collection, and
``adljax.representations.capture`` runs it in eval mode over any inputs and returns any of
those layers (or any submodule's output, e.g. ``"conv_0"``) as NumPy arrays. The
representations are then compared without labels: k-means with 10 clusters on each
(standardised) representation, scored against the true classes by the adjusted Rand index
(ARI: 1 perfect, about 0 for chance) and normalised mutual information (NMI). The same
network untrained is the control: its features are a random function of the pixels.

Written to the output directory: the first conv layer's 32 filters, the feature maps of one
test digit at both stages, PCA and t-SNE projections of the learned features coloured by
class, and a test digit with its nearest neighbours in feature space.
"""

import sys
import tempfile
from pathlib import Path

import jax
import numpy as np

import adljax
from adljax import plots
from adljax import representations as rep

LAYERS = ("stage_0", "stage_1", "features")


def main(output_dir: str | None = None, epochs: int = 12, tsne: bool = True) -> dict:
    """Trains the CNN, captures and scores its layers, writes the PNGs; returns scores and paths.

    Args:
        output_dir: where to write the PNGs (created if needed; existing files are replaced);
            default a new temporary directory, which is kept so the files can be opened.
        epochs: training epochs.
        tsne: also write the t-SNE projection (a few seconds).
    """
    views = Path(output_dir or tempfile.mkdtemp(prefix="adljax_convnet_representations_"))
    train, test = adljax.data.load("digits", "train"), adljax.data.load("digits", "test")
    images, labels = test.arrays["x"], test.arrays["y"]  # (359, 8, 8, 1), (359,)

    model = adljax.models.SimpleCNN(num_outputs=10, batch_norm=True)
    tx = adljax.create_optimizer("adam", 3e-3)
    untrained = adljax.create_train_state(model, tx, train.arrays["x"][:1], jax.random.key(0))
    # One compiled call per batch: faster than a whole-epoch scan for convs on a CPU.
    result = adljax.fit(
        untrained,
        train,
        task="classification",
        epochs=epochs,
        batch_size=64,
        eval_data=test,
        progress=False,
    )
    state = result.state
    accuracy = result.history[-1]["eval"]["accuracy"]
    print(f"SimpleCNN (batch norm), {epochs} epochs: test accuracy {accuracy:.4f}")

    # Any layer, by name: the values the model sows, or a submodule's output such as "conv_0".
    captured = rep.capture(state, images, list(LAYERS))
    for name, value in captured.items():
        print(f"  capture {name!r}: {value.shape}")
    random_features = rep.capture(untrained, images, ["features"])["features"]

    # k-means with 10 clusters on each representation against the true digit classes.
    scores = {"raw pixels": rep.cluster_scores(images, labels)}
    scores["untrained features"] = rep.cluster_scores(random_features, labels)
    scores.update(
        {f"trained {name}": rep.cluster_scores(captured[name], labels) for name in LAYERS}
    )
    compared = rep.compare_representations(images, captured["features"], labels)
    assert compared["learned"] == scores["trained features"]  # the same k-means, same seed
    print(f"\nk-means (10 clusters) on the {len(labels)} test digits against their classes")
    print(f"{'representation':20s} {'dims':>5s} {'ARI':>6s} {'NMI':>6s}")
    dims = {"raw pixels": images[0].size, "untrained features": random_features.shape[1]}
    dims.update({f"trained {name}": captured[name][0].size for name in LAYERS})
    for name, score in scores.items():
        print(f"{name:20s} {dims[name]:5d} {score['ari']:6.3f} {score['nmi']:6.3f}")

    # Nearest neighbours (cosine distance): how many of each test digit's 8 nearest other
    # test digits share its class, in pixel space and in feature space?
    spaces = {"pixels": images, "features": captured["features"]}
    neighbours = {
        space: np.stack([rep.nearest_neighbours(v, i, k=8) for i in range(len(labels))])
        for space, v in spaces.items()
    }  # (359, 8) indices, nearest first
    agreement = {space: labels[n] == labels[:, None] for space, n in neighbours.items()}
    same_class = {space: float(a.mean()) for space, a in agreement.items()}
    print(
        f"\nof the 8 nearest neighbours of a test digit, same class: {same_class['pixels']:.3f} "
        f"in pixel space, {same_class['features']:.3f} in feature space"
    )
    # The example shown: the first test digit with fewer than half its pixel neighbours right.
    query = int(np.flatnonzero(agreement["pixels"].mean(axis=1) < 0.5)[0])
    print(
        f"test digit {query} (a {labels[query]}): neighbours' classes "
        f"{labels[neighbours['pixels'][query]].tolist()} by pixels, "
        f"{labels[neighbours['features'][query]].tolist()} by features"
    )

    # The views, as PNGs.
    paths = {
        "filters": plots.plot_filters(
            state.params["conv_0"]["kernel"], views / "filters.png", overwrite=True
        ),
        "feature_maps": plots.plot_feature_maps(
            {name: captured[name][query] for name in ("stage_0", "stage_1")},
            views / "feature_maps.png",
            overwrite=True,
        ),
        "embedding_pca": plots.plot_embedding(
            rep.pca(captured["features"]),
            labels,
            views / "embedding_pca.png",
            title="trained CNN features of the test digits (PCA)",
            overwrite=True,
        ),
        "pixels_pca": plots.plot_embedding(
            rep.pca(images),
            labels,
            views / "pixels_pca.png",
            title="raw pixels of the test digits (PCA)",
            overwrite=True,
        ),
        "neighbours": plots.plot_neighbours(
            images, query, neighbours["features"][query], views / "neighbours.png", overwrite=True
        ),
        "neighbours_pixels": plots.plot_neighbours(
            images,
            query,
            neighbours["pixels"][query],
            views / "neighbours_pixels.png",
            overwrite=True,
        ),
    }
    if tsne:
        paths["embedding_tsne"] = plots.plot_embedding(
            rep.tsne(captured["features"], seed=0),
            labels,
            views / "embedding_tsne.png",
            title="trained CNN features of the test digits (t-SNE)",
            overwrite=True,
        )
    print(f"\nwrote {', '.join(p.name for p in paths.values())} to {views}")
    return {
        "accuracy": accuracy,
        "shapes": {name: value.shape for name, value in captured.items()},
        "scores": scores,
        "compared": compared,
        "neighbours_same_class": same_class,
        "query": query,
        "query_neighbours": {space: n[query] for space, n in neighbours.items()},
        "paths": paths,
    }


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else None)
