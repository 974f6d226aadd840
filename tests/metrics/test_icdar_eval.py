"""ICDAR2015 evaluation: official numbers on reference submissions, protocol rules, variants."""
from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pytest

from dbnetpp.metrics import Sample, evaluate_paths, evaluate_samples
from dbnetpp.metrics.rrc_io import read_detections, read_ground_truth

from testutil import load_module


def _official(refdet_dir, det_name, protocol="official"):
    return evaluate_paths(str(refdet_dir / "official_test_gt.zip"), str(refdet_dir / det_name), protocol)["method"]


def _rounded(m):
    return round(m["precision"], 4), round(m["recall"], 4), round(m["hmean"], 4)


@pytest.mark.smoke
def test_east_reference_numbers(refdet_dir):
    """The RRC tool's published numbers for the EAST submission, to 4 decimals."""
    m = _official(refdet_dir, "east_res.zip")
    assert _rounded(m) == (0.8466, 0.7732, 0.8083)
    assert (m["gt_care"], m["images"]) == (2077, 500)


def test_pixellink_reference_numbers(refdet_dir):
    m = _official(refdet_dir, "pixellink_res.zip")
    assert _rounded(m) == (0.8552, 0.8161, 0.8352)


def test_ground_truth_as_detections_is_perfect(refdet_dir):
    for protocol in ("official", "paddleocr"):
        m = _official(refdet_dir, "official_test_gt.zip", protocol)
        assert (m["precision"], m["recall"], m["hmean"]) == (1.0, 1.0, 1.0)
        assert m["matched"] == m["gt_care"] == m["det_care"] == 2077


def _write_zip(path: Path, files: dict) -> str:
    with zipfile.ZipFile(path, "w") as z:
        for name, text in files.items():
            z.writestr(name, text)
    return str(path)


SQUARE = "10,10,110,10,110,60,10,60"


def test_star_transcription_is_dont_care_only_for_paddleocr(tmp_path):
    gt = _write_zip(tmp_path / "gt.zip", {"gt_img_1.txt": f"{SQUARE},hello\r\n300,10,400,10,400,60,300,60,*\r\n"})
    det = _write_zip(tmp_path / "det.zip", {"res_img_1.txt": f"{SQUARE}\n300,12,400,12,400,62,300,62\n"})
    off = evaluate_paths(gt, det, "official")
    ppo = evaluate_paths(gt, det, "paddleocr")
    assert (off["method"]["gt_care"], off["method"]["det_care"], off["method"]["matched"]) == (2, 2, 2)
    assert (ppo["method"]["gt_care"], ppo["method"]["det_care"], ppo["method"]["matched"]) == (1, 1, 1)
    assert ppo["per_sample"]["1"]["gt_dont_care"] == [1] and ppo["per_sample"]["1"]["det_dont_care"] == [1]


def test_invalid_polygon_kept_by_official_skipped_by_paddleocr():
    """A self-intersecting ("bow-tie") detection: the RRC tool scores it (an unmatched
    detection, its shoelace area being zero), PaddleOCR's DetMetric drops it."""
    gt = [np.array([[10, 10], [110, 10], [110, 60], [10, 60]], float)]
    bowtie = np.array([[200, 10], [300, 60], [300, 10], [200, 60]], float)
    samples = [Sample(gt=gt, gt_dont_care=[False], det=[gt[0].copy(), bowtie])]
    off = evaluate_samples(samples, "official")[0]
    ppo = evaluate_samples(samples, "paddleocr")[0]
    assert (off.gt_care, off.det_care, off.matched, off.det_skipped) == (1, 2, 1, [])
    assert (ppo.gt_care, ppo.det_care, ppo.matched, ppo.det_skipped) == (1, 1, 1, [1])


def test_official_truncates_coordinates_paddleocr_keeps_floats():
    # GT 0..10 x 0..10; detection 3.6..13.6 x 0..10
    gt = [np.array([[0, 0], [10, 0], [10, 10], [0, 10]], float)]
    det = [np.array([[3.6, 0], [13.6, 0], [13.6, 10], [3.6, 10]], float)]
    # floats: I = 64, U = 136 -> 0.47; truncated 3..13: I = 70, U = 130 -> 0.538
    assert evaluate_samples([Sample(gt, [False], det)], "paddleocr")[0].matched == 0
    res = evaluate_samples([Sample(gt, [False], det)], "official")[0]
    assert res.matched == 1 and res.pairs[0]["iou"] == pytest.approx(70 / 130)


