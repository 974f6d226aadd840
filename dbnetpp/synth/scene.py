"""Seeded generator of synthetic scene-text images with ICDAR2015-style ground truth.

Each image: a textured backdrop with distractor shapes, a few lines of "care" words
(large, high contrast, optionally on a sign panel or with an outline) and some
don't-care (``###``) words: tiny, heavily blurred or faint text, as ICDAR2015 marks
illegible text.  Every text line is drawn upright on a local canvas and mapped into the
image by a homography (rotation, slant, perspective), so each word's quadrilateral is
the exact image of its upright box: clockwise from the word's own top-left corner.

The same ``seed`` gives the same sample, independent of any other sample.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import List, Optional, Sequence, Tuple, Union

import cv2
import numpy as np

from .background import color_with_luma, draw_clutter, grain, luminance, make_background, smooth_noise
from .render import FONT_FACES, LineRender, render_line
from .text import random_text

DONT_CARE = "###"
Seed = Union[int, Sequence[int]]


@dataclass(frozen=True)
class SynthConfig:
    """Knobs of :class:`SceneGenerator`.  Sizes are fractions of ``min(width, height)``."""

    width: int = 320
    height: int = 320
    care_lines: Tuple[int, int] = (2, 5)            # care text lines per image (inclusive)
    words_per_line: Tuple[float, ...] = (0.6, 0.3, 0.1)  # P(1 word), P(2 words), ...
    care_cap: Tuple[float, float] = (0.05, 0.12)   # capital height of care words
    tiny_cap: Tuple[float, float] = (0.012, 0.022)  # capital height of tiny don't-care words
    max_angle: float = 30.0                         # degrees
    perspective: float = 0.12                       # max relative scale change across a line
    dontcare_range: Tuple[float, float] = (0.15, 0.35)  # per-image fraction of ### words
    clutter: Tuple[int, int] = (3, 10)              # distractor shapes per image
    panel_prob: float = 0.35                        # care line drawn on a sign panel
    outline_prob: float = 0.15                      # care line drawn with an outline
    min_contrast: float = 90.0                      # luma difference of care text vs background
    blur_prob: float = 0.3                          # whole-image Gaussian blur
    noise_sigma: Tuple[float, float] = (1.0, 5.0)
    jpeg_quality: Tuple[int, int] = (60, 95)

    def __post_init__(self):
        if self.width < 64 or self.height < 64:
            raise ValueError(f"image size must be at least 64x64, got {self.width}x{self.height}")
        for name in ("care_lines", "care_cap", "tiny_cap", "dontcare_range", "clutter", "noise_sigma",
                     "jpeg_quality"):
            lo, hi = getattr(self, name)
            if not 0 <= lo <= hi:
                raise ValueError(f"{name} must be a range (lo, hi) with 0 <= lo <= hi, got {(lo, hi)}")
        if self.care_lines[0] < 1:
            raise ValueError("care_lines must allow at least one line per image")
        if not self.dontcare_range[1] < 1:
            raise ValueError("dontcare_range must stay below 1 (every image keeps a care word)")
        if not 0 < self.min_contrast <= 127:
            raise ValueError("min_contrast must be in (0, 127]")
        if not 0 <= self.max_angle <= 90:
            raise ValueError(f"max_angle must be in [0, 90] degrees, got {self.max_angle}")
        if not 0 <= self.perspective < 0.5:
            raise ValueError(f"perspective must be in [0, 0.5), got {self.perspective}")
        if abs(sum(self.words_per_line) - 1) > 1e-6:
            raise ValueError("words_per_line probabilities must sum to 1")


@dataclass
class SynthWord:
    """One word: ``quad`` int32 [4, 2] (x, y) clockwise from its top-left; ``text`` what
    was drawn; ``ignore`` True for don't-care words; ``face`` the Hershey font used."""

    quad: np.ndarray
    text: str
    ignore: bool
    face: int

    @property
    def transcription(self) -> str:
        """What the GT file holds: the text, or ``###`` for a don't-care word."""
        return DONT_CARE if self.ignore else self.text


@dataclass
class SynthSample:
    """``image`` uint8 [H, W, 3] BGR; ``ink`` bool [H, W], pixels covered by any word's
    glyphs (before blur); ``words`` in drawing order; ``jpeg_quality`` to save it with."""

    image: np.ndarray
    ink: np.ndarray
    words: List[SynthWord] = field(default_factory=list)
    jpeg_quality: int = 90


