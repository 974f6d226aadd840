"""Combining the shards of all ranks: counts all-reduced, per-image records gathered.

The metric comes from the all-reduced integer counts (as in training's evaluation);
the per-image records travel with ``paddle.distributed.all_gather_object`` (pickled
plain-Python dicts, no shared file system needed) and are ordered by dataset index, so
the merged result does not depend on the number of ranks.  The gathered records must add
up to the all-reduced counts and cover every index at most once.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List

from ..engine.dist import all_reduce_sum
from ..metrics.icdar_eval import metrics_from_counts
from .records import COUNT_KEYS, ImageRecord, sum_record_counts
from .runner import ShardResult


@dataclass
class EvalResult:
    """The whole Eval set: metrics, counts, records in dataset order, timing per rank."""

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
        s = self.seconds
        return self.counts["images"] / s if s > 0 else 0.0


def _all_gather_objects(obj: Any, distributed: bool) -> List[Any]:
    if not distributed:
        return [obj]
    import paddle.distributed as dist

    parts: List[Any] = []
    dist.all_gather_object(parts, obj)
    return parts


def merge_shards(shard: ShardResult, *, rank: int = 0, distributed: bool = False) -> EvalResult:
    """All ranks call this at the same point; every rank gets the merged result."""
    local = sum_record_counts(shard.records)
    totals = all_reduce_sum([local[k] for k in COUNT_KEYS], distributed)
    counts = {k: int(round(v)) for k, v in zip(COUNT_KEYS, totals)}
    payload = {"rank": rank, "records": [r.to_json() for r in shard.records], "unscored": shard.unscored,
               "seconds_model": shard.seconds_model, "seconds_total": shard.seconds_total,
               "batches": shard.batches}
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
    ranks = [{"rank": p["rank"], "images": len(p["records"]), "batches": p["batches"],
              "seconds_model": p["seconds_model"], "seconds_total": p["seconds_total"]} for p in parts]
    return EvalResult(counts=counts, records=records, unscored=unscored, ranks=ranks)
