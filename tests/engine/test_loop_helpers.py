"""Helpers the trainer's loop uses, without training: the resume position from ``.states``,
checkpoint names, the ``train`` log line and its costs, and the stop-tolerant batch iterator."""
from __future__ import annotations

import types

import pytest

import dbnetpp.engine.logger as logger
from dbnetpp.engine.guard import StopFlag, batches_until_stop
from dbnetpp.engine.logger import StepTimes, format_metrics, train_line
from dbnetpp.engine.state import BEST, LATEST, epoch_checkpoint, resume_state


def test_checkpoint_names():
    assert (LATEST, BEST, epoch_checkpoint(3)) == ("latest", "best_accuracy", "iter_epoch_3")


def test_resume_state_positions():
    warnings = []
    states = {"epoch": 1, "global_step": 7, "iter_in_epoch": 3, "steps_per_epoch": 4, "world_size": 1,
              "best_model_dict": {"hmean": 0.5, "best_epoch": 1, "start_epoch": 2}}
    st = resume_state(states, 4, 1, "hmean", warn=warnings.append)
    assert (st.epoch, st.iter_in_epoch, st.global_step) == (1, 3, 7) and not warnings
    assert st.best == {"hmean": 0.5, "best_epoch": 1}  # PaddleOCR's load-time keys dropped

    st = resume_state(states, 5, 1, "recall", warn=warnings.append)  # another set-up: that epoch's start
    assert (st.epoch, st.iter_in_epoch) == (1, 0) and st.best["recall"] == 0.0
    assert warnings == ["checkpoint was written with 4 iterations/epoch on 1 rank(s), now 5 on 1: resuming at "
                        "the start of epoch 2 instead of iteration 3"]

    st = resume_state({**states, "iter_in_epoch": 4}, 4, 1, "hmean")  # the epoch was complete
    assert (st.epoch, st.iter_in_epoch) == (2, 0)
    st = resume_state({"epoch": 3}, 10, 1, "hmean")  # an older PaddleOCR checkpoint: no global_step
    assert (st.epoch, st.global_step) == (3, 30)


def test_step_times_and_train_line(monkeypatch):
    clock = iter([100.0, 100.0, 100.5, 102.0, 102.0, 102.25, 103.0])
    monkeypatch.setattr(logger, "time", types.SimpleNamespace(time=lambda: next(clock)))
    times = StepTimes(recent=50)  # 100.0
    times.start()  # 100.0
    times.loaded()  # reader 0.5
    times.stepped(2)  # batch 2.0
    times.start()  # 102.0
    times.loaded()  # reader 0.25
    times.stepped(2)  # batch 1.0
    cost = times.report(4.0, remaining_steps=10)
    assert cost == {"reader_cost": 0.375, "batch_cost": 1.5, "ips": 4.0 / 3.0, "avg_samples": 2.0, "eta_sec": 15}
    assert (times.reader, times.batch, times.samples, times.iters) == (0.0, 0.0, 0, 0) and len(times.recent) == 2
    line = train_line(2, 5, 8, 0.001, "loss: 1.500000", cost)
    assert line == ("epoch: [2/5], global_step: 8, lr: 0.001, loss: 1.500000, avg_reader_cost: 0.37500 s, "
                    "avg_batch_cost: 1.50000 s, avg_samples: 2, ips: 1.33333 samples/s, eta: 0:00:15")
    assert train_line(1, 1, 1, 0.1, "", cost).startswith("epoch: [1/1], global_step: 1, lr: 0.1, avg_reader_cost")
    assert format_metrics({"precision": 0.123456789, "images": 4}) == "precision: 0.123457, images: 4"


def test_batches_until_stop():
    def failing():
        yield {"a": 1}
        raise RuntimeError("DataLoader worker (pid 12) is killed by signal: Terminated.\nmore")

    stop, warnings = StopFlag(), []
    with pytest.raises(RuntimeError):  # no stop requested: the error is real
        list(batches_until_stop(failing(), stop, warnings.append))
    stop.signum = 15
    assert list(batches_until_stop(failing(), stop, warnings.append)) == [{"a": 1}]
    assert warnings == ["data loading stopped after the signal (RuntimeError: DataLoader worker (pid 12) is killed "
                        "by signal: Terminated.); saving the last completed step"]
