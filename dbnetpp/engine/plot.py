"""Loss and hmean curves from ``metrics.jsonl`` drawn with OpenCV (no plotting library needed).

Top panel: every loss term of the ``train`` events against the global step.
Bottom panel: precision / recall / hmean of the ``eval`` events.
When a run was resumed, a later record for the same step replaces the earlier one.
"""
from __future__ import annotations

import json
import math
import os
from typing import Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np

Series = Dict[str, Tuple[List[float], List[float]]]
_PALETTE = [(180, 119, 31), (14, 127, 255), (44, 160, 44), (40, 39, 214), (189, 103, 148),
            (75, 86, 140), (194, 119, 227), (127, 127, 127)]  # BGR
_FONT = cv2.FONT_HERSHEY_SIMPLEX


def read_metrics(path: str) -> List[dict]:
    """The records of ``metrics.jsonl``; an unterminated last line (the trainer is writing it) is left out."""
    with open(path, encoding="utf-8") as f:
        lines = f.read().split("\n")  # the last item is "" when the file ends with a line end
    records = []
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError as exc:
            if n == len(lines):  # still being written
                break
            raise ValueError(f"{path}:{n}: not a JSON line ({exc.msg})") from None
    return records


def _series(records: Sequence[dict], event: str, keys: Optional[Sequence[str]] = None,
            prefix: Optional[str] = None) -> Series:
    by_step: Dict[str, Dict[int, float]] = {}
    for r in records:
        if r.get("event") != event or "global_step" not in r:
            continue
        for k, v in r.items():
            wanted = (keys is not None and k in keys) or (prefix is not None and k.startswith(prefix))
            if wanted and isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v):
                by_step.setdefault(k, {})[int(r["global_step"])] = float(v)
    out: Series = {}
    for k, pts in by_step.items():
        steps = sorted(pts)
        out[k] = (steps, [pts[s] for s in steps])
    return out


def _nice_ticks(lo: float, hi: float, n: int = 5) -> List[float]:
    if hi <= lo:
        hi = lo + 1.0
    raw = (hi - lo) / n
    mag = 10 ** math.floor(math.log10(raw))
    step = min((m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw), default=10 * mag)
    first = math.ceil(lo / step) * step
    return [first + i * step for i in range(int((hi - first) / step + 1e-9) + 1)]


def _fmt(v: float) -> str:
    return f"{v:.3g}" if abs(v) < 1e4 else f"{v:.2e}"


