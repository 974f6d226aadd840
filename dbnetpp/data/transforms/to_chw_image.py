"""ToCHWImage: ``[H, W, C]`` -> contiguous ``[C, H, W]``."""
from __future__ import annotations

from typing import Any, Dict

import numpy as np

from ...errors import DataError
from ...registry import TRANSFORMS


@TRANSFORMS.register()
class ToCHWImage:
    """Transposes ``data["image"]`` from HWC to CHW (a contiguous copy, ready for batching)."""

    def __init__(self):
        pass

    def __call__(self, data: Dict[str, Any]) -> Dict[str, Any]:
        img = data["image"]
        if not isinstance(img, np.ndarray) or img.ndim != 3:
            raise DataError(f"ToCHWImage expects an HWC image array, got {getattr(img, 'shape', type(img).__name__)}")
        data["image"] = np.ascontiguousarray(img.transpose(2, 0, 1))
        return data
