"""MakeBorderMap: DB threshold-map target T* and its mask (DB paper, Liao et al. 2020, Sec. 3.3).

Each care polygon ``G`` (area ``A``, perimeter ``L``) is dilated by ``D = A (1 - r^2) / L``
(Vatti clipping, round joins) into ``G_d``; ``threshold_mask`` is the union of the ``G_d``.
Inside the bounding box of ``G_d`` every pixel gets ``1 - min(d / D, 1)``, ``d`` being its distance
to the nearest edge of ``G``; overlapping polygons take the maximum; the map is finally rescaled
to ``[thresh_min, thresh_max]``.

The edge distance follows PaddleOCR's ``make_border_map`` definition exactly: for an edge
``p1 p2``, a pixel inside the circle with diameter ``p1 p2`` gets its distance to the edge's line,
any other pixel the distance to the nearer endpoint (this differs from the Euclidean segment
distance only near the ends of an edge, and keeps the published targets).  PaddleOCR evaluates
every edge over the whole dilated box (memory and time ``O(P * box)``, hundreds of MB for
100+-vertex polygons); here that is done only while ``edges x box`` is small (one array
operation, typical text boxes), and otherwise each edge is evaluated over its own
``D``-neighbourhood box, outside of which its value is 0 anyway.  Pixels lying exactly on an edge's line get distance 0
here (PaddleOCR's ``sqrt`` of a rounding-negative value gives NaN and drops them).  Degenerate
polygons (fewer than 3 points, zero area, offset that vanishes) are skipped instead of raising.
"""
from __future__ import annotations

import math
from typing import Any, Dict

import numpy as np

from ...errors import DataError
from ...registry import TRANSFORMS
from .geometry import fill_polygons, offset_polygon, perimeter, signed_area

# edges x pixels below which all edges of a polygon are evaluated in one array operation
_VECTOR_LIMIT = 1 << 14


def draw_border_map(polygon: np.ndarray, canvas: np.ndarray, mask: np.ndarray, shrink_ratio: float) -> None:
    """Accumulate one polygon ``[P, 2]`` into ``canvas`` (max of ``1 - d/D``) and ``mask`` (in place)."""
    poly = np.asarray(polygon, dtype=np.float64)
    if poly.ndim != 2 or poly.shape[1] != 2 or len(poly) < 3 or not np.isfinite(poly).all():
        return
    area = abs(signed_area(poly))
    if not area > 0:
        return
    distance = area * (1 - shrink_ratio ** 2) / perimeter(poly)
    if not distance > 0:
        return
    padded = offset_polygon(poly, distance)
    if not padded:
        return
    fill_polygons(mask, padded, 1.0)
    pts = np.concatenate(padded)
    xmin, ymin = (int(v) for v in pts.min(axis=0))
    xmax, ymax = (int(v) for v in pts.max(axis=0))
    height, width = canvas.shape
    bx0, bx1 = max(xmin, 0), min(xmax, width - 1)
    by0, by1 = max(ymin, 0), min(ymax, height - 1)
    if bx0 > bx1 or by0 > by1:
        return
    rel = poly - (xmin, ymin)  # PaddleOCR works relative to the dilated box; same rounding
    p1, p2 = rel, np.roll(rel, -1, axis=0)
    sq_len = np.square(p1[:, 0] - p2[:, 0]) + np.square(p1[:, 1] - p2[:, 1])
    keep = sq_len > 0  # a repeated vertex adds nothing: its neighbours' endpoint distances cover it
    p1, p2, sq_len = p1[keep], p2[keep], sq_len[keep]
    win = canvas[by0:by1 + 1, bx0:bx1 + 1]
    if len(p1) * win.size <= _VECTOR_LIMIT:
        # small polygon: all edges at once over the clipped dilated box
        xs = np.arange(bx0 - xmin, bx1 - xmin + 1, dtype=np.float64)
        ys = np.arange(by0 - ymin, by1 - ymin + 1, dtype=np.float64)
        e = (slice(None), None, None)
        value = _edge_values(xs, ys, p1[:, 0][e], p1[:, 1][e], p2[:, 0][e], p2[:, 1][e], sq_len[e], distance)
        np.maximum(win, value.max(axis=0), out=win)
        return
    for (x1, y1), (x2, y2), sq in zip(p1.tolist(), p2.tolist(), sq_len.tolist()):
        # large polygon: each edge over the pixels that can be closer than D to it
        c0 = max(bx0, math.ceil(min(x1, x2) + xmin - distance))
        c1 = min(bx1, math.floor(max(x1, x2) + xmin + distance))
        r0 = max(by0, math.ceil(min(y1, y2) + ymin - distance))
        r1 = min(by1, math.floor(max(y1, y2) + ymin + distance))
        if c0 > c1 or r0 > r1:
            continue
        xs = np.arange(c0 - xmin, c1 - xmin + 1, dtype=np.float64)
        ys = np.arange(r0 - ymin, r1 - ymin + 1, dtype=np.float64)
        value = _edge_values(xs, ys, x1, y1, x2, y2, sq, distance)
        sub = canvas[r0:r1 + 1, c0:c1 + 1]
        np.maximum(sub, value, out=sub)


