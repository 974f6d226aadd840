"""MakeShrinkMap: DB probability-map target P* (shrunk text kernels) and its mask.

DB paper (Liao et al. 2020, Sec. 3.3); follows PaddleOCR's ``make_shrink_map`` semantics:

1. polygon vertices are clamped to the image (``[0, W-1] x [0, H-1]``); a polygon whose area is
   then below 1 px is ignored; polygons are put in one orientation;
2. an ignored polygon, or one whose bounding box is thinner than ``min_text_size``, is zeroed in
   ``shrink_mask`` and tagged ignored;
3. otherwise it is shrunk by ``D = A (1 - r^2) / L`` (Vatti clipping, round joins), retrying with
   ratio ``2r`` (``arange(r, 1, r)``) while the result splits into several pieces; an empty result
   zeroes the mask and tags the polygon ignored; the pieces are filled with 1 in ``shrink_map``.

Like PaddleOCR, the clamped polygons and updated ignore tags are written back to ``data`` (a
following ``MakeBorderMap``, as in the DB++ configs, sees them).  Polygons with fewer than 3
points or non-finite coordinates are ignored instead of raising.
"""
from __future__ import annotations

from typing import Any, Dict

import numpy as np

from ...errors import DataError
from ...registry import TRANSFORMS
from .geometry import fill_polygons, offset_polygon, perimeter


def _paddle_area(poly: np.ndarray) -> float:
    """PaddleOCR's ``polygon_area`` sign convention (negative shoelace)."""
    x, y = poly[:, 0], poly[:, 1]
    xp = np.concatenate([x[-1:], x[:-1]])
    yp = np.concatenate([y[-1:], y[:-1]])
    return float((x * yp - y * xp).sum()) / 2.0


@TRANSFORMS.register()
class MakeShrinkMap:
    """Adds ``shrink_map`` (float32 ``[H, W]`` in {0, 1}) and ``shrink_mask`` (float32, 0 = ignore)."""

    def __init__(self, min_text_size: float = 8, shrink_ratio: float = 0.4):
        if not 0 < float(shrink_ratio) < 1:
            raise ValueError(f"shrink_ratio must be in (0, 1), got {shrink_ratio!r}")
        if float(min_text_size) < 0:
            raise ValueError(f"min_text_size must be >= 0, got {min_text_size!r}")
        self.min_text_size = float(min_text_size)
        self.shrink_ratio = float(shrink_ratio)
        self._ratios = np.arange(self.shrink_ratio, 1, self.shrink_ratio)

    def __call__(self, data: Dict[str, Any]) -> Dict[str, Any]:
        img = data["image"]
        if not isinstance(img, np.ndarray) or img.ndim < 2:
            raise DataError("MakeShrinkMap expects a decoded image in data['image']")
        h, w = img.shape[:2]
        polys = np.array(data["polys"], dtype=np.float32)
        ignore = np.array(data["ignore_tags"], dtype=bool)
        gt = np.zeros((h, w), dtype=np.float32)
        mask = np.ones((h, w), dtype=np.float32)
        if len(polys):
            polys[..., 0] = np.clip(polys[..., 0], 0, w - 1)
            polys[..., 1] = np.clip(polys[..., 1], 0, h - 1)
        for i in range(len(polys)):
            poly = polys[i]
            if polys.shape[1] < 3 or not np.isfinite(poly).all():
                ignore[i] = True
                continue
            area = _paddle_area(poly.astype(np.float64))
            if abs(area) < 1:
                ignore[i] = True
            if area > 0:
                poly = polys[i] = poly[::-1].copy()
            extent = poly.max(axis=0) - poly.min(axis=0)
            if ignore[i] or min(extent) < self.min_text_size:
                fill_polygons(mask, [poly], 0.0)
                ignore[i] = True
                continue
            p64 = poly.astype(np.float64)
            pieces = []
            for ratio in self._ratios:
                distance = abs(area) * (1 - ratio ** 2) / perimeter(p64)
                pieces = offset_polygon(p64, -distance)
                if len(pieces) == 1:
                    break
            if not pieces:
                fill_polygons(mask, [poly], 0.0)
                ignore[i] = True
                continue
            fill_polygons(gt, pieces, 1.0)
        data["polys"] = polys
        data["ignore_tags"] = ignore
        data["shrink_map"] = gt
        data["shrink_mask"] = mask
        return data
