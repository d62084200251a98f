"""Data parallelism with ``jax.sharding``: the batch split over a ``data`` mesh axis.

Parameters and optimizer state are replicated; XLA's SPMD partitioner inserts the gradient
all-reduce. adljax writes no communication of its own.
"""

import jax
from jax.sharding import AxisType, Mesh, NamedSharding, PartitionSpec

from adljax._validate import check_positive_int

DATA_AXIS = "data"


def data_mesh(num_devices: int | None = None) -> Mesh:
    """A 1-D mesh named ``data`` over the first ``num_devices`` devices (default: all).

    Axes are ``Auto`` so Linen modules (dropout included) compile unchanged under it.
    """
    available = jax.device_count()
    num_devices = available if num_devices is None else num_devices
    check_positive_int(num_devices, "devices")
    if num_devices > available:
        raise ValueError(
            f"`devices` is {num_devices} but only {available} device(s) are visible "
            f"(on a CPU, simulate more with XLA_FLAGS=--xla_force_host_platform_device_count=N "
            f"set before jax is imported)"
        )
    return jax.make_mesh(
        (num_devices,),
        (DATA_AXIS,),
        axis_types=(AxisType.Auto,),
        devices=jax.devices()[:num_devices],
    )


def replicated(mesh: Mesh) -> NamedSharding:
    """Every device holds the whole array."""
    return NamedSharding(mesh, PartitionSpec())


def batch_sharded(mesh: Mesh) -> NamedSharding:
    """The leading (batch) axis is split over ``data``."""
    return NamedSharding(mesh, PartitionSpec(DATA_AXIS))


def check_divisible(batch_size: int, mesh: Mesh, name: str = "batch_size") -> None:
    """Raises ``ValueError`` unless ``batch_size`` splits evenly over the mesh's devices."""
    devices = mesh.shape[DATA_AXIS]
    if batch_size % devices:
        raise ValueError(
            f"`{name}` ({batch_size}) must be divisible by the number of devices ({devices})"
        )
