"""Drawing detections on an image (BGR, OpenCV)."""
from __future__ import annotations

from typing import Sequence

import cv2
import numpy as np

__all__ = ["draw_boxes"]


def draw_boxes(img: np.ndarray, boxes: Sequence[np.ndarray], scores: Sequence[float] = (),
               color=(0, 220, 0), thickness: int = 2) -> np.ndarray:
    """A copy of ``img`` with each box (``[P, 2]`` points) outlined and its score written beside it."""
    out = img.copy()
    for i, box in enumerate(boxes):
        pts = np.asarray(box, dtype=np.int32).reshape(-1, 1, 2)
        cv2.polylines(out, [pts], True, color, thickness, lineType=cv2.LINE_AA)
        if i < len(scores):
            x, y = pts[:, 0, 0].min(), pts[:, 0, 1].min()
            cv2.putText(out, f"{scores[i]:.2f}", (int(x), max(int(y) - 3, 10)), cv2.FONT_HERSHEY_SIMPLEX,
                        0.4, (0, 0, 255), 1, cv2.LINE_AA)
    return out
