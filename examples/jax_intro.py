"""The framework intro, in JAX: what TensorFlow 1's tensors, graphs, sessions, variables,
placeholders and savers become, then Windsor house prices fitted by hand and through adljax.

Synopsis::

    python examples/jax_intro.py               # about 15 s on 2 CPU cores

Expected: hand-written gradient descent within 1e-7 of NumPy's least squares (test R^2
0.583); a hand-built MLP equal to Flax's to the last bit, and trained by hand to the same
parameters as ``adljax.fit``; training resumed from an Orbax checkpoint bitwise equal to
training that never stopped.

1. The TF1 -> JAX table, then each row in code: immutable arrays, basic ops and broadcasting
   (and a shape error), a parameter pytree updated by returning a new one, shape-only
   tracing with ``jax.ShapeDtypeStruct``, and a function traced to a jaxpr, lowered to
   StableHLO, compiled and called.
2. ``windsor_housing`` (546 real sales, 11 features -> price): least squares by full-batch
   gradient descent written with ``jax.grad`` (``adljax.from_scratch``), against NumPy.
3. A dense layer and an MLP from ``jax.numpy`` against ``flax.linen.Dense`` and
   ``adljax.models.MLP``; trained with a hand-written mini-batch SGD loop, then with
   ``adljax.fit`` from the same start.
4. A raw pytree checkpoint with Orbax: stop, restore, continue, predict prices in dollars.
"""

import tempfile
from pathlib import Path

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

import adljax
from adljax import from_scratch

TF1_TO_JAX = (
    (
        "tf.constant",
        "jax.Array (immutable)",
        "no in-place writes, so a function of arrays has no hidden state",
    ),
    (
        "tf.Variable",
        "a leaf of a parameter pytree",
        "an update returns a new tree; the old one is still there to compare",
    ),
    (
        "tf.placeholder",
        "a function argument",
        "jax.ShapeDtypeStruct + jax.eval_shape trace with shapes alone",
    ),
    (
        "graph + Session.run",
        "jax.jit: trace, lower, compile, call",
        "jax.make_jaxpr shows the graph; .lower().compile() the XLA program",
    ),
    (
        "tf.name_scope",
        "Flax module names",
        "parameters live at paths such as dense_0/kernel in a nested dict",
    ),
    (
        "tf.train.Saver",
        "an Orbax checkpoint of a pytree",
        "save any pytree; restore into the shapes of a template",
    ),
    (
        "optimizer.minimize",
        "jax.grad + jax.tree.map (or Optax)",
        "the gradient is a function you call, not a node in a graph",
    ),
)
MLP_SIZES = (11, 32, 1)
SGD = {"learning_rate": 0.05, "batch_size": 32, "seed": 0}


def section(title: str) -> None:
    print(f"\n== {title}")


def print_mapping() -> None:
    """Prints `TF1_TO_JAX` as a table."""
    widths = [max(len(row[i]) for row in TF1_TO_JAX) for i in range(3)]
    for row in (("TensorFlow 1", "JAX", "why"), *TF1_TO_JAX):
        cells = (cell.ljust(w) for cell, w in zip(row, widths, strict=True))
        print(("  " + "  ".join(cells)).rstrip())


