"""Combining the shards of all ranks: counts all-reduced, per-image records gathered on request.

Only the integer counts (``gt_care``, ``det_care``, ``matched``, ``images``, each summed over a
rank's records) and a stop flag travel in the one all-reduce every evaluation makes
(:func:`reduce_counts`); precision / recall / hmean are computed once from the totals.  Training
stops there (``gather_records=False``).  ``tools/eval.py`` also gathers the per-image records
with ``paddle.distributed.all_gather_object`` (pickled plain-Python dicts, no shared file system
needed), ordered by dataset index, so the merged result does not depend on the number of ranks;
the gathered records must add up to the all-reduced counts and cover every index at most once.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping

from ..dist import all_reduce_sum
from ..metrics.icdar_eval import metrics_from_counts
from ..metrics.samples import COUNT_KEYS
from .records import ImageRecord, sum_record_counts
from .runner import EvaluationInterrupted, ShardResult


@dataclass
class EvalResult:
    """The whole Eval set: metrics and counts over all ranks; the records (in dataset order), unscored
    labels and timing of every rank when gathered, else this rank's (``merge_shards``)."""

    counts: Dict[str, int]
    records: List[ImageRecord]
    unscored: List[Dict[str, str]] = field(default_factory=list)
    ranks: List[Dict[str, Any]] = field(default_factory=list)  # {"rank", "images", "seconds_model", ...}

    @property
    def metrics(self) -> Dict[str, float]:
        return metrics_from_counts(self.counts)

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

    With ``gather_records`` (``tools/eval.py``) every rank also gets the records, unscored labels
    and timing of all ranks; without (training) the result holds this rank's.  Raises
    :class:`~dbnetpp.evaluation.runner.EvaluationInterrupted` on every rank when ``should_stop``
    stopped some rank's :func:`~dbnetpp.evaluation.runner.evaluate_shard`.
    """
    counts = reduce_counts(sum_record_counts(shard.records), distributed, stopped=shard.stopped)
    if not gather_records:
        return EvalResult(counts=counts, records=list(shard.records), unscored=list(shard.unscored),
                          ranks=[_timing(shard, rank)])
    payload = {"records": [r.to_json() for r in shard.records], "unscored": shard.unscored, **_timing(shard, rank)}
    parts = sorted(_all_gather_objects(payload, distributed), key=lambda p: p["rank"])
    records = sorted((ImageRecord.from_json(d) for p in parts for d in p["records"]), key=lambda r: r.index)
    seen = [r.index for r in records]
    if len(set(seen)) != len(seen):
        dup = sorted({i for i in seen if seen.count(i) > 1})
        raise RuntimeError(f"dataset indices evaluated on more than one rank: {dup[:10]} (padded sampler?)")
    if sum_record_counts(records) != counts:
        raise RuntimeError(f"gathered per-image counts {sum_record_counts(records)} differ from the all-reduced "
                           f"counts {counts}")
    unscored = [u for p in parts for u in p["unscored"]]
    ranks = [{k: p[k] for k in ("rank", "images", "batches", "seconds_model", "seconds_total")} for p in parts]
    return EvalResult(counts=counts, records=records, unscored=unscored, ranks=ranks)

