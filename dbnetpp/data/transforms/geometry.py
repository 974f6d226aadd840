"""Polygon and affine helpers shared by the detection transforms.

Coordinate convention: polygon coordinates are *continuous* image coordinates, pixel ``(i, j)``
covering ``[j, j+1) x [i, i+1)``, so its centre is at ``(j + 0.5, i + 0.5)`` (the convention of
imgaug keypoints and of ``cv2.resize``).  Affine maps are 3x3 float64 matrices acting on
homogeneous column vectors ``[x, y, 1]``.
"""
from __future__ import annotations

from typing import List, Sequence

import cv2
import numpy as np
import pyclipper

# cv2 drawing takes int32 points; far-away vertices are clamped to this range first.
_INT_LIMIT = float(1 << 30)


def signed_area(poly: np.ndarray) -> float:
    """Shoelace area of a closed polygon ``[P, 2]``, positive when counter-clockwise in x-right/y-up axes."""
    p = np.asarray(poly, dtype=np.float64)
    x, y = p[:, 0], p[:, 1]
    return 0.5 * float(x[:-1] @ y[1:] - y[:-1] @ x[1:] + x[-1] * y[0] - y[-1] * x[0])


def perimeter(poly: np.ndarray) -> float:
    """Length of the closed ring ``[P, 2]`` (last point joined to the first)."""
    p = np.asarray(poly, dtype=np.float64)
    d = np.empty_like(p)
    d[:-1] = p[1:] - p[:-1]
    d[-1] = p[0] - p[-1]
    return float(np.sqrt((d * d).sum(axis=1)).sum())


def offset_polygon(poly: np.ndarray, distance: float) -> List[np.ndarray]:
    """Vatti/Clipper offset with round joins (``distance > 0`` dilates, ``< 0`` shrinks).

    Returns the resulting integer rings as ``int64 [K, 2]`` arrays (possibly none, possibly
    several).  The polygon is handed to pyclipper exactly as PaddleOCR does, so the integer
    rounding of the result is the same.
    """
    pco = pyclipper.PyclipperOffset()
    pco.AddPath([tuple(p) for p in poly.tolist()], pyclipper.JT_ROUND, pyclipper.ET_CLOSEDPOLYGON)
    return [np.asarray(path, dtype=np.int64).reshape(-1, 2) for path in pco.Execute(distance)]


def to_int32_points(poly: np.ndarray) -> np.ndarray:
    """``poly.astype(int32)`` (truncation, as PaddleOCR) with absurdly far vertices clamped."""
    return np.clip(poly, -_INT_LIMIT, _INT_LIMIT).astype(np.int32)


def fill_polygons(canvas: np.ndarray, polys: Sequence[np.ndarray], value: float) -> None:
    """``cv2.fillPoly`` of every ring in ``polys`` (float or int ``[K, 2]``) onto ``canvas`` in place."""
    pts = [to_int32_points(np.asarray(p)).reshape(-1, 1, 2) for p in polys if len(p) > 0]
    if pts:
        cv2.fillPoly(canvas, pts, value)


def transform_points(matrix: np.ndarray, pts: np.ndarray) -> np.ndarray:
    """Apply a 3x3 affine ``matrix`` to points ``[..., 2]`` (float64 result)."""
    pts = np.asarray(pts, dtype=np.float64)
    return pts @ matrix[:2, :2].T + matrix[:2, 2]


def translation(tx: float, ty: float) -> np.ndarray:
    m = np.eye(3)
    m[0, 2], m[1, 2] = tx, ty
    return m


def scaling(sx: float, sy: float) -> np.ndarray:
    return np.diag([float(sx), float(sy), 1.0])


def affine_inverse(m: np.ndarray) -> np.ndarray:
    """Inverse of a 3x3 affine matrix (closed form; ``ValueError`` when singular)."""
    a, b, c, d = m[0, 0], m[0, 1], m[1, 0], m[1, 1]
    det = a * d - b * c
    if det == 0 or not np.isfinite(det):
        raise ValueError("singular affine map")
    lin = np.array([[d, -b], [-c, a]]) / det
    out = np.eye(3)
    out[:2, :2] = lin
    out[:2, 2] = -lin @ m[:2, 2]
    return out


def pixel_inverse_map(forward: np.ndarray) -> np.ndarray:
    """2x3 matrix for ``cv2.warpAffine(..., flags=WARP_INVERSE_MAP)`` from a continuous forward map.

    ``forward`` maps source continuous coordinates to destination continuous coordinates;
    the result maps destination pixel *indices* to source pixel indices
    (``T(-0.5) @ forward^-1 @ T(+0.5)``).
    """
    return (translation(-0.5, -0.5) @ affine_inverse(forward) @ translation(0.5, 0.5))[:2]


def pixel_forward_map(forward: np.ndarray) -> np.ndarray:
    """2x3 matrix in pixel-index coordinates for ``cv2.warpAffine`` without ``WARP_INVERSE_MAP``."""
    return (translation(-0.5, -0.5) @ forward @ translation(0.5, 0.5))[:2]


def polys_outside_rect(polys: np.ndarray, x: float, y: float, w: float, h: float) -> np.ndarray:
    """bool ``[N]``: polygon ``[N, P, 2]`` lies wholly left/right/above/below the rectangle.

    Same test as PaddleOCR's ``is_poly_outside_rect`` (touching the border counts as inside).
    """
    if len(polys) == 0:
        return np.zeros(0, dtype=bool)
    xs, ys = polys[..., 0], polys[..., 1]
    return ((xs.max(axis=1) < x) | (xs.min(axis=1) > x + w)
            | (ys.max(axis=1) < y) | (ys.min(axis=1) > y + h))