def _panel(img: np.ndarray, rect: Tuple[int, int, int, int], title: str, series: Series,
           x_range: Tuple[float, float], y_range: Optional[Tuple[float, float]] = None,
           x_label: str = "global step", legend_width: int = 210) -> None:
    x0, y0, x1, y1 = rect
    left, right, top, bottom = x0 + 70, x1 - legend_width, y0 + 35, y1 - 40
    cv2.putText(img, title, (left, y0 + 22), _FONT, 0.6, (0, 0, 0), 1, cv2.LINE_AA)
    cv2.putText(img, x_label, ((left + right) // 2 - 40, y1 - 8), _FONT, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
    if not series:
        cv2.putText(img, "no data yet", ((left + right) // 2 - 50, (top + bottom) // 2), _FONT, 0.6,
                    (120, 120, 120), 1, cv2.LINE_AA)
        cv2.rectangle(img, (left, top), (right, bottom), (0, 0, 0), 1)
        return
    ys = [y for _, v in series.values() for y in v]
    xlo, xhi = x_range
    if xhi == xlo:
        xlo, xhi = xlo - 1, xhi + 1
    ylo, yhi = y_range if y_range else (min(ys), max(ys))
    if yhi == ylo:
        ylo, yhi = ylo - 0.5, yhi + 0.5
    pad = 0.05 * (yhi - ylo)
    ylo, yhi = (ylo, yhi) if y_range else (ylo - pad, yhi + pad)

    def px(x: float, y: float) -> Tuple[int, int]:
        return (int(round(left + (x - xlo) / (xhi - xlo) * (right - left))),
                int(round(bottom - (y - ylo) / (yhi - ylo) * (bottom - top))))

    for t in _nice_ticks(ylo, yhi):
        _, py = px(xlo, t)
        cv2.line(img, (left, py), (right, py), (225, 225, 225), 1)
        cv2.putText(img, _fmt(t), (x0 + 5, py + 4), _FONT, 0.4, (60, 60, 60), 1, cv2.LINE_AA)
    for t in _nice_ticks(xlo, xhi, 6):
        qx, _ = px(t, ylo)
        cv2.line(img, (qx, top), (qx, bottom), (225, 225, 225), 1)
        cv2.putText(img, _fmt(t), (qx - 12, bottom + 16), _FONT, 0.4, (60, 60, 60), 1, cv2.LINE_AA)
    cv2.rectangle(img, (left, top), (right, bottom), (0, 0, 0), 1)
    for i, (name, (sx, sy)) in enumerate(series.items()):
        color = _PALETTE[i % len(_PALETTE)]
        pts = np.array([px(x, y) for x, y in zip(sx, sy)], dtype=np.int32)
        for pt in pts:
            cv2.circle(img, (int(pt[0]), int(pt[1])), 3, color, -1, cv2.LINE_AA)
        if len(pts) > 1:
            cv2.polylines(img, [pts.reshape(-1, 1, 2)], False, color, 2 if name in ("loss", "hmean") else 1,
                          cv2.LINE_AA)
    for i, name in enumerate(series):  # legend right of the plot
        color = _PALETTE[i % len(_PALETTE)]
        ly = top + 12 + 18 * i
        cv2.line(img, (right + 12, ly - 4), (right + 37, ly - 4), color, 2)
        cv2.putText(img, name, (right + 42, ly), _FONT, 0.45, (0, 0, 0), 1, cv2.LINE_AA)


def plot_metrics(jsonl_path: str, out_path: Optional[str] = None, size: Tuple[int, int] = (960, 720)) -> str:
    """Draw ``training_curves.png`` (default: beside ``jsonl_path``); returns the PNG path."""
    records = read_metrics(jsonl_path)
    losses = _series(records, "train", prefix="loss")
    if "loss" in losses:  # total loss first
        losses = {"loss": losses.pop("loss"), **losses}
    evals = _series(records, "eval", keys=("hmean", "precision", "recall"))
    evals = {k: evals[k] for k in ("hmean", "precision", "recall") if k in evals}
    w, h = size
    xs = [x for series in (losses, evals) for sx, _ in series.values() for x in sx] or [0.0, 1.0]
    x_range = (min(xs), max(xs))
    img = np.full((h, w, 3), 255, np.uint8)
    _panel(img, (0, 0, w, h // 2), "training loss (smoothed)", losses, x_range)
    _panel(img, (0, h // 2, w, h), "evaluation", evals, x_range, y_range=(0.0, 1.0))
    out_path = out_path or os.path.join(os.path.dirname(os.path.abspath(jsonl_path)), "training_curves.png")
    tmp = out_path + ".tmp.png"
    if not cv2.imwrite(tmp, img):
        raise OSError(f"cannot write {out_path}")
    os.replace(tmp, out_path)
    return out_path


def plot_curves(curves: Dict[str, Tuple[List[float], List[float]]], out_path: str, title: str,
                x_label: str = "minutes", y_range: Optional[Tuple[float, float]] = (0.0, 1.0),
                size: Tuple[int, int] = (960, 480), legend_width: int = 330) -> str:
    """One panel of named ``(x values, y values)`` series (e.g. test hmean against wall-clock minutes of
    several runs), points marked; returns ``out_path``."""
    xs = [x for sx, _ in curves.values() for x in sx] or [0.0, 1.0]
    w, h = size
    img = np.full((h, w, 3), 255, np.uint8)
    _panel(img, (0, 0, w, h), title, curves, (0.0, max(xs)), y_range=y_range, x_label=x_label,
           legend_width=legend_width)
    tmp = out_path + ".tmp.png"
    if not cv2.imwrite(tmp, img):
        raise OSError(f"cannot write {out_path}")
    os.replace(tmp, out_path)
    return out_path
