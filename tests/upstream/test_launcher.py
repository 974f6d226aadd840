"""Upstream's own train / eval / export, started through ``python -m ppocr_patches.run``, on a
tiny synthetic set; checkpoints move between the two engines and both evaluate them alike."""
from __future__ import annotations

import copy
import pickle
import re
import sys

import numpy as np
import paddle
import pytest

KINDS = ("db", "dbpp")


def our_eval(cfg: dict, model) -> dict:
    """dbnetpp's evaluation of ``model`` (that of training and tools/eval.py) with ``cfg``'s Eval data and
    PaddleOCR's metric protocol: precision, recall, hmean and the counts."""
    import dbnetpp.registered  # noqa: F401  (registers every module)
    from dbnetpp.data import build_dataloader
    from dbnetpp.evaluation import evaluate_shard, merge_shards
    from dbnetpp.metrics import DetMetric
    from dbnetpp.registry import POSTPROCESSES

    loader = build_dataloader(cfg, "Eval")
    post = POSTPROCESSES.build(cfg["PostProcess"], where="PostProcess")
    merged = merge_shards(evaluate_shard(model, loader, post, DetMetric(protocol="paddleocr")), gather_records=False)
    return {**merged.metrics, **merged.counts}


def assert_same_metrics(ours: dict, upstream: dict) -> None:
    assert upstream is not None, "upstream logged no precision/recall/hmean"
    for key in ("precision", "recall", "hmean"):
        assert ours[key] == pytest.approx(upstream[key], abs=1e-9), (key, ours, upstream)


def lenient_post(cfg: dict) -> dict:
    """Thresholds that let an untrained model produce boxes, so the metric has something to count."""
    cfg["PostProcess"].update(thresh=0.3, box_thresh=0.3)
    return cfg


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    return tmp_path_factory.mktemp("launcher")


@pytest.mark.parametrize("kind", KINDS)
def test_checkpoint_from_dbnetpp_evaluates_alike_in_upstream(route, synth_data, base_configs, work, kind):
    from dbnetpp.checkpoint import save_checkpoint
    from dbnetpp.modeling import build_model

    cfg = lenient_post(route.small_config(base_configs[kind], synth_data, work / f"unused_{kind}"))
    paddle.seed(11)
    model = build_model(cfg["Architecture"])
    prefix = work / f"ours_{kind}" / "best_accuracy"
    save_checkpoint(str(prefix), model, states={"epoch": 3, "best_model_dict": {"hmean": 0.0}})
    ours = our_eval(cfg, model)

    log = route.script("ppocr_eval.sh", str(route.write_yaml(cfg, work / f"eval_{kind}.yml")),
                       "-o", f"Global.checkpoints={prefix}", cwd=work)
    assert "resume from" in log or "metric in ckpt" in log, log[-2000:]
    assert_same_metrics(ours, route.metrics(log, "metric eval"))
    assert ours["det_care"] > 0 and ours["matched"] > 0, f"the comparison is too weak: {ours}"


@pytest.fixture(scope="module")
def upstream_trained(route, synth_data, base_configs, work):
    """DBNet++ trained by upstream's trainer for 2 epochs x 2 steps (IaaAugment included), with an
    evaluation after the last step.  Returns (config, output folder, log)."""
    out = work / "train_dbpp"
    cfg = lenient_post(route.small_config(base_configs["dbpp"], synth_data, out))
    cfg["Global"].update(epoch_num=2, eval_batch_step=[0, 4])  # 4 images / batch 2: eval after the last step
    log = route.launcher("train", str(route.write_yaml(cfg, work / "train_dbpp.yml")), cwd=work)
    return cfg, out, log


def test_upstream_trains_and_dbnetpp_evaluates_its_checkpoint_alike(route, upstream_trained):
    from dbnetpp.checkpoint import load_checkpoint
    from dbnetpp.modeling import build_model

    cfg, out, log = upstream_trained
    losses = [float(v) for v in re.findall(r"global_step: \d+, lr: [0-9.]+, loss: ([0-9.]+)", log)]
    assert len(losses) == 4 and all(np.isfinite(losses)), log[-3000:]
    # release/2.5 writes .states for best_accuracy only
    for name in ("latest.pdparams", "latest.pdopt", "best_accuracy.pdparams", "best_accuracy.states"):
        assert (out / name).is_file(), name
    with open(out / "best_accuracy.states", "rb") as f:
        assert pickle.load(f)["epoch"] == 2

    model = build_model(cfg["Architecture"])
    load_checkpoint(str(out / "latest"), model, log=lambda msg: None)
    ours = our_eval(cfg, model)
    assert_same_metrics(ours, route.metrics(log, "cur metric"))
    assert ours["det_care"] > 0, ours


