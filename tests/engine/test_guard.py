"""Signal handling of the trainer: one stop request, repeated signals, abort, handlers restored."""
import os
import signal

import pytest

from dbnetpp.engine.guard import AbortRequested, BadStepGuard, NonFiniteLossError, StopFlag


@pytest.fixture
def python_sigint():
    """Python's own SIGINT handler for the test (a process started in the background by a
    non-interactive shell inherits SIGINT ignored, and would then keep ignoring it)."""
    original = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, original)


def test_stop_flag_grace_window_abort_and_restore(monkeypatch, python_sigint):
    before = signal.getsignal(signal.SIGTERM)
    messages = []
    with StopFlag(log=messages.append) as stop:
        assert not stop.requested
    assert signal.getsignal(signal.SIGTERM) is before  # nothing requested: restored at once

    monkeypatch.setattr(StopFlag, "GRACE_SECONDS", 60.0)
    with StopFlag(log=messages.append) as stop:
        os.kill(os.getpid(), signal.SIGTERM)
        assert stop.requested and stop.signum == signal.SIGTERM
        os.kill(os.getpid(), signal.SIGINT)  # e.g. forwarded by a launcher: the same request
        assert stop.signum == signal.SIGTERM and "as well" in messages[-1]
        monkeypatch.setattr(StopFlag, "GRACE_SECONDS", 0.0)
        with pytest.raises(AbortRequested, match="second SIGINT: aborted at once") as aborted:  # later: at once
            os.kill(os.getpid(), signal.SIGINT)
        assert aborted.value.exit_code == 130 and isinstance(aborted.value, KeyboardInterrupt)

    # after a stop, a signal repeated during the shutdown is ignored for the grace period...
    monkeypatch.setattr(StopFlag, "GRACE_SECONDS", 60.0)
    os.kill(os.getpid(), signal.SIGINT)  # the default handler would raise KeyboardInterrupt
    # ...then it goes to the previous handler, which is restored
    monkeypatch.setattr(StopFlag, "GRACE_SECONDS", 0.0)
    with pytest.raises(KeyboardInterrupt):
        os.kill(os.getpid(), signal.SIGINT)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    assert signal.getsignal(signal.SIGTERM) is before


def test_bad_step_guard_counts_consecutive_steps_only():
    log = []
    guard = BadStepGuard(2, log=log.append)
    guard.bad(3, {"loss": float("nan")}, ["a.jpg"])
    guard.good()
    guard.bad(7, {"loss": float("inf")}, [])
    with pytest.raises(NonFiniteLossError, match=r"2 consecutive non-finite losses \(global steps 7..8\)"):
        guard.bad(8, {"loss": float("nan")}, [], local=False)
    assert "images: a.jpg" in log[0] and "another rank" in log[-1] and guard.total == 3
