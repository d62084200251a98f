"""Target assignment and the detection loss, inside compiled steps."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from adljax import ops
from adljax.data.shapes import generate_shapes
from adljax.detection import DETECTION, assign_targets
from adljax.models import Detector
from adljax.tasks import get_task
from adljax.training import create_optimizer, create_train_state, make_train_step

pytestmark = pytest.mark.usefixtures("fast_compiles")

POINTS, STRIDES = ops.pyramid_centre_points(64, 64, (8, 16))
TINY = Detector(num_outputs=3, width=8, head_width=16, tower_depth=1)


def test_the_task_is_registered():
    assert get_task("detection") is DETECTION


def test_assignment_by_hand():
    # A 12 x 12 box centred at (28, 28): stride-8 points (20|28, 20|28) lie inside and near
    # its centre; its largest reach from them is at most 14 <= 16, so no stride-16 point.
    boxes = np.array([[22, 22, 34, 34], [0, 0, 0, 0]], np.float32)
    targets = assign_targets(POINTS, STRIDES, boxes, np.array([2, 0]), np.array([1.0, 0.0]), 3)
    positive = np.flatnonzero(targets.positive)
    np.testing.assert_array_equal(POINTS[positive], [[28, 28]])
    np.testing.assert_array_equal(targets.classes[positive], [[0, 0, 1]])
    np.testing.assert_array_equal(targets.boxes[positive], boxes[:1])
    np.testing.assert_allclose(targets.centerness[positive], [1.0])
    assert np.all(np.asarray(targets.classes)[~np.asarray(targets.positive)] == 0)


def test_large_boxes_go_to_the_coarse_level_and_overlaps_to_the_smaller_box():
    boxes = np.array([[0, 0, 60, 60], [20, 20, 40, 40]], np.float32)
    targets = assign_targets(POINTS, STRIDES, boxes, np.array([0, 1]), np.ones(2), 2)
    positive = np.asarray(targets.positive)
    assert set(STRIDES[positive & (np.asarray(targets.classes)[:, 0] == 1)]) == {16.0}
    small = positive & (np.asarray(targets.classes)[:, 1] == 1)
    assert small.any() and np.all(np.asarray(targets.boxes)[small] == boxes[1])


def test_statistics_add_up_over_batches_and_padded_images_count_for_nothing(key):
    data = generate_shapes(4, seed=0)
    variables = TINY.init(key, data["x"], train=False)

    @jax.jit
    def statistics(batch):
        return DETECTION.loss_and_statistics(TINY.apply(variables, batch["x"], train=False), batch)

    whole_loss, whole = statistics(data)
    halves = []
    for rows in (slice(0, 2), slice(2, 4)):
        # Two real images, then two garbage images marked as padding.
        padded = {k: np.concatenate([v[rows], v[rows][::-1] * 0 + 7]) for k, v in data.items()}
        padded["labels"] = padded["labels"] % 3
        padded["mask"] = np.array([1, 1, 0, 0], np.float32)
        halves.append(statistics(padded)[1])
    summed = jax.tree.map(jnp.add, *halves)
    for name in whole:
        np.testing.assert_allclose(summed[name], whole[name], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(DETECTION.metrics(summed)["loss"], whole_loss, rtol=1e-5)
    assert whole["positives"] > 0


def test_a_few_steps_reduce_the_loss_on_a_fixed_batch(key):
    batch = generate_shapes(8, seed=1)
    state = create_train_state(TINY, create_optimizer("adam", 3e-3), batch["x"], key)
    step = jax.jit(make_train_step(DETECTION), donate_argnums=0)
    losses = []
    for _ in range(15):
        state, metrics = step(state, batch)
        losses.append(float(metrics["loss"]))
    assert np.all(np.isfinite(losses))
    assert losses[-1] < 0.7 * losses[0]
