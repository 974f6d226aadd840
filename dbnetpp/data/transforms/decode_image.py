"""DecodeImage: encoded image bytes -> HWC uint8 array (PaddleOCR ``DecodeImage`` keys)."""
from __future__ import annotations

import cv2
import numpy as np

from ...errors import DataError
from ...registry import TRANSFORMS

_MODES = ("BGR", "RGB", "GRAY")


@TRANSFORMS.register()
class DecodeImage:
    """``data["image"]``: bytes -> uint8 ``[H, W, 3]`` (``[3, H, W]`` with ``channel_first``).

    Args:
        img_mode: ``BGR`` (OpenCV order, what the det configs use), ``RGB``, or ``GRAY``
            (decoded as grey and replicated to 3 channels).
        channel_first: return CHW instead of HWC.
        ignore_orientation: do not apply the EXIF orientation tag.
    """

    def __init__(self, img_mode: str = "RGB", channel_first: bool = False, ignore_orientation: bool = False):
        if img_mode not in _MODES:
            raise ValueError(f"img_mode must be one of {', '.join(_MODES)}, got {img_mode!r}")
        self.img_mode = img_mode
        self.channel_first = bool(channel_first)
        self.ignore_orientation = bool(ignore_orientation)
        flag = cv2.IMREAD_GRAYSCALE if img_mode == "GRAY" else cv2.IMREAD_COLOR
        if self.ignore_orientation:
            flag |= cv2.IMREAD_IGNORE_ORIENTATION
        self._flag = flag

    def __call__(self, data: dict) -> dict:
        raw = data.get("image")
        if isinstance(raw, np.ndarray) and raw.dtype == np.uint8 and raw.ndim == 1:
            buf = raw
        elif isinstance(raw, (bytes, bytearray, memoryview)):
            buf = np.frombuffer(raw, dtype=np.uint8)
        else:
            raise DataError(f"DecodeImage expects the encoded image bytes in data['image'], got "
                            f"{type(raw).__name__}")
        if buf.size == 0:
            raise DataError("image file is empty")
        img = cv2.imdecode(buf, self._flag)
        if img is None:
            raise DataError(f"cannot decode image ({buf.size} bytes; not a supported image format or truncated)")
        if self.img_mode == "GRAY":
            img = cv2.cvtColor(img, cv2.COLOR_GRAY2BGR)
        elif self.img_mode == "RGB":
            img = cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
        if self.channel_first:
            img = np.ascontiguousarray(img.transpose(2, 0, 1))
        data["image"] = img
        return data
