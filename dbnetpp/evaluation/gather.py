"""Combining the shards of all ranks: the metric's counts all-reduced, its records gathered on request.

Only the integer counts of each rank's metric (``gt_care``, ``det_care``, ``matched``, ``images``) and
a stop flag travel in the one all-reduce every evaluation makes (:func:`reduce_counts`); the metric
computes precision / recall / hmean once from the totals.  Training stops there
(``gather_records=False``).  ``tools/eval.py`` also gathers every rank's records (the metric's
:meth:`~dbnetpp.metrics.DetMetric.state`) with ``paddle.distributed.all_gather_object`` (plain-Python
dicts, no shared file system needed) into the metric, in dataset order, so the merged result does not
depend on the number of ranks; the gathered records must add up to the all-reduced counts and cover
every index at most once.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping

from ..dist import all_reduce_sum
from ..metrics.det_metric import DetMetric
from ..metrics.records import ImageRecord
from ..metrics.samples import COUNT_KEYS, METRIC_KEYS
from .runner import EvaluationInterrupted, ShardResult


@dataclass
class EvalResult:
    """The whole Eval set: the metric (its protocol; the records of every rank in dataset order when
    gathered, else this rank's), the counts over all ranks, unscored labels and timing (``merge_shards``)."""

    metric: DetMetric
    counts: Dict[str, int]
    unscored: List[Dict[str, str]] = field(default_factory=list)
    ranks: List[Dict[str, Any]] = field(default_factory=list)  # {"rank", "images", "seconds_model", ...}

    @property
    def metrics(self) -> Dict[str, float]:
        """Precision / recall / hmean of the all-reduced counts."""
        computed = self.metric.compute(self.counts)
        return {k: computed[k] for k in METRIC_KEYS}

    @property
    def records(self) -> List[ImageRecord]:
        return self.metric.records

    @property
    def protocol(self) -> str:
        return self.metric.protocol

    @property
    def skipped(self) -> List[ImageRecord]:
        return [r for r in self.records if r.skipped is not None]

    @property
    def seconds(self) -> float:
        """Wall time of the slowest rank (the evaluation's duration)."""
        return max((r["seconds_total"] for r in self.ranks), default=0.0)

    @property
    def images_per_second(self) -> float:
        """All images over :attr:`seconds` (gathered results; a rank's own speed is
        ``ShardResult.images_per_second``)."""
        s = self.seconds
        return self.counts["images"] / s if s > 0 else 0.0


def reduce_counts(counts: Mapping[str, int], distributed: bool, stopped: bool = False) -> Dict[str, int]:
    """``counts`` (:data:`~dbnetpp.metrics.samples.COUNT_KEYS`) summed over all ranks, in one all-reduce.

    All ranks call this at the same point.  The all-reduce also sums the ranks' ``stopped`` flags:
    when any rank stopped, every rank raises :class:`~dbnetpp.evaluation.runner.EvaluationInterrupted`.
    Sums are exact (float64, counts < 2**53); single-process the counts come back as they are.
    """
    totals = all_reduce_sum([counts[k] for k in COUNT_KEYS] + [float(stopped)], distributed)
    if totals[-1] > 0:
        raise EvaluationInterrupted("evaluation stopped by a signal")
    return {k: int(round(v)) for k, v in zip(COUNT_KEYS, totals)}


def _all_gather_objects(obj: Any, distributed: bool) -> List[Any]:
    if not distributed:
        return [obj]
    import paddle.distributed as dist

    parts: List[Any] = []
    dist.all_gather_object(parts, obj)
    return parts


def _timing(shard: ShardResult, rank: int) -> Dict[str, Any]:
    return {"rank": rank, "images": len(shard.records), "batches": shard.batches,
            "seconds_model": shard.seconds_model, "seconds_total": shard.seconds_total}


def merge_shards(shard: ShardResult, *, rank: int = 0, distributed: bool = False,
                 gather_records: bool = True) -> EvalResult:
    """All ranks call this at the same point; every rank gets the all-reduced counts.

    With ``gather_records`` (``tools/eval.py``) the shard's metric then holds the records of all ranks, and
    the result the unscored labels and timing of all ranks; without (training) this rank's.  Raises
    :class:`~dbnetpp.evaluation.runner.EvaluationInterrupted` on every rank when ``should_stop``
    stopped some rank's :func:`~dbnetpp.evaluation.runner.evaluate_shard`.
    """
    metric = shard.metric
    counts = reduce_counts(metric.counts(), distributed, stopped=shard.stopped)
    if not gather_records:
        return EvalResult(metric=metric, counts=counts, unscored=list(shard.unscored), ranks=[_timing(shard, rank)])
    payload = {"records": metric.state(), "unscored": shard.unscored, **_timing(shard, rank)}
    parts = sorted(_all_gather_objects(payload, distributed), key=lambda p: p["rank"])
    metric.load_states([p["records"] for p in parts])
    if metric.counts() != counts:
        raise RuntimeError(f"gathered per-image counts {metric.counts()} differ from the all-reduced counts {counts}")
    unscored = [u for p in parts for u in p["unscored"]]
    ranks = [{k: p[k] for k in ("rank", "images", "batches", "seconds_model", "seconds_total")} for p in parts]
    return EvalResult(metric=metric, counts=counts, unscored=unscored, ranks=ranks)