@dataclass
class _Style:
    kind: str          # "care", "tiny", "blur" or "faint"
    words: List[str]
    face: int
    cap: float
    thickness: int
    outline: int
    panel: bool


def _box_corners(box: np.ndarray) -> np.ndarray:
    x0, y0, x1, y1 = (float(v) for v in box)
    return np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], np.float64)


def _apply(hmat: np.ndarray, pts: np.ndarray) -> np.ndarray:
    p = np.hstack([pts, np.ones((len(pts), 1))]) @ hmat.T
    return p[:, :2] / p[:, 2:3]


def signed_area(quad: np.ndarray) -> float:
    """Shoelace area; positive means clockwise on screen (y axis pointing down)."""
    x, y = quad[:, 0].astype(np.float64), quad[:, 1].astype(np.float64)
    return 0.5 * float(np.dot(x, np.roll(y, -1)) - np.dot(np.roll(x, -1), y))


def is_convex_clockwise(quad: np.ndarray) -> bool:
    """Every turn of the closed quad is a strict clockwise (screen) turn."""
    q = quad.astype(np.float64)
    for i in range(4):
        a, b, c = q[i], q[(i + 1) % 4], q[(i + 2) % 4]
        if (b[0] - a[0]) * (c[1] - b[1]) - (b[1] - a[1]) * (c[0] - b[0]) <= 0:
            return False
    return True


