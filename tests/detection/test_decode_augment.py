"""Decoding with fixed-shape NMS, and box-aware augmentation keeping boxes on objects."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from adljax import ops
from adljax.data.shapes import generate_shapes
from adljax.detection import (
    decode_detections,
    detection_augmentation,
    point_scores,
    random_flip_boxes,
    random_scale_crop,
)

pytestmark = pytest.mark.usefixtures("fast_compiles")


def _outputs(rng, batch=2, classes=3):
    points, strides = ops.pyramid_centre_points(32, 32, (8, 16))
    p = len(points)
    return {
        "class_logits": jnp.asarray(rng.normal(0, 2, (batch, p, classes)), jnp.float32),
        "box_distances": jnp.asarray(rng.uniform(0.2, 2, (batch, p, 4)), jnp.float32),
        "centerness_logits": jnp.asarray(rng.normal(0, 1, (batch, p)), jnp.float32),
        "points": jnp.asarray(points),
        "strides": jnp.asarray(strides),
    }


def test_decoding_is_per_class_nms_of_every_point_and_class():
    outputs = _outputs(np.random.default_rng(0))
    decode = jax.jit(functools.partial(decode_detections, image_size=(32, 32), max_detections=20))
    found = decode(outputs)
    assert found.boxes.shape == (2, 20, 4) and found.valid.dtype == bool
    scores = np.asarray(point_scores(outputs))
    boxes = np.asarray(
        ops.clip_xyxy(
            ops.decode_ltrb(outputs["points"], outputs["box_distances"], outputs["strides"]), 32, 32
        )
    )
    for i in range(2):
        expected = ops.non_max_suppression(
            np.repeat(boxes[i], 3, axis=0),
            scores[i].ravel(),
            np.tile(np.arange(3), len(boxes[i])),
            max_output=20,
            iou_threshold=0.6,
            score_threshold=0.05,
            pre_nms_top_k=300,
        )
        for got, want in zip(found, expected, strict=True):
            np.testing.assert_allclose(got[i], want, rtol=1e-6)
        valid = np.asarray(found.valid[i])
        assert np.all(np.diff(np.asarray(found.scores[i])[valid]) <= 0)
        assert np.all(np.asarray(found.boxes[i]) >= 0) and np.all(np.asarray(found.boxes[i]) <= 32)


def test_flip_moves_boxes_with_the_image_and_twice_is_identity(key):
    batch = generate_shapes(6, seed=4)
    once = jax.jit(random_flip_boxes)(key, batch)
    twice = random_flip_boxes(key, once)
    np.testing.assert_allclose(twice["x"], batch["x"])
    np.testing.assert_allclose(twice["boxes"], batch["boxes"], atol=1e-5)
    flipped = np.any(np.asarray(once["x"]) != batch["x"], axis=(1, 2, 3))
    assert flipped.any() and not flipped.all()
    boxes, mirrored = np.asarray(once["boxes"]), batch["boxes"].copy()
    mirrored[..., [0, 2]] = 64 - batch["boxes"][..., [2, 0]]
    np.testing.assert_allclose(boxes[flipped], mirrored[flipped])
    np.testing.assert_allclose(boxes[~flipped], batch["boxes"][~flipped])


def test_scale_crop_keeps_boxes_on_their_objects(key):
    data = generate_shapes(16, seed=5, max_objects=1)  # one object: never covered
    out = jax.jit(functools.partial(random_scale_crop, min_scale=0.7, max_scale=1.4))(key, data)
    moved = 0
    for i in range(16):
        if out["box_mask"][i, 0] == 0:
            continue
        x0, y0, x1, y1 = (float(v) for v in out["boxes"][i, 0])
        before = data["boxes"][i, 0]
        moved += not np.allclose([x0, y0, x1, y1], before, atol=0.5)
        cy, cx = int((y0 + y1) / 2), int((x0 + x1) / 2)
        colour_before = data["x"][
            i, int((before[1] + before[3]) / 2), int((before[0] + before[2]) / 2)
        ]
        # The centre of the moved box shows the object's colour (up to interpolation).
        assert np.abs(np.asarray(out["x"][i, cy, cx]) - colour_before).max() < 0.1
        assert 0 <= x0 < x1 <= 64 and 0 <= y0 < y1 <= 64
    assert moved >= 8


def test_augmentation_keeps_shapes_and_drops_boxes_pushed_out(key):
    batch = generate_shapes(8, seed=6)
    out = jax.jit(detection_augmentation)(key, batch)
    for name in batch:
        assert out[name].shape == batch[name].shape and out[name].dtype == batch[name].dtype
    assert np.all(np.asarray(out["box_mask"]) <= batch["box_mask"])
    # Zooming far in keeps only part of the scene: some boxes get dropped.
    zoomed = random_scale_crop(key, batch, min_scale=3.0, max_scale=3.0)
    assert np.asarray(zoomed["box_mask"]).sum() < batch["box_mask"].sum()


def test_bad_scale_range_raises(key):
    with pytest.raises(ValueError, match="need 0 < `min_scale` <= `max_scale`"):
        random_scale_crop(key, generate_shapes(1, seed=0), min_scale=2.0, max_scale=1.0)
