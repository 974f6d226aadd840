"""Training safeguards: graceful stop on SIGINT / SIGTERM and the non-finite-loss guard.

Stop: the first SIGINT or SIGTERM only sets a flag; the trainer finishes the
step in progress, saves ``latest`` and exits with 128 + signal number
(130 for SIGINT, 143 for SIGTERM).  A repeated signal within 3 s is the same
request (``paddle.distributed.launch`` forwards a Ctrl-C / SIGTERM as up to
three SIGTERMs to each worker's process group, data-loader workers included),
also while the process shuts down; a signal more than 3 s later aborts at once.
Data-loader workers killed by the same signal are tolerated after the request.

Non-finite loss: a step whose loss is NaN/inf (on any rank) is skipped on all
ranks: no backward, no optimizer update, BatchNorm running statistics restored;
the step still counts and the learning-rate schedule still advances.  A finite
loss with a non-finite global gradient norm (e.g. a NaN input pixel that the
activations clamp in the forward pass but not in the backward pass) is skipped
the same way after the backward pass, before the update.  A bad step is
reported with its samples (``img_path`` when the batch carries it, otherwise
``label_file:line``), and after ``max_bad_steps`` consecutive bad steps
training stops with :class:`NonFiniteLossError`.  :class:`~dbnetpp.engine.faults.Faults`
keeps this guard with the run's other fault counts.
"""
from __future__ import annotations

import contextlib
import os
import signal
import time
from typing import Any, Callable, Iterable, Iterator, List, Mapping, Optional, Sequence

from ..errors import DBNetError


class NonFiniteLossError(DBNetError, RuntimeError):
    """Too many consecutive steps had a NaN or infinite loss (or gradient)."""


class TrainingInterrupted(DBNetError, RuntimeError):
    """Raised after a graceful stop on a signal; ``exit_code`` is 128 + signum."""

    def __init__(self, signum: int):
        self.signum = signum
        self.exit_code = 128 + signum
        super().__init__(f"training stopped by {signal.Signals(signum).name}")


class AbortRequested(KeyboardInterrupt):
    """Stop at once on a signal, nothing saved (a second SIGINT / SIGTERM during training, or any in
    :func:`abort_on_signals`); ``exit_code`` is 128 + signum.  A ``KeyboardInterrupt``, so that no
    ``except Exception`` on the way swallows it."""

    def __init__(self, signum: int, message: str = ""):
        self.signum = signum
        self.exit_code = 128 + signum
        super().__init__(message or f"second {signal.Signals(signum).name}: aborted at once, without saving")


@contextlib.contextmanager
def abort_on_signals(what: str):
    """SIGINT and SIGTERM raise :class:`AbortRequested` in this process (forked data-loader workers
    ignore the inherited handler; the main process shuts them down), for tools without a partial
    result worth saving, e.g. ``tools/eval.py``."""
    pid = os.getpid()

    def handle(signum, frame):
        if os.getpid() == pid:
            raise AbortRequested(signum, f"{what} stopped by {signal.Signals(signum).name}")

    previous = {}
    for s in StopFlag.SIGNALS:
        try:
            previous[s] = signal.signal(s, handle)
        except ValueError:  # not the main thread
            pass
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler if handler is not None else signal.SIG_DFL)


