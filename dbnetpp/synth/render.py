"""Rendering a line of words with OpenCV's built-in Hershey fonts (no font files needed).

A line is drawn upright on a small local canvas; every word gets its own box in that
canvas (its tight ink extent plus a margin).  :mod:`dbnetpp.synth.scene` then maps the
canvas into the image with a homography, so the boxes map exactly onto the word
quadrilaterals.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import List, Optional, Sequence

import cv2
import numpy as np

# (font face, relative frequency).  Faces may carry cv2.FONT_ITALIC.
FONT_FACES = (
    (cv2.FONT_HERSHEY_SIMPLEX, 4.0),
    (cv2.FONT_HERSHEY_DUPLEX, 4.0),
    (cv2.FONT_HERSHEY_COMPLEX, 2.0),
    (cv2.FONT_HERSHEY_TRIPLEX, 2.0),
    (cv2.FONT_HERSHEY_PLAIN, 1.0),
    (cv2.FONT_HERSHEY_SIMPLEX | cv2.FONT_ITALIC, 1.0),
    (cv2.FONT_HERSHEY_DUPLEX | cv2.FONT_ITALIC, 1.0),
    (cv2.FONT_HERSHEY_SCRIPT_SIMPLEX, 0.5),
)


@functools.lru_cache(maxsize=None)
def cap_height_at_unit_scale(face: int) -> int:
    """Height in pixels of the font's capitals at ``fontScale=1`` (constant per face)."""
    (_, h), _ = cv2.getTextSize("H", face, 1.0, 1)
    return h


@dataclass
class LineRender:
    """An upright rendered line of words.

    ``fill``: uint8 [h, w] glyph alpha (0-255); ``edge``: uint8 [h, w] alpha of an outline
    drawn under the glyphs, or ``None``; ``boxes``: float32 [K, 4] per-word
    ``(x0, y0, x1, y1)`` in canvas pixels (ink extent plus margin); ``cap`` the capital
    height in pixels.
    """

    fill: np.ndarray
    edge: Optional[np.ndarray]
    boxes: np.ndarray
    cap: float

    @property
    def group_box(self) -> np.ndarray:
        """``(x0, y0, x1, y1)`` around all words."""
        return np.array([self.boxes[:, 0].min(), self.boxes[:, 1].min(),
                         self.boxes[:, 2].max(), self.boxes[:, 3].max()], np.float32)


def _ink_bounds(mask: np.ndarray):
    cols = np.flatnonzero(mask.any(axis=0))
    rows = np.flatnonzero(mask.any(axis=1))
    if cols.size == 0:
        return None
    return cols[0], rows[0], cols[-1] + 1, rows[-1] + 1


def render_line(words: Sequence[str], face: int, cap: float, thickness: int, outline: int = 0,
                gap: float = 0.6, margin: float = 0.12) -> LineRender:
    """Draw ``words`` left to right on one baseline.

    ``cap``: capital height in px; ``thickness``: stroke width in px; ``outline``: extra
    width of a contrasting outline in px (0 = none); ``gap``: space between the ink of two
    words, in units of ``cap``; ``margin``: box margin around each word's ink, in units of
    ``cap`` (at least 1 px).
    """
    scale = cap / cap_height_at_unit_scale(face)
    m = max(1.0, margin * cap)
    halo = thickness + outline + 2
    pad = int(np.ceil(m)) + 2
    pieces = []
    for word in words:
        (tw, th), base = cv2.getTextSize(word, face, scale, thickness)
        slant = int(0.35 * th) if face & cv2.FONT_ITALIC else 0
        ch, cw = th + base + 2 * halo, tw + slant + 2 * halo
        fill = np.zeros((ch, cw), np.uint8)
        cv2.putText(fill, word, (halo, halo + th), face, scale, 255, thickness, cv2.LINE_AA)
        edge = None
        if outline > 0:
            edge = np.zeros_like(fill)
            cv2.putText(edge, word, (halo, halo + th), face, scale, 255, thickness + 2 * outline, cv2.LINE_AA)
        ink = fill if edge is None else np.maximum(fill, edge)
        bounds = _ink_bounds(ink)
        if bounds is None:
            raise ValueError(f"text {word!r} rendered no ink")
        x0, y0, x1, y1 = bounds
        pieces.append((fill[:, x0:x1], None if edge is None else edge[:, x0:x1], y0, y1))
    height = max(p[0].shape[0] for p in pieces) + 2 * pad
    width = sum(p[0].shape[1] for p in pieces) + int(gap * cap) * (len(pieces) - 1) + 2 * pad
    fill_line = np.zeros((height, width), np.uint8)
    edge_line = np.zeros((height, width), np.uint8) if outline > 0 else None
    boxes: List[List[float]] = []
    x = pad
    for fill, edge, y0, y1 in pieces:
        h, w = fill.shape
        fill_line[pad:pad + h, x:x + w] = fill
        if edge_line is not None:
            edge_line[pad:pad + h, x:x + w] = edge
        boxes.append([x - m, pad + y0 - m, x + w + m, pad + y1 + m])
        x += w + int(gap * cap)
    return LineRender(fill_line, edge_line, np.asarray(boxes, np.float32), float(cap))
