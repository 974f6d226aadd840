"""ICDAR2015 task 4.1 (text localisation) evaluation, vectorised over a whole data set.

Protocol (RRC "Incidental Scene Text" script, Karatzas et al., ICDAR 2015):

* a detection D matches a ground-truth G when IoU(D, G) > 0.5, one-to-one, greedily in GT
  order then detection order;
* GT marked don't-care (transcription ``###``) is never matched; a detection is don't-care
  when its intersection with some don't-care GT covers more than half of its own area
  (area-precision constraint 0.5); don't-care boxes count neither as GT nor as detections;
* precision, recall and hmean come from counts summed over all images (not image means).

Two variants, selected by ``protocol``:

``"official"``  the RRC tool: coordinates truncated to int, polygon areas are the absolute
    shoelace area, intersections use even-odd filling of self-intersecting polygons (the
    Polygon2/GPC semantics), nothing is skipped, IoU = I / (A_D + A_G - I).
``"paddleocr"`` PaddleOCR ``DetMetric`` (from MhLiao/DB): float coordinates, shapely areas,
    polygons that are not valid (self-intersecting, degenerate) are silently skipped,
    IoU = I / area(D u G).  Which GT is don't-care (``###`` only, or also ``*``) is decided by
    the caller (see :func:`dbnetpp.metrics.samples.dont_care_text`).

Speed comes from a bounding-box prefilter (only overlapping pairs are intersected) and from
computing every candidate pair of every image in one vectorised shapely call.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Mapping, Sequence

import numpy as np
import shapely

PROTOCOLS = ("official", "paddleocr")
IOU_CONSTRAINT = 0.5
AREA_PRECISION_CONSTRAINT = 0.5


def check_protocol(protocol: str) -> str:
    if protocol not in PROTOCOLS:
        raise ValueError(f"unknown evaluation protocol {protocol!r}; choose one of {', '.join(PROTOCOLS)}")
    return protocol


@dataclass
class Sample:
    """One image: GT polygons (each ``[P, 2]``), their don't-care flags, detected polygons."""

    gt: Sequence[np.ndarray]
    gt_dont_care: Sequence[bool]
    det: Sequence[np.ndarray]


@dataclass
class SampleResult:
    """Per-image outcome; all indices refer to the input order of the sample's polygons."""

    gt_care: int
    det_care: int
    matched: int
    pairs: List[Dict[str, float]] = field(default_factory=list)  # {"gt", "det", "iou"}
    gt_dont_care: List[int] = field(default_factory=list)
    det_dont_care: List[int] = field(default_factory=list)
    gt_skipped: List[int] = field(default_factory=list)  # paddleocr protocol: invalid polygons
    det_skipped: List[int] = field(default_factory=list)

    def metrics(self) -> Dict[str, float]:
        """Per-image precision/recall/hmean as the RRC tool reports them."""
        if self.gt_care == 0:
            recall = 1.0
            precision = 0.0 if self.det_care > 0 else 1.0
        else:
            recall = self.matched / self.gt_care
            precision = 0.0 if self.det_care == 0 else self.matched / self.det_care
        hmean = 0.0 if precision + recall == 0 else 2.0 * precision * recall / (precision + recall)
        return {"precision": precision, "recall": recall, "hmean": hmean}