class SceneGenerator:
    """``SceneGenerator(config).generate(seed) -> SynthSample`` (deterministic in ``seed``)."""

    def __init__(self, config: Optional[SynthConfig] = None):
        self.cfg = config or SynthConfig()
        self._faces = np.array([f for f, _ in FONT_FACES])
        w = np.array([p for _, p in FONT_FACES], np.float64)
        self._face_p = w / w.sum()

    # ------------------------------------------------------------------ styles
    def _style(self, rng: np.random.Generator, kind: str) -> _Style:
        cfg, s = self.cfg, min(self.cfg.width, self.cfg.height)
        face = int(rng.choice(self._faces, p=self._face_p))
        if kind == "tiny":
            n = int(rng.integers(1, 5))
            cap = rng.uniform(*cfg.tiny_cap) * s
        else:
            n = int(rng.choice(len(cfg.words_per_line), p=cfg.words_per_line)) + 1
            lo, hi = cfg.care_cap
            cap = rng.uniform(lo, hi) * s if kind == "care" else rng.uniform(lo, (lo + hi) / 2) * s
        thickness = max(1, int(round(cap * rng.uniform(0.07, 0.16))))
        outline = 0
        if kind == "care" and rng.random() < cfg.outline_prob:
            outline = max(1, int(round(cap * rng.uniform(0.05, 0.1))))
        panel = kind == "care" and rng.random() < cfg.panel_prob
        return _Style(kind, [random_text(rng) for _ in range(n)], face, float(cap), thickness, outline, panel)

    # --------------------------------------------------------------- geometry
    def _homography(self, rng: np.random.Generator, line: LineRender) -> np.ndarray:
        """Local canvas -> image-centred frame (group centre at the origin)."""
        gb = line.group_box
        cx, cy = (gb[0] + gb[2]) / 2, (gb[1] + gb[3]) / 2
        gw, gh = float(gb[2] - gb[0]), float(gb[3] - gb[1])
        if rng.random() < 0.6:
            angle = float(np.clip(rng.normal(0, 3), -self.cfg.max_angle, self.cfg.max_angle))
        else:
            angle = rng.uniform(-self.cfg.max_angle, self.cfg.max_angle)
        a = math.radians(angle)
        rot = np.array([[math.cos(a), -math.sin(a), 0], [math.sin(a), math.cos(a), 0], [0, 0, 1]])
        k = self.cfg.perspective
        px = rng.uniform(-k, k) / max(gw / 2, 1.0)
        py = rng.uniform(-k, k) / 2 / max(gh / 2, 1.0)
        shear = rng.uniform(-0.2, 0.2) if rng.random() < 0.3 else 0.0
        persp = np.array([[1, shear, 0], [0, 1, 0], [px, py, 1]])
        shift = np.array([[1, 0, -cx], [0, 1, -cy], [0, 0, 1]])
        return rot @ persp @ shift

    def _place(self, rng: np.random.Generator, line: LineRender, keep_margin: float, occ: np.ndarray,
               attempts: int = 10) -> Optional[Tuple[np.ndarray, np.ndarray, List[np.ndarray]]]:
        """Find a homography putting ``line`` inside the image, clear of ``occ``.

        Returns ``(H, keep_out_quad, word_quads)`` or ``None``; marks ``occ`` on success.
        """
        h_img, w_img = occ.shape
        keep = line.group_box + np.array([-keep_margin, -keep_margin, keep_margin, keep_margin], np.float32)
        for _ in range(attempts):
            hmat = self._homography(rng, line)
            ko = _apply(hmat, _box_corners(keep))
            lo, hi = ko.min(0), ko.max(0)
            span = hi - lo
            if span[0] > w_img - 6 or span[1] > h_img - 6:
                return None
            tx = rng.uniform(2 - lo[0], w_img - 3 - hi[0])
            ty = rng.uniform(2 - lo[1], h_img - 3 - hi[1])
            hmat = np.array([[1, 0, tx], [0, 1, ty], [0, 0, 1]]) @ hmat
            ko = ko + [tx, ty]
            quads = [np.round(_apply(hmat, _box_corners(b))).astype(np.int32) for b in line.boxes]
            if not all(is_convex_clockwise(q) and signed_area(q) >= 12 for q in quads):
                continue
            x0, y0 = np.floor(ko.min(0)).astype(int)
            x1, y1 = np.ceil(ko.max(0)).astype(int)
            x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, w_img - 1), min(y1, h_img - 1)
            cand = np.zeros((y1 - y0 + 1, x1 - x0 + 1), np.uint8)
            cv2.fillConvexPoly(cand, np.round(ko - [x0, y0]).astype(np.int32), 1)
            roi = occ[y0:y1 + 1, x0:x1 + 1]
            if (roi & cand).any():
                continue
            roi |= cand
            return hmat, ko, quads
        return None

    # ---------------------------------------------------------------- drawing
    def _draw_line(self, rng: np.random.Generator, img: np.ndarray, ink: np.ndarray, line: LineRender,
                   style: _Style, hmat: np.ndarray, panel_quad: Optional[np.ndarray]) -> None:
        h_img, w_img = ink.shape
        if panel_quad is not None:
            pcol = color_with_luma(rng, rng.choice([rng.uniform(10, 70), rng.uniform(185, 250)]))
            cv2.fillConvexPoly(img, np.round(panel_quad * 16).astype(np.int32), pcol.tolist(), cv2.LINE_AA, 4)
        corners = _apply(hmat, _box_corners(np.array([0, 0, line.fill.shape[1], line.fill.shape[0]])))
        x0, y0 = np.maximum(np.floor(corners.min(0)).astype(int), 0)
        x1, y1 = np.minimum(np.ceil(corners.max(0)).astype(int), [w_img - 1, h_img - 1])
        size = (int(x1 - x0 + 1), int(y1 - y0 + 1))
        hroi = np.array([[1, 0, -x0], [0, 1, -y0], [0, 0, 1]]) @ hmat
        fill = cv2.warpPerspective(line.fill, hroi, size, flags=cv2.INTER_LINEAR)
        edge = None if line.edge is None else cv2.warpPerspective(line.edge, hroi, size, flags=cv2.INTER_LINEAR)
        glyph = fill if edge is None else np.maximum(fill, edge)
        ink[y0:y1 + 1, x0:x1 + 1] |= glyph >= 128
        roi = img[y0:y1 + 1, x0:x1 + 1]
        under = glyph > 0
        bg = roi[under].mean(0) if under.any() else np.full(3, 128, np.float32)
        bg_luma = luminance(bg)
        if style.kind == "faint":  # the background's own colour, slightly lighter or darker
            delta = rng.uniform(6, 20) * (1 if bg_luma < 128 else -1)
            target = bg_luma + delta
            color = np.clip(bg + delta, 0, 255).astype(np.float32)
        else:
            if bg_luma > 127:
                target = rng.uniform(0, bg_luma - self.cfg.min_contrast)
            else:
                target = rng.uniform(bg_luma + self.cfg.min_contrast, 255)
            color = color_with_luma(rng, target)
        if style.kind == "blur":
            sigma = style.cap * rng.uniform(0.4, 0.7)
            fill = cv2.GaussianBlur(fill, (0, 0), sigma)
        if edge is not None:
            ecol = color_with_luma(rng, 255 - target)
            a = (edge.astype(np.float32) / 255)[..., None]
            roi *= 1 - a
            roi += a * ecol
        a = (fill.astype(np.float32) / 255)[..., None]
        roi *= 1 - a
        roi += a * color

    def _add_line(self, rng: np.random.Generator, img: np.ndarray, ink: np.ndarray, occ: np.ndarray,
                  style: _Style, words: List[SynthWord], shrink_tries: int = 3) -> int:
        """Render, place and draw one line; returns how many words were added (0 = no room)."""
        for _ in range(shrink_tries):
            line = render_line(style.words, style.face, style.cap, style.thickness, style.outline,
                               gap=rng.uniform(0.5, 0.8))
            pad = rng.uniform(0.25, 0.6) * style.cap if style.panel else 0.0
            keep_margin = 1.3 * pad + max(2.0, 0.2 * style.cap)
            placed = self._place(rng, line, keep_margin, occ)
            if placed is not None:
                hmat, _, quads = placed
                panel_quad = None
                if style.panel:
                    gb = line.group_box + np.array([-pad * 1.3, -pad, pad * 1.3, pad], np.float32)
                    panel_quad = _apply(hmat, _box_corners(gb))
                self._draw_line(rng, img, ink, line, style, hmat, panel_quad)
                ignore = style.kind != "care"
                words.extend(SynthWord(q, t, ignore, style.face) for q, t in zip(quads, style.words))
                return len(quads)
            # no room: shrink the text, and drop the last word of a multi-word line
            style.cap *= 0.75
            style.thickness = max(1, int(round(style.thickness * 0.75)))
            style.outline = max(1, int(round(style.outline * 0.75))) if style.outline else 0
            if len(style.words) > 1:
                style.words = style.words[:-1]
        return 0

    # ------------------------------------------------------------------- main
    def generate(self, seed: Seed) -> SynthSample:
        cfg = self.cfg
        rng = np.random.default_rng(np.random.SeedSequence(seed))
        h, w = cfg.height, cfg.width
        img = make_background(rng, h, w)
        draw_clutter(rng, img, int(rng.integers(cfg.clutter[0], cfg.clutter[1] + 1)))
        ink = np.zeros((h, w), bool)
        occ = np.zeros((h, w), np.uint8)
        words: List[SynthWord] = []

        n_lines = int(rng.integers(cfg.care_lines[0], cfg.care_lines[1] + 1))
        for i in range(n_lines):
            added = self._add_line(rng, img, ink, occ, self._style(rng, "care"), words,
                                   shrink_tries=8 if i == 0 else 3)
            if i == 0 and added == 0:
                raise RuntimeError(f"could not place any care text in a {w}x{h} image")
        n_care = len(words)

        frac = rng.uniform(*cfg.dontcare_range)
        want = int(math.floor(frac / (1 - frac) * n_care + rng.random()))
        n_dc, misses = 0, 0
        while n_dc < want and misses < 6:
            kind = ("tiny", "tiny", "blur", "faint")[int(rng.integers(4))]
            style = self._style(rng, kind)
            style.words = style.words[:want - n_dc]
            added = self._add_line(rng, img, ink, occ, style, words, shrink_tries=1)
            n_dc += added
            misses += added == 0

        if rng.random() < 0.5:  # uneven illumination
            img *= 1 + smooth_noise(rng, h, w, 2, 1) * rng.uniform(0.05, 0.25)
        if rng.random() < cfg.blur_prob:
            img = cv2.GaussianBlur(img, (0, 0), rng.uniform(0.4, 1.0))
        img += grain(rng, h, w, rng.uniform(*cfg.noise_sigma))
        image = np.clip(np.round(img), 0, 255).astype(np.uint8)
        quality = int(rng.integers(cfg.jpeg_quality[0], cfg.jpeg_quality[1] + 1))
        return SynthSample(image, ink, words, quality)