def _edge_values(xs: np.ndarray, ys: np.ndarray, x1, y1, x2, y2, sq_len, distance: float) -> np.ndarray:
    """``1 - clip(d / D, 0, 1)`` (float32) on the grid ``ys x xs`` for edges ``(x1, y1) -> (x2, y2)``.

    Edge arguments are scalars (one edge -> ``[H, W]``) or ``[E, 1, 1]`` arrays (-> ``[E, H, W]``).

    ``d`` is PaddleOCR's edge distance: to the edge's line inside the circle with diameter
    ``p1 p2``, to the nearer endpoint outside it (same float64 expressions, so the inside/outside
    decision is bit-identical; the line distance is computed as ``|cross| / |p1 p2|``).
    """
    dx1, dy1 = xs - x1, ys[:, None] - y1
    dx2, dy2 = xs - x2, ys[:, None] - y2
    sq1 = np.square(dx1) + np.square(dy1)
    sq2 = np.square(dx2) + np.square(dy2)
    outside = (sq_len - sq1 - sq2) < 0
    line = np.abs((x2 - x1) * dy1 - (y2 - y1) * dx1) / np.sqrt(sq_len)
    dist = np.where(outside, np.sqrt(np.minimum(sq1, sq2)), line)
    return 1 - np.clip(dist / distance, 0, 1).astype(np.float32)


@TRANSFORMS.register()
class MakeBorderMap:
    """Adds ``threshold_map`` (float32 ``[H, W]`` in ``[thresh_min, thresh_max]``) and
    ``threshold_mask`` (float32 ``[H, W]`` in {0, 1}) from ``polys`` / ``ignore_tags``."""

    def __init__(self, shrink_ratio: float = 0.4, thresh_min: float = 0.3, thresh_max: float = 0.7):
        if not 0 < float(shrink_ratio) < 1:
            raise ValueError(f"shrink_ratio must be in (0, 1), got {shrink_ratio!r}")
        if not float(thresh_min) <= float(thresh_max):
            raise ValueError(f"thresh_min ({thresh_min}) must not exceed thresh_max ({thresh_max})")
        self.shrink_ratio = float(shrink_ratio)
        self.thresh_min = float(thresh_min)
        self.thresh_max = float(thresh_max)

    def __call__(self, data: Dict[str, Any]) -> Dict[str, Any]:
        img = data["image"]
        if not isinstance(img, np.ndarray) or img.ndim < 2:
            raise DataError("MakeBorderMap expects a decoded image in data['image']")
        h, w = img.shape[:2]
        canvas = np.zeros((h, w), dtype=np.float32)
        mask = np.zeros((h, w), dtype=np.float32)
        ignore = data["ignore_tags"]
        for poly, ign in zip(data["polys"], ignore):
            if not ign:
                draw_border_map(poly, canvas, mask, self.shrink_ratio)
        canvas *= np.float32(self.thresh_max - self.thresh_min)
        canvas += np.float32(self.thresh_min)
        data["threshold_map"] = canvas
        data["threshold_mask"] = mask
        return data
