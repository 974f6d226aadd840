"""DetLabelEncode: PaddleOCR detection label JSON -> polygons, texts and ignore tags.

A label is a JSON list of ``{"transcription": str, "points": [[x, y], ...]}`` objects (PaddleOCR
label-file format).  ``"###"`` and ``"*"`` transcriptions are don't-care regions (PaddleOCR
semantics).  Polygons with fewer points than the largest one are padded by repeating their last
point, so ``polys`` is one ``float32 [N, P, 2]`` array.  An empty list is a valid, all-negative
image (``polys`` has shape ``[0, 4, 2]``).  Malformed labels raise :class:`DataError`.
"""
from __future__ import annotations

import json
from typing import Any, List, Optional, Tuple

import numpy as np

from ..label_file import DuplicateKeyError, loads_label_json
from ...errors import DataError
from ...registry import TRANSFORMS

IGNORE_TEXTS = ("###", "*")
OUTSIDE_FACTOR = 4
OUTSIDE_MIN_PX = 1024
"""A coordinate farther outside the image than ``OUTSIDE_FACTOR`` image sizes (longer side; at least
``OUTSIDE_MIN_PX`` pixels, so that tiny images keep ordinary boxes) is not a label slightly over the
border but a broken one (``1e6``, or ``1e39``, which is not even a float32)."""


def _has_bool(points: Any) -> bool:
    if isinstance(points, bool):
        return True
    return isinstance(points, (list, tuple)) and any(_has_bool(p) for p in points)


def _parse_points(points: Any, index: int, image_hw: Optional[Tuple[int, int]] = None) -> np.ndarray:
    where = f"label box {index}"
    if not isinstance(points, (list, tuple)):
        raise DataError(f"{where}: 'points' must be a list of [x, y] pairs, got {type(points).__name__}")
    if _has_bool(points):
        raise DataError(f"{where}: 'points' contains true/false, not a number: {points!r}"[:300])
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
        raise DataError(f"{where}: 'points' contains NaN or infinity (or a number beyond float range)")
    f32_max = float(np.finfo(np.float32).max)
    if np.abs(arr).max() > f32_max:
        raise DataError(f"{where}: coordinate {arr.flat[np.abs(arr).argmax()]:g} is beyond float32's range")
    if image_hw is not None:
        reach = max(OUTSIDE_FACTOR * max(image_hw), OUTSIDE_MIN_PX)
        h, w = image_hw
        far = (arr[:, 0] < -reach) | (arr[:, 0] > w + reach) | (arr[:, 1] < -reach) | (arr[:, 1] > h + reach)
        if far.any():
            x, y = arr[int(np.argmax(far))]
            raise DataError(f"{where}: point ({x:g}, {y:g}) lies far outside the {w}x{h} image "
                            f"(more than {reach} pixels beyond its border)")
    if len(arr) < 3:
        raise DataError(f"{where}: a polygon needs at least 3 points, got {len(arr)}")
    return arr


def _image_hw(image: Any) -> Optional[Tuple[int, int]]:
    """(height, width) of a decoded HWC / CHW / HW image, ``None`` when there is none."""
    if not isinstance(image, np.ndarray):
        return None
    if image.ndim == 2:
        return int(image.shape[0]), int(image.shape[1])
    if image.ndim == 3:
        if image.shape[2] in (1, 3, 4):
            return int(image.shape[0]), int(image.shape[1])
        if image.shape[0] in (1, 3, 4):
            return int(image.shape[1]), int(image.shape[2])
    return None


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
            boxes = loads_label_json(label)
        except json.JSONDecodeError as exc:
            raise DataError(f"label is not valid JSON ({exc.msg} at character {exc.pos}): {label[:120]!r}") from None
        except DuplicateKeyError as exc:
            raise DataError(f"label: {exc}") from None
        if not isinstance(boxes, list):
            raise DataError(f"label must be a JSON list of boxes, got {type(boxes).__name__}")
        image_hw = _image_hw(data.get("image"))
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
            polys.append(_parse_points(box["points"], i, image_hw))
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
