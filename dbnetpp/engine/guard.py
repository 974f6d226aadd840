"""Training safeguards, in one place: what stops a run, and what a step that made no update does.

**Signals.**  The first SIGINT or SIGTERM only sets a flag (:class:`StopFlag`); the trainer finishes the
step in progress, saves ``latest`` and exits with 128 + signal number (130 for SIGINT, 143 for SIGTERM).
A repeated signal within 3 s is the same request (``paddle.distributed.launch`` forwards a Ctrl-C / SIGTERM
as up to three SIGTERMs to each worker's process group, data-loader workers included), also while the
process shuts down; a signal more than 3 s later aborts at once (:class:`AbortRequested`).  Data-loader
workers killed by the same signal are tolerated after the request.  Tools without a partial result worth
saving abort at once (:func:`abort_on_signals`).

**Bad steps.**  A step whose loss is NaN/inf (on any rank) is skipped on all ranks: no backward, no optimizer
update, BatchNorm running statistics restored; the step still counts and the learning-rate schedule still
advances.  A finite loss with a non-finite global gradient norm (e.g. a NaN input pixel that the activations
clamp in the forward pass but not in the backward pass) is skipped the same way after the backward pass,
before the update.  A bad step is reported with its samples (``img_path`` when the batch carries it,
otherwise ``label_file:line``), and after ``max_bad_steps`` consecutive bad steps training stops with
:class:`NonFiniteLossError` (:class:`BadStepGuard`).  After every update the parameters are checked too
(:func:`non_finite_parameters`): one NaN / infinity stops training at once with
:class:`NonFiniteWeightsError` (``latest`` keeps the last finite weights).

**Fault accounting.**  One :class:`StepOutcome` per training step says how the step ended
(:class:`StepKind`); the trainer hands it to :meth:`Faults.record`, which keeps every count and message:

- a non-finite loss or gradient (a "bad step"): ``bad_step`` event and a warning naming the batch's samples;
- a batch left without any loadable sample (``bad_sample_policy: skip``, on some rank): a warning;
  ``Global.max_bad_steps`` such batches in a row raise :class:`~dbnetpp.errors.DataError`;
- an AMP overflow while a dynamic loss scale settles: ``amp_skip`` event and a warning, no fault.

Skipped samples are collected batch by batch (:meth:`Faults.batch_loaded`) and reported per epoch over all
ranks (:meth:`Faults.end_epoch`: the ``epoch`` event, ``skipped_samples.txt``).
"""
from __future__ import annotations

import contextlib
import dataclasses
import datetime
import enum
import math
import os
import signal
import time
from typing import Any, Callable, Dict, Iterable, Iterator, List, Mapping, Optional, Sequence, Tuple

import paddle

from .. import dist as D
from ..errors import DataError, NonFiniteLossError, NonFiniteWeightsError, TrainingInterrupted
from .amp import FLOAT_DTYPES, Amp, AmpOverflow


class AbortRequested(KeyboardInterrupt):
    """Stop at once on a signal, nothing saved (a second SIGINT / SIGTERM during training, or any in
    :func:`abort_on_signals`); ``exit_code`` is 128 + signum.  A ``KeyboardInterrupt``, so that no
    ``except Exception`` on the way swallows it."""

    def __init__(self, signum: int, message: str = ""):
        self.signum = signum
        self.exit_code = 128 + signum
        super().__init__(message or f"second {signal.Signals(signum).name}: aborted at once, without saving")


@contextlib.contextmanager
def abort_on_signals(what: str, note: str = ""):
    """SIGINT and SIGTERM raise :class:`AbortRequested` in this process (forked data-loader workers
    ignore the inherited handler; the main process shuts them down), for tools without a partial
    result worth saving, e.g. ``tools/eval.py``."""
    pid = os.getpid()

    def handle(signum, frame):
        if os.getpid() == pid:
            raise AbortRequested(signum, f"{what} stopped by {signal.Signals(signum).name}{'; ' + note if note else ''}")

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


