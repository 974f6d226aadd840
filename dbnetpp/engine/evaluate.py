"""Detection evaluation loop, shardable across ranks.

Each rank runs its shard of the Eval loader through the model, the
post-process and the metric; only the metric's integer counts
(``gt_care``, ``det_care``, ``matched``, ``images``) are summed over ranks, and
precision / recall / hmean are computed once from the totals, as the ICDAR2015
protocol aggregates over the whole set (DB paper's evaluation, after
PaddleOCR's DetMetric).  An image the loader skipped (``bad_sample_policy:
skip``) is scored as an image without detections, its GT read from its label
line, as ``tools/eval.py`` does: dropping it would inflate recall.
"""
from __future__ import annotations

import contextlib
import time
from typing import Any, Callable, ContextManager, Dict, Mapping, Optional

import numpy as np
import paddle

from ..data.loader import SKIPPED_KEY, num_samples
from ..errors import DataError
from .dist import all_reduce_sum, unwrap

COUNT_KEYS = ("gt_care", "det_care", "matched", "images")


def _as_tensor(x) -> paddle.Tensor:
    return x if isinstance(x, paddle.Tensor) else paddle.to_tensor(np.asarray(x))


def _as_numpy(x) -> np.ndarray:
    return x.numpy() if isinstance(x, paddle.Tensor) else np.asarray(x)


def _get(batch: Any, key: str, index: int):
    if isinstance(batch, Mapping):
        return batch[key]
    return batch[index]  # PaddleOCR list order: image, shape, polys, ignore_tags


class EvaluationInterrupted(Exception):
    """``should_stop`` became true on some rank during :func:`run_evaluation` (a signal)."""


def run_evaluation(model: paddle.nn.Layer, loader, post_process, metric, *, distributed: bool = False,
                   autocast: Optional[Callable[[], ContextManager]] = None,
                   log: Optional[Callable[[str], None]] = None,
                   should_stop: Optional[Callable[[], bool]] = None) -> Dict[str, Any]:
    """Evaluate ``model`` on ``loader``; returns ``metric.metric_from_counts(total_counts)`` plus ``fps``
    (this rank's images per second of model + post-process time).

    ``loader`` yields batches with ``image`` ([N,3,H,W]), ``shape`` ([N,4]:
    src_h, src_w, ratio_h, ratio_w), ``polys`` (list of [K,P,2]) and
    ``ignore_tags`` (list of [K]).  With ``distributed`` every rank must call
    this at the same point; each sees only its shard.  The model's train/eval
    mode is restored afterwards and the metric is reset.

    ``should_stop`` is asked before each batch; once it is true this rank stops evaluating, and
    after the (unchanged) collective at the end every rank raises :class:`EvaluationInterrupted`,
    so a signal ends the evaluation within one batch without leaving a rank in a collective alone.
    """
    net = unwrap(model)
    was_training = net.training
    net.eval()
    metric.reset()
    autocast = autocast or contextlib.nullcontext
    seconds = 0.0
    unscored = 0
    stopped = False
    lookup: Dict[str, Any] = {}
    try:
        with paddle.no_grad():
            for batch in loader:
                if should_stop is not None and should_stop():
                    stopped = True
                    break
                if isinstance(batch, Mapping) and batch.get(SKIPPED_KEY):
                    unscored += _score_skipped(metric, batch[SKIPPED_KEY], loader.dataset, lookup, log)
                if isinstance(batch, Mapping) and num_samples(batch) == 0:
                    continue
                start = time.time()
                with autocast():
                    preds = net(_as_tensor(_get(batch, "image", 0)))
                maps = preds["maps"] if isinstance(preds, Mapping) else preds
                outs = {"maps": _as_numpy(maps.astype("float32") if isinstance(maps, paddle.Tensor) else maps)}
                boxes = post_process(outs, _as_numpy(_get(batch, "shape", 1)))
                seconds += time.time() - start
                gt = {"polys": _get(batch, "polys", 2), "ignore_tags": _get(batch, "ignore_tags", 3)}
                if isinstance(batch, Mapping) and batch.get("texts") is not None:
                    gt["texts"] = batch["texts"]
                metric(boxes, gt)
        local = metric.get_counts()
        totals = all_reduce_sum([local[k] for k in COUNT_KEYS] + [float(stopped)], distributed)
    finally:
        if was_training:
            net.train()
    if totals[-1] > 0:
        metric.reset()
        raise EvaluationInterrupted("evaluation stopped by a signal")
    counts = {k: int(round(v)) for k, v in zip(COUNT_KEYS, totals)}
    result = dict(metric.metric_from_counts(counts))
    metric.reset()
    result["fps"] = local["images"] / seconds if seconds > 0 else 0.0
    dataset = getattr(loader, "dataset", None)
    expected = getattr(dataset, "num_samples", None)
    if expected is None and hasattr(dataset, "__len__"):
        expected = len(dataset)
    if log is not None and expected is not None and counts["images"] != expected:
        log(f"evaluated {counts['images']} images but the Eval set has {expected} ({unscored} with unreadable "
            f"labels on this rank could not be scored)")
    return result


def _score_skipped(metric, messages, dataset, lookup: Dict[str, Any], log) -> int:
    """Eval samples the loader skipped (``bad_sample_policy: skip``) count as images without detections.

    Their GT is read from the label line, so recall is not inflated by dropping them (as tools/eval.py
    scores them).  Returns how many could not be scored because the label itself is unreadable.
    """
    from ..evaluation.runner import LabelLookup  # imported here: that package imports the engine

    if not lookup:
        lookup["labels"] = LabelLookup(dataset)
        lookup["index"] = {"%s:%d" % dataset.location(i): i for i in range(len(dataset))}
    unscored = 0
    for msg in messages:
        where = msg.split(": ", 1)[0]
        index = lookup["index"].get(where)
        try:
            if index is None:
                raise DataError(f"not a sample of this Eval set: {msg}")
            _, polys, texts = lookup["labels"].ground_truth(index)
        except DataError as exc:
            unscored += 1
            if log is not None:
                log(f"{where}: not scored: the image and its label cannot be read ({exc})")
            continue
        metric([{"points": []}], {"polys": [polys], "ignore_tags": [[False] * len(polys)]}, texts=[texts])
    return unscored
