"""Fault accounting (:mod:`dbnetpp.engine.guard`) without training: step outcomes fed to a
:class:`Faults`, counts, log lines, ``metrics.jsonl`` events, and when it raises."""
from __future__ import annotations

import json

import pytest

from dbnetpp.engine.amp import AmpOverflow
from dbnetpp.engine.guard import Faults, NonFiniteLossError, StepKind, StepOutcome, non_finite_input
from dbnetpp.engine.logger import MetricsWriter
from dbnetpp.errors import DataError

NAN, INF = float("nan"), float("inf")


class Log:
    def __init__(self):
        self.lines = []

    def warning(self, msg):
        self.lines.append(("warning", msg))

    def error(self, msg):
        self.lines.append(("error", msg))

    def text(self, level="warning"):
        return [m for lvl, m in self.lines if lvl == level]


@pytest.fixture
def run(tmp_path):
    """``(faults, log, events)``: a Faults with max_bad_steps=3 writing to tmp_path."""
    log = Log()
    metrics = MetricsWriter(str(tmp_path / "metrics.jsonl"))
    faults = Faults(3, log, metrics, save_dir=str(tmp_path))

    def events(kind=None):
        metrics.close()
        records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
        return [r for r in records if kind is None or r["event"] == kind]

    return faults, log, events


UPDATED = StepOutcome(StepKind.UPDATED, {"loss": 1.0})


def bad_loss(local=True):
    return StepOutcome(StepKind.NON_FINITE_LOSS, {"loss": NAN, "loss_shrink_maps": 0.5}, local=local)


def test_outcome_kinds():
    assert UPDATED.updated and not UPDATED.bad
    assert bad_loss().bad and StepOutcome(StepKind.NON_FINITE_GRADIENT, grad_norm=INF).bad
    assert not StepOutcome(StepKind.EMPTY_BATCH).bad and not StepOutcome(StepKind.AMP_OVERFLOW).bad
    with pytest.raises(Exception):  # frozen
        UPDATED.kind = StepKind.EMPTY_BATCH
    assert StepOutcome.after_amp(None).kind is StepKind.UPDATED
    settling = AmpOverflow(scale=1024.0, next_scale=512.0, grad_norm=INF, dynamic=True)
    static = AmpOverflow(scale=1024.0, next_scale=1024.0, grad_norm=NAN, dynamic=False)
    at_one = AmpOverflow(scale=1.0, next_scale=0.5, grad_norm=INF, dynamic=True)
    assert StepOutcome.after_amp(settling).kind is StepKind.AMP_OVERFLOW
    for overflow in (static, at_one):  # the gradients themselves are not finite: a fault
        out = StepOutcome.after_amp(overflow)
        assert out.kind is StepKind.NON_FINITE_GRADIENT and out.overflow is overflow and out.bad
        assert out.grad_norm is overflow.grad_norm


def test_bad_steps_are_counted_reported_and_stop_at_the_limit(run):
    faults, log, events = run
    faults.record(bad_loss(), epoch=1, step=1, samples=["train.txt:4", "train.txt:5"])
    faults.record(UPDATED, epoch=1, step=2)  # resets the streak
    faults.record(bad_loss(local=False), epoch=1, step=3, samples=["train.txt:1"])
    faults.record(StepOutcome(StepKind.NON_FINITE_GRADIENT, {"loss": 0.25}, grad_norm=INF), epoch=1, step=4)
    assert (faults.bad_steps, faults.guard.consecutive) == (3, 2)
    with pytest.raises(NonFiniteLossError, match=r"3 consecutive non-finite losses or gradients \(global steps 3..5\)"):
        faults.record(bad_loss(), epoch=2, step=5)
    assert faults.bad_steps == 4
    warnings = log.text()
    assert warnings[0] == ("non-finite loss at global step 1 (loss: nan, loss_shrink_maps: 0.5); images: "
                           "train.txt:4, train.txt:5: step skipped, no update (1/3 in a row)")
    assert warnings[1] == "global step 3 skipped: another rank had a non-finite loss (1/3 in a row)"
    assert warnings[2].startswith("non-finite gradient at global step 4 (gradient norm: inf; finite loss loss: 0.25)")
    bad = events("bad_step")
    assert [e["global_step"] for e in bad] == [1, 3, 4, 5]
    assert bad[0] == {**bad[0], "epoch": 1, "losses": {"loss": "nan", "loss_shrink_maps": 0.5},
                      "samples": ["train.txt:4", "train.txt:5"]}
    assert "grad_norm" not in bad[0] and bad[2]["grad_norm"] == "inf"


def test_empty_batches_have_their_own_streak_under_the_same_limit(run):
    faults, log, _ = run
    reasons = [f"train.txt:{i}: cannot decode image" for i in range(1, 6)]
    faults.record(StepOutcome(StepKind.EMPTY_BATCH), epoch=1, step=1, reasons=reasons)
    faults.record(bad_loss(), epoch=1, step=2)  # neither streak resets the other
    faults.record(StepOutcome(StepKind.EMPTY_BATCH), epoch=1, step=3, reasons=reasons)
    assert (faults.empty_streak, faults.guard.consecutive, faults.empty_batches) == (2, 1, 2)
    assert log.text()[0] == "global step 1: no loadable sample in the batch of some rank; no update (1/3 in a row)"
    with pytest.raises(DataError) as exc:
        faults.record(StepOutcome(StepKind.EMPTY_BATCH), epoch=1, step=4, reasons=reasons)
    msg = str(exc.value)
    assert "3 consecutive batches without a loadable sample (bad_sample_policy: skip): train.txt:1" in msg
    assert "train.txt:3: cannot decode image" in msg and "train.txt:4" not in msg  # the first three named
    faults.record(UPDATED, epoch=1, step=5)
    assert (faults.empty_streak, faults.guard.consecutive, faults.empty_batches) == (0, 0, 3)


