"""The ``adljax`` command line: train, evaluate, predict, export, serve, tour, datasets, models.

Every sub-command calls the same library functions as the Python API; nothing here trains
or computes on its own.
"""

import argparse
import json
import os
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

# `adljax.training.optimizers.OPTIMIZER_NAMES`, spelled out so that `--help` imports no jax.
OPTIMIZER_CHOICES = ("adagrad", "adam", "adamw", "lamb", "momentum", "nesterov", "rmsprop", "sgd")

# Options that must reach XLA before jax starts its backend (see ``_configure_devices``).
_DEVICE_COUNT_FLAG = "--xla_force_host_platform_device_count"


def path_text(path: str | os.PathLike) -> str:
    """A path as every command's output shows it: absolute, so JSON consumers need no cwd."""
    return str(Path(path).resolve())


def _parse_value(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def _parse_setting(text: str) -> tuple[str, Any]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    return key.strip().replace("-", "_"), _parse_value(value)


def _parse_floats(text: str) -> list[float]:
    try:
        return [float(v) for v in text.split(",")]
    except ValueError as error:
        message = f"expected comma-separated numbers, got {text!r}"
        raise argparse.ArgumentTypeError(message) from error


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="adljax", description="Train, evaluate and explore the models of the course."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    train = commands.add_parser("train", help="train a model on a dataset")
    train.add_argument("model", help="model name (see `adljax models`)")
    train.add_argument("--dataset", required=True, help="dataset name (see `adljax datasets`)")
    recipe = " (default: the model's recipe for the dataset, see `adljax.recipes`)"
    train.add_argument("--epochs", type=int, default=None, help="total epochs" + recipe)
    train.add_argument("--batch-size", type=int, default=None, help="examples per step" + recipe)
    train.add_argument(
        "--optimizer",
        default=None,
        help=f"an Optax optimizer: {', '.join(OPTIMIZER_CHOICES)}" + recipe,
    )
    train.add_argument("--learning-rate", type=float, default=None, help="step size" + recipe)
    train.add_argument(
        "--schedule",
        default=None,
        help="learning-rate schedule after the warmup: constant (the default), cosine, "
        "linear (both to 0) or exponential (to 1%% of --learning-rate)",
    )
    train.add_argument(
        "--warmup-steps",
        type=int,
        default=None,
        metavar="N",
        help="rise linearly from 0 to --learning-rate over the first N steps (default 0)",
    )
    train.add_argument(
        "--decay-steps",
        type=int,
        default=None,
        metavar="N",
        help="steps a decaying --schedule takes after the warmup (default: the rest of the run)",
    )
    train.add_argument("--clip-norm", type=float, default=None, help="clip gradients' global norm")
    train.add_argument("--seed", type=int, default=None, help="shuffling and init seed (default 0)")
    train.add_argument(
        "--set",
        dest="settings",
        action="append",
        type=_parse_setting,
        default=[],
        metavar="KEY=VALUE",
        help="model configuration, e.g. --set hidden_sizes=[128,64] --set activation=tanh",
    )
    train.add_argument(
        "--checkpoint-dir",
        type=Path,
        default=None,
        help="save checkpoints, history.jsonl and figures here (default: none saved)",
    )
    train.add_argument(
        "--resume",
        action="store_true",
        help="continue the run in --checkpoint-dir with its saved settings (a flag that "
        "changes one is refused); an empty directory starts a new run, with a warning",
    )
    train.add_argument(
        "--save-every-steps",
        type=int,
        default=None,
        metavar="N",
        help="also checkpoint every N steps (default: at every epoch's end only)",
    )
    train.add_argument(
        "--keep-last",
        type=int,
        default=2,
        metavar="N",
        help="checkpoints kept besides the best one (default 2)",
    )
    train.add_argument(
        "--ensemble",
        type=int,
        default=None,
        metavar="K",
        help="train K members in one compiled step",
    )
    train.add_argument(
        "--learning-rates",
        type=_parse_floats,
        default=None,
        help="one learning rate per ensemble member, comma-separated",
    )
    train.add_argument(
        "--devices",
        type=int,
        default=None,
        metavar="N",
        help="shard each batch over N devices (data parallel)",
    )
    train.add_argument(
        "--early-stopping",
        type=int,
        default=None,
        metavar="PATIENCE",
        help="stop after PATIENCE epochs without improvement of the task's monitored metric "
        "(the eval loss; a GAN's Frechet distance or high-quality fraction)",
    )
    train.add_argument(
        "--per-step",
        action="store_true",
        help="batches from the host, a few steps per compiled call, instead of one call per epoch",
    )
    train.add_argument(
        "--augment",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="apply the dataset's standard augmentation inside the compiled step" + recipe,
    )
    train.add_argument(
        "--pretrained",
        type=Path,
        default=None,
        metavar="PATH",
        help="start from an adljax checkpoint directory or a torchvision ResNet .pth/.safetensors",
    )
    train.add_argument(
        "--freeze",
        action="append",
        default=[],
        metavar="PATTERN",
        help="keep parameters and batch statistics matching PATTERN fixed, e.g. 'stem_*'",
    )
    train.add_argument(
        "--diagnostics",
        type=int,
        default=None,
        metavar="N",
        help="record per-layer gradient norms, update/weight ratios, activation and batch-norm "
        "statistics every N steps (in history.jsonl; a figure diagnostics.png beside it)",
    )
    train.add_argument(
        "--dtype",
        default=None,
        help="mixed precision: bfloat16, float16 (with dynamic loss scaling) or float32 (the "
        "default); parameters stay float32, the model computes in this type",
    )
    train.add_argument(
        "--log-dir",
        type=Path,
        default=None,
        help="write TensorBoard event files and metrics.csv of the metrics here",
    )
    train.add_argument("--debug", action="store_true", help="run eagerly, without jit")
    train.add_argument(
        "--seq-len",
        type=int,
        default=None,
        metavar="T",
        help="sequence length of the sequence datasets (adding, copy, sines, waveforms, "
        "pydoc_chars; default: the dataset's own)",
    )
    train.add_argument("--cell", default=None, help="recurrent cell of `charlm`: rnn, gru or lstm")
    _add_data_options(train)
    _add_output_options(train)

    evaluate = commands.add_parser("evaluate", help="evaluate a checkpoint on a dataset split")
    evaluate.add_argument(
        "--checkpoint-dir", type=Path, required=True, help="an `adljax train` checkpoint directory"
    )
    evaluate.add_argument("--dataset", default=None, help="default: the checkpoint's dataset")
    evaluate.add_argument("--split", default="test", help="dataset split (default test)")
    evaluate.add_argument("--step", type=int, default=None, help="default: the latest")
    _add_data_options(evaluate)
    evaluate.add_argument("--json", action="store_true", help="print one JSON object")

    predict = commands.add_parser("predict", help="predict with a checkpoint")
    predict.add_argument(
        "--checkpoint-dir", type=Path, required=True, help="an `adljax train` checkpoint directory"
    )
    source = predict.add_mutually_exclusive_group()
    source.add_argument(
        "--input",
        type=Path,
        default=None,
        help=".npy file of inputs (N, ...) (default: the dataset's test split)",
    )
    source.add_argument(
        "--dataset", default=None, help="predict a dataset's split (default: the checkpoint's)"
    )
    predict.add_argument("--split", default="test", help="dataset split (default test)")
    predict.add_argument("--limit", type=int, default=10, help="examples to show (default 10)")
    predict.add_argument("--output", type=Path, default=None, help="save all outputs as .npy")
    _add_data_options(predict)
    predict.add_argument("--json", action="store_true", help="print one JSON object")

    export = commands.add_parser(
        "export", help="write a checkpoint as a standalone artifact (jax.export + weights)"
    )
    export.add_argument(
        "--checkpoint-dir", type=Path, required=True, help="an `adljax train` checkpoint directory"
    )
    export.add_argument("--output", type=Path, required=True, help="a new directory to write")
    export.add_argument(
        "--platforms",
        type=_parse_platforms,
        default=None,
        help="comma-separated platforms to lower for (default cpu,cuda,tpu)",
    )
    export.add_argument("--json", action="store_true", help="print one JSON object")

    serve = commands.add_parser("serve", help="serve an export (or a checkpoint) over HTTP")
    serve.add_argument("path", type=Path, help="an `adljax export` directory or a checkpoint")
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8000, help="port to listen on (default 8000)")
    serve.add_argument(
        "--max-batch-size",
        type=int,
        default=64,
        help="most examples per compiled call and per request; 1 turns batching off (default 64)",
    )
    serve.add_argument(
        "--max-wait-ms",
        type=float,
        default=0.0,
        help="how long a batch may wait for more requests (default 0: run when the "
        "previous batch is done)",
    )
    serve.add_argument(
        "--max-body-bytes",
        type=int,
        default=8 << 20,
        help="largest request body accepted, in bytes (default 8388608: 8 MiB)",
    )

    tour = commands.add_parser("tour", help="train every course architecture on embedded data")
    tour.add_argument("--quick", action="store_true", help="fewer epochs (about a minute)")
    tour.add_argument(
        "--output-dir",
        type=Path,
        default=Path("tour_output"),
        help="where each run writes its folder of figures and checkpoints (default tour_output)",
    )
    tour.add_argument(
        "--day",
        dest="days",
        type=int,
        action="append",
        default=None,
        metavar="N",
        help="run only day N's lessons (repeatable; default every day)",
    )
    tour.add_argument("--json", action="store_true", help="print one JSON object at the end")

    commands.add_parser("datasets", help="list the datasets")
    models = commands.add_parser(
        "models", help="list the models, or summarise one (--summary NAME)"
    )
    models.add_argument(
        "--summary",
        default=None,
        metavar="NAME",
        help="print NAME's layers: output shapes, parameters, bytes and FLOPs per example",
    )
    models.add_argument(
        "--dataset",
        default=None,
        help="size the model for this dataset as `adljax train` does (default: the dataset the "
        "tour trains it on, digits for the image models)",
    )
    models.add_argument(
        "--set",
        dest="settings",
        action="append",
        type=_parse_setting,
        default=[],
        metavar="KEY=VALUE",
        help="model configuration, as for `adljax train`",
    )
    models.add_argument(
        "--depth",
        type=int,
        default=None,
        metavar="N",
        help="show modules at most N levels deep (default: all)",
    )
    _add_data_options(models)
    models.add_argument("--json", action="store_true", help="print one JSON object")
    return parser


