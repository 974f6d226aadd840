"""Non-finite losses from poisoned inputs, through the real ``tools/train.py`` (one process and a
2-process gloo job): a NaN step is skipped and reported, persistent NaNs stop training with the
guard's message (``Global.max_bad_steps``), on every rank at the same step (no hang).

The poison is a test transform (``PoisonNaN``) registered by a small runner script that then runs
``tools/train.py``; it writes NaN into the threshold-map target or into the normalised input image
of the chosen samples."""
from __future__ import annotations

import time

import pytest

_RUNNER = r'''
import os
import runpy
import sys

import cv2  # noqa: F401  (before paddle, as tools/train.py does)
import numpy as np

from dbnetpp.registry import TRANSFORMS


class PoisonNaN:
    """NaN in the first pixel of ``key`` of the listed files ("*": all) on the listed ranks."""

    def __init__(self, names=("*",), ranks=(), key="threshold_map"):
        self.names, self.ranks, self.key = tuple(names), tuple(ranks), key

    def __call__(self, data):
        rank = int(os.environ.get("PADDLE_TRAINER_ID", "0"))
        if self.ranks and rank not in self.ranks:
            return data
        if "*" in self.names or any(str(data["img_path"]).endswith(n) for n in self.names):
            value = np.array(data[self.key], dtype=np.float32, copy=True)
            value[..., 0, 0] = np.nan
            data[self.key] = value
        return data


TRANSFORMS.register()(PoisonNaN)
train_py = sys.argv.pop(1)
sys.argv[0] = train_py
runpy.run_path(train_py, run_name="__main__")
'''


def _poisoned(rel, tmp_path, names, ranks=(), key="threshold_map"):
    """A runner script and a copy of the tiny config with PoisonNaN before the Train KeepKeys."""
    runner = tmp_path / "poison_runner.py"
    runner.write_text(_RUNNER, encoding="utf-8")
    text = rel.CONFIG.read_text(encoding="utf-8")
    anchor = "      - KeepKeys:\n          keep_keys: ['image', 'threshold_map'"
    assert anchor in text
    poison = (f"      - PoisonNaN:\n          names: {list(names)}\n          ranks: {list(ranks)}\n"
              f"          key: {key}\n")
    config = tmp_path / "poisoned.yml"
    config.write_text(text.replace(anchor, poison + anchor, 1), encoding="utf-8")
    return runner, config


def _cmd(rel, runner, config, opts, nproc=1, log_dir=None):
    cmd = rel.train_cmd(opts, nproc=nproc, log_dir=log_dir, config=config)
    i = cmd.index(str(rel.TRAIN))
    return cmd[:i] + [str(runner)] + cmd[i:]


def _check_one_bad_sample_per_epoch(rel, r, out):
    import numpy as np

    assert r.returncode == 0, r.stderr[-3000:]
    events = rel.events(out / "metrics.jsonl")
    bad = [e for e in events if e["event"] == "bad_step"]
    assert len(bad) == 2, bad  # the poisoned image is in one batch per epoch
    for e in bad:
        assert any(s.endswith("train.txt:4") for s in e["samples"]), e  # train_3.png is line 4
    log = (out / "train.log").read_text()
    assert log.count("step skipped, no update") == 2
    assert rel.last_json(r.stdout)["steps"] == 8
    rel.check_all_checkpoints(out)
    params = rel.params_of(out / "latest")
    broken = [k for k, v in params.items() if not np.isfinite(v).all()]
    assert not broken, f"{len(broken)} saved tensors hold NaN/inf, e.g. {broken[:4]}"


@pytest.mark.smoke
def test_nan_sample_is_skipped_and_reported(rel, clean_data, tmp_path):
    runner, config = _poisoned(rel, tmp_path, ["train_3.png"])
    out = tmp_path / "out"
    r = rel.run(_cmd(rel, runner, config, rel.overrides(clean_data, out, "Global.epoch_num=2")), timeout=240)
    _check_one_bad_sample_per_epoch(rel, r, out)
    assert all(e["losses"]["loss"] == "nan" for e in rel.events(out / "metrics.jsonl") if e["event"] == "bad_step")


def test_nan_input_image_is_caught(rel, clean_data, tmp_path):
    runner, config = _poisoned(rel, tmp_path, ["train_3.png"], key="image")
    out = tmp_path / "out"
    r = rel.run(_cmd(rel, runner, config, rel.overrides(clean_data, out, "Global.epoch_num=2")), timeout=240)
    _check_one_bad_sample_per_epoch(rel, r, out)


def test_persistent_nan_stops_training(rel, clean_data, tmp_path):
    runner, config = _poisoned(rel, tmp_path, ["*"])
    out = tmp_path / "out"
    r = rel.run(_cmd(rel, runner, config, rel.overrides(clean_data, out, "Global.max_bad_steps=2")), timeout=240)
    assert r.returncode == 1, r.stderr[-3000:]
    assert "Traceback" not in r.stderr
    assert "2 consecutive non-finite losses (global steps 1..2)" in r.stderr
    events = rel.events(out / "metrics.jsonl")
    assert [e["global_step"] for e in events if e["event"] == "bad_step"] == [1, 2]
    assert events[-1]["event"] == "stop" and events[-1]["reason"] == "non_finite_loss"
    assert not (out / "latest.pdparams").exists()  # nothing trained, nothing saved


@pytest.mark.slow
def test_nan_on_one_rank_stops_all_ranks(rel, clean_data, tmp_path):
    runner, config = _poisoned(rel, tmp_path, ["*"], ranks=[1])
    out, logs = tmp_path / "out", tmp_path / "logs"
    start = time.monotonic()
    r = rel.run(_cmd(rel, runner, config, rel.overrides(clean_data, out, "Global.max_bad_steps=2",
                                                       "Train.loader.batch_size_per_card=1"), nproc=2, log_dir=logs),
                timeout=240)
    took = time.monotonic() - start
    assert r.returncode != 0
    assert took < 120
    rank0, rank1 = (logs / "workerlog.0").read_text(), (logs / "workerlog.1").read_text()
    assert "2 consecutive non-finite losses" in rank0 and "2 consecutive non-finite losses" in rank1
    assert "skipped: another rank had a non-finite loss" in rank0
    assert "non-finite loss at global step 1" in rank1
    events = rel.events(out / "metrics.jsonl")
    assert [e["global_step"] for e in events if e["event"] == "bad_step"] == [1, 2]
