"""Inference pre-processing built from :class:`InferenceSettings`, and batching with padding."""
from __future__ import annotations

from typing import Sequence, Tuple

import cv2
import numpy as np

from ..errors import ConfigError, DataError
from ..registry import TRANSFORMS
from ..data import transforms as _transforms  # noqa: F401  (registers DetResizeForTest, NormalizeImage)

__all__ = ["Preprocessor", "pad_batch"]


class Preprocessor:
    """BGR ``uint8 [H, W, 3]`` image -> (``float32 [3, h, w]``, ``shape`` row).

    ``shape`` is ``[src_h, src_w, ratio_h, ratio_w]`` as set by ``DetResizeForTest``; ``h, w``
    are multiples of 32 for every resize rule except an explicit ``image_shape`` that is not
    (which the exporter rejects).
    """

    def __init__(self, settings):
        self.rgb = settings.img_mode == "RGB"
        resize = dict(settings.resize)
        norm = dict(settings.normalize)
        if norm.get("order", "hwc") != "hwc":
            raise ConfigError("NormalizeImage order must be 'hwc' for inference (images are HWC)",
                              key="PreProcess.transform_ops.NormalizeImage.order")
        shape = resize.get("image_shape")
        if isinstance(shape, (list, tuple)) and any(isinstance(v, int) and v % 32 for v in shape) \
                and not resize.get("keep_ratio"):
            raise ConfigError(f"image_shape {list(shape)}: height and width must be multiples of 32",
                              key="PreProcess.transform_ops.DetResizeForTest.image_shape")
        self.resize = TRANSFORMS.build({"name": "DetResizeForTest", **resize},
                                       where="PreProcess.transform_ops.DetResizeForTest")
        self.normalize = TRANSFORMS.build({"name": "NormalizeImage", **norm},
                                          where="PreProcess.transform_ops.NormalizeImage")

    def __call__(self, img: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
        if not isinstance(img, np.ndarray) or img.ndim != 3 or img.shape[2] != 3 or img.dtype != np.uint8:
            raise DataError(f"expected a BGR uint8 image [H, W, 3], got "
                            f"{getattr(img, 'dtype', type(img).__name__)} {getattr(img, 'shape', '')}")
        if self.rgb:
            img = cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
        data = self.resize({"image": img})
        data = self.normalize.to_chw(data)
        return data["image"], data["shape"]


def pad_batch(images: Sequence[np.ndarray], pad_value: float = 0.0) -> np.ndarray:
    """Stack ``[3, h_i, w_i]`` arrays into ``[N, 3, max h, max w]``, padding bottom/right.

    The pad value is in normalised space (0 = the mean colour).  Each image keeps its own
    ``[h_i, w_i]`` region, from which its probability map is cropped before post-processing.
    """
    if not images:
        raise ValueError("pad_batch needs at least one image")
    h = max(im.shape[1] for im in images)
    w = max(im.shape[2] for im in images)
    if all(im.shape[1] == h and im.shape[2] == w for im in images):
        return np.ascontiguousarray(np.stack(images))
    out = np.full((len(images), images[0].shape[0], h, w), pad_value, dtype=np.float32)
    for i, im in enumerate(images):
        out[i, :, : im.shape[1], : im.shape[2]] = im
    return out

