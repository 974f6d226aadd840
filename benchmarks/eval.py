"""Benchmark DB post-processing and ICDAR2015 evaluation speed.

    python benchmarks/eval.py [--num-maps 500] [--shared ../shared]

1. Post-processing, ms per image, of ``dbnetpp``'s DBPostProcess versus PaddleOCR 2.5.0.3's
   (the PyPI ``paddleocr==2.5.0.3`` wheel, loaded from its file) on the same maps: realistic
   736x1280 probability maps rendered from the ICDAR2015 test GT polygons (shrunk text kernels,
   blurred edges, noise, specks) plus the 5 PaddleOCR reference maps.  Outputs are checked to be
   identical.
2. Evaluation, seconds for the 500-image test set (EAST reference detections): ours end to end
   (read zips, validate, score) and its scoring core, versus a straightforward per-image,
   per-pair shapely implementation of the same protocol.

The last line is one JSON object with ``postprocess_ratio`` (reference time / ours) and
``eval_seconds`` (ours, end to end).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pyclipper
from shapely.geometry import Polygon

from dbnetpp.cli import run_tool
from dbnetpp.errors import UsageError
from dbnetpp.metrics import Sample, evaluate_paths, evaluate_samples
from dbnetpp.metrics.icdar_eval import sum_counts
from dbnetpp.metrics.rrc_io import read_detections, read_ground_truth
from dbnetpp.postprocess import DBPostProcess
from dbnetpp.ppocr_wheel import ReferenceMissing, load_file

ROOT = Path(__file__).resolve().parents[1]
MAP_H, MAP_W, SRC_H, SRC_W = 736, 1280, 720, 1280
SETTINGS = dict(thresh=0.3, box_thresh=0.6, max_candidates=1000, unclip_ratio=1.5)


def load_reference_postprocess():
    """PaddleOCR 2.5.0.3's DBPostProcess class, loaded from the installed wheel's file
    (:mod:`dbnetpp.ppocr_wheel`: a private numpy namespace gives it ``np.int``)."""
    try:
        return load_file("ppocr/postprocess/db_postprocess.py", "ppocr25_db_postprocess").DBPostProcess
    except ReferenceMissing as exc:
        raise UsageError(str(exc)) from None


def render_map(polys, rng) -> np.ndarray:
    """A DB-like probability map [736, 1280] float32 from source-image polygons."""
    canvas = np.zeros((MAP_H, MAP_W), np.float32)
    scale = np.array([MAP_W / SRC_W, MAP_H / SRC_H])
    for poly in polys:
        p = np.asarray(poly, np.float64) * scale
        shp = Polygon(p)
        if not shp.is_valid or shp.area < 4:
            continue
        dist = shp.area * (1 - 0.4 ** 2) / shp.length  # DB shrink offset, r = 0.4
        off = pyclipper.PyclipperOffset()
        off.AddPath(np.round(p).astype(np.int64).tolist(), pyclipper.JT_ROUND, pyclipper.ET_CLOSEDPOLYGON)
        shrunk = off.Execute(-dist)
        if not shrunk:
            continue
        value = float(rng.uniform(0.7, 0.98))
        cv2.fillPoly(canvas, [np.array(s, np.int32) for s in shrunk], value)
    canvas = cv2.GaussianBlur(canvas, (0, 0), 1.5)
    canvas += rng.normal(0, 0.03, canvas.shape).astype(np.float32)
    ys = rng.integers(0, MAP_H, 60)
    xs = rng.integers(0, MAP_W, 60)
    canvas[ys, xs] = rng.uniform(0.4, 1.0, 60).astype(np.float32)
    return np.clip(canvas, 0, 1)[None, None]


def same_output(ref_points, ours) -> bool:
    ref = np.asarray(ref_points).astype(np.int64).reshape(-1, 4, 2)
    return ref.shape == ours["points"].shape and np.array_equal(ref, ours["points"])


def _best_of(fn, repeats: int):
    """(result, fastest wall time of ``repeats`` calls): robust against a busy machine."""
    best, result = float("inf"), None
    for _ in range(repeats):
        t0 = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - t0)
    return result, best


def bench_postprocess(gt, num_maps, shared, repeats=3, seed=0):
    ref_cls = load_reference_postprocess()
    variants = {"fast": dict(SETTINGS, score_mode="fast"), "slow": dict(SETTINGS, score_mode="slow")}
    shape = np.array([[SRC_H, SRC_W, MAP_H / SRC_H, 1.0]])
    keys = sorted(gt, key=int)[:num_maps]
    ref_dir = Path(shared) / "reference" / "ppocr" / "db_postprocess"
    ref_maps = [np.load(f).astype(np.float32) / np.float32(255.0) for f in sorted(ref_dir.glob("prob_map_*.npy"))]
    posts = {name: (ref_cls(**cfg), DBPostProcess(**cfg)) for name, cfg in variants.items()}
    totals = {name: [0.0, 0.0, 0] for name in variants}  # reference s, ours s, mismatches
    rng = np.random.default_rng(seed)
    sources = [("gt", k) for k in keys] + [("ref", i) for i in range(len(ref_maps))]
    for kind, k in sources:
        outs = {"maps": render_map(gt[k].polys, rng) if kind == "gt" else ref_maps[k]}
        for name, (ref, ours) in posts.items():
            r, t_ref = _best_of(lambda: ref(outs, shape)[0]["points"], repeats)
            o, t_ours = _best_of(lambda: ours(outs, shape)[0], repeats)
            totals[name][0] += t_ref
            totals[name][1] += t_ours
            totals[name][2] += not same_output(r, o)
    out, n = {}, len(sources)
    for name, (t_ref, t_ours, mismatched) in totals.items():
        out[name] = {"maps": n, "ref_ms": 1e3 * t_ref / n, "ours_ms": 1e3 * t_ours / n,
                     "ratio": t_ref / t_ours, "mismatched_maps": mismatched}
        print(f"post-process score_mode={name}: {n} maps, reference {out[name]['ref_ms']:.3f} ms/image, "
              f"ours {out[name]['ours_ms']:.3f} ms/image, x{out[name]['ratio']:.2f}, "
              f"mismatched outputs {mismatched} (fastest of {repeats} runs per map)", flush=True)
    return out


def baseline_evaluate(samples):
    """Straightforward per-image, per-pair shapely evaluation (PaddleOCR DetMetric algorithm)."""
    gt_care = det_care = matched = 0
    for s in samples:
        gts = [Polygon(p) for p in s.gt]
        keep_g = [i for i, g in enumerate(gts) if g.is_valid]
        gts = [gts[i] for i in keep_g]
        dc = [s.gt_dont_care[i] for i in keep_g]
        dets = [d for d in (Polygon(p) for p in s.det) if d.is_valid]
        det_dc = set()
        for j, d in enumerate(dets):
            for g, is_dc in zip(gts, dc):
                if is_dc and d.area > 0 and g.intersection(d).area / d.area > 0.5:
                    det_dc.add(j)
                    break
        g_used, d_used, m = set(), set(), 0
        iou = [[g.intersection(d).area / g.union(d).area for d in dets] for g in gts]
        for gi in range(len(gts)):
            for dj in range(len(dets)):
                if gi in g_used or dj in d_used or dc[gi] or dj in det_dc:
                    continue
                if iou[gi][dj] > 0.5:
                    g_used.add(gi)
                    d_used.add(dj)
                    m += 1
        gt_care += len(gts) - sum(dc)
        det_care += len(dets) - len(det_dc)
        matched += m
    return {"gt_care": gt_care, "det_care": det_care, "matched": matched}


def bench_eval(gt_zip, det_zip, repeats=3):
    _, best = _best_of(lambda: evaluate_paths(str(gt_zip), str(det_zip), "official"), repeats)
    gt = read_ground_truth(str(gt_zip), "paddleocr")
    det = read_detections(str(det_zip), gt.keys(), "paddleocr")
    samples = [Sample(gt[k].polys, gt[k].dont_care("paddleocr"), det[k].polys if k in det else []) for k in gt]
    _, core = _best_of(lambda: evaluate_samples(samples, "paddleocr"), repeats)
    t0 = time.perf_counter()
    base_counts = baseline_evaluate(samples)
    base = time.perf_counter() - t0
    ours_counts = sum_counts(evaluate_samples(samples, "paddleocr"))
    agree = all(base_counts[k] == ours_counts[k] for k in base_counts)
    print(f"evaluation of {len(samples)} images: ours {best:.3f} s end to end (read+validate+score), "
          f"core {core:.3f} s; per-image shapely baseline {base:.3f} s (core x{base / core:.1f}); "
          f"counts agree: {agree}", flush=True)
    return {"eval_seconds": best, "eval_core_seconds": core, "eval_baseline_seconds": base, "eval_counts_agree": agree}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="post-processing and evaluation benchmark")
    ap.add_argument("--num-maps", type=int, default=500, help="synthetic maps rendered from test GT (max 500)")
    ap.add_argument("--repeats", type=int, default=3, help="runs per map and per evaluation; the fastest counts")
    ap.add_argument("--shared", default=os.environ.get("DBNETPP_SHARED", str(ROOT.parent / "shared")),
                    help="folder holding datasets/ and reference/ (default ../shared)")
    args = ap.parse_args(argv)
    return run_tool("benchmarks/eval.py", lambda: _main(args))


def _main(args) -> int:
    det_dir = Path(args.shared) / "datasets" / "icdar2015_reference_detections"
    gt_zip, det_zip = det_dir / "official_test_gt.zip", det_dir / "east_res.zip"
    if not gt_zip.exists():
        raise UsageError(f"{gt_zip} not found (set --shared)")
    gt = read_ground_truth(str(gt_zip), "official")
    pp = bench_postprocess(gt, args.num_maps, args.shared, repeats=args.repeats)
    ev = bench_eval(gt_zip, det_zip, repeats=args.repeats)
    summary = {
        "postprocess_ratio": round(pp["fast"]["ratio"], 3),
        "postprocess_ratio_slow": round(pp["slow"]["ratio"], 3),
        "postprocess_ms_ours": round(pp["fast"]["ours_ms"], 3),
        "postprocess_ms_reference": round(pp["fast"]["ref_ms"], 3),
        "postprocess_maps": pp["fast"]["maps"],
        "postprocess_mismatched_maps": pp["fast"]["mismatched_maps"] + pp["slow"]["mismatched_maps"],
        "eval_seconds": round(ev["eval_seconds"], 4),
        "eval_core_seconds": round(ev["eval_core_seconds"], 4),
        "eval_baseline_seconds": round(ev["eval_baseline_seconds"], 4),
        "eval_counts_agree": ev["eval_counts_agree"],
    }
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
