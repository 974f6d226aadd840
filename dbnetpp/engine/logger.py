"""Training logs: console + ``train.log`` text, ``metrics.jsonl`` events, VisualDL scalars.

Only rank 0 writes files; other ranks print warnings and errors, prefixed with
their rank, to stderr (``log/workerlog.N`` under ``paddle.distributed.launch``).

``metrics.jsonl`` holds one JSON object per line with an ``event`` field:
``train`` (every ``print_batch_step``), ``eval``, ``epoch`` (end of epoch,
with skipped-sample counts), ``bad_step``, ``stop`` and ``end``.
"""
from __future__ import annotations

import collections
import datetime
import json
import logging
import math
import os
import statistics
import sys
import time
from typing import Any, Deque, Dict, Mapping, Optional

_FORMAT = "[%(asctime)s] %(name)s %(levelname)s: %(message)s"
_DATEFMT = "%Y/%m/%d %H:%M:%S"


def get_logger(save_dir: Optional[str], rank: int = 0, name: str = "dbnetpp") -> logging.Logger:
    """Console (stdout) and ``save_dir/train.log`` on rank 0; stderr warnings on other ranks."""
    logger = logging.getLogger(f"{name}.rank{rank}")
    logger.propagate = False
    for h in list(logger.handlers):
        logger.removeHandler(h)
        h.close()
    if rank == 0:
        fmt = logging.Formatter(_FORMAT, _DATEFMT)
        console = logging.StreamHandler(sys.stdout)
        console.setFormatter(fmt)
        logger.addHandler(console)
        if save_dir:
            os.makedirs(save_dir, exist_ok=True)
            fh = logging.FileHandler(os.path.join(save_dir, "train.log"), mode="a", encoding="utf-8")
            fh.setFormatter(fmt)
            logger.addHandler(fh)
        logger.setLevel(logging.INFO)
    else:
        err = logging.StreamHandler(sys.stderr)
        err.setFormatter(logging.Formatter(f"[%(asctime)s] {name} rank {rank} %(levelname)s: %(message)s", _DATEFMT))
        logger.addHandler(err)
        logger.setLevel(logging.WARNING)
    return logger


class SmoothedStats:
    """Median of the last ``window`` values of each logged scalar (PaddleOCR's TrainingStats)."""

    def __init__(self, window: int = 20):
        self.window = max(1, int(window))
        self._values: Dict[str, Deque[float]] = collections.OrderedDict()

    def update(self, stats: Mapping[str, float]) -> None:
        for k, v in stats.items():
            self._values.setdefault(k, collections.deque(maxlen=self.window)).append(float(v))

    def means(self) -> Dict[str, float]:
        """Smoothed values (window medians)."""
        return {k: statistics.median(v) for k, v in self._values.items() if v}

    def format(self) -> str:
        """``loss: 1.234567, loss_shrink_maps: ...``."""
        return ", ".join(f"{k}: {v:.6f}" for k, v in self.means().items())


class StepTimes:
    """Reader wait, batch cost (reader + step), samples and iterations since the last ``train`` log
    line, and the last ``recent`` batch costs, from which the ETA is estimated."""

    def __init__(self, recent: int = 50):
        self.recent: Deque[float] = collections.deque(maxlen=recent)
        self._start = time.time()
        self.reset()

    def reset(self) -> None:
        self.reader, self.batch, self.samples, self.iters = 0.0, 0.0, 0, 0

    def start(self) -> None:
        """Before waiting for the next batch."""
        self._start = time.time()

    def loaded(self) -> None:
        """The batch arrived."""
        self.reader += time.time() - self._start

    def stepped(self, samples: int) -> None:
        """The step on the batch (of ``samples`` samples) is done."""
        cost = time.time() - self._start
        self.samples += samples
        self.iters += 1
        self.batch += cost
        self.recent.append(cost)

    def report(self, samples: float, remaining_steps: int) -> Dict[str, float]:
        """``reader_cost`` and ``batch_cost`` per iteration, ``ips`` (``samples``: over all ranks),
        ``avg_samples`` per iteration and ``eta_sec``; starts a new window."""
        n = max(1, self.iters)
        out = {"reader_cost": self.reader / n, "batch_cost": self.batch / n,
               "ips": samples / self.batch if self.batch > 0 else 0.0, "avg_samples": samples / n,
               "eta_sec": int(max(0, remaining_steps) * (sum(self.recent) / max(1, len(self.recent))))}
        self.reset()
        return out


