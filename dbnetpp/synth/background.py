"""Backgrounds and clutter for synthetic scenes: gradients, large colour regions,
smooth and fine noise textures, and non-text distractor shapes (lines, boxes, circles,
stripes, dot grids) that a detector must learn to ignore."""
from __future__ import annotations

import cv2
import numpy as np


def random_color(rng: np.random.Generator, lo: float = 0.0, hi: float = 255.0) -> np.ndarray:
    return rng.uniform(lo, hi, 3).astype(np.float32)


def luminance(color: np.ndarray) -> float:
    """Rec. 601 luma of a BGR colour (float)."""
    b, g, r = (float(c) for c in color[:3])
    return 0.114 * b + 0.587 * g + 0.299 * r


def color_with_luma(rng: np.random.Generator, target: float) -> np.ndarray:
    """A random hue whose luma is close to ``target`` (0-255)."""
    c = random_color(rng)
    for _ in range(3):
        c = np.clip(c + (target - luminance(c)), 0, 255)
    return c.astype(np.float32)


def smooth_noise(rng: np.random.Generator, h: int, w: int, cells: int, channels: int = 3) -> np.ndarray:
    """Noise in [-1, 1] with about ``cells`` blobs across the shorter side, float32 [h, w, C]."""
    gh = max(2, int(round(cells * h / min(h, w))))
    gw = max(2, int(round(cells * w / min(h, w))))
    grid = rng.uniform(-1, 1, (gh, gw, channels)).astype(np.float32)
    out = cv2.resize(grid, (w, h), interpolation=cv2.INTER_CUBIC)
    return out.reshape(h, w, channels)


def grain(rng: np.random.Generator, h: int, w: int, sigma: float) -> np.ndarray:
    """Zero-mean uniform sensor noise with standard deviation ``sigma``, float32 [h, w, 3]."""
    noise = rng.integers(-127, 128, (h, w, 3), dtype=np.int8).astype(np.float32)
    return noise * np.float32(sigma * np.sqrt(3.0) / 127.0)


def make_background(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """A photo-like backdrop, float32 [h, w, 3] BGR in 0-255."""
    # smooth part (gradient + colour blobs) at 1/8 resolution, then upsampled once
    lh, lw = max(2, h // 8), max(2, w // 8)
    c0, c1 = random_color(rng, 20, 235), random_color(rng, 20, 235)
    theta = rng.uniform(0, 2 * np.pi)
    t = (np.arange(lw, dtype=np.float32)[None, :] * np.float32(np.cos(theta))
         + np.arange(lh, dtype=np.float32)[:, None] * np.float32(np.sin(theta)))
    t = (t - t.min()) / max(float(t.max() - t.min()), 1e-6)
    low = c0[None, None, :] + t[..., None] * (c1 - c0)[None, None, :]
    low += smooth_noise(rng, lh, lw, int(rng.integers(2, 8))) * np.float32(rng.uniform(5, 40))
    # real scenes are mostly muted: pull colours part of the way towards grey
    saturation = np.float32(rng.uniform(0.35, 1.0))
    grey = low.mean(axis=2, keepdims=True)
    low = grey + (low - grey) * saturation
    img = cv2.resize(low, (w, h), interpolation=cv2.INTER_LINEAR)
    # a few large flat regions (walls, sky, boards)
    for _ in range(int(rng.integers(0, 4))):
        n = int(rng.integers(3, 7))
        pts = np.stack([rng.uniform(-0.2 * w, 1.2 * w, n), rng.uniform(-0.2 * h, 1.2 * h, n)], 1)
        hull = cv2.convexHull(pts.astype(np.int32))
        color = random_color(rng, 10, 245)
        color = color.mean() + (color - color.mean()) * saturation
        cv2.fillConvexPoly(img, hull, color.tolist(), cv2.LINE_AA)
    # finer grain (surface texture)
    if rng.random() < 0.5:
        img += smooth_noise(rng, h, w, int(rng.integers(20, 60)), 1) * np.float32(rng.uniform(4, 18))
    return np.clip(img, 0, 255, out=img)


def draw_clutter(rng: np.random.Generator, img: np.ndarray, count: int) -> None:
    """Draw ``count`` non-text distractors on ``img`` (float32 [h, w, 3]) in place."""
    h, w = img.shape[:2]
    s = min(h, w)
    for _ in range(count):
        color = random_color(rng).tolist()
        kind = rng.integers(7)
        p = (int(rng.integers(0, w)), int(rng.integers(0, h)))
        q = (int(rng.integers(0, w)), int(rng.integers(0, h)))
        thick = int(rng.integers(1, max(2, s // 40)))
        if kind == 0:  # straight line (poles, cables, edges)
            cv2.line(img, p, q, color, thick, cv2.LINE_AA)
        elif kind == 1:  # rectangle outline or filled box
            cv2.rectangle(img, p, q, color, -1 if rng.random() < 0.4 else thick, cv2.LINE_AA)
        elif kind == 2:  # circle / ring
            cv2.circle(img, p, int(rng.integers(3, s // 6)), color, -1 if rng.random() < 0.5 else thick,
                       cv2.LINE_AA)
        elif kind == 3:  # ellipse arc
            axes = (int(rng.integers(5, s // 4)), int(rng.integers(5, s // 4)))
            cv2.ellipse(img, p, axes, float(rng.uniform(0, 180)), 0, float(rng.uniform(90, 360)), color,
                        thick, cv2.LINE_AA)
        elif kind == 4:  # stripes / barcode / railing: text-like periodic structure
            bw, bh = int(rng.integers(s // 10, s // 3)), int(rng.integers(s // 30, s // 8) + 2)
            step = int(rng.integers(2, 7))
            for x in range(p[0], min(w, p[0] + bw), step):
                cv2.line(img, (x, p[1]), (x, min(h - 1, p[1] + bh)), color, int(rng.integers(1, 3)))
        elif kind == 5:  # dot grid (windows, perforations)
            step = int(rng.integers(4, 12))
            r = max(1, step // 4)
            for y in range(p[1], min(h, p[1] + step * int(rng.integers(2, 6))), step):
                for x in range(p[0], min(w, p[0] + step * int(rng.integers(2, 8))), step):
                    cv2.circle(img, (x, y), r, color, -1, cv2.LINE_AA)
        else:  # random polygon
            n = int(rng.integers(3, 6))
            pts = np.stack([rng.integers(0, w, n), rng.integers(0, h, n)], 1).astype(np.int32)
            cv2.polylines(img, [pts], True, color, thick, cv2.LINE_AA)
