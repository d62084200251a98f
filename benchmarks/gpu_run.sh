#!/usr/bin/env bash
# The checks and benchmarks that need an accelerator, in one run of about 7 minutes on one
# H200: the versions and the device, the precision and step tests on the GPU, then every
# benchmark that compares adljax with hand-written Flax (PyTorch rows are CPU-only and skipped),
# the streamed input pipeline, and the device's idle time over traced epochs.
#
#   benchmarks/gpu_run.sh [OUT_DIR]     (default benchmarks/results/gpu; PYTHON=python3)
#
# Each part has its own time limit, so one that hangs or fails leaves the others' results.
set -u
out="${1:-benchmarks/results/gpu}"
py="${PYTHON:-python3}"
mkdir -p "$out"
export PYTHONUNBUFFERED=1 XLA_PYTHON_CLIENT_PREALLOCATE=false

part() {  # part SECONDS NAME COMMAND...: runs COMMAND with a limit, logs to OUT/NAME.log
  local limit="$1" name="$2"
  shift 2
  echo "=== $name (limit ${limit}s)"
  local start=$SECONDS
  timeout "$limit" "$@" >"$out/$name.log" 2>&1
  local status=$?
  tail -n 25 "$out/$name.log"
  echo "=== $name: exit $status after $((SECONDS - start)) s"
}

nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv
"$py" -c 'import jax, flax, optax, orbax.checkpoint as o, chex
print("jax", jax.__version__, "flax", flax.__version__, "optax", optax.__version__,
      "orbax", o.__version__, "chex", chex.__version__, jax.devices())'

part 60 tests "$py" -m pytest -q -p no:cacheprovider -x -W default \
  tests/training/test_precision.py tests/training/test_steps.py tests/training/test_fit.py
part 90 bench "$py" -m benchmarks.run --only peak --only mlp --only mlp_bn_dropout \
  --only ablation --only epoch --only precision --out "$out/bench.json"
part 150 precision "$py" -m benchmarks.bench_precision --accelerator --out "$out/precision.json"
part 60 convnets "$py" -m benchmarks.bench_convnets --out "$out/convnets.json"
part 40 gan "$py" -m benchmarks.bench_gan --out "$out/gan.json"
part 90 recurrent "$py" -m benchmarks.bench_recurrent --out "$out/recurrent.json"
part 90 pipeline "$py" -m benchmarks.bench_pipeline --out "$out/pipeline.json"
part 60 idle "$py" -m benchmarks.bench_idle --out "$out/idle.json"
