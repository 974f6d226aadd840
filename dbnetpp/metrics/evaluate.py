"""Evaluate a detection submission against ICDAR2015 ground truth (files in, metrics out)."""
from __future__ import annotations

from typing import Dict

from .icdar_eval import Sample, evaluate_samples, metrics_from_counts, sum_counts
from .rrc_io import read_detections, read_ground_truth


def evaluate_paths(gt_path: str, det_path: str, protocol: str = "official") -> Dict:
    """Read, validate and score; returns ``{"method": {...}, "per_sample": {key: {...}}, "with_results": n}``.

    ``with_results`` counts the GT images that have a result file (or label-file line) in the submission;
    the others are scored as images without detections, as the RRC tool does.

    ``method`` holds the global precision / recall / hmean plus the summed counts; each
    per-sample entry holds that image's metrics, counts, matched pairs (with IoU) and the
    indices (0-based, in file order) of don't-care and skipped boxes.
    """
    gt = read_ground_truth(gt_path, protocol)
    det = read_detections(det_path, gt.keys(), protocol)
    keys = sorted(gt, key=lambda k: (0, int(k), "") if k.isdigit() else (1, 0, k))
    samples = []
    for key in keys:
        g = gt[key]
        d = det.get(key)
        samples.append(Sample(gt=g.polys, gt_dont_care=g.dont_care(protocol), det=d.polys if d else []))
    results = evaluate_samples(samples, protocol)
    counts = sum_counts(results)
    per_sample = {}
    for key, res in zip(keys, results):
        entry = res.metrics()
        entry.update(gt_care=res.gt_care, det_care=res.det_care, matched=res.matched, pairs=res.pairs,
                     gt_dont_care=res.gt_dont_care, det_dont_care=res.det_dont_care,
                     gt_skipped=res.gt_skipped, det_skipped=res.det_skipped,
                     gt_file=gt[key].source, det_file=det[key].source if key in det else None)
        per_sample[key] = entry
    method = dict(metrics_from_counts(counts), **counts, protocol=protocol)
    return {"method": method, "per_sample": per_sample, "with_results": sum(1 for key in keys if key in det)}