def _parse_platforms(text: str) -> list[str]:
    return [p.strip() for p in text.split(",") if p.strip()]


def _add_data_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data-dir", default=None, help="tfds data directory")
    parser.add_argument(
        "--download",
        action="store_true",
        help="let tfds download a dataset that is not prepared (network)",
    )


def _add_output_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--json", action="store_true", help="print one JSON object of results as the last line"
    )
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")


def _configure_devices(devices: int | None) -> None:
    """Lets a CPU-only machine simulate ``devices`` devices (before jax's backend starts)."""
    if devices is None or devices <= 1:
        return
    flags = os.environ.get("XLA_FLAGS", "")
    if _DEVICE_COUNT_FLAG not in flags:
        os.environ["XLA_FLAGS"] = f"{flags} {_DEVICE_COUNT_FLAG}={devices}".strip()


def _training_settings(args: argparse.Namespace) -> dict[str, Any]:
    """The run's settings as runner arguments: each flag given, else (with ``--resume``) the
    saved run's, else the model's recipe for the dataset; printed on stderr."""
    from adljax.recipes import recipe_for

    recipe = recipe_for(args.model, args.dataset)
    chosen = recipe.arguments(
        clip_norm=None,
        seed=0,
        ensemble=None,
        learning_rates=None,
        dtype="float32",
        schedule="constant",
        warmup_steps=0,
        decay_steps=None,
    )
    origin = recipe.source
    saved = _saved_settings(args.checkpoint_dir, args.model) if args.resume else None
    if saved is not None:
        chosen, origin = chosen | saved, "the run being resumed"
    flags = {
        name: getattr(args, name)
        for name in (
            "epochs",
            "batch_size",
            "optimizer",
            "learning_rate",
            "clip_norm",
            "seed",
            "augment",
            "ensemble",
            "learning_rates",
            "dtype",
            "schedule",
            "warmup_steps",
            "decay_steps",
        )
    }
    chosen |= {name: value for name, value in flags.items() if value is not None}
    config = {**chosen["model_config_overrides"], **dict(args.settings)}
    if args.cell is not None:
        if args.model != "charlm":
            raise ValueError(
                f"--cell chooses the cell of charlm; {args.model!r} names its model itself "
                "(rnn, gru, lstm)"
            )
        config["cell"] = args.cell
    chosen["model_config_overrides"] = config
    if args.seq_len is not None:
        chosen["dataset_options"] = {**chosen["dataset_options"], "seq_len": args.seq_len}
    shown = ", ".join(
        f"{name}={value}"
        for name, value in {**chosen, **config, **chosen["dataset_options"]}.items()
        if name not in ("model_config_overrides", "dataset_options") and value is not None
    )
    print(
        f"adljax train: {args.model} on {args.dataset} with {shown} (unset flags from {origin})",
        file=sys.stderr,
    )
    return chosen


