"""Pictures of evaluated images: GT and detections drawn over the source image.

Colours (BGR): GT green, detections red, don't-care GT grey.  GT is drawn last, so a GT
corner pixel always shows the GT colour.  Above the image a header band of
:data:`HEADER_HEIGHT` pixels gives the file name and the image's precision / recall /
hmean; the image itself is pasted unscaled below it (pixel ``(x, y)`` of the image is
pixel ``(x, y + HEADER_HEIGHT)`` of the picture).  An image that cannot be read is
replaced by a dark canvas large enough for its boxes, and the header says so.
"""
from __future__ import annotations

import os
from typing import List, Optional, Sequence

import cv2
import numpy as np

from ..metrics.records import ImageRecord

GT_COLOR = (0, 255, 0)
DET_COLOR = (0, 0, 255)
DONT_CARE_COLOR = (160, 160, 160)
HEADER_HEIGHT = 22
_HEADER_BG = (40, 40, 40)
_MISSING_BG = (70, 70, 70)
_FONT = cv2.FONT_HERSHEY_SIMPLEX
_FONT_SCALE = 0.45
MODES = ("first", "worst")


def header_text(rec: ImageRecord) -> str:
    m = rec.metrics()
    r = rec.result
    text = (f"{os.path.basename(rec.image)}  P {m['precision']:.3f}  R {m['recall']:.3f}  H {m['hmean']:.3f}  "
            f"(GT {r.gt_care}, det {r.det_care}, matched {r.matched})")
    if rec.skipped is not None:
        text += "  NOT LOADED: scored with no detections"
    return text


def _int_points(poly: np.ndarray) -> np.ndarray:
    return np.round(np.asarray(poly, np.float64).reshape(-1, 1, 2)).astype(np.int32)


def render(rec: ImageRecord, image: Optional[np.ndarray]) -> np.ndarray:
    """The picture of one record over ``image`` (BGR ``[H, W, 3]``, or ``None`` if unreadable)."""
    if image is None:
        pts = [np.asarray(p).reshape(-1, 2) for p in list(rec.gt) + list(rec.det)]
        far = np.max(np.concatenate(pts), axis=0) if pts else np.zeros(2)
        w, h = max(64, int(np.ceil(far[0])) + 8), max(64, int(np.ceil(far[1])) + 8)
        body = np.empty((h, w, 3), np.uint8)
        body[:] = _MISSING_BG
    else:
        body = np.ascontiguousarray(image[:, :, :3] if image.ndim == 3 else cv2.cvtColor(image, cv2.COLOR_GRAY2BGR))
        body = body.copy()
    h, w = body.shape[:2]
    thickness = max(1, int(round(max(h, w) / 640)))
    for det in rec.det:
        cv2.polylines(body, [_int_points(det)], True, DET_COLOR, thickness)
    order = sorted(range(len(rec.gt)), key=lambda i: not rec.gt_dont_care[i])  # care GT on top
    for i in order:
        color = DONT_CARE_COLOR if rec.gt_dont_care[i] else GT_COLOR
        cv2.polylines(body, [_int_points(rec.gt[i])], True, color, thickness)
    text = header_text(rec)
    (tw, _), _ = cv2.getTextSize(text, _FONT, _FONT_SCALE, 1)
    canvas = np.empty((HEADER_HEIGHT + h, max(w, tw + 8), 3), np.uint8)
    canvas[:] = _HEADER_BG
    canvas[HEADER_HEIGHT:, :w] = body
    cv2.putText(canvas, text, (4, HEADER_HEIGHT - 7), _FONT, _FONT_SCALE, (255, 255, 255), 1, cv2.LINE_AA)
    return canvas


def select(records: Sequence[ImageRecord], n: int, mode: str = "first") -> List[ImageRecord]:
    """The first ``n`` records in dataset order, or the ``n`` worst by hmean (most errors first on ties)."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    if mode == "first":
        return list(records[:n])

    def badness(r: ImageRecord):
        errors = (r.result.gt_care - r.result.matched) + (r.result.det_care - r.result.matched)
        return r.metrics()["hmean"], -errors, r.index

    return sorted(records, key=badness)[:n]


def write_visualisations(records: Sequence[ImageRecord], out_dir: str, n: int, mode: str = "first") -> List[str]:
    """Write ``NNN_<image stem>.png`` (NNN = position in the selection) for the selected records."""
    os.makedirs(out_dir, exist_ok=True)
    paths = []
    for pos, rec in enumerate(select(records, n, mode)):
        image = cv2.imread(rec.image, cv2.IMREAD_COLOR) if os.path.isfile(rec.image) else None
        stem = os.path.splitext(os.path.basename(rec.image))[0]
        path = os.path.join(out_dir, f"{pos:03d}_{stem}.png")
        if not cv2.imwrite(path, render(rec, image)):
            raise OSError(f"cannot write {path}")
        paths.append(path)
    return paths
