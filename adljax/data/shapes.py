"""``shapes``: generated scenes of ellipses, rectangles and triangles for object detection.

Each RGB image has a dark, noisy gradient background crossed by a few thin lines of
clutter, and 1 to ``max_objects`` objects of 3 classes in random sizes (15% to 45% of the
image side), aspect ratios (0.7 to 1.4) and bright colours. Objects may overlap (their
boxes' IoU stays at most 0.35); larger objects are painted first, so smaller ones stay in
view. Everything is vectorised NumPy, deterministic from the seed.

Arrays (``N`` images, ``M = max_objects`` box slots, present objects first):

- ``"x"``: float32 ``(N, S, S, 3)`` in ``[0, 1]``;
- ``"boxes"``: float32 ``(N, M, 4)``, corners ``(x_min, y_min, x_max, y_max)`` in pixels
  (``x`` along the width; pixel ``(i, j)`` covers ``[j, j + 1] x [i, i + 1]``); zeros in
  empty slots;
- ``"labels"``: int32 ``(N, M)``, class ids (0 in empty slots);
- ``"box_mask"``: float32 ``(N, M)``, 1 for an object, 0 for an empty slot.
"""

import numpy as np

from adljax._validate import check_positive_int
from adljax.data.dataset import ArrayDataset
from adljax.data.info import DatasetInfo

CLASS_NAMES = ("ellipse", "rectangle", "triangle")
"""The classes of ``shapes``, by label."""

_SIZE_RANGE = (0.15, 0.45)  # object side, as a fraction of the image side
_ASPECT_RANGE = (0.7, 1.4)  # width / height
_MAX_IOU = 0.35  # an object overlapping an earlier one more than this is left out
_CLUTTER_LINES = 4
_CHUNK = 256  # images generated at once (bounds the (chunk, M, S, S) temporaries)


def _pairwise_iou(boxes: np.ndarray) -> np.ndarray:
    """IoU ``(N, M, M)`` between the boxes ``(N, M, 4)`` of each image."""
    a, b = boxes[:, :, None, :], boxes[:, None, :, :]
    size = np.maximum(np.minimum(a[..., 2:], b[..., 2:]) - np.maximum(a[..., :2], b[..., :2]), 0)
    intersection = size[..., 0] * size[..., 1]
    areas = np.prod(boxes[..., 2:] - boxes[..., :2], axis=-1)
    return intersection / (areas[:, :, None] + areas[:, None, :] - intersection)


def _object_masks(labels: np.ndarray, boxes: np.ndarray, size: int) -> np.ndarray:
    """Pixels ``(n, M, S, S)`` covered by each object (ellipse, rectangle or up-triangle)."""
    centres = (np.arange(size) + 0.5)[None, None]
    px, py = centres[:, :, None, :], centres[:, :, :, None]
    x0, y0, x1, y1 = (boxes[..., i][:, :, None, None] for i in range(4))
    cx, cy, half_w, half_h = (x0 + x1) / 2, (y0 + y1) / 2, (x1 - x0) / 2, (y1 - y0) / 2
    ellipse = ((px - cx) / half_w) ** 2 + ((py - cy) / half_h) ** 2 <= 1
    rectangle = (np.abs(px - cx) <= half_w) & (np.abs(py - cy) <= half_h)
    # Apex at the top centre, base along the bottom side.
    triangle = (py >= y0) & (py <= y1) & (np.abs(px - cx) <= half_w * (py - y0) / (y1 - y0))
    kind = labels[:, :, None, None]
    return np.where(kind == 0, ellipse, np.where(kind == 1, rectangle, triangle))


def _backgrounds(rng: np.random.Generator, n: int, size: int) -> np.ndarray:
    """Dark gradients with noise and thin clutter lines ``(n, S, S, 3)`` float32."""
    ramp = ((np.arange(size) + 0.5) / size).astype(np.float32)
    base = rng.uniform(0.0, 0.25, (n, 1, 1, 3)).astype(np.float32)
    slope = rng.uniform(-0.1, 0.1, (n, 2, 1, 1, 3)).astype(np.float32)
    image = base + slope[:, 0] * ramp[None, :, None, None] + slope[:, 1] * ramp[None, None, :, None]
    image += rng.normal(0.0, 0.03, (n, size, size, 3)).astype(np.float32)
    # Thin lines: pixels within 0.6 px of a random segment from (x0, y0) by (dx, dy).
    x0, y0, dx, dy = (
        v[:, :, None, None] for v in rng.uniform(0, size, (4, n, _CLUTTER_LINES)).astype(np.float32)
    )
    dx, dy = dx - x0, dy - y0
    px, py = (ramp * size)[None, None, None, :], (ramp * size)[None, None, :, None]
    ox, oy = px - x0, py - y0
    along = np.clip((ox * dx + oy * dy) / np.maximum(dx * dx + dy * dy, 1e-6), 0, 1)
    on_line = (ox - along * dx) ** 2 + (oy - along * dy) ** 2 < 0.36
    colours = rng.uniform(0.2, 0.8, (n, _CLUTTER_LINES, 3)).astype(np.float32)
    for line in range(_CLUTTER_LINES):
        image = np.where(on_line[:, line, :, :, None], colours[:, line, None, None], image)
    return image