def _saved_settings(checkpoint_dir: Path | None, model: str) -> dict[str, Any] | None:
    """The settings recorded by the run in ``checkpoint_dir``, as runner arguments (None when
    it holds no checkpoint); its model configuration only if it trained ``model`` (else
    resuming is refused, naming both models)."""
    from adljax.experiment import DATASET_SIZED_CONFIG
    from adljax.training.checkpoint import CheckpointManager

    if checkpoint_dir is None or not checkpoint_dir.is_dir():
        return None
    with CheckpointManager(checkpoint_dir, create=False) as manager:
        if manager.latest_step() is None:
            return None
        meta = manager.read_meta()
    optimizer, position = meta.get("optimizer") or {}, meta.get("data_position") or {}
    schedule = optimizer.get("schedule") or {}
    saved_model = meta.get("model") or {}
    config = saved_model.get("config") or {} if saved_model.get("name") == model else {}
    settings = {
        "batch_size": position.get("batch_size"),
        "seed": position.get("seed"),
        "optimizer": optimizer.get("name"),
        "learning_rate": optimizer.get("learning_rate"),
        "clip_norm": optimizer.get("clip_norm"),
        "learning_rates": optimizer.get("learning_rates"),
        "schedule": schedule.get("name"),
        "warmup_steps": schedule.get("warmup_steps"),
        "decay_steps": schedule.get("decay_steps"),
        "ensemble": meta.get("ensemble"),
        "augment": meta.get("augment"),
        "dtype": meta.get("dtype"),
        "model_config_overrides": {
            **{key: value for key, value in config.items() if key not in DATASET_SIZED_CONFIG},
            **(meta.get("gan") or {}),
        },
        "dataset_options": (meta.get("dataset") or {}).get("options") or {},
    }
    return {name: value for name, value in settings.items() if value is not None}


