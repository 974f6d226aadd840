"""DB post-processing: probability map P -> text boxes (DB paper, Liao et al., AAAI 2020, sec. 3.5).

Follows the semantics of PaddleOCR's ``DBPostProcess`` (boxes and scores are identical on the
same maps) with a faster pipeline:

* the binary map is built once per image as uint8 (no int64 temporaries);
* contours whose extents prove the short side of their minimum-area rectangle is below
  ``min_size`` are rejected from one vectorised pass, without any per-contour call;
* corner ordering, ROI bounds, unclip distances and rescaling are computed for all candidate
  boxes at once; only the OpenCV/Clipper primitives run per box.
"""
from __future__ import annotations

from typing import Dict, List, Mapping

import cv2
import numpy as np

from ..values import bounded
from ..registry import POSTPROCESSES
from . import box_ops

MIN_SIZE = 3  # minimum short side (pixels) of a candidate's minimum-area rectangle
POLY_EPSILON = 0.002  # approxPolyDP tolerance as a fraction of the contour perimeter


def _to_numpy(x) -> np.ndarray:
    if isinstance(x, np.ndarray):
        return x
    if hasattr(x, "numpy"):
        return x.numpy()
    return np.asarray(x)


@POSTPROCESSES.register()
class DBPostProcess:
    """Turn shrink-probability maps into quadrilaterals or polygons in original-image pixels.

    Args:
        thresh: binarisation threshold t on P (pixels with P > t are text).
        box_thresh: a candidate is kept when its mean P is >= box_thresh.
        max_candidates: at most this many contours (in OpenCV order) are examined per image.
        unclip_ratio: r' of the dilation distance D' = A' * r' / L' (paper eq. 10).
        use_dilation: dilate the binary map with a 2x2 kernel before finding contours.
        score_mode: "fast" scores a quad by the mean P inside it, "slow" by the mean P inside
            its contour (quad mode only; poly mode always scores the approximated polygon).
        box_type: "quad" (minimum-area rectangles) or "poly" (approximated contours).
    """

    def __init__(self, thresh: float = 0.3, box_thresh: float = 0.7, max_candidates: int = 1000,
                 unclip_ratio: float = 2.0, use_dilation: bool = False, score_mode: str = "fast",
                 box_type: str = "quad"):
        if score_mode not in ("fast", "slow"):
            raise ValueError(f"score_mode must be 'fast' or 'slow', got {score_mode!r}")
        if box_type not in ("quad", "poly"):
            raise ValueError(f"box_type must be 'quad' or 'poly', got {box_type!r}")
        if isinstance(max_candidates, bool) or not isinstance(max_candidates, int) or max_candidates < 1:
            raise ValueError(f"max_candidates must be an integer >= 1, got {max_candidates!r}")
        self.thresh = bounded(thresh, "thresh", 0.0, 1.0)
        self.box_thresh = bounded(box_thresh, "box_thresh", 0.0, 1.0)
        self.max_candidates = max_candidates
        self.unclip_ratio = bounded(unclip_ratio, "unclip_ratio", 0.0, low_open=True)
        self.use_dilation = bool(use_dilation)
        self.score_mode = score_mode
        self.box_type = box_type
        self.min_size = MIN_SIZE
        self._kernel = np.ones((2, 2), np.uint8)

    # ------------------------------------------------------------------ API
    def __call__(self, outs: Mapping, shape_list) -> List[Dict]:
        """Post-process a batch.

        Args:
            outs: ``{"maps": P}`` with P ``[N, 1, H, W]`` (ndarray or paddle Tensor; extra
                channels after the first are ignored).
            shape_list: ``[N, 4]`` rows ``[src_h, src_w, ratio_h, ratio_w]``.
        Returns:
            per image ``{"points": ..., "scores": list[float]}``; points are int32 ``[K, 4, 2]``
            (quad) or a list of int32 ``[M, 2]`` polygons (poly), in source-image pixels.
        """
        maps = _to_numpy(outs["maps"])
        if maps.ndim != 4:
            raise ValueError(f"maps must be [N, C, H, W], got shape {maps.shape}")
        shapes = _to_numpy(shape_list)
        if len(shapes) != len(maps):
            raise ValueError(f"shape_list has {len(shapes)} rows for a batch of {len(maps)} maps")
        results = []
        for prob, shape in zip(maps[:, 0], shapes):
            src_h, src_w = shape[0], shape[1]
            results.append(self.process_map(prob, src_h, src_w))
        return results

    def process_map(self, prob: np.ndarray, src_h, src_w) -> Dict:
        """One probability map ``[H, W]`` -> ``{"points", "scores"}`` in a ``src_h x src_w`` image."""
        prob = np.ascontiguousarray(prob)
        if prob.dtype not in (np.float32, np.float64):
            prob = prob.astype(np.float32)  # e.g. float16 maps from mixed precision
        bitmap = (prob > prob.dtype.type(self.thresh)).view(np.uint8)
        if self.use_dilation:
            bitmap = cv2.dilate(bitmap, self._kernel)
        contours, _ = cv2.findContours(bitmap, cv2.RETR_LIST, cv2.CHAIN_APPROX_SIMPLE)
        contours = contours[: self.max_candidates]
        if self.box_type == "poly":
            return self._polygons(prob, contours, src_h, src_w)
        return self._quads(prob, contours, src_h, src_w)

    # ------------------------------------------------------------- quad mode
    def _quads(self, prob, contours, src_h, src_w) -> Dict:
        h, w = prob.shape
        _, lo, hi = box_ops.contour_bounds(contours)
        ext = (hi - lo).astype(np.int64)
        # area(min-area rect) <= extents area and short side^2 <= area: a safe early reject
        maybe = np.nonzero(ext[:, 0] * ext[:, 1] >= self.min_size * self.min_size)[0]
        boxes, short = box_ops.min_area_boxes([contours[i] for i in maybe])
        keep = short >= self.min_size
        boxes, maybe = boxes[keep], maybe[keep]
        if self.score_mode == "fast":
            scores = box_ops.box_scores_fast(prob, boxes)
        else:
            scores = box_ops.contour_scores(prob, [contours[i] for i in maybe], lo[maybe], hi[maybe])
        keep = scores >= self.box_thresh
        boxes, scores = boxes[keep], scores[keep]

        grown = box_ops.unclip_all(boxes, self.unclip_ratio)
        ok = [g is not None for g in grown]
        boxes, short = box_ops.min_area_boxes([g.reshape(-1, 1, 2).astype(np.int32) for g in grown if g is not None])
        scores = scores[np.asarray(ok, bool)] if len(ok) else scores
        keep = short >= self.min_size + 2
        boxes, scores = boxes[keep], scores[keep]

        # float32 rescaling, as the reference does with float32 corners (then round, clip)
        f32 = np.float32
        boxes[:, :, 0] = np.clip(np.round(boxes[:, :, 0] / f32(w) * f32(src_w)), 0, f32(src_w))
        boxes[:, :, 1] = np.clip(np.round(boxes[:, :, 1] / f32(h) * f32(src_h)), 0, f32(src_h))
        return {"points": boxes.astype(np.int32).reshape(-1, 4, 2), "scores": [float(s) for s in scores]}

    # ------------------------------------------------------------- poly mode
    def _polygons(self, prob, contours, src_h, src_w) -> Dict:
        h, w = prob.shape
        counts, _, _ = box_ops.contour_bounds(contours)
        polys = []
        for i in np.nonzero(counts >= 4)[0]:  # approxPolyDP never adds points
            c = contours[i]
            approx = cv2.approxPolyDP(c, POLY_EPSILON * cv2.arcLength(c, True), True).reshape(-1, 2)
            if len(approx) >= 4:
                polys.append(approx)
        scores = box_ops.box_scores_fast(prob, polys)
        keep = np.nonzero(scores >= self.box_thresh)[0]
        polys = [polys[i] for i in keep]
        scores = scores[keep]

        grown = box_ops.unclip_all(polys, self.unclip_ratio)
        idx = [i for i, g in enumerate(grown) if g is not None]
        grown = [grown[i] for i in idx]
        scores = scores[np.asarray(idx, np.int64)]
        _, short = box_ops.min_area_boxes([g.reshape(-1, 1, 2).astype(np.int32) for g in grown])
        out_pts, out_scores = [], []
        sx, sy = float(src_w), float(src_h)
        for g, s, ss in zip(grown, scores, short):
            if ss < self.min_size + 2:
                continue
            g = g.astype(np.float64)
            x = np.clip(np.round(g[:, 0] / w * sx), 0, sx)
            y = np.clip(np.round(g[:, 1] / h * sy), 0, sy)
            out_pts.append(np.stack([x, y], axis=1).astype(np.int32))
            out_scores.append(float(s))
        return {"points": out_pts, "scores": out_scores}
