"""Geometry helpers of the DB post-processor, batched over boxes where OpenCV allows it.

The semantics (corner order, ROI rounding, unclip distance, rescaling arithmetic) follow
PaddleOCR's ``DBPostProcess`` (itself from DBNet.pytorch; DB paper, Liao et al., AAAI 2020)
so that boxes and scores come out bit-identical; only the bookkeeping is vectorised.
"""
from __future__ import annotations

from typing import List, Optional, Sequence, Tuple

import cv2
import numpy as np
import pyclipper
import shapely


def contour_bounds(contours: Sequence[np.ndarray]) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-contour point counts and axis-aligned bounds, from one concatenated pass.

    Args:
        contours: OpenCV contours, each int32 ``[n_i, 1, 2]``.
    Returns:
        ``counts`` int ``[C]``, ``lo`` and ``hi`` int32 ``[C, 2]`` = min / max of (x, y).
    """
    n = len(contours)
    if n == 0:
        return np.zeros(0, np.int64), np.zeros((0, 2), np.int32), np.zeros((0, 2), np.int32)
    counts = np.fromiter((len(c) for c in contours), dtype=np.int64, count=n)
    pts = np.concatenate(contours).reshape(-1, 2)
    starts = np.zeros(n, np.int64)
    np.cumsum(counts[:-1], out=starts[1:])
    return counts, np.minimum.reduceat(pts, starts, axis=0), np.maximum.reduceat(pts, starts, axis=0)


def order_corners(corners: np.ndarray) -> np.ndarray:
    """Order ``cv2.boxPoints`` corners as PaddleOCR's ``get_mini_boxes`` does.

    Corners are stably sorted by x; of the two left-most the one with the smaller y is the
    first corner (top-left), of the two right-most the smaller-y one is second (top-right),
    the other right one third and the other left one fourth: clockwise in image coordinates.

    Args:
        corners: float32 ``[K, 4, 2]``.
    Returns:
        float32 ``[K, 4, 2]``.
    """
    if len(corners) == 0:
        return corners.reshape(0, 4, 2)
    idx = np.argsort(corners[:, :, 0], axis=1, kind="stable")
    srt = np.take_along_axis(corners, idx[:, :, None], axis=1)
    left_swap = srt[:, 1, 1] <= srt[:, 0, 1]   # upstream keeps order only if y1 > y0
    right_swap = srt[:, 3, 1] <= srt[:, 2, 1]
    k = np.arange(len(corners))
    first = np.where(left_swap, 1, 0)
    fourth = 1 - first
    second = np.where(right_swap, 3, 2)
    third = 5 - second
    return np.stack([srt[k, first], srt[k, second], srt[k, third], srt[k, fourth]], axis=1)


def min_area_boxes(point_sets: Sequence[np.ndarray]) -> Tuple[np.ndarray, np.ndarray]:
    """Minimum-area rectangles of point sets, corners ordered clockwise from top-left.

    Returns:
        boxes float32 ``[K, 4, 2]`` and short sides float ``[K]``.
    """
    k = len(point_sets)
    if k == 0:
        return np.zeros((0, 4, 2), np.float32), np.zeros(0)
    rects = [cv2.minAreaRect(p) for p in point_sets]
    corners = np.stack([cv2.boxPoints(r) for r in rects])
    short = np.fromiter((min(r[1]) for r in rects), dtype=np.float64, count=k)
    return order_corners(corners), short


def _roi_bounds(lo: np.ndarray, hi: np.ndarray, w: int, h: int) -> np.ndarray:
    """Clip per-box [xmin, ymin] / [xmax, ymax] to the map; int ``[K, 4]``."""
    x0 = np.clip(lo[:, 0], 0, w - 1)
    y0 = np.clip(lo[:, 1], 0, h - 1)
    x1 = np.clip(hi[:, 0], 0, w - 1)
    y1 = np.clip(hi[:, 1], 0, h - 1)
    return np.stack([x0, y0, x1, y1], axis=1).astype(np.int64)


def _masked_means(prob: np.ndarray, polys: Sequence[np.ndarray], bounds: np.ndarray) -> np.ndarray:
    """Mean of ``prob`` inside each int polygon, rasterised in its own ROI (``cv2.fillPoly``)."""
    out = np.empty(len(polys), np.float64)
    for i, (poly, (x0, y0, x1, y1)) in enumerate(zip(polys, bounds)):
        mask = np.zeros((y1 - y0 + 1, x1 - x0 + 1), np.uint8)
        cv2.fillPoly(mask, poly.reshape(1, -1, 2), 1)
        out[i] = cv2.mean(prob[y0:y1 + 1, x0:x1 + 1], mask)[0]
    return out


def box_scores_fast(prob: np.ndarray, boxes: Sequence[np.ndarray]) -> np.ndarray:
    """Mean probability inside each polygon given by its (float or int) corner points.

    The ROI is the polygon's bounding box with floor/ceil, clipped to the map; corner offsets
    inside the ROI are truncated toward zero (PaddleOCR ``box_score_fast``).

    Args:
        prob: probability map P ``[H, W]``.
        boxes: ``[K, 4, 2]`` array or a list of ``[n_i, 2]`` polygons.
    Returns:
        float64 ``[K]``.
    """
    if len(boxes) == 0:
        return np.zeros(0)
    h, w = prob.shape[:2]
    if isinstance(boxes, np.ndarray) and boxes.ndim == 3:
        lo = np.floor(boxes.min(axis=1)).astype(np.int32)
        hi = np.ceil(boxes.max(axis=1)).astype(np.int32)
        bounds = _roi_bounds(lo, hi, w, h)
        shifted = (boxes - bounds[:, None, :2].astype(boxes.dtype)).astype(np.int32)
        polys = list(shifted)
    else:
        lo = np.array([np.floor(b.min(axis=0)) for b in boxes]).astype(np.int32)
        hi = np.array([np.ceil(b.max(axis=0)) for b in boxes]).astype(np.int32)
        bounds = _roi_bounds(lo, hi, w, h)
        polys = [(b - bb[:2].astype(b.dtype)).astype(np.int32) for b, bb in zip(boxes, bounds)]
    return _masked_means(prob, polys, bounds)


def contour_scores(prob: np.ndarray, contours: Sequence[np.ndarray], lo: np.ndarray,
                   hi: np.ndarray) -> np.ndarray:
    """Mean probability inside each contour polygon (PaddleOCR ``box_score_slow``).

    ``lo`` / ``hi``: the contours' min / max (x, y), ``[K, 2]`` (see :func:`contour_bounds`).
    """
    if len(contours) == 0:
        return np.zeros(0)
    h, w = prob.shape[:2]
    bounds = _roi_bounds(lo, hi, w, h)
    polys = [(c.reshape(-1, 2) - bb[:2]).astype(np.int32) for c, bb in zip(contours, bounds)]
    return _masked_means(prob, polys, bounds)


def unclip_distances(polys: Sequence[np.ndarray], ratio: float) -> np.ndarray:
    """Offset distance D' = A * r / L of each polygon (DB paper, eq. 10), GEOS area/length."""
    if len(polys) == 0:
        return np.zeros(0)
    if isinstance(polys, np.ndarray) and polys.ndim == 3:
        geoms = shapely.polygons(polys.astype(np.float64))
    else:
        coords = np.concatenate([np.asarray(p, np.float64).reshape(-1, 2) for p in polys])
        index = np.repeat(np.arange(len(polys)), [len(p) for p in polys])
        geoms = shapely.polygons(shapely.linearrings(coords, indices=index))
    return shapely.area(geoms) * ratio / shapely.length(geoms)


def unclip_one(poly: np.ndarray, distance: float) -> Optional[np.ndarray]:
    """Dilate one polygon by ``distance`` (round joins, pyclipper/Clipper offsetting).

    Returns the single resulting path as int ``[m, 2]``, or ``None`` when the offset yields
    no path or several (a dilated non-convex polygon may split off holes); such a candidate is
    dropped, which is what current PaddleOCR does and avoids numpy's ragged-array error of
    older releases.
    """
    offset = pyclipper.PyclipperOffset()
    offset.AddPath(poly, pyclipper.JT_ROUND, pyclipper.ET_CLOSEDPOLYGON)
    paths = offset.Execute(distance)
    if len(paths) != 1 or len(paths[0]) == 0:
        return None
    return np.array(paths[0])


def unclip_all(polys: Sequence[np.ndarray], ratio: float) -> List[Optional[np.ndarray]]:
    dist = unclip_distances(polys, ratio)
    return [unclip_one(p, float(d)) for p, d in zip(polys, dist)]
