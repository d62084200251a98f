"""Representations: capture any layer's activations, project them to 2-D, cluster and search them.

Synopsis::

    from adljax import representations as rep

    test = adljax.data.load("digits", "test")
    x, y = test.arrays["x"], test.arrays["y"]                  # (N, 8, 8, 1), (N,)
    acts = rep.capture(state, x, ["hidden_0", "dense_0"])      # {"hidden_0": (N, 64), ...}
    points = rep.pca(acts["hidden_0"])                         # (N, 2)
    rep.compare_representations(x, acts["hidden_0"], y)       # {"raw": {"ari", "nmi"}, ...}
    rep.nearest_neighbours(acts["hidden_0"], 0, k=5)           # (5,) indices, 0 excluded

Layer names are paths into the ``intermediates`` collection joined with ``"/"``: the values a
model ``sow``s (``"hidden_0"`` of ``MLP``, ``"features"`` and ``"stage_{i}"`` of the ConvNets,
``"block/attention"`` for a value sown inside submodule ``block``) and the output of every
submodule's ``__call__`` (``"dense_0"``, ``"block/conv"``), which Flax records under
``capture_intermediates=True``. A value sown, or a module called, ``k > 1`` times in one
forward pass is named ``"name[0]"`` ... ``"name[k-1]"``; a pytree output (a tuple, a dict)
appends each leaf's ``jax.tree_util.keystr``, e.g. ``"cell[1]"``.
"""

import functools
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

import flax.linen as nn
import jax
import numpy as np
from flax import traverse_util

from adljax._validate import check_choice, check_positive_int
from adljax.training.compilation import jit
from adljax.training.state import TrainState, ensemble_size
from adljax.typing import PyTree

_INTERMEDIATES = "intermediates"
_CALL = "__call__"
KMEANS_N_INIT = 10
"""k-means restarts in ``cluster_scores``: fixed, so scores depend only on the data and seed."""


class ModelState(Protocol):
    """Anything with a Linen ``model`` and its ``variables``: a TrainState or InferenceState."""

    @property
    def model(self) -> nn.Module: ...

    @property
    def variables(self) -> Mapping[str, PyTree]: ...