def _train(args: argparse.Namespace) -> dict[str, Any]:
    from adljax.experiment import runner_for
    from adljax.training import CheckpointOptions, EarlyStopping
    from adljax.training.metric_logs import metric_loggers

    options = None
    if args.checkpoint_dir is not None:
        options = CheckpointOptions(every_steps=args.save_every_steps, keep_last=args.keep_last)
    stopping = None
    if args.early_stopping is not None:
        stopping = EarlyStopping(patience=args.early_stopping)
    experiment = runner_for(args.model)(
        args.model,
        args.dataset,
        **_training_settings(args),
        checkpoint_dir=args.checkpoint_dir,
        checkpoint_options=options,
        resume=args.resume,
        devices=args.devices,
        early_stopping=stopping,
        whole_epoch=False if args.per_step else None,
        debug=args.debug,
        progress=not args.no_progress,
        data_dir=args.data_dir,
        download=args.download,
        pretrained=args.pretrained,
        freeze=args.freeze,
        diagnostics_every=args.diagnostics,
        callbacks=metric_loggers(args.log_dir) if args.log_dir is not None else (),
    )
    if args.log_dir is not None:
        experiment.summary["log_dir"] = path_text(args.log_dir)
    if experiment.result.checkpoint_dir is not None and experiment.result.history:
        experiment.summary["curves"] = path_text(_plot_curves(experiment.result))
    if args.diagnostics is not None:
        experiment.summary["diagnostics"] = _diagnostics_summary(experiment.result, args)
    if not args.json:
        summary = experiment.summary
        epochs = summary["epochs"]
        unit = "epoch" if epochs == 1 else "epochs"
        print(f"{summary['model']} on {summary['dataset']}, {epochs} {unit}")
        for group in ("train", "eval"):
            shown = ", ".join(f"{k}={v:.4f}" for k, v in summary[group].items())
            print(f"  {group}: {shown}")
        if "transfer" in summary:
            print(f"  transferred: {summary['transfer']}")
        if summary["checkpoint_dir"]:
            print(f"  checkpoints: {summary['checkpoint_dir']}")
        if "curves" in summary:
            print(f"  training curves: {summary['curves']}")
        if "log_dir" in summary:
            print(
                f"  metric logs: {summary['log_dir']} (tensorboard --logdir {summary['log_dir']})"
            )
        if "diagnostics" in summary:
            _print_diagnostics(summary["diagnostics"])
    return experiment.summary


# Metrics drawn in the training-curve PNG of a run, those of them its history has.
CURVE_METRICS = ("loss", "accuracy", "r2", "frechet_distance", "high_quality", "ap")


def _plot_curves(result) -> Path:
    """Draws the run's training curves into ``<checkpoint_dir>/curves.png`` (replaced)."""
    from adljax.plots import plot_history

    names = {
        name
        for record in result.history
        for group in ("train", "eval")
        for name in record.get(group, {})
    }
    metrics = [name for name in CURVE_METRICS if name in names] or sorted(names)[:1]
    return plot_history(
        result.history, result.checkpoint_dir / "curves.png", metrics, overwrite=True
    )


