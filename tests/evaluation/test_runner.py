"""evaluate_shard / merge_shards, the one evaluation of training and tools/eval.py: the same counts with and
without gathered records and as PaddleOCR's DetMetric, a signal on any rank interrupting every rank, images
that fail to load scored with no detections, don't-care by protocol, unreadable labels reported."""
import contextlib
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import paddle
import pytest

from dbnetpp.checkpoint import load_params
from dbnetpp.config import load_config
from dbnetpp.data import build_dataloader
from dbnetpp.evaluation import (EvaluationInterrupted, evaluate_shard, merge_shards, reduce_counts,
                                sum_record_counts, with_report_keys)
from dbnetpp.metrics import DetMetric
from dbnetpp.modeling import build_model
from dbnetpp.postprocess import DBPostProcess

ROOT = Path(__file__).resolve().parents[2]


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


def _det_metric_counts(model, loader, post, protocol):
    """PaddleOCR's way: DetMetric called on every batch with the post-processed boxes."""
    metric = DetMetric(protocol=protocol)
    model.eval()
    with paddle.no_grad():
        for batch in loader:
            metric(post({"maps": model(batch["image"])["maps"].numpy()}, batch["shape"].numpy()), batch)
    return metric.get_counts()


@pytest.mark.smoke
def test_counts_match_det_metric_with_and_without_gathering(eval_case, eval_case_module, tmp_path):
    label = _clean_label(eval_case, tmp_path)
    cfg, model, post = _setup(eval_case, eval_case_module, label=label)
    reference = _det_metric_counts(model, build_dataloader(cfg, "Eval"), post, "official")

    # tools/eval.py: report keys kept, records gathered
    shard = evaluate_shard(model, build_dataloader(with_report_keys(cfg), "Eval"), post, DetMetric())
    merged = merge_shards(shard)
    assert [r.index for r in merged.records] == list(range(6))
    assert merged.counts == reference
    assert merged.metrics == {k: DetMetric.metric_from_counts(reference)[k] for k in ("precision", "recall", "hmean")}
    assert 0 < merged.metrics["precision"] < 1 and 0 < merged.metrics["recall"] < 1
    assert sum_record_counts(shard.records) == merged.counts
    assert shard.seconds_model > 0 and shard.seconds_total >= shard.seconds_model and shard.batches == 6
    assert shard.images_per_second == pytest.approx(6 / shard.seconds_model)
    for rec in merged.records:
        assert rec.image.endswith(f"img_{rec.index + 1}.jpg")
        assert rec.label == f"{label}:{rec.index + 1}"
        assert len(rec.det) == len(rec.scores)
        assert all(s >= eval_case.box_thresh for s in rec.scores)

    # training: the config's own Eval keys, counts all-reduced only
    model.train()
    local = evaluate_shard(model, build_dataloader(cfg, "Eval"), post, DetMetric())
    assert model.training  # mode restored
    counts_only = merge_shards(local, gather_records=False)
    assert counts_only.counts == reference and counts_only.metrics == merged.metrics
    assert [r.index for r in counts_only.records] == list(range(6)) and counts_only.ranks[0]["images"] == 6
    # single process: the all-reduce is the identity
    assert reduce_counts(reference, distributed=False) == reference
    with pytest.raises(EvaluationInterrupted):
        reduce_counts(reference, distributed=False, stopped=True)


def test_should_stop_interrupts_the_evaluation(eval_case, eval_case_module, tmp_path):
    cfg, model, post = _setup(eval_case, eval_case_module, label=_clean_label(eval_case, tmp_path))
    asked, entered = [], []

    @contextlib.contextmanager
    def autocast():
        entered.append(1)
        yield

    def should_stop():
        asked.append(1)
        return len(asked) > 2  # checked before each batch: two batches evaluated, the third not

    model.train()
    shard = evaluate_shard(model, build_dataloader(cfg, "Eval"), post, DetMetric(), autocast=autocast,
                           should_stop=should_stop)
    assert shard.stopped and shard.batches == 2 and [r.index for r in shard.records] == [0, 1]
    assert len(asked) == 3 and len(entered) == 2  # the forward passes ran under autocast
    assert model.training  # mode restored
    for gather in (False, True):
        with pytest.raises(EvaluationInterrupted, match="stopped by a signal"):
            merge_shards(shard, gather_records=gather)

    whole = evaluate_shard(model, build_dataloader(cfg, "Eval"), post, DetMetric(), should_stop=lambda: False)
    assert not whole.stopped and whole.batches == 6


