"""DetLabelEncode: PaddleOCR detection label JSON -> polygons, texts and ignore tags.

A label is a JSON list of ``{"transcription": str, "points": [[x, y], ...]}`` objects (PaddleOCR
label-file format).  ``"###"`` and ``"*"`` transcriptions are don't-care regions (PaddleOCR
semantics).  Polygons with fewer points than the largest one are padded by repeating their last
point, so ``polys`` is one ``float32 [N, P, 2]`` array.  An empty list is a valid, all-negative
image (``polys`` has shape ``[0, 4, 2]``).  Malformed labels raise :class:`DataError`.
"""
from __future__ import annotations

import json
from typing import Any, List

import numpy as np

from ...errors import DataError
from ...registry import TRANSFORMS

IGNORE_TEXTS = ("###", "*")


def _parse_points(points: Any, index: int) -> np.ndarray:
    where = f"label box {index}"
    if not isinstance(points, (list, tuple)):
        raise DataError(f"{where}: 'points' must be a list of [x, y] pairs, got {type(points).__name__}")
    try:
        arr = np.asarray(points)
    except ValueError:
        raise DataError(f"{where}: 'points' is ragged (every point needs exactly 2 coordinates)") from None
    if arr.size == 0:
        raise DataError(f"{where}: 'points' is empty")
    if arr.dtype.kind not in "iuf":
        raise DataError(f"{where}: 'points' must contain only numbers, got {points!r}"[:300])
    if arr.ndim == 1:
        if arr.size % 2:
            raise DataError(f"{where}: odd number of coordinates ({arr.size}) in 'points'")
        arr = arr.reshape(-1, 2)
    elif arr.ndim != 2 or arr.shape[1] != 2:
        raise DataError(f"{where}: every point needs exactly 2 coordinates, 'points' has shape "
                        f"{list(arr.shape)}")
    arr = arr.astype(np.float64)
    if not np.isfinite(arr).all():
        raise DataError(f"{where}: 'points' contains NaN or infinity")
    if len(arr) < 3:
        raise DataError(f"{where}: a polygon needs at least 3 points, got {len(arr)}")
    return arr


@TRANSFORMS.register()
class DetLabelEncode:
    """``data["label"]`` (JSON str) -> ``polys`` float32 ``[N, P, 2]``, ``texts`` list[str],
    ``ignore_tags`` bool ``[N]``."""

    def __init__(self):
        pass

    def __call__(self, data: dict) -> dict:
        if "label" not in data:
            raise DataError("sample has no 'label'")
        label = data["label"]
        if isinstance(label, (bytes, bytearray)):
            try:
                label = label.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise DataError(f"label is not valid UTF-8 ({exc.reason} at byte {exc.start})") from None
        if not isinstance(label, str):
            raise DataError(f"label must be a JSON string, got {type(label).__name__}")
        try:
            boxes = json.loads(label)
        except json.JSONDecodeError as exc:
            raise DataError(f"label is not valid JSON ({exc.msg} at character {exc.pos}): {label[:120]!r}") from None
        if not isinstance(boxes, list):
            raise DataError(f"label must be a JSON list of boxes, got {type(boxes).__name__}")
        polys: List[np.ndarray] = []
        texts: List[str] = []
        for i, box in enumerate(boxes):
            if not isinstance(box, dict):
                raise DataError(f"label box {i} must be an object with 'points' and 'transcription', "
                                f"got {type(box).__name__}")
            if "points" not in box:
                raise DataError(f"label box {i} has no 'points'")
            if "transcription" not in box:
                raise DataError(f"label box {i} has no 'transcription'")
            text = box["transcription"]
            if not isinstance(text, str):
                raise DataError(f"label box {i}: 'transcription' must be a string, got {type(text).__name__}")
            polys.append(_parse_points(box["points"], i))
            texts.append(text)
        n_pts = max((len(p) for p in polys), default=4)
        out = np.empty((len(polys), n_pts, 2), dtype=np.float32)
        for i, p in enumerate(polys):
            out[i, :len(p)] = p
            out[i, len(p):] = p[-1]
        data["polys"] = out
        data["texts"] = texts
        data["ignore_tags"] = np.array([t in IGNORE_TEXTS for t in texts], dtype=bool)
        return data