def _diagnostics_summary(result, args: argparse.Namespace) -> dict[str, Any]:
    """The last diagnostics report of a ``--diagnostics N`` run, and its figure's path."""
    from adljax.plots import plot_diagnostics

    reports = [report for record in result.history for report in record.get("diagnostics", [])]
    summary = {"every": args.diagnostics, "reports": len(reports), "last": reports[-1]}
    if result.checkpoint_dir is not None:
        shown = [group for group in ("grad_norm", "update_ratio") if group in reports[-1]]
        figure = plot_diagnostics(
            result.history, result.checkpoint_dir / "diagnostics.png", shown, overwrite=True
        )
        summary["figure"] = str(figure)
    return summary


def _print_diagnostics(summary: dict[str, Any]) -> None:
    import numpy as np

    last = summary["last"]
    print(
        f"  diagnostics: {summary['reports']} reports, every {summary['every']} steps; "
        f"at step {last['step']}:"
    )
    norms = last.get("grad_norm", {})
    print(f"    {'layer':<40} {'grad norm':>10} {'update/weight':>14}")
    for layer, ratio in last["update_ratio"].items():
        norm = f"{np.mean(norms[layer]):.3g}" if layer in norms else "-"
        print(f"    {layer:<40} {norm:>10} {np.mean(ratio):>14.3g}")
    for name, statistics in last.get("activations", {}).items():
        shown = ", ".join(f"{k}={np.mean(v):.3g}" for k, v in statistics.items())
        print(f"    activations {name}: {shown}")
    for name, drift in last.get("batch_norm", {}).items():
        shown = ", ".join(f"{k}={np.mean(v):.3g}" for k, v in drift.items())
        print(f"    batch norm {name}: {shown}")
    if "figure" in summary:
        print(f"    figure: {summary['figure']}")


# Tasks whose checkpoints ``evaluate`` and ``predict`` hand to their family's module, which
# defines ``evaluate(args) -> summary`` and ``predict(args) -> summary`` like those below.
FAMILY_COMMANDS = {"detection": "adljax.detection.commands", "generation": "adljax.gan.commands"}


def _family_commands(checkpoint_dir: Path):
    """The family module that evaluates and predicts with this checkpoint, or None."""
    import importlib

    from adljax.training.checkpoint import CheckpointError, CheckpointManager

    if not checkpoint_dir.is_dir():
        raise CheckpointError(f"checkpoint directory {str(checkpoint_dir)!r} does not exist")
    with CheckpointManager(checkpoint_dir, create=False) as manager:
        # Any intact step names the run's task; load_checkpoint reports the damaged ones.
        step = manager.newest_intact_step()
        task = manager.read_meta(step).get("task")
    module = FAMILY_COMMANDS.get(task)
    return importlib.import_module(module) if module is not None else None


def checkpoint_dataset(args: argparse.Namespace, meta: dict[str, Any]):
    """``(name, split data)``: ``--dataset`` or the checkpoint's, loaded as it was trained."""
    from adljax.data import load

    saved = meta.get("dataset") or {}
    dataset = args.dataset or saved.get("name")
    if dataset is None:
        raise ValueError("the checkpoint names no dataset; pass --dataset")
    data_dir = args.data_dir or saved.get("data_dir")
    options = saved.get("options") or {} if dataset == saved.get("name") else {}
    return dataset, load(dataset, args.split, data_dir=data_dir, download=args.download, **options)


def _evaluate(args: argparse.Namespace) -> dict[str, Any]:
    from adljax.inference import evaluate, load_checkpoint

    family = _family_commands(args.checkpoint_dir)
    if family is not None:
        return family.evaluate(args)
    state, meta = load_checkpoint(args.checkpoint_dir, args.step)
    dataset, data = checkpoint_dataset(args, meta)
    metrics = evaluate(state, data, task=meta.get("task"))
    return evaluation_summary(args, meta, dataset, len(data), metrics)


def evaluation_summary(
    args: argparse.Namespace,
    meta: dict[str, Any],
    dataset: str,
    size: int,
    metrics: dict[str, float],
) -> dict[str, Any]:
    """The summary ``adljax evaluate`` prints as JSON; also shown as text unless ``--json``."""
    if not args.json:
        print(f"{meta['model']['name']} on {dataset} ({args.split}, {size} examples)")
        print("  " + ", ".join(f"{k}={v:.4f}" for k, v in metrics.items()))
    return {
        "model": meta["model"]["name"],
        "dataset": dataset,
        "split": args.split,
        "eval": metrics,
        "checkpoint_dir": path_text(args.checkpoint_dir),
    }


