"""Training evaluates with the shard evaluation of ``tools/eval.py`` (counts all-reduced, no records gathered):
its result keys, the ``Metric`` section honoured (protocol passed on, main_indicator picks the best), a
signal during the evaluation ending it without a result."""
from __future__ import annotations

import dbnetpp.evaluation.pipeline as pipeline_module
from dbnetpp.config import load_config
from dbnetpp.engine.guard import StopFlag
from dbnetpp.engine.trainer import Trainer
from dbnetpp.evaluation import evaluate_shard, merge_shards
from dbnetpp.metrics import DetMetric


def test_training_evaluation_is_the_shard_evaluation(cli, engine_data, tmp_path, monkeypatch):
    out = tmp_path / "out"
    cfg = load_config(str(cli.config), cli.overrides(engine_data, out, "Metric.protocol=paddleocr",
                                                     "Metric.main_indicator=recall", "PostProcess.box_thresh=0.1"))
    trainer = Trainer(cfg)
    assert trainer.main_indicator == "recall"
    calls = []

    def spy(*args, **kwargs):
        calls.append((args[3], kwargs))
        return evaluate_shard(*args, **kwargs)

    monkeypatch.setattr(pipeline_module, "evaluate_shard", spy)  # evaluate_in_training runs it
    trainer.model.train()
    cur = trainer._evaluate(1, StopFlag())
    assert trainer.model.training  # mode restored
    (metric, kwargs), = calls
    assert metric is trainer.metric and metric.protocol == "paddleocr" and kwargs["autocast"] == trainer.amp.autocast
    assert list(cur) == ["precision", "recall", "hmean", "gt_care", "det_care", "matched", "images", "fps"]
    assert cur["images"] == 4 and cur["gt_care"] > 0 and cur["fps"] > 0

    reference = merge_shards(evaluate_shard(trainer.model, trainer.eval_loader, trainer.post_process,
                                            DetMetric(protocol="paddleocr")))
    assert {k: cur[k] for k in reference.counts} == reference.counts
    assert {k: cur[k] for k in reference.metrics} == reference.metrics
    assert trainer.state.best["recall"] == cur["recall"] and trainer.state.best["best_epoch"] == 1
    assert (out / "best_accuracy.pdparams").is_file()

    stop = StopFlag()
    stop.signum = 15  # as if SIGTERM arrived: the evaluation ends before its first batch
    assert trainer._evaluate(1, stop) is None
    assert trainer.model.training
    log = (out / "train.log").read_text()
    assert "cur metric, precision: " in log and ", fps: " in log
    assert "evaluation at global step 0 stopped by the signal" in log
    assert "images but the Eval set has" not in log  # every image scored: no warning
