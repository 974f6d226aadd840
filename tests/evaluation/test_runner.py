"""evaluate_shard / merge_shards in one process: same counts as the trainer's run_evaluation, images that
fail to load scored with no detections, don't-care by protocol, unreadable labels reported."""
import json

import pytest

from dbnetpp.checkpoint import load_params
from dbnetpp.config import load_config
from dbnetpp.data import build_dataloader
from dbnetpp.engine import run_evaluation
from dbnetpp.evaluation import evaluate_shard, merge_shards, sum_record_counts, with_report_keys
from dbnetpp.metrics import DetMetric
from dbnetpp.modeling import build_model
from dbnetpp.postprocess import DBPostProcess


def _setup(case, module, *extra, label=None):
    overrides = case.overrides(*extra)
    if label is not None:
        overrides.append(f"Eval.dataset.label_file_list=[{label}]")
    cfg = load_config(str(module.CONFIG), overrides)
    model = build_model(cfg["Architecture"])
    model.set_state_dict(load_params(str(case.checkpoint)))
    post = DBPostProcess(thresh=case.thresh, box_thresh=case.box_thresh, unclip_ratio=1.5)
    return cfg, model, post


def _clean_label(case, tmp_path, n=6):
    """The first ``n`` lines of the case's label file (its 7th is the undecodable image)."""
    lines = case.label_file.read_text(encoding="utf-8").splitlines()
    path = tmp_path / "clean.txt"
    path.write_text("\n".join(lines[:n]) + "\n", encoding="utf-8")
    return path


@pytest.mark.smoke
def test_counts_match_the_trainers_evaluation(eval_case, eval_case_module, tmp_path):
    label = _clean_label(eval_case, tmp_path)
    cfg, model, post = _setup(eval_case, eval_case_module, label=label)
    reference = run_evaluation(model, build_dataloader(cfg, "Eval"), post, DetMetric(protocol="official"))

    shard = evaluate_shard(model, build_dataloader(with_report_keys(cfg), "Eval"), post, "official")
    merged = merge_shards(shard)
    assert [r.index for r in merged.records] == list(range(6))
    assert merged.counts == {k: reference[k] for k in ("gt_care", "det_care", "matched", "images")}
    assert merged.metrics["hmean"] == pytest.approx(reference["hmean"], abs=0)
    assert 0 < merged.metrics["precision"] < 1 and 0 < merged.metrics["recall"] < 1
    assert sum_record_counts(shard.records) == merged.counts
    assert shard.seconds_model > 0 and shard.seconds_total >= shard.seconds_model and shard.batches == 6
    for rec in merged.records:
        assert rec.image.endswith(f"img_{rec.index + 1}.jpg")
        assert rec.label == f"{label}:{rec.index + 1}"
        assert len(rec.det) == len(rec.scores)
        assert all(s >= eval_case.box_thresh for s in rec.scores)


def test_image_that_fails_to_load_is_scored_without_detections(eval_case, eval_case_module):
    cfg, model, post = _setup(eval_case, eval_case_module, "Global.bad_sample_policy=skip")
    shard = evaluate_shard(model, build_dataloader(with_report_keys(cfg), "Eval", policy="skip"), post, "official")
    assert [r.index for r in shard.records] == list(range(7))
    bad = shard.records[-1]
    assert bad.skipped and "cannot decode image" in bad.skipped
    assert bad.label == f"{eval_case.label_file}:{eval_case_module.CORRUPT_LINE}"
    assert bad.det == [] and bad.gt_dont_care == [False, True]
    assert (bad.result.gt_care, bad.result.det_care, bad.result.matched) == (1, 0, 0)
    assert bad.metrics() == {"precision": 0.0, "recall": 0.0, "hmean": 0.0}
    assert [r.skipped for r in shard.records[:-1]] == [None] * 6
    assert not shard.unscored


def _one_image_label(case, tmp_path, boxes):
    path = tmp_path / "one.txt"
    path.write_text(f"ch4_test_images/img_1.jpg\t{json.dumps(boxes)}\n", encoding="utf-8")
    return path


@pytest.mark.parametrize("protocol, care", [("official", 2), ("paddleocr", 1)])
def test_dont_care_follows_the_protocol(eval_case, eval_case_module, tmp_path, protocol, care):
    boxes = [{"transcription": "*", "points": [[5, 5], [40, 5], [40, 20], [5, 20]]},
             {"transcription": "word", "points": [[50, 50], [90, 50], [90, 70], [50, 70]]},
             {"transcription": "###", "points": [[5, 90], [40, 90], [40, 110], [5, 110]]}]
    cfg, model, post = _setup(eval_case, eval_case_module, label=_one_image_label(eval_case, tmp_path, boxes))
    shard = evaluate_shard(model, build_dataloader(with_report_keys(cfg), "Eval"), post, protocol)
    (rec,) = shard.records
    assert rec.result.gt_care == care
    assert rec.gt_dont_care == [protocol == "paddleocr", False, True]


def test_unreadable_label_is_reported_not_scored(eval_case, eval_case_module, tmp_path):
    good = eval_case.label_file.read_text(encoding="utf-8").splitlines()[0]
    path = tmp_path / "bad_label.txt"
    path.write_text(f"{good}\nch4_test_images/img_2.jpg\t[{{\"points\": oops}}]\n", encoding="utf-8")
    cfg, model, post = _setup(eval_case, eval_case_module, "Global.bad_sample_policy=skip", label=path)
    shard = evaluate_shard(model, build_dataloader(with_report_keys(cfg), "Eval", policy="skip"), post, "official")
    assert [r.index for r in shard.records] == [0]
    (item,) = shard.unscored
    assert item["label"] == f"{path}:2" and "not valid JSON" in item["reason"]
    merged = merge_shards(shard)
    assert merged.counts["images"] == 1 and merged.unscored == shard.unscored


def test_report_keys_are_added_to_keep_keys(eval_case, eval_case_module):
    cfg = load_config(str(eval_case_module.CONFIG), eval_case.overrides())
    out = with_report_keys(cfg)
    keep = out["Eval"]["dataset"]["transforms"][-1]["KeepKeys"]["keep_keys"]
    assert keep == ["image", "shape", "polys", "ignore_tags", "texts", "img_path"]
    assert cfg["Eval"]["dataset"]["transforms"][-1]["KeepKeys"]["keep_keys"][-1] == "ignore_tags"  # a copy
    no_label = dict(out, Eval={"dataset": {"transforms": [{"KeepKeys": {"keep_keys": ["image"]}}]}})
    assert with_report_keys(no_label)["Eval"]["dataset"]["transforms"][0]["KeepKeys"]["keep_keys"] == \
        ["image", "img_path"]


def test_merge_rejects_an_image_evaluated_twice(eval_case, eval_case_module, tmp_path):
    label = _clean_label(eval_case, tmp_path, n=1)
    cfg, model, post = _setup(eval_case, eval_case_module, label=label)
    shard = evaluate_shard(model, build_dataloader(with_report_keys(cfg), "Eval"), post, "official")
    shard.records = shard.records * 2
    with pytest.raises(RuntimeError, match="more than one rank"):
        merge_shards(shard)