def test_upstream_resumes_from_a_dbnetpp_checkpoint(route, upstream_trained, work):
    """dbnetpp re-saves upstream's weights with its own optimizer and counters; upstream's trainer
    resumes from that (``Global.checkpoints``) at the next epoch."""
    from dbnetpp.checkpoint import load_checkpoint, save_checkpoint
    from dbnetpp.engine import build_optimizer
    from dbnetpp.modeling import build_model

    cfg, out, _ = upstream_trained
    model = build_model(cfg["Architecture"])
    optimizer, _ = build_optimizer(cfg["Optimizer"], model, steps_per_epoch=2, epochs=2)
    load_checkpoint(str(out / "latest"), model, log=lambda msg: None)
    prefix = work / "ours_resume" / "latest"
    save_checkpoint(str(prefix), model, optimizer, states={"epoch": 2, "best_model_dict": {"hmean": 0.0}})
    resumed = copy.deepcopy(cfg)
    resumed["Global"].update(epoch_num=3, checkpoints=str(prefix), save_model_dir=str(work / "train_resumed"))
    log = route.launcher("train", str(route.write_yaml(resumed, work / "resume.yml")), cwd=work)
    assert f"resume from {prefix}" in log
    assert "epoch: [3/3]" in log and "epoch: [1/3]" not in log, log[-3000:]


def test_dbnetpp_resumes_upstream_optimizer_state(upstream_trained):
    """Upstream's ``.pdopt`` (with the overlay's parameter-name table) restores dbnetpp's Adam state:
    Paddle refuses the first step if any moment is missing under this process's names."""
    from dbnetpp.checkpoint import load_checkpoint
    from dbnetpp.engine import build_optimizer
    from dbnetpp.modeling import build_model

    cfg, out, _ = upstream_trained
    saved = paddle.load(str(out / "latest.pdopt"))
    assert "dbnetpp_parameter_names@@" in saved
    model = build_model(cfg["Architecture"])
    optimizer, _ = build_optimizer(cfg["Optimizer"], model, steps_per_epoch=2, epochs=2)
    messages = []
    load_checkpoint(str(out / "latest"), model, optimizer, log=messages.append)
    assert not [m for m in messages if "WARNING" in m or "not restored" in m], messages
    model.train()
    model(paddle.rand([1, 3, 64, 64]))["maps"].mean().backward()
    optimizer.step()
    names = {k: v.name for k, v in model.state_dict().items()}
    table = saved["dbnetpp_parameter_names@@"]
    key = "backbone.conv.conv.weight"
    restored = optimizer.state_dict()[f"{names[key]}_moment2_0"].numpy()
    upstream = saved[f"{table[key]}_moment2_0"].numpy()
    # one more step: m2 = beta2 * m2_restored + (1 - beta2) * g^2 >= beta2 * m2_restored everywhere
    assert upstream.max() > 0
    assert np.all(restored >= 0.999 * upstream * (1 - 1e-5)), "Adam moments were not restored"


def test_export_through_launcher(route, synth_data, base_configs, work):
    from dbnetpp.checkpoint import save_checkpoint
    from dbnetpp.modeling import build_model

    cfg = route.small_config(base_configs["dbpp"], synth_data, work / "unused_export")
    paddle.seed(5)
    model = build_model(cfg["Architecture"])
    prefix = work / "export_src" / "model"
    save_checkpoint(str(prefix), model)
    inference = work / "inference_dbpp"
    route.script("ppocr_export.sh", "-c", str(route.write_yaml(cfg, work / "export.yml")),
                 "-o", f"Global.pretrained_model={prefix}", f"Global.save_inference_dir={inference}", cwd=work)
    assert (inference / "inference.pdiparams").is_file()
    assert (inference / "inference.pdmodel").is_file() or (inference / "inference.json").is_file()

    # the exported graph computes what the dygraph model computes
    loaded = paddle.jit.load(str(inference / "inference"))
    x = paddle.to_tensor(np.random.default_rng(0).standard_normal((1, 3, 96, 128)).astype("float32"))
    model.eval()
    with paddle.no_grad():
        expected = model(x)["maps"].numpy()
        got = loaded(x)
    got = got["maps"] if isinstance(got, dict) else (got[0] if isinstance(got, (list, tuple)) else got)
    np.testing.assert_allclose(got.numpy(), expected, rtol=0, atol=1e-5)


def test_two_process_training_through_paddle_distributed_launch(route, synth_data, base_configs, work):
    """``python -m paddle.distributed.launch ... ppocr_patches/run.py train`` (gloo on CPU), as
    upstream's ``tools/train.py`` is launched."""
    out = work / "train_dist"
    cfg = route.small_config(base_configs["db"], synth_data, out)
    logs = work / "dist_logs"
    route.run([sys.executable, "-m", "paddle.distributed.launch", "--nproc_per_node", "2", "--log_dir", str(logs),
               str(route.root / "ppocr_patches" / "run.py"), "train", "-c",
               str(route.write_yaml(cfg, work / "dist.yml"))], cwd=work)
    log0, log1 = ((logs / f"workerlog.{r}").read_text(encoding="utf-8", errors="replace") for r in (0, 1))
    assert "distributed : True" in log0, log0[-2000:]
    assert "train dataloader has 1 iters" in log0  # 4 images / 2 processes / batch 2
    assert "global_step: 1" in log0
    assert "Traceback" not in log1  # upstream's logger is silent on other ranks
    assert (out / "latest.pdparams").is_file()