# --------------------------------------------------------------------------- geometry
class _PolygonSet:
    """Flat store of polygons: shapely geometries, areas, bounding boxes, validity."""

    def __init__(self, polys: Sequence[np.ndarray], protocol: str):
        n = len(polys)
        self.n = n
        arrays = [np.asarray(p, dtype=np.float64).reshape(-1, 2) for p in polys]
        if protocol == "official":
            arrays = [np.trunc(a) for a in arrays]  # int() of the RRC tool
        counts = np.fromiter((len(a) for a in arrays), dtype=np.int64, count=n)
        self.geoms = np.full(n, None, dtype=object)
        self.area = np.zeros(n)
        self.bbox = np.zeros((n, 4))
        self.valid = np.zeros(n, bool)
        ok = counts >= 3
        self.has_geom = ok
        if not ok.any():
            return
        idx = np.nonzero(ok)[0]
        coords = np.concatenate([arrays[i] for i in idx])
        owner = np.repeat(np.arange(len(idx)), counts[idx])
        starts = np.zeros(len(idx), np.int64)
        np.cumsum(counts[idx][:-1], out=starts[1:])
        geoms = shapely.polygons(shapely.linearrings(coords, indices=owner))
        lo = np.minimum.reduceat(coords, starts, axis=0)
        hi = np.maximum.reduceat(coords, starts, axis=0)
        self.bbox[idx] = np.concatenate([lo, hi], axis=1)
        valid = shapely.is_valid(geoms)
        self.valid[idx] = valid
        if protocol == "official":
            # Polygon2: area = |shoelace| of the ring as given (exact for integer coordinates);
            # intersections see self-intersecting rings with even-odd filling (make_valid).
            nxt = np.arange(len(coords)) + 1
            ends = starts + counts[idx] - 1
            nxt[ends] = starts
            cross = coords[:, 0] * coords[nxt, 1] - coords[nxt, 0] * coords[:, 1]
            self.area[idx] = np.abs(np.add.reduceat(cross, starts)) / 2.0
            if not valid.all():
                bad = ~valid
                geoms[bad] = shapely.make_valid(geoms[bad])
        else:
            self.area[idx] = shapely.area(geoms)
        self.geoms[idx] = geoms


def _candidate_pairs(gt_box: np.ndarray, det_box: np.ndarray):
    """(g, d) index pairs whose bounding boxes overlap with positive area, row-major order,
    and the area of that bounding-box overlap (an upper bound of the intersection area)."""
    if len(gt_box) == 0 or len(det_box) == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0)
    w = np.minimum(gt_box[:, None, 2], det_box[None, :, 2]) - np.maximum(gt_box[:, None, 0], det_box[None, :, 0])
    h = np.minimum(gt_box[:, None, 3], det_box[None, :, 3]) - np.maximum(gt_box[:, None, 1], det_box[None, :, 1])
    g, d = np.nonzero((w > 0) & (h > 0))
    return g, d, w[g, d] * h[g, d]