def load_input_array(path: Path):
    """The array of ``--input`` ``path`` ``(N, ...)``: a NumPy ``.npy`` file, or an ``.npz``
    archive holding one array (or one named ``x``), of bool, integer or real floating dtype.

    The format is read from the file's first bytes and the dtype from the array's header,
    before any data; pickled objects are never loaded. Raises ``ValueError`` naming the file
    and what it holds instead.
    """
    import zipfile

    import numpy as np

    from adljax._validate import check_real_dtype

    def check_header(file, member: str | None = None) -> None:
        what = f"--input {path}" + (f" array {member}" if member else "")
        try:
            version = np.lib.format.read_magic(file)
            read = (
                np.lib.format.read_array_header_1_0
                if version == (1, 0)
                else np.lib.format.read_array_header_2_0
            )
            _, _, dtype = read(file)
        except ValueError as error:
            raise ValueError(f"{what} is not a valid NumPy .npy array: {error}") from None
        check_real_dtype(dtype, what)

    label = f"--input {str(path)!r}"
    if not path.is_file():
        raise ValueError(f"{label} is not a file")
    with path.open("rb") as file:
        start = file.read(len(np.lib.format.MAGIC_PREFIX))
    if start == np.lib.format.MAGIC_PREFIX:
        with path.open("rb") as file:
            check_header(file)
        return np.load(path, allow_pickle=False)
    if not zipfile.is_zipfile(path):
        raise ValueError(
            f"{label} is neither a NumPy .npy file nor an .npz archive (it starts with "
            f"{start!r}); save the inputs with numpy.save"
        )
    with np.load(path, allow_pickle=False) as archive:
        members = archive.zip.namelist()
        member = members[0] if len(members) == 1 else "x.npy" if "x.npy" in members else None
        if member is None:
            raise ValueError(
                f"{label} is an .npz archive of {len(members)} arrays {archive.files}; save "
                f"one array, or name the inputs x"
            )
        with archive.zip.open(member) as file:
            check_header(file, member.removesuffix(".npy"))
        return archive[member]


def _predict(args: argparse.Namespace) -> dict[str, Any]:
    import numpy as np

    from adljax.inference import load_checkpoint, predict

    family = _family_commands(args.checkpoint_dir)
    if family is not None:
        return family.predict(args)
    if args.limit < 1:
        raise ValueError(f"--limit must be at least 1, got {args.limit}")
    if args.output is not None:
        if args.output.suffix != ".npy":
            raise ValueError(f"--output must end in .npy, got {str(args.output)!r}")
        if args.output.exists():
            raise ValueError(f"--output {str(args.output)!r} exists; not overwriting it")
        if not args.output.resolve().parent.is_dir():
            raise ValueError(f"--output {str(args.output)!r}: its directory does not exist")
    state, meta = load_checkpoint(args.checkpoint_dir)
    labels = None
    if args.input is not None:
        x, source = load_input_array(args.input), f"--input {str(args.input)!r}"
    else:
        dataset, data = checkpoint_dataset(args, meta)
        arrays = data.to_arrays().arrays
        x, labels, source = arrays["x"], arrays["y"], f"dataset {dataset!r}"
    try:
        outputs = predict(state, x)
    except ValueError as error:  # the checks of x, before any compute
        raise ValueError(f"{source}: {error}") from None
    if args.output is not None:
        np.save(args.output, outputs)
    info = (meta.get("dataset") or {}).get("info") or {}
    vocabulary = (info.get("extras") or {}).get("vocabulary")
    shown = _describe_predictions(meta.get("task"), outputs[: args.limit], vocabulary)
    if labels is not None:
        shown = [row | {"label": label.tolist()} for row, label in zip(shown, labels, strict=False)]
    if not args.json:
        for i, row in enumerate(shown):
            described = {key: value for key, value in row.items() if key != "label"}
            truth = f" (label {row['label']})" if "label" in row else ""
            print(f"  {i}: {described}{truth}")
        if len(shown) < len(outputs):
            print(f"  ({len(shown)} of {len(outputs)} shown; --limit shows more)")
        if args.output is not None:
            print(
                f"  all {len(outputs)} outputs {outputs.shape} written to {path_text(args.output)}"
            )
    return {
        "model": meta["model"]["name"],
        "count": len(shown),
        "total": int(outputs.shape[0]),
        "predictions": shown,
        "output": path_text(args.output) if args.output else None,
    }


