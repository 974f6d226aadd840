"""SIGTERM / SIGINT in every phase: during an evaluation inside training and during ``tools/eval.py``
the run ends within a few seconds with a clear message and no traceback; training saves ``latest``
first, and a second signal after the grace period aborts at once."""
from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from dbnetpp.engine.guard import StopFlag

BOUND_SECONDS = 10.0  # a signal is honoured within this time in every phase


def _long_eval_label(clean_data: Path, tmp_path: Path, repeats: int = 300) -> Path:
    """The clean test set ``repeats`` times, each copy a hard link of its own name (an evaluation set names
    each image once): an evaluation of minutes, long enough to signal."""
    lines = (clean_data / "test.txt").read_text().splitlines()
    folder = clean_data / f"long_{tmp_path.name}"
    folder.mkdir(exist_ok=True)
    out = []
    for r in range(repeats):
        for line in lines:
            image, label = line.split("\t", 1)
            copy = folder / f"{r}_{Path(image).name}"
            if not copy.exists():
                os.link(clean_data / image, copy)
            out.append(f"{copy.relative_to(clean_data)}\t{label}")
    path = tmp_path / "long_test.txt"
    path.write_text("\n".join(out) + "\n")
    return path


BIG_EVAL = "Eval.dataset.transforms.2.DetResizeForTest.image_shape=[512,512]"


def _signal_after(rel, cmd, log: Path, needle: str, sig: int, delay: float = 1.5):
    """Start ``cmd``; when ``needle`` shows in its output, wait ``delay`` s, send ``sig`` to the top process.

    Returns ``(exit code, seconds from the signal to the exit, output)``."""
    job = rel.Background(cmd, log)
    try:
        assert rel.wait_for_text(log, needle, timeout=240, proc=job.proc), job.output()[-3000:]
        time.sleep(delay)
        assert job.proc.poll() is None, "the phase to interrupt ended before the signal: " + job.output()[-2000:]
        job.adopt(rel.descendants(job.pid))
        sent = time.monotonic()
        job.proc.send_signal(sig)
        rc = job.wait(timeout=120)
        took = time.monotonic() - sent
        assert job.wait_known_gone(30), "processes of the job outlived it"
        return rc, took, job.output()
    finally:
        job.close()


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_during_training_evaluation_saves_latest_and_exits(rel, clean_data, tmp_path, sig):
    out = tmp_path / "out"
    label = _long_eval_label(clean_data, tmp_path)
    cmd = rel.train_cmd(rel.overrides(clean_data, out, "Global.max_steps=3", "Global.eval_batch_step=[0,2]",
                                      BIG_EVAL, eval_label=label))
    rc, took, output = _signal_after(rel, cmd, tmp_path / "console.txt", "evaluating at global step 2", sig)
    assert rc == 128 + sig, output[-3000:]
    assert took < BOUND_SECONDS, f"{took:.1f} s"
    assert "evaluation at global step 2 stopped by the signal" in output, output[-3000:]
    assert f"training stopped by {signal.Signals(sig).name}; 'latest' was saved" in output, output[-3000:]
    assert "Traceback" not in output, output[-3000:]
    states = rel.check_checkpoint(out / "latest")
    assert states["global_step"] == 2, states
    stops = [e for e in rel.events(out / "metrics.jsonl") if e.get("event") == "stop"]
    assert stops and stops[-1]["reason"] == "signal" and stops[-1]["global_step"] == 2, stops
    assert not [e for e in rel.events(out / "metrics.jsonl") if e.get("event") == "eval"]  # no partial score


@pytest.fixture(scope="module")
def tiny_weights(rel, clean_data, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("signals_weights")
    r = rel.run(rel.train_cmd(rel.overrides(clean_data, out, "Global.max_steps=1", "Global.eval_at_end=false",
                                            "Global.eval_batch_step=[0,1000]")), timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    return out / "latest"


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_during_tools_eval_exits_quickly_without_traceback(rel, clean_data, tiny_weights, tmp_path, sig):
    label = _long_eval_label(clean_data, tmp_path)
    report = tmp_path / "report.json"
    cmd = rel.tool_cmd(rel.EVAL, ["-o", *rel.overrides(clean_data, tmp_path / "o", BIG_EVAL, eval_label=label),
                                  f"Global.checkpoints={tiny_weights}", "--json", str(report), "--no-progress"])
    rc, took, output = _signal_after(rel, cmd, tmp_path / "console.txt", "device:", sig)
    assert rc == 128 + sig, output[-3000:]
    assert took < BOUND_SECONDS, f"{took:.1f} s"
    assert f"evaluation stopped by {signal.Signals(sig).name}; no report written" in output, output[-3000:]
    assert "Traceback" not in output, output[-3000:]
    assert not report.exists()


@pytest.mark.slow
def test_second_signal_after_the_grace_period_aborts_at_once(rel, clean_data, tmp_path):
    """A SIGTERM asks for a graceful stop (finish the step, save 'latest'); a second one more than the grace
    period later aborts at once: exit 143, a one-line message, no traceback, nothing saved.  Steps on
    2048 x 2048 crops take several seconds here, so the second signal arrives during the step."""
    out = tmp_path / "out"
    cmd = rel.train_cmd(rel.overrides(clean_data, out, "Global.epoch_num=1000", "Global.eval_batch_step=[0,1000]",
                                      "Global.print_batch_step=1",
                                      "Train.dataset.transforms.3.EastRandomCropData.size=[2048,2048]"))
    log = tmp_path / "console.txt"
    job = rel.Background(cmd, log)
    try:
        assert rel.wait_for_text(log, "global_step: 1,", timeout=300, proc=job.proc), job.output()[-3000:]
        job.adopt(rel.descendants(job.pid))
        job.proc.send_signal(signal.SIGTERM)
        assert rel.wait_for_text(log, "SIGTERM received: finishing the current step", timeout=30, proc=job.proc)
        time.sleep(StopFlag.GRACE_SECONDS + 0.5)
        assert job.proc.poll() is None and "global_step: 2," not in job.output(), \
            "the step ended within the grace period; use larger crops: " + job.output()[-2000:]
        sent = time.monotonic()
        job.proc.send_signal(signal.SIGTERM)
        rc = job.wait(timeout=120)
        took = time.monotonic() - sent
        assert job.wait_known_gone(30)
    finally:
        job.close()
    output = log.read_text(errors="replace")
    assert rc == 128 + signal.SIGTERM, output[-3000:]
    assert took < BOUND_SECONDS, f"{took:.1f} s"
    assert "second SIGTERM: aborted at once, without saving" in output, output[-3000:]
    assert "Traceback" not in output, output[-3000:]
    assert not (out / "latest.pdparams").exists()