def evaluate_samples(samples: Sequence[Sample], protocol: str = "official") -> List[SampleResult]:
    """Evaluate every image; returns one :class:`SampleResult` per sample (same order)."""
    check_protocol(protocol)
    for i, s in enumerate(samples):
        if len(s.gt_dont_care) != len(s.gt):
            raise ValueError(f"sample {i}: {len(s.gt)} GT polygons but {len(s.gt_dont_care)} don't-care flags")
    gt_all = [p for s in samples for p in s.gt]
    det_all = [p for s in samples for p in s.det]
    gts = _PolygonSet(gt_all, protocol)
    dets = _PolygonSet(det_all, protocol)
    g_off = np.zeros(len(samples) + 1, np.int64)
    d_off = np.zeros(len(samples) + 1, np.int64)
    np.cumsum([len(s.gt) for s in samples], out=g_off[1:])
    np.cumsum([len(s.det) for s in samples], out=d_off[1:])
    paddle_mode = protocol == "paddleocr"
    # paddleocr skips invalid polygons; the official tool keeps everything
    gt_used = gts.valid if paddle_mode else np.ones(gts.n, bool)
    det_used = dets.valid if paddle_mode else np.ones(dets.n, bool)
    gt_geo = gt_used & gts.has_geom
    det_geo = det_used & dets.has_geom

    # candidate pairs of all images (global indices), image-major then (g, d) order
    pair_g, pair_d, pair_ov = [np.zeros(0, np.int64)], [np.zeros(0, np.int64)], [np.zeros(0)]
    p_off = np.zeros(len(samples) + 1, np.int64)
    for i in range(len(samples)):
        gi = np.arange(g_off[i], g_off[i + 1])
        di = np.arange(d_off[i], d_off[i + 1])
        gi = gi[gt_geo[gi]]
        di = di[det_geo[di]]
        g, d, ov = _candidate_pairs(gts.bbox[gi], dets.bbox[di])
        pair_g.append(gi[g])
        pair_d.append(di[d])
        pair_ov.append(ov)
        p_off[i + 1] = p_off[i] + len(g)
    pg = np.concatenate(pair_g)
    pd = np.concatenate(pair_d)
    dont_care_flags = np.array([bool(f) for s in samples for f in s.gt_dont_care], bool)

    # Exact geometry only where it can matter: IoU > 0.5 needs I > max(A_G, A_D) / 2 and the
    # don't-care test I > A_D / 2, while I <= bounding-box overlap.  (Valid polygons only: the
    # official areas of self-intersecting rings do not bound their intersections.)
    ov = np.concatenate(pair_ov) * (1 + 1e-9)
    simple = gts.valid[pg] & dets.valid[pd]
    half_d = 0.5 * dets.area[pd]
    need = ~simple | (ov > np.maximum(0.5 * gts.area[pg], half_d)) | (dont_care_flags[pg] & (ov > half_d))
    keep = np.nonzero(need)[0]
    pg, pd = pg[keep], pd[keep]
    p_off = np.searchsorted(keep, p_off)

    inter = np.zeros(len(pg))
    iou = np.zeros(len(pg))
    if len(pg):
        inter = shapely.area(shapely.intersection(gts.geoms[pg], dets.geoms[pd]))
        if paddle_mode:
            union = shapely.area(shapely.union(gts.geoms[pg], dets.geoms[pd]))
        else:
            union = dets.area[pd] + gts.area[pg] - inter
        nz = union != 0
        iou[nz] = inter[nz] / union[nz]

    det_area = dets.area[pd]
    with np.errstate(divide="ignore", invalid="ignore"):
        cover = np.where(det_area > 0, inter / np.where(det_area > 0, det_area, 1.0), 0.0)
    dc_pair = dont_care_flags[pg] & (cover > AREA_PRECISION_CONSTRAINT)
    det_dc = np.zeros(dets.n, bool)
    det_dc[pd[dc_pair]] = True

    results = []
    for i in range(len(samples)):
        sel = np.arange(p_off[i], p_off[i + 1])
        g0, d0 = g_off[i], d_off[i]
        g_used = np.nonzero(gt_used[g0:g_off[i + 1]])[0]
        d_used = np.nonzero(det_used[d0:d_off[i + 1]])[0]
        g_dc = [int(k) for k in g_used if dont_care_flags[g0 + k]]
        d_dc = [int(k) for k in d_used if det_dc[d0 + k]]
        ok = (iou[sel] > IOU_CONSTRAINT) & ~dont_care_flags[pg[sel]] & ~det_dc[pd[sel]]
        matched_g, matched_d, pairs = set(), set(), []
        for p in sel[ok]:
            g, d = int(pg[p] - g0), int(pd[p] - d0)
            if g in matched_g or d in matched_d:
                continue
            matched_g.add(g)
            matched_d.add(d)
            pairs.append({"gt": g, "det": d, "iou": float(iou[p])})
        results.append(SampleResult(
            gt_care=len(g_used) - len(g_dc), det_care=len(d_used) - len(d_dc), matched=len(pairs),
            pairs=pairs, gt_dont_care=g_dc, det_dont_care=d_dc,
            gt_skipped=[int(k) for k in np.nonzero(~gt_used[g0:g_off[i + 1]])[0]],
            det_skipped=[int(k) for k in np.nonzero(~det_used[d0:d_off[i + 1]])[0]],
        ))
    return results


def sum_counts(results: Sequence[SampleResult]) -> Dict[str, int]:
    return {
        "gt_care": int(sum(r.gt_care for r in results)),
        "det_care": int(sum(r.det_care for r in results)),
        "matched": int(sum(r.matched for r in results)),
        "images": len(results),
    }


def metrics_from_counts(counts: Mapping[str, int]) -> Dict[str, float]:
    """Global precision / recall / hmean from summed counts (RRC ``method`` metrics)."""
    gt_care, det_care, matched = int(counts["gt_care"]), int(counts["det_care"]), int(counts["matched"])
    recall = 0.0 if gt_care == 0 else matched / gt_care
    precision = 0.0 if det_care == 0 else matched / det_care
    hmean = 0.0 if recall + precision == 0 else 2 * recall * precision / (recall + precision)
    return {"precision": precision, "recall": recall, "hmean": hmean}
