"""NormalizeImage: ``(image * scale - mean) / std`` per channel, float32.

For uint8 images the result is read from a 256-entry table per channel (``cv2.LUT``) that is
computed with exactly PaddleOCR's float32 operations, so the output is bit-identical to
``(img.astype(float32) * scale - mean) / std`` at a fraction of the cost.  ``Compose`` fuses
``NormalizeImage(order: hwc)`` + ``ToCHWImage`` into :meth:`NormalizeImage.to_chw`, which writes
each channel's table look-up straight into a ``[3, H, W]`` array.
"""
from __future__ import annotations

from typing import Any, Dict, Optional, Sequence

import cv2
import numpy as np

from ...errors import DataError
from ...registry import TRANSFORMS
from ...values import parse_number

_DEFAULT_MEAN = (0.485, 0.456, 0.406)
_DEFAULT_STD = (0.229, 0.224, 0.225)


def _channel_values(values: Sequence[Any], name: str) -> np.ndarray:
    if not isinstance(values, (list, tuple)) or len(values) == 0:
        raise ValueError(f"{name} must be a list of per-channel numbers, got {values!r}")
    return np.array([parse_number(v, name) for v in values], dtype=np.float32)


@TRANSFORMS.register()
class NormalizeImage:
    """Args: ``scale`` (number or expression string such as ``"1./255."``, default 1/255),
    ``mean``, ``std`` (per channel), ``order``: ``hwc`` or ``chw`` (layout of the input image)."""

    def __init__(self, scale: Any = None, mean: Optional[Sequence[float]] = None,
                 std: Optional[Sequence[float]] = None, order: str = "chw"):
        if order not in ("hwc", "chw"):
            raise ValueError(f"order must be 'hwc' or 'chw', got {order!r}")
        self.scale = np.float32(parse_number(scale, "scale") if scale is not None else 1.0 / 255.0)
        self.mean = _channel_values(mean if mean is not None else _DEFAULT_MEAN, "mean")
        self.std = _channel_values(std if std is not None else _DEFAULT_STD, "std")
        if len(self.mean) != len(self.std):
            raise ValueError(f"mean and std must have the same length, got {len(self.mean)} and {len(self.std)}")
        if np.any(self.std == 0):
            raise ValueError("std must not contain 0")
        self.order = order
        levels = np.arange(256, dtype=np.float32)[:, None]
        # same float32 operations as the direct formula -> identical values
        table = (levels * self.scale - self.mean[None]) / self.std[None]  # [256, C]
        self._lut = np.ascontiguousarray(table.T)  # [C, 256]
        self._lut_hwc = np.ascontiguousarray(table.reshape(1, 256, -1))

    def _check(self, img: Any, layout: str) -> np.ndarray:
        if not isinstance(img, np.ndarray) or img.ndim != 3:
            raise DataError(f"NormalizeImage expects a 3-D {layout.upper()} image array, got "
                            f"{getattr(img, 'shape', type(img).__name__)}")
        channels = img.shape[2] if layout == "hwc" else img.shape[0]
        if channels != len(self.mean):
            raise DataError(f"NormalizeImage: image has {channels} channels ({layout.upper()} shape "
                            f"{list(img.shape)}), mean/std have {len(self.mean)}")
        return img

    def _generic(self, img: np.ndarray, layout: str) -> np.ndarray:
        shape = (1, 1, -1) if layout == "hwc" else (-1, 1, 1)
        return (img.astype(np.float32) * self.scale - self.mean.reshape(shape)) / self.std.reshape(shape)

    def _lut_plane(self, plane: np.ndarray, c: int, out: np.ndarray) -> None:
        res = cv2.LUT(plane, self._lut[c].reshape(1, 256), dst=out)
        if res is not out:
            out[...] = res

    def __call__(self, data: Dict[str, Any]) -> Dict[str, Any]:
        img = self._check(data["image"], self.order)
        if img.dtype != np.uint8:
            data["image"] = self._generic(img, self.order)
            return data
        if self.order == "chw":
            out = np.empty(img.shape, dtype=np.float32)
            for c in range(img.shape[0]):
                self._lut_plane(np.ascontiguousarray(img[c]), c, out[c])
        elif img.shape[2] <= 4:
            out = cv2.LUT(np.ascontiguousarray(img), self._lut_hwc).reshape(img.shape)
        else:
            out = self._generic(img, "hwc")
        data["image"] = out
        return data

    def to_chw(self, data: Dict[str, Any]) -> Dict[str, Any]:
        """``NormalizeImage(order=hwc)`` followed by ``ToCHWImage`` in one pass (contiguous CHW)."""
        img = self._check(data["image"], "hwc")
        if img.dtype != np.uint8:
            data["image"] = np.ascontiguousarray(self._generic(img, "hwc").transpose(2, 0, 1))
            return data
        out = np.empty((img.shape[2],) + img.shape[:2], dtype=np.float32)
        planes = cv2.split(img) if img.shape[2] <= 4 else [np.ascontiguousarray(img[..., c])
                                                           for c in range(img.shape[2])]
        for c, plane in enumerate(planes):
            self._lut_plane(plane, c, out[c])
        data["image"] = out
        return data