TWO_RANKS = textwrap.dedent("""
    import sys
    from dbnetpp import dist as D
    from dbnetpp.checkpoint import load_params
    from dbnetpp.config import load_config
    from dbnetpp.data import build_dataloader
    from dbnetpp.evaluation import EvaluationInterrupted, evaluate_shard, merge_shards
    from dbnetpp.metrics import DetMetric
    from dbnetpp.modeling import build_model
    from dbnetpp.postprocess import DBPostProcess

    config, checkpoint, thresh, box_thresh, *overrides = sys.argv[1:]
    env = D.setup(False, log=lambda msg: None)
    cfg = load_config(config, overrides)
    model = build_model(cfg["Architecture"])
    model.set_state_dict(load_params(checkpoint))
    post = DBPostProcess(thresh=float(thresh), box_thresh=float(box_thresh), unclip_ratio=1.5)
    loader = build_dataloader(cfg, "Eval", rank=env.rank, world_size=env.world_size)
    for gather in (False, True):  # training's merge, then tools/eval.py's
        shard = evaluate_shard(model, loader, post, DetMetric(), should_stop=lambda: env.rank == 1)  # a signal on rank 1 only
        try:
            merge_shards(shard, rank=env.rank, distributed=True, gather_records=gather)
            print(f"rank {env.rank} not interrupted", flush=True)
        except EvaluationInterrupted:
            print(f"rank {env.rank} interrupted after {shard.batches} batches (gather_records={gather})", flush=True)
    # the ranks are still in step: a whole evaluation follows
    merged = merge_shards(evaluate_shard(model, loader, post, DetMetric()), rank=env.rank, distributed=True)
    print(f"rank {env.rank} counts {sorted(merged.counts.items())} images {len(merged.records)}", flush=True)
""")


def test_a_signal_on_one_rank_interrupts_every_rank(eval_case, eval_case_module, tmp_path):
    label = _clean_label(eval_case, tmp_path)
    cfg, model, post = _setup(eval_case, eval_case_module, label=label)
    expected = merge_shards(evaluate_shard(model, build_dataloader(cfg, "Eval"), post, DetMetric())).counts
    script, logs = tmp_path / "two_ranks.py", tmp_path / "logs"
    script.write_text(TWO_RANKS)
    overrides = eval_case.overrides(f"Eval.dataset.label_file_list=[{label}]")
    args = [str(eval_case_module.CONFIG), str(eval_case.checkpoint), repr(eval_case.thresh),
            repr(eval_case.box_thresh), *overrides]
    proc = subprocess.run([sys.executable, "-m", "paddle.distributed.launch", "--log_dir", str(logs),
                           "--nproc_per_node", "2", str(script), *args],
                          cwd=ROOT, capture_output=True, text=True, timeout=240)
    worker = [(logs / f"workerlog.{r}").read_text(errors="replace") for r in (0, 1)]
    assert proc.returncode == 0, worker[0][-3000:] + worker[1][-3000:]
    for gather in (False, True):
        # rank 0 evaluated its whole shard (3 of the 6 images), rank 1 stopped before its first batch
        assert f"rank 0 interrupted after 3 batches (gather_records={gather})" in worker[0], worker[0][-3000:]
        assert f"rank 1 interrupted after 0 batches (gather_records={gather})" in worker[1], worker[1][-3000:]
    assert "not interrupted" not in worker[0] + worker[1]
    for r in (0, 1):
        assert f"rank {r} counts {sorted(expected.items())} images 6" in worker[r], worker[r][-3000:]


def test_image_that_fails_to_load_is_scored_without_detections(eval_case, eval_case_module):
    cfg, model, post = _setup(eval_case, eval_case_module, "Global.bad_sample_policy=skip")
    shard = evaluate_shard(model, build_dataloader(with_report_keys(cfg), "Eval", policy="skip"), post, DetMetric())
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
    shard = evaluate_shard(model, build_dataloader(with_report_keys(cfg), "Eval"), post, DetMetric(protocol=protocol))
    (rec,) = shard.records
    assert rec.result.gt_care == care
    assert rec.gt_dont_care == [protocol == "paddleocr", False, True]


def test_unreadable_label_is_reported_not_scored(eval_case, eval_case_module, tmp_path):
    good = eval_case.label_file.read_text(encoding="utf-8").splitlines()[0]
    path = tmp_path / "bad_label.txt"
    path.write_text(f"{good}\nch4_test_images/img_2.jpg\t[{{\"points\": oops}}]\n", encoding="utf-8")
    cfg, model, post = _setup(eval_case, eval_case_module, "Global.bad_sample_policy=skip", label=path)
    shard = evaluate_shard(model, build_dataloader(with_report_keys(cfg), "Eval", policy="skip"), post, DetMetric())
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
    shard = evaluate_shard(model, build_dataloader(with_report_keys(cfg), "Eval"), post, DetMetric())
    shard.metric.records = shard.metric.records * 2
    with pytest.raises(RuntimeError, match="more than one rank"):
        merge_shards(shard)