def _describe_predictions(
    task: str | None, outputs, vocabulary: str | None = None
) -> list[dict[str, Any]]:
    """One JSON-ready row per example: class and probability, the class (or next character)
    at every time step, or the regression outputs."""
    import jax
    import numpy as np

    if task in ("tagging", "language_modeling"):
        classes = np.asarray(outputs).argmax(axis=-1)
        if vocabulary is not None:
            return [{"next_characters": "".join(vocabulary[c] for c in row)} for row in classes]
        return [{"classes": row.tolist()} for row in classes]
    if task == "classification":
        probabilities = np.asarray(jax.nn.softmax(outputs, axis=-1))
        return [
            {"class": int(p.argmax()), "probability": round(float(p.max()), 4)}
            for p in probabilities
        ]
    if task == "binary":
        probabilities = np.asarray(jax.nn.sigmoid(outputs.reshape(len(outputs))))
        return [{"class": int(p > 0.5), "probability": round(float(p), 4)} for p in probabilities]
    return [{"prediction": [round(float(v), 4) for v in np.ravel(o)]} for o in outputs]


def _export(args: argparse.Namespace) -> dict[str, Any]:
    from adljax.serving import export, load
    from adljax.serving.exporting import PLATFORMS

    path = export(args.checkpoint_dir, args.output, platforms=args.platforms or PLATFORMS)
    manifest = load(path).manifest
    summary = {
        "model": manifest["model"]["name"],
        "family": manifest["family"],
        "functions": sorted(manifest["functions"]),
        "platforms": manifest["platforms"],
        "output": path_text(path),
    }
    if not args.json:
        print(f"{summary['model']} ({summary['family']}) exported to {path}")
        functions, platforms = ", ".join(summary["functions"]), ", ".join(summary["platforms"])
        print(f"  functions: {functions}; platforms: {platforms}")
    return summary


def _serve(args: argparse.Namespace) -> dict[str, Any]:
    import signal
    import socket
    import tempfile

    import uvicorn

    from adljax.serving import load
    from adljax.serving.artifact import MANIFEST
    from adljax.serving.service import create_app

    if not 0 <= args.port <= 65535:
        raise ValueError(f"--port must be in [0, 65535], got {args.port}")
    with socket.socket() as probe:  # a taken port fails here, before any compile
        try:
            probe.bind((args.host, args.port))
        except OSError as error:
            raise ValueError(f"cannot listen on {args.host}:{args.port}: {error}") from None
    with tempfile.TemporaryDirectory(prefix="adljax-serve-") as scratch:
        path = args.path
        if not (path / MANIFEST).is_file():
            import jax

            from adljax.serving import export

            path = export(path, Path(scratch) / "export", platforms=[jax.default_backend()])
        app = create_app(
            load(path),
            max_batch_size=args.max_batch_size,
            max_wait_ms=args.max_wait_ms,
            max_body_bytes=args.max_body_bytes,
        )
        service = app.state.service
        url = f"http://{args.host}:{args.port}"
        print(
            f"serving {service.artifact.manifest['model'].get('name')} ({service.family}) on {url}"
        )
        print(f"  page {url}/, API {url}/docs, endpoints: {', '.join(service.endpoints)}")
        if args.host not in ("127.0.0.1", "localhost", "::1"):
            print(f"  warning: {args.host} is reachable from other machines", file=sys.stderr)
        # uvicorn shuts down gracefully on SIGINT/SIGTERM, then re-raises the signal to the
        # handler it found: make both a KeyboardInterrupt, so the command ends with status 0.
        previous = signal.signal(signal.SIGTERM, signal.default_int_handler)
        try:
            uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
        except KeyboardInterrupt:
            print("  stopped")
        finally:
            signal.signal(signal.SIGTERM, previous)
    return {"url": url}


def _list_datasets() -> None:
    from adljax.data import list_datasets

    for name, description in _as_pairs(list_datasets()):
        print(f"{name:20s} {description}")


def _list_models() -> None:
    from adljax.models import list_models

    for name, description in list_models():
        print(f"{name:20s} {description.replace('``', '')}")


# The dataset `adljax models --summary NAME` sizes NAME for when --dataset is not given: the
# one the tour trains it on; the image models not in the tour get digits, LeNet (28x28 at
# least) MNIST.
SUMMARY_DATASETS = {
    "linear": "housing_synthetic",
    "rnn": "waveforms",
    "gru": "waveforms",
    "lstm": "waveforms",
    "charlm": "pydoc_chars",
    "gan": "ring8",
    "detector": "shapes",
    "lenet": "mnist",
}


