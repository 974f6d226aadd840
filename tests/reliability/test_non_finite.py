"""Nothing non-finite reaches the weights, and nothing non-finite is a silent zero: an update that
leaves NaN / infinity in the parameters stops training at once (nothing saved from them); weights
holding NaN are refused by every tool that loads them; a NaN threshold on infer_det's command line
is refused.  (NaN / infinity in a config are ``CONFIG_CASES`` ``*_infinite`` / ``*_nan`` rows.)"""
from __future__ import annotations

import sys

import numpy as np
import paddle
import pytest

from dbnetpp.checkpoint import load_pretrained
from dbnetpp.config import load_config
from dbnetpp.errors import CheckpointError
from dbnetpp.modeling.detector import build_model


def _nan_weights(rel, path, names=2):
    """A full-model ``.pdparams`` of the tiny config's model with NaN in the first ``names`` float tensors."""
    model = build_model(load_config(str(rel.CONFIG))["Architecture"])
    state = {k: v.numpy() for k, v in model.state_dict().items()}
    poisoned = [k for k, v in state.items() if v.dtype == np.float32][:names]
    for k in poisoned:
        state[k] = state[k].copy()
        state[k].flat[0] = np.nan if k == poisoned[0] else np.inf
    paddle.save({k: paddle.to_tensor(v) for k, v in state.items()}, str(path) + ".pdparams")
    return model, poisoned


def test_loading_weights_with_nan_names_the_tensors(rel, tmp_path):
    model, poisoned = _nan_weights(rel, tmp_path / "broken")
    before = {k: v.numpy().copy() for k, v in model.state_dict().items()}
    with pytest.raises(CheckpointError, match=r"broken\.pdparams: 2 tensor\(s\) hold NaN or infinity") as err:
        load_pretrained(model, str(tmp_path / "broken"), log=lambda msg: None)
    assert all(k in str(err.value) for k in poisoned) and "1 of" in str(err.value)
    after = model.state_dict()
    assert all(np.array_equal(before[k], after[k].numpy()) for k in before)  # nothing half-loaded


@pytest.mark.slow
def test_tools_refuse_weights_with_nan(rel, clean_data, tmp_path):
    """tools/train.py (pretrained_model), tools/eval.py (checkpoints), tools/export_model.py: exit non-zero
    naming the file and the tensors; nothing trained, scored or exported."""
    _, poisoned = _nan_weights(rel, tmp_path / "broken")
    broken, out = tmp_path / "broken", tmp_path / "out"
    cmds = [rel.train_cmd(rel.overrides(clean_data, out, f"Global.pretrained_model={broken}", "Global.max_steps=1")),
            [sys.executable, "tools/eval.py", "-c", str(rel.CONFIG), "-o", *rel.overrides(clean_data, out),
             f"Global.pretrained_model={broken}"],
            [sys.executable, "tools/export_model.py", "-c", str(rel.CONFIG), "-o", f"Global.pretrained_model={broken}",
             f"Global.save_inference_dir={tmp_path / 'inference'}"]]
    for cmd in cmds:
        r = rel.run(cmd, timeout=180)
        assert r.returncode != 0, (cmd, r.stdout[-1500:])
        assert f"{broken}.pdparams: 2 tensor(s) hold NaN or infinity" in r.stderr, (cmd, r.stderr[-2000:])
        assert poisoned[0] in r.stderr and '"hmean"' not in r.stdout
    assert not (out / "latest.pdparams").exists() and not (tmp_path / "inference" / "inference.pdiparams").exists()


@pytest.mark.slow
def test_an_update_to_infinity_stops_training_at_once(rel, clean_data, tmp_path):
    """learning_rate 1e308 is finite in the config but infinite in float32: the first update makes the
    weights non-finite; training stops there (exit 1, the step, the parameters and the rate named), no
    checkpoint is written from those weights and metrics.jsonl says why."""
    out = tmp_path / "out"
    r = rel.run(rel.train_cmd(rel.overrides(clean_data, out, "Optimizer.lr.learning_rate=1e308",
                                            "Optimizer.lr.warmup_epoch=0", "Global.epoch_num=2")), timeout=240)
    assert r.returncode == 1, (r.stdout[-2000:], r.stderr[-2000:])
    assert "global step 1: the update left" in r.stderr and "NaN or infinity" in r.stderr, r.stderr[-2000:]
    assert "learning rate" in r.stderr and "Lower Optimizer.lr.learning_rate" in r.stderr
    assert not list(out.glob("*.pdparams")), sorted(p.name for p in out.iterdir())
    stops = [e for e in rel.events(out / "metrics.jsonl") if e["event"] == "stop"]
    assert stops and stops[-1]["reason"] == "non_finite_weights" and stops[-1]["global_step"] == 0, stops


@pytest.mark.parametrize("flag,value", [("--box_thresh", "nan"), ("--thresh", "inf"), ("--box_thresh", "1.5"),
                                        ("--unclip_ratio", "nan"), ("--unclip_ratio", "-1")])
def test_infer_det_refuses_non_finite_thresholds(rel, tmp_path, flag, value):
    r = rel.run([sys.executable, "tools/infer_det.py", "--model_dir", str(tmp_path), "--image", str(tmp_path),
                 "--out", str(tmp_path / "out"), flag, value], timeout=60)
    assert r.returncode == 2, r.stderr[-1500:]
    assert f"argument {flag}" in r.stderr and repr(value) in r.stderr
    assert not (tmp_path / "out").exists()
