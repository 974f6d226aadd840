"""Per-image transcription of the RRC task 4.1 script's scoring with the Polygon2/3 library.

Test helper only (needs the optional ``Polygon3`` package): the official tool's geometry, so
the vectorised evaluator can be compared against it on arbitrary (also self-intersecting) quads.
"""
from __future__ import annotations

import numpy as np


def evaluate_image(plg, gt_quads, gt_dont_care, det_quads):
    """-> (gt_care, det_care, matched) for one image, as the RRC script computes them."""

    def polygon(points):
        pts = np.trunc(np.asarray(points, np.float64).reshape(4, 2)).astype(np.int32)
        return plg.Polygon(pts)

    def inter(a, b):
        p = a & b
        return 0 if len(p) == 0 else p.area()

    gts = [polygon(p) for p in gt_quads]
    dets = [polygon(p) for p in det_quads]
    dc_g = [i for i, f in enumerate(gt_dont_care) if f]
    dc_d = []
    for j, d in enumerate(dets):
        for i in dc_g:
            area = d.area()
            prec = 0 if area == 0 else inter(gts[i], d) / area
            if prec > 0.5:
                dc_d.append(j)
                break
    matched = 0
    g_used = [False] * len(gts)
    d_used = [False] * len(dets)
    for i, g in enumerate(gts):
        for j, d in enumerate(dets):
            if g_used[i] or d_used[j] or i in dc_g or j in dc_d:
                continue
            union = d.area() + g.area() - inter(d, g)
            iou = inter(d, g) / union if union != 0 else 0
            if iou > 0.5:
                g_used[i] = d_used[j] = True
                matched += 1
    return len(gts) - len(dc_g), len(dets) - len(dc_d), matched
