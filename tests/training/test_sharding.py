"""Data parallel training over 8 simulated CPU devices matches one device.

The device count is fixed when jax starts, so the comparison runs in a subprocess.
"""

import json
import os
import subprocess
import sys
import textwrap

import pytest

from adljax.training.sharding import data_mesh

_SCRIPT = textwrap.dedent(
    """
    import json
    import jax, numpy as np
    from adljax.data import load
    from adljax.models import MLP
    from adljax.training import create_optimizer, create_train_state, fit

    assert jax.device_count() == 8, jax.devices()
    train, test = load("digits", "train"), load("digits", "test")
    model = MLP(hidden_sizes=(64,), num_outputs=10, batch_norm=True, dropout_rate=0.2)

    def run(devices, whole_epoch):
        state = create_train_state(model, create_optimizer("adam", 1e-3),
                                   train.arrays["x"][:1], jax.random.key(0))
        result = fit(state, train, task="classification", epochs=2, batch_size=64,
                     eval_data=test, devices=devices, whole_epoch=whole_epoch, progress=False)
        return result

    out = {}
    single = run(None, True)
    for devices, whole_epoch in ((8, True), (8, False)):
        sharded = run(devices, whole_epoch)
        kernel = sharded.state.params["dense_0"]["kernel"]
        out[f"{devices}-{whole_epoch}"] = {
            "max_param_diff": max(
                float(np.max(np.abs(np.asarray(a) - np.asarray(b))))
                for a, b in zip(jax.tree.leaves(single.state.params),
                                jax.tree.leaves(sharded.state.params))
            ),
            "eval_diff": abs(single.history[-1]["eval"]["loss"]
                             - sharded.history[-1]["eval"]["loss"]),
            "replicated": kernel.sharding.is_fully_replicated,
            "num_devices": len(kernel.sharding.device_set),
        }
    print(json.dumps(out))
    """
)


def test_eight_device_data_parallel_matches_one_device():
    env = {
        **os.environ,
        "XLA_FLAGS": "--xla_force_host_platform_device_count=8",
        "JAX_PLATFORMS": "cpu",
    }
    result = subprocess.run(
        [sys.executable, "-c", _SCRIPT], capture_output=True, text=True, env=env, timeout=600
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    for run in report.values():
        assert run["replicated"]
        assert run["num_devices"] == 8
        assert run["max_param_diff"] < 1e-4, report
        assert run["eval_diff"] < 1e-5, report


def test_mesh_larger_than_the_machine_is_a_clear_error():
    with pytest.raises(ValueError, match="only 1 device"):
        data_mesh(64)