def _named_leaves(intermediates: Mapping[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """Flattens an ``intermediates`` collection to ``{layer name: array}`` in execution order.

    Returns the named leaves and the names of those that were sown (the rest are submodule
    outputs). The model's own output (``intermediates/__call__``) is left out: ``predict``
    gives it.
    """
    named: dict[str, Any] = {}
    sown: list[str] = []
    for path, calls in traverse_util.flatten_dict(dict(intermediates)).items():
        is_output = path[-1] == _CALL
        module_path = path[:-1] if is_output else path
        if not module_path:
            continue
        base = "/".join(module_path)
        calls = calls if isinstance(calls, tuple) else (calls,)  # a custom sow reduce_fn
        for i, value in enumerate(calls):
            call_name = base if len(calls) == 1 else f"{base}[{i}]"
            for subpath, leaf in jax.tree_util.tree_flatten_with_path(value)[0]:
                name = call_name + jax.tree_util.keystr(subpath)
                named[name] = leaf
                if not is_output:
                    sown.append(name)
    return named, sown


def _forward(model: nn.Module, variables: PyTree, x: jax.Array) -> tuple[dict[str, Any], list[str]]:
    """Eval-mode apply returning every intermediate ``{name: (B, ...)}`` and the sown names."""
    _, collections = model.apply(
        variables, x, train=False, mutable=[_INTERMEDIATES], capture_intermediates=True
    )
    return _named_leaves(collections.get(_INTERMEDIATES, {}))


def embedding(model: nn.Module, variables: PyTree, x: jax.Array) -> jax.Array:
    """The model's learned representation of ``x`` ``(B, ...)`` as ``(B, D)``, in eval mode.

    It is the value the model sows as ``features`` (the ConvNets' and sequence models' input
    to their head), else the last value it sows (an MLP's last hidden layer, a ResNet's last
    stage); feature maps ``(B, H, W, C)`` are averaged over space. Pure: runs under ``jit``
    and ``jax.export``.

    Raises:
        ValueError: the model sows no value with a batch axis (e.g. ``LinearRegression``).
    """
    _, collections = model.apply(variables, x, train=False, mutable=[_INTERMEDIATES])
    sown = _named_leaves(collections.get(_INTERMEDIATES, {}))[0]
    batched = {k: v for k, v in sown.items() if v.ndim >= 2 and v.shape[0] == x.shape[0]}
    if not batched:
        raise ValueError(f"{type(model).__name__} sows no representation to embed with")
    value = batched.get("features", list(batched.values())[-1])
    if value.ndim == 4:
        value = value.mean(axis=(1, 2))
    return value.reshape(value.shape[0], -1)


@functools.partial(jit, static_argnames=("model", "names"))
def _capture_batch(
    model: nn.Module, variables: PyTree, x: jax.Array, names: tuple[str, ...]
) -> dict[str, jax.Array]:
    """The named intermediates of one batch; compiled once per (model, names, batch shape)."""
    named, _ = _forward(model, variables, x)
    return {name: named[name] for name in names}


def _layer_names(
    model: nn.Module, variables: PyTree, x: np.ndarray
) -> tuple[list[str], list[str], list[str]]:
    """Names of the intermediates with a batch axis, the sown ones among them, and the names
    of those without a batch axis, each in execution order.

    Found from shapes alone (``jax.eval_shape`` at batch sizes 1 and 2): a value has a batch
    axis when its leading dimension follows the batch size.
    """
    found: list[tuple[dict, list[str]]] = []

    def shapes(size: int) -> dict[str, jax.ShapeDtypeStruct]:
        def probe(v: PyTree, xb: jax.Array) -> dict[str, jax.Array]:
            named, sown = _forward(model, v, xb)
            found.append((named, sown))  # trace-time record of the execution order
            return named

        spec = jax.ShapeDtypeStruct((size, *x.shape[1:]), x.dtype)
        return jax.eval_shape(probe, variables, spec)

    one, two = shapes(1), shapes(2)
    order, sown = list(found[0][0]), found[0][1]
    batched = [
        name
        for name in order
        if name in two
        and one[name].ndim >= 1
        and one[name].shape[0] == 1
        and two[name].shape == (2, *one[name].shape[1:])
    ]
    unbatched = [name for name in order if name not in batched]
    return batched, [name for name in sown if name in batched], unbatched


def _check_state(state: ModelState) -> tuple[nn.Module, dict[str, PyTree]]:
    """The model and its variables without stale intermediates, else ``ValueError``."""
    model, variables = getattr(state, "model", None), getattr(state, "variables", None)
    if not isinstance(model, nn.Module) or not isinstance(variables, Mapping):
        raise ValueError(
            "`state` must have a Linen `.model` and its `.variables` (a TrainState or an "
            f"InferenceState), got {type(state).__name__}"
        )
    if isinstance(state, TrainState) and ensemble_size(state) is not None:
        raise ValueError("`state` is an ensemble: pass one member (adljax.training.member)")
    return model, {k: v for k, v in variables.items() if k != _INTERMEDIATES}


def _check_layers(
    layers: Sequence[str] | None,
    batched: Sequence[str],
    sown: Sequence[str],
    unbatched: Sequence[str],
) -> tuple[str, ...]:
    """The requested layer names, validated; ``None`` means every sown one."""
    submodules = [name for name in batched if name not in sown]
    available = f"sown values {list(sown)}; submodule outputs {submodules}"
    if layers is None:
        if not sown:
            raise ValueError(
                f"the model sows no values with a batch axis; name `layers` from {available}"
            )
        return tuple(sown)
    if isinstance(layers, str) or not isinstance(layers, Sequence):
        raise ValueError(f"`layers` must be a sequence of layer names, e.g. [{layers!r}]")
    if not layers:
        raise ValueError("`layers` is empty: name at least one layer, or pass None")
    per_batch = [name for name in layers if name in unbatched]
    if per_batch:
        raise ValueError(
            f"layer(s) {per_batch} in `layers` have no batch axis (one value per forward pass), "
            "so they cannot be captured per example"
        )
    unknown = [name for name in layers if name not in batched]
    if unknown:
        raise ValueError(f"unknown layer(s) {unknown} in `layers`; available: {available}")
    return tuple(dict.fromkeys(layers))


def _check_batch(x: Any, name: str) -> np.ndarray:
    """``x`` as a non-empty ``(N, ...)`` array with finite values (floats as float32)."""
    x = np.asarray(x)
    if x.ndim == 0 or x.shape[0] == 0:
        raise ValueError(f"`{name}` must be a non-empty batch (N, ...), got shape {x.shape}")
    if np.issubdtype(x.dtype, np.floating):
        x = x.astype(np.float32)
        if not np.all(np.isfinite(x)):
            raise ValueError(f"`{name}` contains NaN or infinite values")
    return x


def capture(
    state: ModelState,
    x: Any,
    layers: Sequence[str] | None = None,
    *,
    batch_size: int = 256,
) -> dict[str, np.ndarray]:
    """Runs the model in eval mode (``train=False``) over ``x`` and returns layer activations.

    The model is never changed or copied: sown values come from ``mutable=["intermediates"]``
    and any submodule's output from Flax's ``capture_intermediates=True`` (see the module
    docstring for names). Inputs run in batches of ``batch_size`` (the last one padded by
    repeating its last example), through one compiled function that returns only the
    requested layers.

    Args:
        state: anything with ``.model`` and ``.variables`` (``TrainState``, ``InferenceState``).
        x: inputs ``(N, ...)`` as the model takes them, e.g. ``(N, 8, 8, 1)``.
        layers: layer names, e.g. ``["hidden_0", "dense_0"]``; ``None`` gives every value the
            model sows (those with a batch axis).
        batch_size: examples per compiled call.

    Returns:
        ``{name: np.ndarray (N, ...)}`` in the order of ``layers``.

    Raises:
        ValueError: for a bad ``state``, ``x``, ``batch_size`` or an unknown layer (listing the
            available names), before any compute.
    """
    model, variables = _check_state(state)
    check_positive_int(batch_size, "batch_size")
    x = _check_batch(x, "x")
    names = _check_layers(layers, *_layer_names(model, variables, x))
    num, size = x.shape[0], min(batch_size, x.shape[0])
    chunks: dict[str, list[np.ndarray]] = {name: [] for name in names}
    for start in range(0, num, size):
        chunk = x[start : start + size]
        padded = np.concatenate([chunk, np.repeat(chunk[-1:], size - len(chunk), axis=0)])
        outputs = jax.device_get(_capture_batch(model, variables, padded, names))
        for name in names:
            chunks[name].append(np.asarray(outputs[name])[: len(chunk)])
    return {name: np.concatenate(parts) for name, parts in chunks.items()}


def _check_features(features: Any, name: str = "features") -> np.ndarray:
    """``features`` ``(N, ...)`` flattened to a finite float64 ``(N, D)`` array with N, D > 0."""
    features = np.asarray(features)
    if features.ndim < 2 or features.shape[0] == 0 or features[0].size == 0:
        raise ValueError(
            f"`{name}` must be a non-empty array (N, D) or (N, ...), got shape {features.shape}"
        )
    if not (np.issubdtype(features.dtype, np.number) or features.dtype == bool):
        raise ValueError(f"`{name}` must be numeric, got dtype {features.dtype}")
    features = features.reshape(features.shape[0], -1).astype(np.float64)
    if not np.all(np.isfinite(features)):
        raise ValueError(f"`{name}` contains NaN or infinite values")
    return features


def _check_labels(labels: Any, num: int) -> np.ndarray:
    """``labels`` as a 1-D array of length ``num`` without NaN."""
    labels = np.asarray(labels)
    if labels.shape != (num,):
        raise ValueError(
            f"`labels` must have shape ({num},) to match the features, got {labels.shape}"
        )
    if np.issubdtype(labels.dtype, np.floating) and np.any(np.isnan(labels)):
        raise ValueError("`labels` contains NaN")
    return labels


def pca(features: Any, n_components: int = 2) -> np.ndarray:
    """Projects ``features`` onto their first principal components.

    Computed by SVD of the centred data (float64). Each component's sign is fixed so that its
    largest-magnitude loading is positive (scikit-learn's convention), so results are
    deterministic. Columns are in order of decreasing explained variance.

    Args:
        features: ``(N, D)``, or ``(N, ...)`` flattened to ``(N, D)``.
        n_components: number of components, at most ``min(N, D)``.

    Returns:
        float32 ``(N, n_components)``.
    """
    features = _check_features(features)
    check_positive_int(n_components, "n_components")
    if n_components > min(features.shape):
        raise ValueError(
            f"`n_components` must be at most min(N, D) = {min(features.shape)}, got {n_components}"
        )
    centred = features - features.mean(axis=0)
    u, s, vt = np.linalg.svd(centred, full_matrices=False)
    u, s, vt = u[:, :n_components], s[:n_components], vt[:n_components]
    signs = np.sign(vt[np.arange(n_components), np.argmax(np.abs(vt), axis=1)])
    signs[signs == 0] = 1.0
    return (u * (s * signs)).astype(np.float32)


def tsne(
    features: Any, n_components: int = 2, *, seed: int = 0, perplexity: float = 30.0
) -> np.ndarray:
    """A t-SNE embedding of ``features`` (scikit-learn ``TSNE``, PCA initialisation).

    Args:
        features: ``(N, D)``, or ``(N, ...)`` flattened; needs ``N >= 2``.
        n_components: embedding dimension (4 or more uses the exact, slow method).
        seed: the random state.
        perplexity: effective number of neighbours; clamped to ``N - 1`` for small ``N``.

    Returns:
        float32 ``(N, n_components)``.
    """
    from sklearn.manifold import TSNE  # imported here: scikit-learn takes ~1 s to import

    features = _check_features(features)
    check_positive_int(n_components, "n_components")
    if features.shape[0] < 2:
        raise ValueError(f"`features` needs at least 2 examples for t-SNE, got {features.shape[0]}")
    if not perplexity > 0:
        raise ValueError(f"`perplexity` must be > 0, got {perplexity!r}")
    embedding = TSNE(
        n_components=n_components,
        perplexity=min(float(perplexity), features.shape[0] - 1.0),
        init="pca",
        method="barnes_hut" if n_components < 4 else "exact",
        random_state=seed,
    ).fit_transform(features)
    return embedding.astype(np.float32)


def cluster_scores(
    features: Any, labels: Any, *, n_clusters: int | None = None, seed: int = 0
) -> dict[str, float]:
    """How well k-means clusters of ``features`` recover ``labels``.

    ``features`` are flattened to ``(N, D)`` and standardised (each dimension to zero mean and
    unit variance; constant dimensions become 0), so that no dimension dominates the Euclidean
    distances of k-means by its scale alone and raw inputs and learned features are scored
    alike. k-means runs ``KMEANS_N_INIT`` restarts from ``seed``.

    Args:
        features: ``(N, D)`` or ``(N, ...)``.
        labels: ``(N,)`` class labels.
        n_clusters: number of clusters; defaults to the number of distinct labels.
        seed: the k-means random state.

    Returns:
        ``{"ari": adjusted Rand index (1 perfect, about 0 chance), "nmi": normalised mutual
        information in [0, 1]}``.
    """
    from sklearn.cluster import KMeans  # imported here: scikit-learn takes ~1 s to import
    from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score
    from sklearn.preprocessing import StandardScaler

    features = _check_features(features)
    labels = _check_labels(labels, features.shape[0])
    if n_clusters is None:
        n_clusters = len(np.unique(labels))
    check_positive_int(n_clusters, "n_clusters")
    if n_clusters > features.shape[0]:
        raise ValueError(f"`n_clusters` must be at most N = {features.shape[0]}, got {n_clusters}")
    standardised = StandardScaler().fit_transform(features)
    clusters = KMeans(n_clusters=n_clusters, n_init=KMEANS_N_INIT, random_state=seed).fit_predict(
        standardised
    )
    return {
        "ari": float(adjusted_rand_score(labels, clusters)),
        "nmi": float(normalized_mutual_info_score(labels, clusters)),
    }


def compare_representations(
    raw: Any, learned: Any, labels: Any, *, n_clusters: int | None = None, seed: int = 0
) -> dict[str, dict[str, float]]:
    """``cluster_scores`` of the raw inputs and of a learned representation of them.

    Args:
        raw: inputs ``(N, ...)``, e.g. pixels ``(N, 8, 8, 1)``.
        learned: their representation ``(N, D)`` (or ``(N, ...)``), e.g. from ``capture``.
        labels: ``(N,)`` class labels.
        n_clusters: as in ``cluster_scores``.
        seed: as in ``cluster_scores``.

    Returns:
        ``{"raw": {"ari", "nmi"}, "learned": {"ari", "nmi"}}``.
    """
    raw_features = _check_features(raw, "raw")
    learned_features = _check_features(learned, "learned")
    if raw_features.shape[0] != learned_features.shape[0]:
        raise ValueError(
            f"`raw` and `learned` must hold the same N examples, got {raw_features.shape[0]} "
            f"and {learned_features.shape[0]}"
        )
    return {
        "raw": cluster_scores(raw_features, labels, n_clusters=n_clusters, seed=seed),
        "learned": cluster_scores(learned_features, labels, n_clusters=n_clusters, seed=seed),
    }


def nearest_neighbours(
    features: Any, query: int | Any, k: int = 5, metric: str = "cosine"
) -> np.ndarray:
    """Indices of the ``k`` rows of ``features`` nearest to a query, nearest first.

    Args:
        features: ``(N, D)`` or ``(N, ...)``.
        query: an example's index in ``[0, N)`` (that example is excluded from the result), or
            a query vector of ``D`` values.
        k: number of neighbours: at most ``N - 1`` for an index query, ``N`` for a vector.
        metric: ``"cosine"`` (1 - cosine similarity; a zero vector is at distance 1 from all)
            or ``"euclidean"``.

    Returns:
        int64 ``(k,)``; ties go to the lower index.
    """
    features = _check_features(features)
    check_positive_int(k, "k")
    check_choice(metric, "metric", ("cosine", "euclidean"))
    num, dim = features.shape
    if isinstance(query, int | np.integer) and not isinstance(query, bool):
        if not 0 <= query < num:
            raise ValueError(f"`query` index must be in [0, {num}), got {query}")
        vector, exclude, limit = features[int(query)], int(query), num - 1
    else:
        vector = np.asarray(query, np.float64).reshape(-1)
        if vector.shape != (dim,) or not np.all(np.isfinite(vector)):
            raise ValueError(
                f"`query` must be an index or a finite vector of {dim} values, "
                f"got shape {np.shape(query)}"
            )
        exclude, limit = None, num
    if k > limit:
        raise ValueError(f"`k` must be at most {limit} for this query, got {k}")
    if metric == "cosine":
        norms = np.linalg.norm(features, axis=1) * np.linalg.norm(vector)
        similarity = features @ vector / np.where(norms > 0, norms, np.inf)
        distances = 1.0 - similarity
    else:
        distances = np.sum((features - vector) ** 2, axis=1)
    if exclude is not None:
        distances[exclude] = np.inf
    return np.argsort(distances, kind="stable")[:k].astype(np.int64)
