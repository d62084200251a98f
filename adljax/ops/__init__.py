"""Pure array operations for detection: boxes, centre points and offsets, fixed-shape NMS.

Synopsis::

    from adljax import ops
    iou = ops.pairwise_iou_xyxy(predicted, truth)                 # (N, M)
    points, strides = ops.pyramid_centre_points(64, 64, (8, 16))  # (P, 2), (P,)
    kept = jax.vmap(functools.partial(ops.non_max_suppression, max_output=50))(
        boxes, scores, classes)                                   # fixed shapes per image
"""

from adljax.ops.anchors import centre_points as centre_points
from adljax.ops.anchors import decode_ltrb as decode_ltrb
from adljax.ops.anchors import encode_ltrb as encode_ltrb
from adljax.ops.anchors import feature_map_size as feature_map_size
from adljax.ops.anchors import pyramid_centre_points as pyramid_centre_points
from adljax.ops.boxes import area_xyxy as area_xyxy
from adljax.ops.boxes import clip_xyxy as clip_xyxy
from adljax.ops.boxes import cxcywh_to_xywh as cxcywh_to_xywh
from adljax.ops.boxes import cxcywh_to_xyxy as cxcywh_to_xyxy
from adljax.ops.boxes import giou_xyxy as giou_xyxy
from adljax.ops.boxes import iou_xyxy as iou_xyxy
from adljax.ops.boxes import pairwise_giou_xyxy as pairwise_giou_xyxy
from adljax.ops.boxes import pairwise_iou_xyxy as pairwise_iou_xyxy
from adljax.ops.boxes import xywh_to_cxcywh as xywh_to_cxcywh
from adljax.ops.boxes import xywh_to_xyxy as xywh_to_xyxy
from adljax.ops.boxes import xyxy_to_cxcywh as xyxy_to_cxcywh
from adljax.ops.boxes import xyxy_to_xywh as xyxy_to_xywh
from adljax.ops.nms import NMSResult as NMSResult
from adljax.ops.nms import non_max_suppression as non_max_suppression
