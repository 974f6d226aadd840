"""DetMetric: batch accumulation, counts for all-reduce, registry, protocol switch."""
from __future__ import annotations

import numpy as np
import pytest

from dbnetpp.errors import ConfigError
from dbnetpp.metrics import COUNT_KEYS, DetMetric, evaluate_paths
from dbnetpp.metrics.rrc_io import read_detections, read_ground_truth
from dbnetpp.registry import METRICS


def _batches(refdet_dir, det_name, batch_size=4):
    """(preds, batch) pairs built from the reference GT and a reference submission."""
    gt = read_ground_truth(str(refdet_dir / "official_test_gt.zip"))
    det = read_detections(str(refdet_dir / det_name), gt.keys())
    keys = sorted(gt, key=int)
    for i in range(0, len(keys), batch_size):
        ks = keys[i:i + batch_size]
        preds = [{"points": np.array(det[k].polys, np.int32).reshape(-1, 4, 2) if k in det else np.zeros((0, 4, 2)),
                  "scores": []} for k in ks]
        batch = {"polys": [np.array(gt[k].polys, np.float32).reshape(-1, 4, 2) for k in ks],
                 "ignore_tags": [np.array(gt[k].dont_care("official"), bool) for k in ks]}
        yield preds, batch


def test_counts_match_file_evaluation_and_shards_sum(refdet_dir):
    expected = evaluate_paths(str(refdet_dir / "official_test_gt.zip"), str(refdet_dir / "east_res.zip"))["method"]
    whole, shard_a, shard_b = DetMetric(), DetMetric(), DetMetric()
    for i, (preds, batch) in enumerate(_batches(refdet_dir, "east_res.zip")):
        whole(preds, batch)
        (shard_a if i % 2 == 0 else shard_b)(preds, batch)
    counts = whole.get_counts()
    assert counts == {k: expected[k] for k in ("gt_care", "det_care", "matched", "images")}
    # what an all-reduce over two ranks computes (dbnetpp.evaluation.reduce_counts: the key-wise sum)
    reduced = {k: shard_a.get_counts()[k] + shard_b.get_counts()[k] for k in COUNT_KEYS}
    assert reduced == counts
    merged = DetMetric.metric_from_counts(reduced)
    assert round(merged["hmean"], 4) == 0.8083 and merged["hmean"] == pytest.approx(expected["hmean"], abs=1e-12)
    result = whole.get_metric()
    assert result["precision"] == pytest.approx(expected["precision"], abs=1e-12)
    assert whole.get_counts() == {"gt_care": 0, "det_care": 0, "matched": 0, "images": 0}  # reset


def test_texts_decide_dont_care_by_protocol():
    gt = np.array([[[0, 0], [100, 0], [100, 20], [0, 20]], [[0, 50], [100, 50], [100, 70], [0, 70]]], np.float32)
    preds = [{"points": gt[:1].astype(np.int32), "scores": [0.9]}]
    batch = {"polys": [gt], "ignore_tags": [np.array([False, True])], "texts": [["word", "*"]]}
    official, paddle = DetMetric(protocol="official"), DetMetric(protocol="paddleocr")
    official(preds, batch)
    paddle(preds, batch)
    assert official.get_counts()["gt_care"] == 2  # '*' is ordinary text for the RRC tool
    assert paddle.get_counts()["gt_care"] == 1
    # without texts the ignore tags decide, under both protocols
    no_text = {"polys": [gt], "ignore_tags": [np.array([False, True])]}
    official(preds, no_text)
    assert official.get_counts()["gt_care"] == 3


def test_paddleocr_list_batch_poly_predictions_and_tensors():
    paddle = pytest.importorskip("paddle")
    gt = np.array([[[0, 0], [100, 0], [100, 20], [0, 20]]], np.float32)
    poly = np.array([[0, 0], [50, -2], [100, 0], [100, 20], [50, 22], [0, 20]], np.int32)
    metric = DetMetric(protocol="paddleocr")
    batch = [None, None, [paddle.to_tensor(gt)], [paddle.to_tensor(np.array([False]))]]
    metric([{"points": [poly], "scores": [0.8]}], batch)
    assert metric.get_metric() == {"precision": 1.0, "recall": 1.0, "hmean": 1.0,
                                   "gt_care": 1, "det_care": 1, "matched": 1, "images": 1}


def test_registry_and_argument_checks():
    metric = METRICS.build({"name": "DetMetric", "main_indicator": "hmean", "protocol": "paddleocr"},
                           where="Metric")
    assert isinstance(metric, DetMetric) and metric.protocol == "paddleocr" and metric.main_indicator == "hmean"
    with pytest.raises(ConfigError, match="protocol"):
        METRICS.build({"name": "DetMetric", "protocol": "icdar"}, where="Metric")
    with pytest.raises(ConfigError, match="main_indicater"):
        METRICS.build({"name": "DetMetric", "main_indicater": "hmean"}, where="Metric")
    with pytest.raises(ValueError, match="ignore tags"):
        DetMetric()([{"points": np.zeros((0, 4, 2))}],
                    {"polys": [np.zeros((2, 4, 2))], "ignore_tags": [np.array([False])]})
