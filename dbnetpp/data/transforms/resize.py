"""Resize: plain resize of image and polygons to ``size`` = ``[height, width]`` (PaddleOCR ``Resize``)."""
from __future__ import annotations

from typing import Any, Dict, Sequence

import cv2
import numpy as np

from ...errors import DataError
from ...registry import TRANSFORMS


@TRANSFORMS.register()
class Resize:
    def __init__(self, size: Sequence[int] = (640, 640)):
        if not isinstance(size, (list, tuple)) or len(size) != 2 or \
                not all(isinstance(v, int) and v > 0 for v in size):
            raise ValueError(f"size must be [height, width] positive integers, got {size!r}")
        self.size = (int(size[0]), int(size[1]))

    def __call__(self, data: Dict[str, Any]) -> Dict[str, Any]:
        img = data["image"]
        if not isinstance(img, np.ndarray) or img.ndim not in (2, 3) or 0 in img.shape[:2]:
            raise DataError("Resize expects a non-empty decoded image")
        rh, rw = self.size
        h, w = img.shape[:2]
        data["image"] = cv2.resize(img, (rw, rh))
        if "polys" in data:
            polys = np.asarray(data["polys"], dtype=np.float64)
            data["polys"] = (polys * (rw / w, rh / h)).astype(np.float32) if len(polys) else \
                np.asarray(data["polys"], dtype=np.float32)
        return data