def _model_summary(args: argparse.Namespace) -> dict[str, Any]:
    """Summaries of model ``--summary`` sized for ``--dataset``: one of the model, or of a
    GAN's generator and discriminator."""
    import numpy as np

    from adljax.experiment import TASK_MODELS, check_model_fits_task, model_for_dataset
    from adljax.model_summary import summary
    from adljax.models import create_model, model_parameters
    from adljax.recipes import recipe_for

    if args.depth is not None and args.depth < 0:
        raise ValueError(f"--depth must be >= 0, got {args.depth}")
    name = args.summary
    takes = model_parameters(name)  # an unknown name is refused here, listing the known ones
    dataset = args.dataset or SUMMARY_DATASETS.get(name, "digits")
    info, x = _summary_input(dataset, args)
    check_model_fits_task(name, dataset, info.task)
    # A GAN recipe also holds the game's options; only the model's own attributes apply here.
    recipe = {k: v for k, v in recipe_for(name, dataset).model_config.items() if k in takes}
    config = {**recipe, **dict(args.settings)}
    if name in TASK_MODELS["generation"]:
        net = create_model(name, input_shape=info.input_shape, **config)
        z = np.zeros((1, net.latent_dim), np.float32)
        parts = {
            "generator": summary(net, z, method="generate", depth=args.depth),
            "discriminator": summary(net, x, method="discriminate", depth=args.depth),
        }
    else:
        net = model_for_dataset(name, info, **config)
        parts = {"model": summary(net, x, depth=args.depth)}
    if not args.json:
        for part, table in parts.items():
            title = f"{name} sized for {dataset}" + (f": {part}" if part != "model" else "")
            print(f"{title}\n\n{table}\n")
    return {
        "model": name,
        "dataset": dataset,
        "summaries": {part: table.to_dict() for part, table in parts.items()},
    }


def _summary_input(dataset: str, args: argparse.Namespace):
    """``(info, x)``: the dataset's `DatasetInfo` and one input ``(1, *input_shape)``. A tfds
    image dataset that is not prepared is described by its builder (shapes need no
    download), with a blank image."""
    import numpy as np

    from adljax.data import DatasetUnavailableError, load, tfds_image_info

    try:
        data = load(dataset, "test", data_dir=args.data_dir, download=args.download)
    except DatasetUnavailableError as unavailable:
        try:
            info = tfds_image_info(dataset, data_dir=args.data_dir)
        except ValueError:  # not a tfds image dataset (imdb, voc): its data is needed
            raise unavailable from None
        return info, np.zeros((1, *info.input_shape), np.float32)
    return data.info, next(iter(data.batches(1, shuffle=False)))["x"]


def _as_pairs(listing) -> list[tuple[str, str]]:
    return list(listing.items()) if isinstance(listing, dict) else list(listing)


def _run_command(args: argparse.Namespace) -> dict[str, Any] | None:
    if args.command == "datasets":
        _list_datasets()
        return None
    if args.command == "models":
        if args.summary is not None:
            return _model_summary(args)
        if args.dataset is not None or args.settings or args.depth is not None:
            raise ValueError("--dataset, --set and --depth go with --summary NAME")
        _list_models()
        return None
    if args.command == "tour":
        from adljax.tour import run_tour

        return run_tour(quick=args.quick, output_dir=args.output_dir, days=args.days)
    commands = {
        "train": _train,
        "evaluate": _evaluate,
        "predict": _predict,
        "export": _export,
        "serve": _serve,
    }
    return commands[args.command](args)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``adljax`` command; returns the exit status."""
    args = build_parser().parse_args(argv)
    _configure_devices(getattr(args, "devices", None))
    from adljax.data import DatasetUnavailableError
    from adljax.serving import ArtifactError
    from adljax.training import CheckpointWarning, NonFiniteLossError, ResumeWarning
    from adljax.training.checkpoint import CheckpointError

    def show_warning(message, category, filename, lineno, file=None, line=None) -> None:
        print(f"adljax {args.command}: warning: {message}", file=sys.stderr)

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("always", ResumeWarning)
            warnings.simplefilter("always", CheckpointWarning)
            warnings.showwarning = show_warning
            summary = _run_command(args)
    except (
        ValueError,
        CheckpointError,
        ArtifactError,
        DatasetUnavailableError,
        NonFiniteLossError,
    ) as error:
        print(f"adljax {args.command}: error: {error}", file=sys.stderr)
        return 2
    if summary is not None and getattr(args, "json", False):
        print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