def train_line(epoch: int, epochs: int, step: int, lr: float, losses: str, cost: Mapping[str, float]) -> str:
    """The ``train`` log line (PaddleOCR's): position, rate, smoothed losses, :meth:`StepTimes.report`."""
    return (f"epoch: [{epoch}/{epochs}], global_step: {step}, lr: {lr:.6g}, "
            f"{losses + ', ' if losses else ''}avg_reader_cost: {cost['reader_cost']:.5f} s, "
            f"avg_batch_cost: {cost['batch_cost']:.5f} s, avg_samples: {cost['avg_samples']:g}, "
            f"ips: {cost['ips']:.5f} samples/s, eta: {datetime.timedelta(seconds=cost['eta_sec'])}")


def format_metrics(d: Mapping[str, Any]) -> str:
    """``precision: 0.5, recall: ...`` (floats rounded to 6 digits) for the evaluation log lines."""
    return ", ".join(f"{k}: {round(v, 6) if isinstance(v, float) else v}" for k, v in d.items())


def _jsonable(v: Any) -> Any:
    """Strict JSON: non-finite floats become the strings "nan" / "inf" / "-inf"."""
    if isinstance(v, float) and not math.isfinite(v):
        return str(v)
    if isinstance(v, Mapping):
        return {str(k): _jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    if hasattr(v, "item") and getattr(v, "size", 2) == 1:
        return _jsonable(v.item())
    return v


class MetricsWriter:
    """Appends one JSON object per event to ``metrics.jsonl`` (rank 0 only).

    A fresh run moves an existing file to ``metrics.jsonl.prev``.  A resumed run
    (``resume_step``) keeps the events up to that global step and drops the
    later ones (written after the checkpoint by a run that was then killed) and
    any line cut short, so each step appears once.
    """

    def __init__(self, path: Optional[str], resume_step: Optional[int] = None):
        self.path = path
        if path and os.path.exists(path):
            if resume_step is None:
                os.replace(path, path + ".prev")
            else:
                self._truncate(path, resume_step)
        self._f = open(path, "a", encoding="utf-8") if path else None

    @staticmethod
    def _truncate(path: str, step: int) -> None:
        kept = []
        with open(path, encoding="utf-8", errors="replace") as f:
            for line in f:
                try:
                    record = json.loads(line)
                except json.JSONDecodeError:
                    continue
                if isinstance(record, dict) and int(record.get("global_step", 0) or 0) <= step:
                    kept.append(json.dumps(record, ensure_ascii=False) + "\n")
        tmp = f"{path}.tmp{os.getpid()}"
        with open(tmp, "w", encoding="utf-8") as f:
            f.writelines(kept)
        os.replace(tmp, path)

    def write(self, event: str, **fields: Any) -> None:
        if self._f is None:
            return
        record = {"event": event, "time": round(time.time(), 3)}
        record.update({k: _jsonable(v) for k, v in fields.items()})
        self._f.write(json.dumps(record, ensure_ascii=False, allow_nan=False) + "\n")
        self._f.flush()

    def close(self) -> None:
        if self._f is not None:
            self._f.close()
            self._f = None


class VisualDLWriter:
    """VisualDL scalars when ``visualdl`` is importable; otherwise a no-op (one warning)."""

    def __init__(self, enabled: bool, logdir: str, log: logging.Logger):
        self._writer = None
        if not enabled:
            return
        try:
            from visualdl import LogWriter  # optional dependency
        except ImportError:
            log.warning("Global.use_visualdl is true but the 'visualdl' package is not installed "
                        "(pip install visualdl); VisualDL logging is off. metrics.jsonl has the same scalars "
                        "(plot them with tools/plot_log.py)")
            return
        os.makedirs(logdir, exist_ok=True)
        self._writer = LogWriter(logdir)
        log.info(f"VisualDL logs in {logdir}")

    def scalars(self, prefix: str, values: Mapping[str, Any], step: int) -> None:
        if self._writer is None:
            return
        for k, v in values.items():
            if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v):
                self._writer.add_scalar(tag=f"{prefix}/{k}", value=float(v), step=step)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None
