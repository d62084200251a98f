"""Machine information, the printed tables and the JSON results file."""

import argparse
import datetime
import importlib.metadata
import json
import os
import platform
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import jax

PACKAGES = ("adljax", "jax", "jaxlib", "flax", "optax", "numpy", "torch")


def _version(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def _cpu_model() -> str | None:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or None


def machine_info() -> dict[str, Any]:
    """CPU count and model, platform, package versions, JAX devices, date and load."""
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    return {
        "date_utc": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "cpu_count": os.cpu_count(),
        "usable_cpus": usable,
        "cpu_model": _cpu_model(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "versions": {package: _version(package) for package in PACKAGES},
        "jax_devices": [str(device) for device in jax.devices()],
        "xla_flags": os.environ.get("XLA_FLAGS"),
        "load_average_start": _load_average(),
    }


def _load_average() -> list[float] | None:
    return list(os.getloadavg()) if hasattr(os, "getloadavg") else None


def finish_machine_info(results: dict[str, Any]) -> None:
    """Records the load average at the end of the run (how busy the shared machine was)."""
    results["machine"]["load_average_end"] = _load_average()


def write_json(results: dict[str, Any], path: str | os.PathLike) -> Path:
    """Writes ``results`` as indented JSON to ``path`` (creating its folder); returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=2) + "\n")
    return path


# ----- tables -------------------------------------------------------------------------------


def benchmark_arguments(
    description: str,
    default_out: Path,
    argv: Sequence[str] | None = None,
    models: Sequence[str] = (),
    flags: Mapping[str, str] | None = None,
) -> argparse.Namespace:
    """The command line every benchmark shares: ``--quick`` (a short smoke run) and
    ``--out PATH`` (the JSON results, default ``default_out``), plus ``--models NAME ...``
    (a subset of ``models``, each once, default all of them) when ``models`` is given and a
    switch ``--NAME`` per entry of ``flags`` (name -> help); parsed from ``argv``."""
    parser = argparse.ArgumentParser(description=description.split("\n", 1)[0])
    parser.add_argument("--quick", action="store_true", help="short smoke run")
    for name, help_text in (flags or {}).items():
        parser.add_argument(f"--{name}", action="store_true", help=help_text)
    parser.add_argument(
        "--out", type=Path, default=default_out, help=f"JSON results (default {default_out})"
    )
    if models:
        parser.add_argument(
            "--models",
            nargs="+",
            choices=list(models),
            default=list(models),
            help=f"models to run (default all: {' '.join(models)})",
        )
    args = parser.parse_args(argv)
    if models:
        args.models = list(dict.fromkeys(args.models))  # in the order given, each once
    return args


def report(results: dict[str, Any], text: str, path: str | os.PathLike) -> int:
    """Prints ``text`` (the results' table), writes ``results`` as JSON to ``path`` and says
    where; returns 0, the exit status of a benchmark's ``main``."""
    print(text)
    print(f"\nresults written to {write_json(results, path)}")
    return 0


def format_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A plain-text table, the first column left-aligned and the others right-aligned."""
    widths = [max(len(row[i]) for row in [headers, *rows]) for i in range(len(headers))]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(
            cell.ljust(width) if i == 0 else cell.rjust(width)
            for i, (cell, width) in enumerate(zip(cells, widths, strict=True))
        )

    return "\n".join([line(headers), "  ".join("-" * w for w in widths), *map(line, rows)])


def _number(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def mlp_rows(section: dict[str, Any]) -> list[list[str]]:
    """Table rows of one MLP section: model, implementation, ms, ratios, GFLOP/s, % of peak."""
    spread = section["timing"]["spread"]
    return [
        [
            section["model"],
            name,
            _number(row["median_ms"], 3),
            f"{100 * spread[name]:.0f}%",
            _number(row["time_ratio_to_flax"], 3),
            _number(row["time_ratio_to_adljax"], 3),
            _number(row["gflops"], 0),
            _number(row["percent_of_peak"], 0),
        ]
        for name, row in section["implementations"].items()
    ]


MLP_HEADERS = (
    "model",
    "impl",
    "ms/step",
    "range",
    "÷ flax",
    "÷ adljax",
    "GFLOP/s",
    "% peak",
)


def summary(results: dict[str, Any]) -> str:
    """Every section's table, as printed at the end of a run."""
    sections = results["sections"]
    machine = results["machine"]
    parts = [
        f"{machine['cpu_count']} CPUs ({machine['cpu_model']}), jax {machine['versions']['jax']}, "
        f"flax {machine['versions']['flax']}, optax {machine['versions']['optax']}, "
        f"torch {machine['versions']['torch']}; {machine['date_utc']}"
    ]
    if "peak" in sections:
        peak = sections["peak"]
        parts.append(
            f"Peak: jitted float32 {peak['size']}^3 matmul, median {1e3 * peak['median_s']:.2f} ms"
            f" = {peak['gflops']:.0f} GFLOP/s (outside load up to "
            f"{_load_percent(peak['outside_load'])})"
        )
    mlp_sections = [sections[name] for name in ("mlp", "mlp_bn_dropout") if name in sections]
    if mlp_sections:
        rows = [row for section in mlp_sections for row in mlp_rows(section)]
        parts.append(format_table(MLP_HEADERS, rows))
        parts.extend(_mlp_notes(mlp_sections))
    if "donation" in sections:
        parts.append(_donation_text(sections["donation"]))
    if "ablation" in sections:
        parts.append(_ablation_table(sections["ablation"]))
    if "epoch" in sections:
        parts.append(_epoch_table(sections["epoch"]))
    if "diagnostics" in sections:
        parts.append(_diagnostics_table(sections["diagnostics"]))
    if "precision" in sections:
        from benchmarks.bench_precision import precision_table  # it imports this module

        parts.append(precision_table(sections["precision"]))
    if "compile" in sections:
        parts.append(_compile_table(sections["compile"]))
    return "\n\n".join(parts)


def rounds_text(timing: dict[str, Any]) -> str:
    """``kept K of R rounds`` and the largest outside load seen, from a timing's JSON."""
    loads = [load for load in timing["outside_load"] if load is not None]
    load = f", outside load up to {100 * max(loads):.0f}%" if loads else ""
    return f"kept {len(timing['kept_rounds'])} of {timing['rounds']} rounds{load}"


def _mlp_notes(sections: Sequence[dict[str, Any]]) -> list[str]:
    lines = []
    for section in sections:
        ratios = ", ".join(f"{name} = {value:.3f}" for name, value in section["ratios"].items())
        lines.append(f"{section['model']}: paired ratios {ratios} (target adljax/flax <= 1.03)")
        lines.append(f"  {rounds_text(section['timing'])}")
        lines.extend(f"  note: {note}" for note in section["notes"])
    return ["\n".join(lines)]


def _donation_text(section: dict[str, Any]) -> str:
    ms = section["median_ms"]
    return (
        f"Donation ({section['model']}): donated {ms['donated']:.3f} ms/step, not donated "
        f"{ms['not_donated']:.3f} ms/step, paired ratio not/donated "
        f"{section['ratio_not_donated/donated']:.3f}; {rounds_text(section['timing'])}"
    )


def _ablation_table(section: dict[str, Any]) -> str:
    rows = [
        [
            name,
            _number(variant["median_ms"], 3),
            _number(variant["ratio_to_flax"], 3),
            _number(None if variant["flops"] is None else variant["flops"] / 1e6, 1),
        ]
        for name, variant in section["variants"].items()
    ]
    table = format_table(("hand-written step +", "ms/step", "÷ flax", "MFLOP"), rows)
    return (
        f"Ablation ({section['model']}): what adljax's step adds\n{table}\n"
        f"adljax / lr_and_task (paired): {section['ratio_adljax/lr_and_task']:.3f}; "
        f"{rounds_text(section['timing'])}"
    )


def _epoch_table(section: dict[str, Any]) -> str:
    rows = [
        [
            name if name.startswith("flax") else f"fit {name}",
            _number(mode["median_ms_per_epoch"], 2),
            _number(mode["us_per_step"], 1),
            f"{mode['examples_per_sec']:,.0f}",
        ]
        for name, mode in section["modes"].items()
    ]
    table = format_table(("mode", "ms/epoch", "µs/step", "examples/s"), rows)
    ratios = section["ratio_to_hand_written"]
    return (
        f"{section['dataset']} ({section['examples']} examples, {section['model']}, batch "
        f"{section['config']['batch_size']}, {section['steps_per_epoch']} steps/epoch)\n"
        f"{table}\nwhole-epoch speed-up over host batches (paired): "
        f"{section['speedup_whole_epoch']:.2f}x; fit ÷ hand-written Flax (paired, target "
        f"<= 1.03): whole-epoch ÷ scan {ratios['whole_epoch']:.3f}, host batches ÷ loop "
        f"{ratios['host_batches']:.3f}; {rounds_text(section['timing'])}"
    )


def _load_percent(load: float | None) -> str:
    return "-" if load is None else f"{100 * load:.0f}%"


def _compile_table(section: dict[str, Any]) -> str:
    rows = [
        [name, _number(entry["median_s"], 3), _load_percent(entry["outside_load"]), entry["what"]]
        for name, entry in section["functions"].items()
    ]
    return format_table(("function", "compile s", "outside load", "what"), rows)


def _diagnostics_table(section: dict[str, Any]) -> str:
    rows = []
    for mode, values in section["modes"].items():
        for name, ms in values["median_ms_per_epoch"].items():
            ratio = values["ratio_to_off"].get(name)
            rows.append((mode, name, _number(ms, 2), "1.00x" if ratio is None else f"{ratio:.2f}x"))
    table = format_table(("mode", "diagnostics", "ms/epoch", "vs off (paired)"), rows)
    return (
        f"fit(diagnostics_every=N) cost: {section['model']} on {section['dataset']} "
        f"(batch {section['config']['batch_size']}, {section['steps_per_epoch']} steps/epoch)\n"
        f"{table}"
    )