def test_amp_overflows_are_counted_but_not_faults(run):
    faults, log, events = run
    settling = StepOutcome.after_amp(AmpOverflow(scale=65536.0, next_scale=32768.0, grad_norm=INF, dynamic=True))
    for step in (1, 2, 3, 4):  # more than max_bad_steps in a row: no error
        faults.record(settling, epoch=1, step=step)
    faults.record(StepOutcome.after_amp(AmpOverflow(8.0, 8.0, NAN, dynamic=False)), epoch=1, step=5)
    assert (faults.amp_overflows, faults.bad_steps) == (5, 1)
    assert log.text()[0] == ("global step 1: inf/nan gradients at AMP loss scale 65536: update skipped, loss scale "
                             "now 32768 (1 such step(s) so far; expected while a dynamic loss scale settles)")
    skips = events("amp_skip")
    assert [e["total"] for e in skips] == [1, 2, 3, 4]
    assert skips[0] == {**skips[0], "epoch": 1, "global_step": 1, "scale": 65536.0, "next_scale": 32768.0}
    assert events("bad_step")[0]["grad_norm"] == "nan"
    assert faults.summary(amp_enabled=True) == {"skipped_steps": 1, "amp_skipped_steps": 5}
    assert faults.summary(amp_enabled=False) == {"skipped_steps": 1}


def test_skipped_samples_reported_per_epoch(run, tmp_path):
    faults, log, events = run
    reasons = [f"train.txt:{i}: missing image" for i in range(1, 8)]
    faults.batch_loaded(reasons[:3], 1)
    faults.batch_loaded(reasons[3:], 0)
    faults.batch_loaded([], 2)
    faults.end_epoch(1, step=3)
    faults.end_epoch(2, step=6)  # nothing collected since
    assert faults.skipped_samples == 7
    (line,) = log.text()
    shown = "; ".join(reasons[:5])
    assert line == (f"epoch 1: 7 sample(s) skipped (bad_sample_policy: skip): {shown} ...; all of them in "
                    f"{tmp_path / 'skipped_samples.txt'}")
    listed = (tmp_path / "skipped_samples.txt").read_text().splitlines()
    assert listed[0].startswith("# epoch 1, global step 3, ") and listed[0].endswith(": 7 skipped")
    assert listed[1:] == reasons
    first, second = events("epoch")
    assert first == {**first, "epoch": 1, "global_step": 3, "skipped": 7, "loaded": 3, "skipped_samples": reasons}
    assert second == {**second, "epoch": 2, "global_step": 6, "skipped": 0, "loaded": 0}
    assert "skipped_samples" not in second


def test_an_epoch_without_a_loaded_sample_is_a_data_error(run):
    faults, _, events = run
    faults.batch_loaded(["train.txt:1: bad label"], 0)
    faults.end_epoch(1, step=1, check=False)  # a stop within the epoch: reported, no error
    faults.batch_loaded(["train.txt:1: bad label"], 0)
    with pytest.raises(DataError, match=r"no training sample of epoch 2 could be loaded \(1 skipped, "
                                        r"bad_sample_policy: skip\): train.txt:1: bad label"):
        faults.end_epoch(2, step=2)
    assert [e["skipped"] for e in events("epoch")] == [1, 1]


def test_other_ranks_write_no_file(tmp_path):
    log = Log()
    faults = Faults(2, log, MetricsWriter(None), save_dir=str(tmp_path), main=False)
    faults.batch_loaded(["train.txt:2: missing image"], 1)
    faults.end_epoch(1, step=1)
    assert log.text() == ["epoch 1: 1 sample(s) skipped (bad_sample_policy: skip): train.txt:2: missing image"]
    assert not (tmp_path / "skipped_samples.txt").exists()
    faults.record(bad_loss(), epoch=1, step=2)
    faults.finish(amp_loss_scale=None)  # the closing line is rank 0's
    assert len(log.text()) == 2


def test_stop_events_and_closing_line(run):
    faults, log, events = run
    faults.finish(amp_loss_scale=1024.0)
    assert log.lines == []  # nothing went wrong: no closing warning
    faults.record(bad_loss(), epoch=1, step=1)
    faults.record(StepOutcome.after_amp(AmpOverflow(4.0, 2.0, INF, dynamic=True)), epoch=1, step=2)
    faults.finish(amp_loss_scale=2.0)
    faults.finish(amp_loss_scale=None)
    assert log.text()[-2:] == [
        "steps without an update: 1 with a non-finite loss or gradient, 1 skipped by the AMP loss scaler "
        "(final loss scale 2)", "steps without an update: 1 with a non-finite loss or gradient"]
    faults.stopped(NonFiniteLossError("5 consecutive non-finite losses"), step=7)
    faults.stopped(DataError("x" * 600), step=8)
    assert log.text("error") == ["5 consecutive non-finite losses"]
    first, second = events("stop")
    assert first == {**first, "reason": "non_finite_loss", "global_step": 7} and "error" not in first
    assert second == {**second, "reason": "data_error", "global_step": 8} and len(second["error"]) == 500


def test_non_finite_input_on_one_process_names_the_batch():
    """Without other ranks the batch is always the one to report (input or gradient overflow alike)."""
    import paddle

    assert non_finite_input({"image": paddle.to_tensor([[NAN]])}, distributed=False)
    assert non_finite_input({"image": paddle.ones([1, 2])}, distributed=False)


def test_max_bad_steps_must_be_positive(tmp_path):
    with pytest.raises(ValueError):
        Faults(0, Log(), MetricsWriter(None))
