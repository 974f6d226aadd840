"""Summing metric counts across ranks (distributed evaluation)."""
from __future__ import annotations

from typing import Dict, Iterable, Mapping

import numpy as np


def sum_count_dicts(parts: Iterable[Mapping[str, int]]) -> Dict[str, int]:
    """Key-wise sum of count dicts (what an all-reduce over ranks computes)."""
    total: Dict[str, int] = {}
    for part in parts:
        for k, v in part.items():
            total[k] = total.get(k, 0) + int(v)
    return total


def all_reduce_counts(counts: Mapping[str, int]) -> Dict[str, int]:
    """Sum ``counts`` over all ranks of the default paddle process group.

    Without an initialised multi-rank group (single process) the counts are returned as
    they are.  Counts are reduced as int64, so they are exact.
    """
    keys = sorted(counts)
    import paddle.distributed as dist  # imported lazily: evaluation of files needs no paddle

    if not dist.is_initialized() or dist.get_world_size() <= 1:
        return {k: int(counts[k]) for k in keys}
    import paddle

    t = paddle.to_tensor(np.array([int(counts[k]) for k in keys], np.int64))
    dist.all_reduce(t)
    return {k: int(v) for k, v in zip(keys, t.numpy().tolist())}