def show_arrays_and_ops() -> dict:
    """Constants, basic ops, broadcasting and the errors JAX raises; returns what they printed."""
    a = jnp.array([[1.0, 2.0], [3.0, 4.0]])  # a constant: (2, 2) float32
    print(f"a = jnp.array([[1., 2.], [3., 4.]]): {type(a).__name__} {a.shape} {a.dtype}")
    try:
        a[0, 0] = 5.0
    except TypeError as error:
        print(f"a[0, 0] = 5.0 -> TypeError: {str(error).split('.')[0]}")
    print(f"a.at[0, 0].set(5.0) -> {a.at[0, 0].set(5.0).tolist()}; a is still {a.tolist()}")
    b = jnp.array([[10.0, 20.0], [30.0, 40.0]])
    print(f"a @ b = {(a @ b).tolist()}   (matmul)")
    print(f"a * b = {(a * b).tolist()}   (element-wise)")
    print(f"a + b = {(a + b).tolist()}, b - a = {(b - a).tolist()}")
    row = jnp.array([[100.0, 200.0]])  # (1, 2): broadcast along the size-1 axis
    print(f"a + row, (2, 2) + (1, 2) -> {(a + row).tolist()}")
    x, w = jnp.ones((4, 3)), jnp.ones((2, 3))
    try:
        x @ w
    except TypeError as error:
        shape_error = str(error)
        print(f"(4, 3) @ (2, 3) -> TypeError: {shape_error}")
    with jax.numpy_rank_promotion("raise"):  # adljax's tests run in this mode
        try:
            a + jnp.array([100.0, 200.0])
        except ValueError as error:
            message = str(error).split(" and with")[0]
            print(f"(2, 2) + (2,) with rank promotion 'raise' -> ValueError: {message}")
    print(f"(4, 3) @ (3, 2) -> {(x @ w.T).shape}: think in shapes before running")
    return {"shape_error": shape_error, "matmul": np.asarray(a @ b)}


def show_parameters_and_compilation() -> dict:
    """Variables as pytrees, placeholders as arguments, and the graph/session steps of jit."""
    params = {"w": jnp.zeros((3, 1)), "b": jnp.zeros((1,))}  # the "variables"
    grads = {"w": jnp.ones((3, 1)), "b": jnp.ones((1,))}
    updated = jax.tree.map(lambda p, g: p - 0.1 * g, params, grads)
    print(f"updated['w'][:, 0] = {np.asarray(updated['w'][:, 0])}; params['w'] is still zeros")

    def predict(params, x):  # x is the "placeholder": (B, 3) -> (B, 1)
        return jnp.tanh(x @ params["w"] + params["b"].reshape(1, -1))

    placeholder = jax.ShapeDtypeStruct((32, 3), jnp.float32)  # shape and dtype, no data
    out_shape = jax.eval_shape(predict, params, placeholder)
    print(f"jax.eval_shape(predict, params, ShapeDtypeStruct((32, 3))) -> {out_shape}")
    x = jnp.arange(6.0).reshape(2, 3)
    print("jax.make_jaxpr(predict)(params, x):")
    print("  " + str(jax.make_jaxpr(predict)(params, x)).replace("\n", "\n  "))
    lowered = jax.jit(predict).lower(params, x)
    stablehlo = lowered.as_text()
    print("jax.jit(predict).lower(params, x).as_text(), the StableHLO ops:")
    for line in stablehlo.splitlines():
        if "stablehlo." in line:
            print("  " + line.strip())
    compiled = lowered.compile()
    flops = compiled.cost_analysis()["flops"]
    print(f"compiled.cost_analysis()['flops'] = {flops}")
    print(f"compiled(updated, x)[:, 0] = {np.asarray(compiled(updated, x)[:, 0])}")
    return {"eval_shape": out_shape.shape, "flops": float(flops), "stablehlo": stablehlo}


def fit_house_prices_by_hand(train, test, gd_steps: int) -> dict:
    """Least squares on Windsor by full-batch gradient descent, against NumPy's lstsq."""
    x, y = train.arrays["x"], train.arrays["y"]  # (437, 11), (437, 1), standardised
    hand = from_scratch.fit_linear_regression(x, y, learning_rate=0.3, steps=gd_steps)
    hand_w = np.concatenate([np.asarray(hand["kernel"])[:, 0], np.asarray(hand["bias"])])
    design = np.concatenate([x, np.ones((len(x), 1))], axis=1).astype(np.float64)
    lstsq = np.linalg.lstsq(design, y.astype(np.float64), rcond=None)[0][:, 0]
    info = train.info
    dollars = hand_w[:-1] * info.target_std[0] / np.asarray(info.extras["feature_std"])
    print(f"{gd_steps} steps of params - 0.3 * jax.grad(mse)(params, x, y) from zeros:")
    print(f"  {'feature':11s} {'by hand':>9s} {'lstsq':>9s} {'dollars per unit':>17s}")
    for name, w, ls, per_unit in zip(info.feature_names, hand_w, lstsq, dollars, strict=False):
        print(f"  {name:11s} {w:9.4f} {ls:9.4f} {per_unit:17,.1f}")
    gap = float(np.max(np.abs(hand_w - lstsq)))
    predictions = from_scratch.dense_apply(hand, test.arrays["x"])
    r2 = float(adljax.metrics.r2_score(predictions, test.arrays["y"]))
    print(f"max |w_hand - w_lstsq| = {gap:.1e}; test R^2 = {r2:.3f}")
    return {"hand_coefficients": hand_w, "lstsq_coefficients": lstsq, "hand_gap": gap, "r2": r2}


