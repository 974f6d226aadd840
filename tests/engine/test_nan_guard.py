"""Non-finite loss guard: a poisoned sample makes its step skipped (reported, no update); too many
consecutive bad steps stop training with a clear error and the weights untouched."""
import numpy as np
import pytest

from dbnetpp.config import load_config
from dbnetpp.dist import unwrap
from dbnetpp.engine.guard import NonFiniteLossError
from dbnetpp.engine.trainer import Trainer


class PoisonNaN:
    """Wraps the Train transforms: a NaN in the threshold-map target of the listed files ("*": all)."""

    def __init__(self, transforms, names):
        self.transforms, self.names = transforms, tuple(names)

    def __call__(self, data):
        path = str(data["img_path"])
        out = self.transforms(data)
        if "*" in self.names or any(path.endswith(n) for n in self.names):
            out["threshold_map"] = out["threshold_map"].copy()
            out["threshold_map"][0, 0] = np.nan
        return out


def _trainer(cli, data, out, poison, *extra):
    cfg = load_config(str(cli.config), cli.overrides(data, out, "Global.epoch_num=1", "Global.eval_at_end=false",
                                                   "Global.eval_batch_step=[100,100]", *extra))
    trainer = Trainer(cfg)
    dataset = trainer.train_loader.dataset  # num_workers is 0: samples are made in this process
    dataset.transforms = PoisonNaN(dataset.transforms, poison)
    return trainer


def _state(trainer):
    return {k: v.numpy().copy() for k, v in unwrap(trainer.model).state_dict().items()}


def test_poisoned_sample_is_skipped_and_reported(cli, engine_data, tmp_path):
    out = tmp_path / "out"
    trainer = _trainer(cli, engine_data, out, ["train_3.png"])
    summary = trainer.train()
    assert summary["steps"] == 4  # 8 images, batch 2: the bad step still counts
    events = cli.events(out / "metrics.jsonl")
    bad = [e for e in events if e["event"] == "bad_step"]
    assert len(bad) == 1
    # the batch's samples are named by label file and line (train_3.png is line 4)
    assert any(s.endswith("train.txt:4") for s in bad[0]["samples"]), bad[0]
    assert bad[0]["losses"]["loss"] == "nan"
    log = (out / "train.log").read_text()
    assert f"non-finite loss at global step {bad[0]['global_step']}" in log and "step skipped, no update" in log
    # the other steps trained normally and the weights stayed finite
    trains = [e for e in events if e["event"] == "train"]
    assert len(trains) == 4 and all(np.isfinite(e["loss"]) for e in trains if "loss" in e)
    assert sum("loss" in e for e in trains) >= 3
    assert all(np.isfinite(v).all() for v in _state(trainer).values())


def test_consecutive_bad_steps_stop_with_weights_and_bn_stats_untouched(cli, engine_data, tmp_path):
    out = tmp_path / "out"
    trainer = _trainer(cli, engine_data, out, ["*"], "Global.max_bad_steps=3")
    before = _state(trainer)
    with pytest.raises(NonFiniteLossError) as exc:
        trainer.train()
    msg = str(exc.value)
    assert "3 consecutive non-finite losses (global steps 1..3)" in msg and "max_bad_steps" in msg
    after = _state(trainer)
    assert any("_mean" in k or "_variance" in k for k in after)  # BatchNorm statistics are included
    for k in before:
        np.testing.assert_array_equal(before[k], after[k], err_msg=k)
    events = cli.events(out / "metrics.jsonl")
    assert [e["global_step"] for e in events if e["event"] == "bad_step"] == [1, 2, 3]
    assert events[-1]["event"] == "stop" and events[-1]["reason"] == "non_finite_loss"
    assert not (out / "latest.pdparams").exists()