def _scenes(rng: np.random.Generator, n: int, size: int, max_objects: int) -> dict:
    """One chunk of ``n`` scenes: the arrays described in the module docstring."""
    m = max_objects
    counts = rng.integers(1, m + 1, n)
    labels = rng.integers(0, len(CLASS_NAMES), (n, m))
    side = rng.uniform(*_SIZE_RANGE, (n, m)) * size
    aspect = np.sqrt(rng.uniform(*_ASPECT_RANGE, (n, m)))
    width, height = side * aspect, side / aspect
    cx = width / 2 + rng.uniform(0, 1, (n, m)) * (size - width)
    cy = height / 2 + rng.uniform(0, 1, (n, m)) * (size - height)
    boxes = np.stack([cx - width / 2, cy - height / 2, cx + width / 2, cy + height / 2], -1)
    present = np.arange(m)[None] < counts[:, None]
    overlaps_earlier = np.tril(_pairwise_iou(boxes) > _MAX_IOU, k=-1) & present[:, None, :]
    present &= ~overlaps_earlier.any(axis=-1)
    # Present objects first, largest first: painting in this order keeps small ones visible.
    order = np.argsort(np.where(present, -width * height, np.inf), axis=1, kind="stable")
    boxes = np.take_along_axis(boxes, order[..., None], 1)
    labels, present = (np.take_along_axis(a, order, 1) for a in (labels, present))
    image = _backgrounds(rng, n, size)
    colours = rng.uniform(0.45, 1.0, (n, m, 3)).astype(np.float32)
    covered = _object_masks(labels, boxes, size) & present[:, :, None, None]
    for slot in range(m):
        image = np.where(covered[:, slot, :, :, None], colours[:, slot, None, None], image)
    return {
        "x": np.clip(image, 0.0, 1.0).astype(np.float32),
        "boxes": np.where(present[..., None], boxes, 0.0).astype(np.float32),
        "labels": np.where(present, labels, 0).astype(np.int32),
        "box_mask": present.astype(np.float32),
    }


def generate_shapes(
    num_images: int, *, seed: int, image_size: int = 64, max_objects: int = 6
) -> dict[str, np.ndarray]:
    """``num_images`` scenes from ``seed``: ``{"x", "boxes", "labels", "box_mask"}``.

    Args:
        num_images: N.
        seed: generation seed; the same seed gives the same arrays.
        image_size: S, the side of the square images (at least 16).
        max_objects: M, the box slots per image (at least 1).
    """
    check_positive_int(num_images, "num_images")
    check_positive_int(max_objects, "max_objects")
    if check_positive_int(image_size, "image_size") < 16:
        raise ValueError(f"`image_size` must be at least 16, got {image_size}")
    rng = np.random.default_rng(seed)
    chunks = [
        _scenes(rng, min(_CHUNK, num_images - start), image_size, max_objects)
        for start in range(0, num_images, _CHUNK)
    ]
    return {key: np.concatenate([c[key] for c in chunks]) for key in chunks[0]}


def shapes_info(image_size: int = 64, max_objects: int = 6) -> DatasetInfo:
    """The `DatasetInfo` of ``shapes`` (task ``"detection"``, 3 classes)."""
    return DatasetInfo(
        name="shapes",
        task="detection",
        input_shape=(image_size, image_size, 3),
        num_outputs=len(CLASS_NAMES),
        num_classes=len(CLASS_NAMES),
        class_names=CLASS_NAMES,
        description="generated scenes of ellipses, rectangles and triangles with boxes "
        "(detection, 3 classes)",
        extras={"box_format": "xyxy", "max_objects": max_objects},
    )


def build_shapes(
    *,
    seed: int,
    data_dir: str | None = None,
    download: bool = False,
    num_train: int = 2000,
    num_test: int = 500,
    image_size: int = 64,
    max_objects: int = 6,
) -> dict[str, ArrayDataset]:
    """The ``train`` and ``test`` splits of ``shapes`` (independent draws from ``seed``).

    ``data_dir`` and ``download`` are unused (the data is generated).
    """
    del data_dir, download
    info = shapes_info(image_size, max_objects)
    splits = {}
    for index, (split, count) in enumerate((("train", num_train), ("test", num_test))):
        arrays = generate_shapes(
            count,
            seed=np.random.SeedSequence((seed, index)).generate_state(1)[0],
            image_size=image_size,
            max_objects=max_objects,
        )
        splits[split] = ArrayDataset(info, arrays, split)
    return splits
