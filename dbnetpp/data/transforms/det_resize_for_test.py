"""DetResizeForTest: evaluation/inference resizing (PaddleOCR 2.5 semantics + ``keep_ratio``).

Modes, chosen like PaddleOCR by which key is given (first match wins):

* ``image_shape: [H, W]``: plain resize to ``H x W``; with ``keep_ratio: true`` the width is
  ``ceil(W0 * H / H0 / 32) * 32`` instead.
* ``limit_side_len`` + ``limit_type``: ``max`` shrinks so the long side is <= the limit, ``min``
  enlarges so the short side is >= the limit, ``resize_long`` scales the long side to the limit;
  then each side is rounded to a multiple of 32 (at least 32).
* ``resize_long``: long side to the value, each side rounded *up* to a multiple of 128.
* nothing: ``limit_side_len: 736``, ``limit_type: min``.

Sets ``shape`` = ``[src_h, src_w, ratio_h, ratio_w]`` (float32).  Polygons are left in source
coordinates (the post-processing maps boxes back with ``shape``).
"""
from __future__ import annotations

import math
from typing import Any, Dict, Mapping, Optional, Sequence

import cv2
import numpy as np

from ...errors import DataError
from ...registry import TRANSFORMS
from .resize import check_model_input_size

_LIMIT_TYPES = ("min", "max", "resize_long")


@TRANSFORMS.register()
class DetResizeForTest:
    def __init__(self, image_shape: Optional[Sequence[int]] = None, keep_ratio: bool = False,
                 limit_side_len: Optional[int] = None, limit_type: str = "min",
                 resize_long: Optional[int] = None):
        if image_shape is not None:
            if not isinstance(image_shape, (list, tuple)) or len(image_shape) != 2 or \
                    not all(isinstance(v, int) and v > 0 for v in image_shape):
                raise ValueError(f"image_shape must be [height, width] positive integers, got {image_shape!r}")
            self.mode = "shape"
        elif limit_side_len is not None:
            self.mode = "limit"
        elif resize_long is not None:
            self.mode = "long"
        else:
            self.mode, limit_side_len, limit_type = "limit", 736, "min"
        if self.mode == "limit":
            if not isinstance(limit_side_len, (int, float)) or limit_side_len <= 0:
                raise ValueError(f"limit_side_len must be a positive number, got {limit_side_len!r}")
            if limit_type not in _LIMIT_TYPES:
                raise ValueError(f"limit_type must be one of {', '.join(_LIMIT_TYPES)}, got {limit_type!r}")
        if self.mode == "long" and (not isinstance(resize_long, (int, float)) or resize_long <= 0):
            raise ValueError(f"resize_long must be a positive number, got {resize_long!r}")
        self.image_shape = tuple(image_shape) if image_shape is not None else None
        self.keep_ratio = bool(keep_ratio)
        self.limit_side_len = limit_side_len
        self.limit_type = limit_type
        self.resize_long = resize_long

    @staticmethod
    def check_config(args: Mapping[str, Any], mode: str) -> None:
        """Config check (see ``validate_config``): a fixed ``image_shape`` is the model's input
        (the other modes round their sizes to multiples of 32 themselves)."""
        if args.get("image_shape") is not None:
            check_model_input_size(args["image_shape"], "image_shape", mode)

    @staticmethod
    def output_size_varies(args: Mapping[str, Any]) -> bool:
        """Whether the output size depends on the input image (every mode but a fixed ``image_shape``)."""
        return args.get("image_shape") is None or bool(args.get("keep_ratio"))

    def target_size(self, h: int, w: int):
        """``(resize_h, resize_w)`` for an ``h x w`` image."""
        if self.mode == "shape":
            rh, rw = self.image_shape
            if self.keep_ratio:
                rw = math.ceil(w * rh / h / 32) * 32
            return int(rh), int(rw)
        if self.mode == "long":
            ratio = float(self.resize_long) / max(h, w)
            rh, rw = int(h * ratio), int(w * ratio)
            return (rh + 127) // 128 * 128, (rw + 127) // 128 * 128
        limit = self.limit_side_len
        if self.limit_type == "max":
            ratio = float(limit) / max(h, w) if max(h, w) > limit else 1.0
        elif self.limit_type == "min":
            ratio = float(limit) / min(h, w) if min(h, w) < limit else 1.0
        else:
            ratio = float(limit) / max(h, w)
        rh, rw = int(h * ratio), int(w * ratio)
        return max(int(round(rh / 32) * 32), 32), max(int(round(rw / 32) * 32), 32)

    def __call__(self, data: Dict[str, Any]) -> Dict[str, Any]:
        img = data["image"]
        if not isinstance(img, np.ndarray) or img.ndim != 3 or 0 in img.shape[:2]:
            raise DataError(f"DetResizeForTest expects a non-empty HWC image, got "
                            f"{getattr(img, 'shape', type(img).__name__)}")
        h, w = img.shape[:2]
        rh, rw = self.target_size(h, w)
        if rh <= 0 or rw <= 0:
            raise DataError(f"DetResizeForTest: image {h}x{w} resizes to an empty {rh}x{rw}")
        data["image"] = cv2.resize(img, (rw, rh))
        data["shape"] = np.array([h, w, rh / float(h), rw / float(w)], dtype=np.float32)
        return data