# ---------------------------------------------------------------------------------------------- fault accounting
class StepKind(enum.Enum):
    UPDATED = "updated"  # the optimizer updated the weights
    NON_FINITE_LOSS = "non_finite_loss"  # NaN/inf loss on some rank: no backward pass
    NON_FINITE_GRADIENT = "non_finite_gradient"  # finite loss, NaN/inf gradients (AMP: not a settling scale)
    AMP_OVERFLOW = "amp_overflow"  # inf/nan gradients while a dynamic AMP loss scale above 1 settles
    EMPTY_BATCH = "empty_batch"  # no loadable sample in the batch of some rank


@dataclasses.dataclass(frozen=True)
class StepOutcome:
    """How one training step ended (the same ``kind`` on every rank).

    ``losses``: this rank's loss terms (empty for an empty batch); ``grad_norm``: the global
    gradient norm of a step whose gradients were not finite; ``overflow``: what the AMP loss
    scaler reported; ``local``: for a bad step, whether this rank's own loss (or input) was
    non-finite (False on ranks that skip because of another rank); ``stop``: a stop was requested
    on some rank.
    """

    kind: StepKind
    losses: Mapping[str, float] = dataclasses.field(default_factory=dict)
    grad_norm: Optional[float] = None
    overflow: Optional[AmpOverflow] = None
    local: bool = True
    stop: bool = False

    @property
    def updated(self) -> bool:
        return self.kind is StepKind.UPDATED

    @property
    def bad(self) -> bool:
        """A non-finite loss or gradient: a fault counted against ``Global.max_bad_steps``."""
        return self.kind in (StepKind.NON_FINITE_LOSS, StepKind.NON_FINITE_GRADIENT)

    @classmethod
    def after_amp(cls, overflow: Optional[AmpOverflow]) -> "StepOutcome":
        """The outcome of :meth:`Amp.backward_and_step`: an update, a settling dynamic loss scale
        (:meth:`Amp.overflow_is_expected`), or non-finite gradients."""
        if overflow is None:
            return cls(StepKind.UPDATED)
        kind = StepKind.AMP_OVERFLOW if Amp.overflow_is_expected(overflow) else StepKind.NON_FINITE_GRADIENT
        return cls(kind, grad_norm=overflow.grad_norm, overflow=overflow)


def non_finite_input(batch: Mapping[str, Any], distributed: bool) -> bool:
    """After non-finite gradients: does this rank's batch hold a NaN/inf input?  Ranks that do
    report their samples; if no rank does (gradient overflow), every rank reports its own.
    A collective when ``distributed``: call it on every rank."""
    local = any(isinstance(v, paddle.Tensor) and v.dtype in FLOAT_DTYPES and v.size > 0
                and not bool(paddle.isfinite(v).all()) for v in batch.values())
    if not distributed:
        return True
    ranks_with_bad_input = D.all_reduce_sum([float(local)], True)[0]  # every rank is here: same skip decision
    return local or ranks_with_bad_input == 0


def non_finite_parameters(named: Sequence[Tuple[str, paddle.Tensor]]) -> List[str]:
    """Names of the ``(name, parameter)`` pairs holding NaN or infinity.  One fused sum first (a few ms
    for DBNet++ MobileNetV3 on CPU); only when it is not finite (NaN / infinity, or finite values summing
    past the float range) is each parameter checked."""
    named = [(n, p) for n, p in named if p.size > 0]
    if not named:
        return []
    total = float(paddle.add_n([p.astype("float32").sum() for _, p in named]))
    if math.isfinite(total):
        return []
    return [n for n, p in named if not bool(paddle.isfinite(p).all())]


