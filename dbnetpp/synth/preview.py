"""Visual check of synthetic samples: GT quads drawn on images, and image grids."""
from __future__ import annotations

from typing import Sequence

import cv2
import numpy as np

from .scene import SynthSample


def draw_gt(sample: SynthSample) -> np.ndarray:
    """Copy of ``sample.image`` with care quads in green, ``###`` quads in red and a dot on
    each quad's first (top-left) corner."""
    img = sample.image.copy()
    for word in sample.words:
        color = (0, 0, 255) if word.ignore else (0, 220, 0)
        pts = word.quad.astype(np.int32).reshape(-1, 1, 2)
        cv2.polylines(img, [pts], True, color, 1, cv2.LINE_AA)
        cv2.circle(img, tuple(int(v) for v in word.quad[0]), 2, (255, 0, 255), -1, cv2.LINE_AA)
    return img


def montage(images: Sequence[np.ndarray], cols: int = 3, gap: int = 4) -> np.ndarray:
    """Tile equally sized uint8 [H, W, 3] images into a grid on a white background."""
    if not images:
        raise ValueError("montage needs at least one image")
    h, w = images[0].shape[:2]
    rows = (len(images) + cols - 1) // cols
    out = np.full((rows * (h + gap) + gap, cols * (w + gap) + gap, 3), 255, np.uint8)
    for i, im in enumerate(images):
        r, c = divmod(i, cols)
        y, x = gap + r * (h + gap), gap + c * (w + gap)
        out[y:y + h, x:x + w] = im
    return out
