"""Writing detections as an ICDAR2015 task 4.1 submission (the RRC zip format).

One ``res_img_N.txt`` per evaluated image (empty when nothing was detected), one
``x1,y1,x2,y2,x3,y3,x4,y4`` line of integers per box, corners clockwise in image
coordinates (x right, y down), as the RRC tool validates them.  Reversing a ring's order
does not change its area or its intersections, so a box whose corners come
counter-clockwise is written reversed and scores the same.
"""
from __future__ import annotations

import os
import zipfile
from typing import Dict, List, Sequence

import numpy as np

from ..errors import DataError
from ..metrics.rrc_io import clockwise_error, image_key
from ..metrics.records import ImageRecord

FIXED_DATE = (1980, 1, 1, 0, 0, 0)


def box_line(points: np.ndarray) -> str:
    """One submission line of a 4-point box (int coordinates, clockwise)."""
    pts = np.asarray(points)
    if pts.shape != (4, 2):
        raise ValueError(f"the RRC format holds 4-point boxes, got a polygon of shape {list(pts.shape)}; "
                         f"use PostProcess.box_type: quad")
    if not np.array_equal(pts, np.trunc(pts)):
        raise ValueError(f"box corners must be integers, got {pts.tolist()}")
    pts = pts.astype(np.int64)
    if clockwise_error(pts):
        pts = pts[::-1]
    return ",".join(str(int(v)) for v in pts.reshape(-1))


def submission_entries(records: Sequence[ImageRecord]) -> Dict[str, str]:
    """``{"res_img_N.txt": text}`` for every record; image names must be ``img_N.<ext>``."""
    out: Dict[str, str] = {}
    owner: Dict[str, str] = {}
    for rec in records:
        key = image_key(rec.image)
        if not key.isdigit():
            raise DataError(f"cannot name the submission entry of image {rec.image}: the RRC format needs "
                            f"images named img_N.<ext>", rec.label)
        name = f"res_img_{int(key)}.txt"
        if name in owner:
            raise DataError(f"images {owner[name]} and {rec.image} both map to {name}", rec.label)
        owner[name] = rec.image
        lines: List[str] = []
        for k, det in enumerate(rec.det):
            try:
                lines.append(box_line(det))
            except ValueError as exc:
                raise DataError(f"detection {k} of {rec.image}: {exc}", rec.label) from None
        out[name] = "".join(line + "\n" for line in lines)
    return out


def write_submission(records: Sequence[ImageRecord], path: str) -> int:
    """Write the zip atomically (temporary file, then rename); returns the number of entries."""
    entries = submission_entries(records)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    tmp = f"{path}.{os.getpid()}.tmp"
    try:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            for name in sorted(entries, key=lambda n: int(n[len("res_img_"):-len(".txt")])):
                info = zipfile.ZipInfo(name, date_time=FIXED_DATE)  # same bytes for the same detections
                info.compress_type = zipfile.ZIP_DEFLATED
                zf.writestr(info, entries[name])
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return len(entries)