def mlp_loss(params: list[from_scratch.DenseParams], x: jax.Array, y: jax.Array) -> jax.Array:
    """Mean squared error of the hand-built MLP: ``(B, 11), (B, 1) -> scalar``."""
    return from_scratch.mean_squared_error(from_scratch.mlp_apply(params, x), y)


def max_gap(a, b) -> float:
    """The largest absolute difference between two pytrees of arrays of the same structure."""
    gaps = jax.tree.map(lambda u, v: np.max(np.abs(np.asarray(u) - np.asarray(v))), a, b)
    return float(max(jax.tree.leaves(gaps)))


def compare_with_flax(train, test, mlp_epochs: int) -> dict:
    """The hand layers against Flax, and the hand SGD loop against ``adljax.fit``."""
    x_test = test.arrays["x"]
    layer = from_scratch.dense_init(jax.random.key(0), 11, 1)
    flax_dense = nn.Dense(features=1).apply({"params": layer}, x_test)
    dense_gap = max_gap(from_scratch.dense_apply(layer, x_test), flax_dense)
    print(f"dense_apply vs nn.Dense with the same parameters: max |diff| = {dense_gap}")

    params = from_scratch.mlp_init(jax.random.key(0), MLP_SIZES)
    model = adljax.models.MLP(hidden_sizes=MLP_SIZES[1:-1], num_outputs=1)
    library_params = {"dense_0": params[0], "head": params[1]}  # Flax's names for the layers
    print("parameter paths, by hand and in adljax.models.MLP (Flax module names):")
    for tree in (params, library_params):
        paths = jax.tree_util.tree_flatten_with_path(tree)[0]
        print("  " + ", ".join(f"{jax.tree_util.keystr(p)} {v.shape}" for p, v in paths))
    flax_out = model.apply({"params": library_params}, x_test, train=False)
    mlp_gap = max_gap(from_scratch.mlp_apply(params, x_test), flax_out)
    print(f"mlp_apply vs adljax.models.MLP: max |diff| = {mlp_gap}")

    x, y = train.arrays["x"], train.arrays["y"]
    hand, losses = from_scratch.sgd_fit(mlp_loss, params, x, y, epochs=mlp_epochs, **SGD)
    print(
        f"hand SGD, {mlp_epochs} epochs of batch 32: train loss {losses[0]:.3f} -> {losses[-1]:.3f}"
    )
    tx = adljax.create_optimizer("sgd", SGD["learning_rate"])
    state = adljax.create_train_state(model, tx, x[:1], jax.random.key(0))
    state = state.replace(params=library_params, opt_state=tx.init(library_params))
    results = {}
    for whole_epoch in (False, True):
        results[whole_epoch] = adljax.fit(
            state,
            train,
            task="regression",
            epochs=mlp_epochs,
            batch_size=SGD["batch_size"],
            seed=SGD["seed"],
            eval_data=test,
            whole_epoch=whole_epoch,
            steps_per_call=None if whole_epoch else 1,
            progress=False,
        )
    gaps = {
        whole_epoch: max_gap([result.state.params["dense_0"], result.state.params["head"]], hand)
        for whole_epoch, result in results.items()
    }
    last = results[False].history[-1]
    print(f"adljax.fit from the same start, one compiled call per step: max |diff| = {gaps[False]}")
    print(f"  the epoch as one lax.scan (its default here): max |diff| = {gaps[True]:.1e}")
    print(f"  what fit adds: per-epoch eval metrics ({', '.join(last['eval'])}), progress,")
    print(
        f"  checkpoints and resume; test R^2 after epoch {last['epoch']}: {last['eval']['r2']:.3f}"
    )
    return {
        "dense_gap": dense_gap,
        "mlp_gap": mlp_gap,
        "hand_sgd_losses": losses,
        "library_gap": gaps[False],
        "library_scan_gap": gaps[True],
        "library_r2": last["eval"]["r2"],
    }