class Faults:
    """The run's fault counts, their log lines and ``metrics.jsonl`` events.

    ``max_bad_steps`` (``Global.max_bad_steps``) caps two streaks, each counted on its own and
    both reset by a step that updates the weights: consecutive steps with a non-finite loss or
    gradient (then :class:`NonFiniteLossError`) and consecutive batches without a loadable
    sample (then :class:`DataError`).  An AMP overflow of a settling dynamic loss scale is
    counted but neither a fault nor a reset.

    Counts: ``bad_steps``, ``empty_batches``, ``amp_overflows`` (every step the AMP loss scaler
    skipped, settling or not), ``skipped_samples`` (over all ranks, for the reported epochs).
    ``log``: a :class:`logging.Logger` (``warning``, ``error``); ``metrics``: a
    :class:`~dbnetpp.engine.logger.MetricsWriter`; ``main``: rank 0, which writes
    ``skipped_samples.txt`` in ``save_dir`` and logs the closing warning (:meth:`finish`).  With ``distributed``
    the per-epoch report is a collective: every rank calls :meth:`end_epoch`.
    """

    SKIPPED_FILE = "skipped_samples.txt"
    SKIPPED_SHOWN = 5

    def __init__(self, max_bad_steps: int, log, metrics, save_dir: str = ".", main: bool = True,
                 distributed: bool = False):
        self.guard = BadStepGuard(max_bad_steps, log=log.warning)
        self.log, self.metrics, self.save_dir, self.main, self.distributed = log, metrics, save_dir, main, distributed
        self.empty_streak = 0
        self.empty_batches = 0
        self.amp_overflows = 0
        self.skipped_samples = 0
        self._epoch_skipped: List[str] = []
        self._epoch_loaded = 0

    @property
    def max_bad_steps(self) -> int:
        return self.guard.max_bad_steps

    @property
    def bad_steps(self) -> int:
        """Steps skipped for a non-finite loss or gradient."""
        return self.guard.total

    # ------------------------------------------------------------------ steps
    def record(self, outcome: StepOutcome, *, epoch: int, step: int, samples: Sequence[str] = (),
               reasons: Sequence[str] = ()) -> None:
        """Account for global step ``step``'s outcome (on every rank).

        ``samples``: the batch's images (``img_path`` or ``label_file:line``), named for a bad step;
        ``reasons``: the batch's skipped samples (``file:line: reason``), named when empty batches
        end the run.  Raises :class:`NonFiniteLossError` or :class:`DataError` past the limit.
        """
        if outcome.overflow is not None:
            self.amp_overflows += 1
        if outcome.updated:
            self.guard.good()
            self.empty_streak = 0
        elif outcome.kind is StepKind.AMP_OVERFLOW:
            self._amp_overflow(epoch, step, outcome.overflow)
        elif outcome.kind is StepKind.EMPTY_BATCH:
            self._empty_batch(step, reasons)
        else:
            extra = {} if outcome.grad_norm is None else {"grad_norm": outcome.grad_norm}
            self.metrics.write("bad_step", epoch=epoch, global_step=step, losses=dict(outcome.losses),
                               samples=list(samples), **extra)
            self.guard.bad(step, dict(outcome.losses), samples, local=outcome.local, grad_norm=outcome.grad_norm)

    def _amp_overflow(self, epoch: int, step: int, overflow: AmpOverflow) -> None:
        self.log.warning(f"global step {step}: inf/nan gradients at AMP loss scale {overflow.scale:g}: update "
                         f"skipped, loss scale now {overflow.next_scale:g} ({self.amp_overflows} such step(s) so "
                         f"far; expected while a dynamic loss scale settles)")
        self.metrics.write("amp_skip", epoch=epoch, global_step=step, scale=overflow.scale,
                           next_scale=overflow.next_scale, total=self.amp_overflows)

    def _empty_batch(self, step: int, reasons: Sequence[str]) -> None:
        self.empty_streak += 1
        self.empty_batches += 1
        self.log.warning(f"global step {step}: no loadable sample in the batch of some rank; no update "
                         f"({self.empty_streak}/{self.max_bad_steps} in a row)")
        if self.empty_streak >= self.max_bad_steps:
            shown = "; ".join(list(reasons)[:3])
            raise DataError(f"{self.empty_streak} consecutive batches without a loadable sample "
                            f"(bad_sample_policy: skip){': ' + shown if shown else ''}")

    # ------------------------------------------------------------------ skipped samples
    def batch_loaded(self, skipped: Sequence[str], loaded: int) -> None:
        """A batch of this rank: the samples it skipped (``file:line: reason``) and how many it holds."""
        self._epoch_skipped.extend(skipped)
        self._epoch_loaded += int(loaded)

    def end_epoch(self, epoch: int, step: int, check: bool = True) -> None:
        """End of an epoch (or of the run within it): skipped samples over all ranks; none loaded is an error.

        The log line names the first few; every one (``label_file:line: reason``) goes to
        ``skipped_samples.txt`` in the output folder (one header per epoch) and to the ``epoch``
        event of ``metrics.jsonl``.  ``check``: raise :class:`DataError` when the epoch's batches
        held skipped samples only.
        """
        skipped, loaded = self._epoch_skipped, self._epoch_loaded
        self._epoch_skipped, self._epoch_loaded = [], 0
        total, total_loaded = (int(v) for v in D.all_reduce_sum([len(skipped), loaded], self.distributed))
        every = D.all_gather_strings(list(skipped), self.distributed) if total else []
        shown = "; ".join(every[:self.SKIPPED_SHOWN]) + (" ..." if len(every) > self.SKIPPED_SHOWN else "")
        self.skipped_samples += total
        if total:
            listed = self._write_skipped(epoch, step, every)
            self.log.warning(f"epoch {epoch}: {total} sample(s) skipped (bad_sample_policy: skip)"
                             f"{': ' + shown if shown else ''}{f'; all of them in {listed}' if listed else ''}")
        self.metrics.write("epoch", epoch=epoch, global_step=step, skipped=total, loaded=total_loaded,
                           **({"skipped_samples": every} if every else {}))
        if check and total and not total_loaded:
            raise DataError(f"no training sample of epoch {epoch} could be loaded ({total} skipped, "
                            f"bad_sample_policy: skip){': ' + shown if shown else ''}")

    def _write_skipped(self, epoch: int, step: int, skipped: Sequence[str]) -> Optional[str]:
        """Append the epoch's skipped samples to ``skipped_samples.txt`` (rank 0); its path, or None."""
        if not self.main:
            return None
        path = os.path.join(self.save_dir, self.SKIPPED_FILE)
        stamp = datetime.datetime.now().strftime("%Y/%m/%d %H:%M:%S")
        text = f"# epoch {epoch}, global step {step}, {stamp}: {len(skipped)} skipped\n"
        text += "".join(f"{line}\n" for line in skipped)
        try:
            with open(path, "a", encoding="utf-8") as f:
                f.write(text)
        except OSError as exc:
            self.log.warning(f"cannot write {path}: {exc.strerror or exc}")
            return None
        return path

    # ------------------------------------------------------------------ end of the run
    def stopped(self, exc: Exception, step: int) -> None:
        """The ``stop`` event of a run ended by a fault: too many non-finite steps (also logged as an
        error), or a data / loader error (the trainer saves ``latest`` first)."""
        if isinstance(exc, NonFiniteWeightsError):
            self.log.error(str(exc))
            self.metrics.write("stop", reason="non_finite_weights", global_step=step)
        elif isinstance(exc, NonFiniteLossError):
            self.log.error(str(exc))
            self.metrics.write("stop", reason="non_finite_loss", global_step=step)
        else:
            self.metrics.write("stop", reason="data_error", global_step=step, error=str(exc)[:500])

    def finish(self, amp_loss_scale: Optional[float] = None) -> None:
        """The closing warning on rank 0 when steps made no update; ``amp_loss_scale``: the final
        loss scale when AMP is on (None: off)."""
        if self.main and (self.bad_steps or self.amp_overflows):
            self.log.warning(f"steps without an update: {self.bad_steps} with a non-finite loss or gradient"
                             + (f", {self.amp_overflows} skipped by the AMP loss scaler (final loss scale "
                                f"{amp_loss_scale:g})" if amp_loss_scale is not None else ""))

    def summary(self, amp_enabled: bool) -> Dict[str, int]:
        """The fault counts of ``tools/train.py``'s summary line."""
        out = {"skipped_steps": self.bad_steps}  # non-finite loss or gradient
        if amp_enabled:
            out["amp_skipped_steps"] = self.amp_overflows  # every step the AMP loss scaler skipped
        return out


__all__ = ["AbortRequested", "BadStepGuard", "Faults", "NonFiniteLossError", "NonFiniteWeightsError", "StepKind",
           "StepOutcome", "StopFlag", "TrainingInterrupted", "abort_on_signals", "batch_paths", "batches_until_stop",
           "non_finite_input", "non_finite_parameters"]