class StopFlag:
    """Catches SIGINT / SIGTERM while active (``with StopFlag() as stop: ... stop.requested``)."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)
    GRACE_SECONDS = 3.0  # a repeated signal within this time is the same request

    def __init__(self, log: Callable[[str], None] = print):
        self.signum: Optional[int] = None
        self._first_at = 0.0
        self._pid = os.getpid()
        self._log = log
        self._previous = {}

    @property
    def requested(self) -> bool:
        return self.signum is not None

    def _handle(self, signum, frame):
        if os.getpid() != self._pid:
            return  # a forked data-loader worker inherited this handler: the main process handles the stop
        now = time.monotonic()
        if self.signum is not None:
            if now - self._first_at < self.GRACE_SECONDS:
                # e.g. paddle.distributed.launch repeats the SIGTERM it forwards
                self._log(f"{signal.Signals(signum).name} received as well: still stopping after this step")
                return
            signal.signal(signum, signal.SIG_DFL)
            raise AbortRequested(signum)
        self.signum = signum
        self._first_at = now
        # Data-loader workers in our process group may die from the same signal; paddle's SIGCHLD handler
        # would then raise in the middle of the step being finished.  Losing the workers is fine now.
        if hasattr(signal, "SIGCHLD") and signal.SIGCHLD not in self._previous:
            self._previous[signal.SIGCHLD] = signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        self._log(f"{signal.Signals(signum).name} received: finishing the current step, then saving 'latest' "
                  f"and exiting (send it again after {self.GRACE_SECONDS:g} s to abort at once)")

    def __enter__(self) -> "StopFlag":
        self._pid = os.getpid()
        for s in self.SIGNALS:
            try:
                self._previous[s] = signal.signal(s, self._handle)
            except ValueError:  # not the main thread: signals cannot be caught here
                pass
        return self

    def __exit__(self, *exc) -> None:
        previous = {s: (h if h is not None else signal.SIG_DFL) for s, h in self._previous.items()}
        self._previous.clear()
        for s, handler in previous.items():
            if self.requested and s in self.SIGNALS:
                # a launcher may repeat the signal while this process finishes: ignore it for the grace
                # period, then hand it to the previous handler
                signal.signal(s, self._late_handler(previous))
            else:
                signal.signal(s, handler)

    def _late_handler(self, previous):
        def handle(signum, frame):
            if time.monotonic() - self._first_at < self.GRACE_SECONDS:
                return
            for s in self.SIGNALS:
                signal.signal(s, previous.get(s, signal.SIG_DFL))
            os.kill(os.getpid(), signum)

        return handle


class BadStepGuard:
    """Counts consecutive non-finite losses and decides when to give up."""

    def __init__(self, max_bad_steps: int = 5, log: Callable[[str], None] = print):
        if max_bad_steps < 1:
            raise ValueError(f"max_bad_steps must be >= 1, got {max_bad_steps}")
        self.max_bad_steps = max_bad_steps
        self.consecutive = 0
        self.total = 0
        self.first_bad_step: Optional[int] = None
        self._gradient_in_streak = False
        self._log = log

    def good(self) -> None:
        self.consecutive = 0
        self.first_bad_step = None
        self._gradient_in_streak = False

    def bad(self, step: int, losses: dict, paths: Sequence[str] = (), local: bool = True,
            grad_norm: Optional[float] = None) -> None:
        """Record a skipped step; raises :class:`NonFiniteLossError` past the limit.

        ``local`` is False on ranks whose own loss (or input) was finite but that skip because
        another rank's was not.  ``grad_norm``: the global gradient norm when the loss was finite
        but the gradients were not.
        """
        self.consecutive += 1
        self.total += 1
        if self.first_bad_step is None:
            self.first_bad_step = step
        what = "loss" if grad_norm is None else "gradient"
        self._gradient_in_streak |= grad_norm is not None
        if local:
            terms = ", ".join(f"{k}: {v}" for k, v in losses.items())
            if grad_norm is not None:
                terms = f"gradient norm: {grad_norm}; finite loss {terms}"
            where = f"; images: {', '.join(map(str, paths))}" if paths else ""
            self._log(f"non-finite {what} at global step {step} ({terms}){where}: step skipped, no update "
                      f"({self.consecutive}/{self.max_bad_steps} in a row)")
        else:
            self._log(f"global step {step} skipped: another rank had a non-finite {what} "
                      f"({self.consecutive}/{self.max_bad_steps} in a row)")
        if self.consecutive >= self.max_bad_steps:
            kind = "losses or gradients" if self._gradient_in_streak else "losses"
            raise NonFiniteLossError(
                f"{self.consecutive} consecutive non-finite {kind} (global steps {self.first_bad_step}..{step}); "
                f"stopping. Lower Optimizer.lr.learning_rate, set Optimizer.clip_norm_global, check the data "
                f"named above, or raise Global.max_bad_steps")


def batches_until_stop(loader: Iterable, stop: StopFlag, warn: Callable[[str], None] = print) -> Iterator:
    """``loader``'s batches; after a stop request a failing loader (its workers got the signal too) just ends."""
    it = iter(loader)
    while True:
        try:
            batch = next(it)
        except StopIteration:
            return
        except (RuntimeError, SystemError) as exc:
            if not stop.requested:
                raise
            warn(f"data loading stopped after the signal ({type(exc).__name__}: "
                 f"{str(exc).splitlines()[0] if str(exc) else ''}); saving the last completed step")
            return
        yield batch


def batch_paths(batch: Mapping[str, Any]) -> List[str]:
    """Image paths carried by a batch (``img_path`` / ``img_paths``), if any."""
    for key in ("img_path", "img_paths", "image_path"):
        value = batch.get(key)
        if value is None:
            continue
        if hasattr(value, "tolist"):
            value = value.tolist()
        if isinstance(value, (list, tuple)):
            return [v.decode() if isinstance(v, bytes) else str(v) for v in value]
        return [str(value)]
    return []