def test_greedy_one_to_one_matching_in_gt_then_detection_order():
    box = lambda x0, x1: np.array([[x0, 0], [x1, 0], [x1, 10], [x0, 10]], float)  # noqa: E731
    # GT 0 overlaps det 0 (IoU 0.67) and det 1 (IoU 0.9): the first qualifying det (0) wins
    # although det 1 fits better; GT 1 then takes det 1.
    gt = [box(0, 100), box(5, 95)]
    det = [box(0, 67), box(0, 90)]
    res = evaluate_samples([Sample(gt, [False, False], det)], "official")[0]
    assert [(p["gt"], p["det"]) for p in res.pairs] == [(0, 0), (1, 1)]
    # IoU exactly 0.5 is not a match (strictly greater is required)
    res = evaluate_samples([Sample([box(0, 100)], [False], [box(0, 50)])], "official")[0]
    assert res.matched == 0


def test_dont_care_area_precision_constraint():
    box = lambda x0, x1: np.array([[x0, 0], [x1, 0], [x1, 10], [x0, 10]], float)  # noqa: E731
    gt = [box(0, 100), box(200, 300)]
    inside = box(210, 270)       # fully inside the ### box: don't care
    half_out = box(260, 360)     # 40 % inside: an ordinary (false positive) detection
    res = evaluate_samples([Sample(gt, [False, True], [box(0, 100), inside, half_out])], "official")[0]
    assert res.gt_dont_care == [1] and res.det_dont_care == [1]
    assert (res.gt_care, res.det_care, res.matched) == (1, 2, 1)
    assert res.metrics() == {"precision": 0.5, "recall": 1.0, "hmean": pytest.approx(2 / 3)}


def test_images_without_care_gt_follow_rrc_per_sample_rules():
    box = np.array([[0, 0], [10, 0], [10, 10], [0, 10]], float)
    empty = evaluate_samples([Sample([], [], [])], "official")[0]
    assert empty.metrics() == {"precision": 1.0, "recall": 1.0, "hmean": 1.0}
    spurious = evaluate_samples([Sample([], [], [box])], "official")[0]
    assert spurious.metrics()["precision"] == 0.0 and spurious.det_care == 1


def test_paddleocr_protocol_equals_official_on_integer_quads(refdet_dir):
    """On valid integer quads without '*' the two protocols agree (EAST submission)."""
    a = _official(refdet_dir, "east_res.zip", "official")
    b = _official(refdet_dir, "east_res.zip", "paddleocr")
    assert {k: a[k] for k in ("gt_care", "det_care", "matched")} == {k: b[k] for k in ("gt_care", "det_care", "matched")}


def test_matches_polygon2_reference_on_perturbed_quads(refdet_dir):
    """Against a per-image transcription of the RRC script using Polygon2's successor
    (``Polygon3``), on EAST detections plus noisy, reversed, degenerate and bow-tie copies
    of the GT boxes."""
    plg = pytest.importorskip("Polygon", reason="optional Polygon3 package (requirements-dev.txt)")
    ref = load_module("rrc_polygon2", Path(__file__).with_name("rrc_polygon2.py"), fresh=True)
    gt = read_ground_truth(str(refdet_dir / "official_test_gt.zip"))
    det = read_detections(str(refdet_dir / "east_res.zip"), gt.keys())
    rng = np.random.default_rng(0)
    samples = []
    for key in sorted(gt, key=int)[:250]:
        dets = list(det[key].polys) if key in det else []
        for p in gt[key].polys:
            q = p + rng.normal(0, 4, (4, 2))
            r = rng.random()
            if r < 0.15:
                q = q[[0, 2, 1, 3]]  # bow-tie
            elif r < 0.2:
                q[1] = q[0]  # repeated corner
            dets.append(q)
        samples.append(Sample(gt[key].polys, gt[key].dont_care("official"), dets))
    ours = evaluate_samples(samples, "official")
    n_bowtie_matches = 0
    for s, r in zip(samples, ours):
        assert ref.evaluate_image(plg, s.gt, s.gt_dont_care, s.det) == (r.gt_care, r.det_care, r.matched)
        n_bowtie_matches += r.matched
    assert n_bowtie_matches > 500
