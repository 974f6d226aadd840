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


def _square(x, y, s=20):
    return np.array([[x, y], [x + s, y], [x + s, y + s], [x, y + s]], np.float64)


def test_one_metric_object_process_compute_and_shards():
    """process per batch keeps one record per image; counts/compute over them; state/load_states merge the
    shards of two ranks in dataset order; a duplicated index is refused."""
    from dbnetpp.metrics import ImageInput, Sample

    def image(i, det):
        gt = [_square(0, 0), _square(50, 50)]
        return ImageInput(i, f"img_{i}.jpg", f"labels.txt:{i + 1}",
                          Sample(gt=gt, gt_dont_care=[False, False], det=det), [0.9] * len(det))

    rank0, rank1 = DetMetric(), DetMetric()
    rank0.process([image(0, [_square(0, 0)]), image(2, [])])  # 1 of 2 found; none found
    rank1.process([image(1, [_square(0, 0), _square(50, 50), _square(200, 200)])])
    assert [r.index for r in rank0.records] == [0, 2]
    assert rank0.counts() == {"gt_care": 4, "det_care": 1, "matched": 1, "images": 2}
    total = {k: rank0.counts()[k] + rank1.counts()[k] for k in COUNT_KEYS}  # the all-reduce
    result = rank0.compute(total)
    assert result["recall"] == pytest.approx(3 / 6) and result["precision"] == pytest.approx(3 / 4)
    assert result["hmean"] == pytest.approx(2 * 0.5 * 0.75 / 1.25) and result["images"] == 3
    rank0.load_states([rank0.state(), rank1.state()])  # tools/eval.py's gather
    assert [r.index for r in rank0.records] == [0, 1, 2] and rank0.counts() == total
    assert rank0.records[1].label == "labels.txt:2" and rank0.records[1].metrics()["precision"] == pytest.approx(2 / 3)
    with pytest.raises(RuntimeError, match="more than one rank"):
        rank0.load_states([rank0.state(), rank1.state()])
    rank0.reset()
    assert rank0.records == [] and rank0.counts()["images"] == 0


def test_build_metric_from_the_config():
    from dbnetpp.metrics import build_metric

    assert build_metric({}).protocol == "official"  # no Metric section: DetMetric with its defaults
    cfg = {"Metric": {"name": "DetMetric", "main_indicator": "recall", "protocol": "paddleocr"}, "__file__": "c.yml"}
    metric = build_metric(cfg)
    assert metric.protocol == "paddleocr" and metric.main_indicator == "recall"
    assert build_metric(cfg, "official").protocol == "official"  # tools/eval.py --protocol
    with pytest.raises(ConfigError, match=r"c\.yml: key 'Metric.protocol'"):
        build_metric({**cfg, "Metric": {"name": "DetMetric", "protocol": "icdar"}})
