"""Resize: plain resize of image and polygons to ``size`` = ``[height, width]`` (PaddleOCR ``Resize``)."""
from __future__ import annotations

from typing import Any, Dict, Mapping, Sequence

import cv2
import numpy as np

from ...errors import ConfigError, DataError
from ...registry import TRANSFORMS

# The network downsamples by 32 (backbone stride), so every input side must be a multiple of it.
SIZE_MULTIPLE = 32
# Largest side accepted from a config: a training sample's tensors grow with H * W (a 4096 x 4096
# crop is ~0.6 GB of float32 maps), an evaluation image only needs to hold the image once.
MAX_SIDE = {"Train": 4096, "Eval": 8192}


def check_model_input_size(value: Any, key: str, mode: str, order: str = "[height, width]") -> None:
    """Config check of a ``size``-like value fed to the model: two positive multiples of 32, each at
    most :data:`MAX_SIDE` of ``mode``.  Raises :class:`ConfigError` with ``key``."""
    if not isinstance(value, (list, tuple)) or len(value) != 2 or not all(
            isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in value):
        raise ConfigError(f"must be {order}, two positive integers, got {value!r}", key=key)
    bad = [v for v in value if v % SIZE_MULTIPLE]
    if bad:
        fixed = [max(SIZE_MULTIPLE, round(v / SIZE_MULTIPLE) * SIZE_MULTIPLE) for v in value]
        raise ConfigError(f"{order} {list(value)}: every side must be a multiple of {SIZE_MULTIPLE} "
                          f"(the network's stride), e.g. {fixed}", key=key)
    limit = MAX_SIDE.get(mode, MAX_SIDE["Eval"])
    if max(value) > limit:
        raise ConfigError(f"{order} {list(value)} is too large: at most {limit} per side in {mode} "
                          f"(memory grows with height x width)", key=key)


@TRANSFORMS.register()
class Resize:
    def __init__(self, size: Sequence[int] = (640, 640)):
        if not isinstance(size, (list, tuple)) or len(size) != 2 or \
                not all(isinstance(v, int) and v > 0 for v in size):
            raise ValueError(f"size must be [height, width] positive integers, got {size!r}")
        self.size = (int(size[0]), int(size[1]))

    @staticmethod
    def check_config(args: Mapping[str, Any], mode: str) -> None:
        """Config check (see ``validate_config``): ``size`` is what the model gets."""
        check_model_input_size(args.get("size", (640, 640)), "size", mode)

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