def checkpoint_and_continue(train, test, mlp_epochs: int, directory: Path) -> dict:
    """Stops the hand SGD halfway, saves with Orbax, restores, continues and predicts."""
    x, y = train.arrays["x"], train.arrays["y"]
    start = from_scratch.mlp_init(jax.random.key(0), MLP_SIZES)
    uninterrupted, _ = from_scratch.sgd_fit(mlp_loss, start, x, y, epochs=mlp_epochs, **SGD)
    stop = mlp_epochs // 2
    half, _ = from_scratch.sgd_fit(mlp_loss, start, x, y, epochs=stop, **SGD)
    path = directory / f"epoch_{stop}"
    from_scratch.save_pytree(path, {"params": half, "epoch": stop})
    files = sorted(p.name for p in path.iterdir())
    print(f"save_pytree({path.name!r}, {{'params': ..., 'epoch': {stop}}}) wrote {files}")
    restored = from_scratch.restore_pytree(path, {"params": start, "epoch": 0})
    resumed, _ = from_scratch.sgd_fit(
        mlp_loss, restored["params"], x, y, epochs=mlp_epochs, start_epoch=restored["epoch"], **SGD
    )
    resume_gap = max_gap(resumed, uninterrupted)
    print(f"restored at epoch {restored['epoch']}, continued to {mlp_epochs}: ", end="")
    print(f"max |resumed - uninterrupted| = {resume_gap}")
    predict_gap = max_gap(
        from_scratch.mlp_apply(restored["params"], test.arrays["x"]),
        from_scratch.mlp_apply(half, test.arrays["x"]),
    )
    print(f"predictions from the restored parameters vs before saving: max |diff| = {predict_gap}")
    info = test.info
    predicted = info.unstandardise_targets(from_scratch.mlp_apply(resumed, test.arrays["x"][:3]))
    actual = info.unstandardise_targets(test.arrays["y"][:3])
    for p, a in zip(predicted[:, 0], actual[:, 0], strict=True):
        print(f"  test house: predicted ${p:,.0f}, sold for ${a:,.0f}")
    return {
        "resume_gap": resume_gap,
        "predict_gap": predict_gap,
        "predicted_prices": predicted[:, 0],
        "actual_prices": actual[:, 0],
    }


def main(gd_steps: int = 100, mlp_epochs: int = 20, checkpoint_dir: str | None = None) -> dict:
    """Runs the lesson; returns its numbers. Checkpoints go to ``checkpoint_dir`` (default:
    a temporary directory)."""
    if checkpoint_dir is None:
        with tempfile.TemporaryDirectory() as directory:
            return main(gd_steps, mlp_epochs, directory)
    section("TensorFlow 1 -> JAX")
    print_mapping()
    section("tensors, basic ops and shapes")
    results = show_arrays_and_ops()
    section("variables, placeholders, graph and session")
    results |= show_parameters_and_compilation()
    train = adljax.data.load("windsor_housing", "train")
    test = adljax.data.load("windsor_housing", "test")
    section(f"Windsor house prices: {len(train)} train, {len(test)} test houses, by hand")
    print(f"  {train.info.extras['citation']}")
    results |= fit_house_prices_by_hand(train, test, gd_steps)
    section("layers by hand against Flax, training by hand against adljax.fit")
    results |= compare_with_flax(train, test, mlp_epochs)
    section("an Orbax checkpoint: stop, restore, continue, predict")
    results |= checkpoint_and_continue(train, test, mlp_epochs, Path(checkpoint_dir))
    return results


if __name__ == "__main__":
    main()
