"""DecodeImage: encoded image bytes -> HWC uint8 array (PaddleOCR ``DecodeImage`` keys, plus ``max_pixels``)."""
from __future__ import annotations

import io
import warnings

import cv2
import numpy as np
from PIL import Image

from ...errors import DataError
from ...registry import TRANSFORMS

_MODES = ("BGR", "RGB", "GRAY")
DEFAULT_MAX_PIXELS = 50_000_000


@TRANSFORMS.register()
class DecodeImage:
    """``data["image"]``: bytes -> uint8 ``[H, W, 3]`` (``[3, H, W]`` with ``channel_first``).

    Args:
        img_mode: ``BGR`` (OpenCV order, what the det configs use), ``RGB``, or ``GRAY``
            (decoded as grey and replicated to 3 channels).
        channel_first: return CHW instead of HWC.
        ignore_orientation: do not apply the EXIF orientation tag.
        max_pixels: images larger than this (width x height, read from the file's header before decoding)
            are refused with their size: a 2.6 MB PNG can decode to 30000 x 30000 pixels (2.7 GB, per loader
            worker).  Default 50 million, far above text photos (ICDAR2015: 0.9 Mpx; a 48 Mpx phone photo fits).
    """

    def __init__(self, img_mode: str = "RGB", channel_first: bool = False, ignore_orientation: bool = False,
                 max_pixels: int = DEFAULT_MAX_PIXELS):
        if img_mode not in _MODES:
            raise ValueError(f"img_mode must be one of {', '.join(_MODES)}, got {img_mode!r}")
        if isinstance(max_pixels, bool) or not isinstance(max_pixels, int) or max_pixels < 1:
            raise ValueError(f"max_pixels must be a positive integer, got {max_pixels!r}")
        self.max_pixels = max_pixels
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
        self._check_size(buf)
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

    def _check_size(self, buf: np.ndarray) -> None:
        """Width and height from the header (Pillow reads only the header here); formats Pillow does not
        know are left to OpenCV's own limit (2^30 pixels)."""
        limit, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None  # Pillow's own bomb check: ours replaces it
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", Image.DecompressionBombWarning)
                with Image.open(io.BytesIO(buf.tobytes())) as im:
                    width, height = im.size
        except (OSError, ValueError, SyntaxError):
            return
        finally:
            Image.MAX_IMAGE_PIXELS = limit
        if width * height > self.max_pixels:
            raise DataError(f"image of {width} x {height} pixels ({width * height / 1e6:.0f} Mpx) is larger than "
                            f"DecodeImage max_pixels ({self.max_pixels / 1e6:g} Mpx); raise max_pixels if it is "
                            f"meant to be read")
