"""``DetMetric``: ICDAR2015-style precision / recall / hmean accumulated over evaluation batches.

PaddleOCR's ``DetMetric`` interface (registered in METRICS; called once per batch, then
:meth:`~DetMetric.get_metric`).  Polygons, don't-care flags and count keys come from
:mod:`dbnetpp.metrics.samples`, the matching from :mod:`dbnetpp.metrics.icdar_eval`: the same
code as the shard evaluation that training and ``tools/eval.py`` run
(:func:`dbnetpp.evaluation.evaluate_shard`).
"""
from __future__ import annotations

from typing import Dict, Mapping, Optional, Sequence

from ..registry import METRICS
from .icdar_eval import Sample, check_protocol, evaluate_samples, metrics_from_counts
from .samples import COUNT_KEYS, METRIC_KEYS, gt_dont_care, polygons


@METRICS.register()
class DetMetric:
    """Text-detection metric with the ICDAR2015 protocol (see :mod:`dbnetpp.metrics.icdar_eval`).

    Args:
        main_indicator: key used to pick the best checkpoint (``hmean``, ``precision`` or ``recall``).
        protocol: ``"official"`` (RRC tool: int coordinates, only ``###`` is don't-care when
            transcriptions are given, nothing skipped) or ``"paddleocr"`` (PaddleOCR's DetMetric:
            float coordinates, ``###`` and ``*`` don't-care, invalid polygons skipped).

    Call it once per batch, then :meth:`get_metric`.  For distributed evaluation, sum
    :meth:`get_counts` over ranks (an all-reduce of the four integers, as
    :func:`dbnetpp.evaluation.reduce_counts` does) and turn the sums into metrics with
    :meth:`metric_from_counts`.  Training reads ``main_indicator`` (which result picks
    ``best_accuracy``) from it; the protocol of its evaluation is the config's ``Metric.protocol``
    (:func:`dbnetpp.evaluation.eval_protocol`).
    """

    def __init__(self, main_indicator: str = "hmean", protocol: str = "official"):
        if main_indicator not in METRIC_KEYS:
            raise ValueError(f"main_indicator must be hmean, precision or recall, got {main_indicator!r}")
        self.main_indicator = main_indicator
        self.protocol = check_protocol(protocol)
        self.reset()

    def __call__(self, preds: Sequence[Mapping], batch, texts: Optional[Sequence[Sequence[str]]] = None) -> None:
        """Accumulate one batch.

        Args:
            preds: per image ``{"points": [K, P, 2] array or list of [P, 2]}`` (post-process output).
            batch: mapping with ``"polys"`` (per image ``[N, P, 2]``) and ``"ignore_tags"``
                (per image ``[N]`` bool), optionally ``"texts"``; a PaddleOCR-style list
                ``[image, shape, polys, ignore_tags, ...]`` is accepted too.
            texts: per image GT transcriptions.  When given (here or as ``batch["texts"]``)
                don't-care is decided from them by the protocol (``###``; also ``*`` for
                paddleocr), otherwise from ``ignore_tags``.
        """
        if isinstance(batch, Mapping):
            polys_b, tags_b = batch["polys"], batch["ignore_tags"]
            if texts is None:
                texts = batch.get("texts")
        else:
            polys_b, tags_b = batch[2], batch[3]
        if len(preds) != len(polys_b):
            raise ValueError(f"{len(preds)} predictions for a batch of {len(polys_b)} images")
        samples = []
        for i, pred in enumerate(preds):
            gt = polygons(polys_b[i])
            care = gt_dont_care(texts[i] if texts is not None else None, tags_b[i], len(gt), self.protocol,
                                where=f"image {i}: ")
            samples.append(Sample(gt=gt, gt_dont_care=care, det=polygons(pred["points"])))
        for res in evaluate_samples(samples, self.protocol):
            self._counts[0] += res.gt_care
            self._counts[1] += res.det_care
            self._counts[2] += res.matched
            self._counts[3] += 1

    def get_counts(self) -> Dict[str, int]:
        """Counts accumulated so far: ``gt_care``, ``det_care``, ``matched``, ``images``."""
        return {k: int(v) for k, v in zip(COUNT_KEYS, self._counts)}

    @staticmethod
    def metric_from_counts(counts: Mapping[str, int]) -> Dict[str, float]:
        """``{"precision", "recall", "hmean", **counts}`` from (possibly all-reduced) counts."""
        out = dict(metrics_from_counts(counts))
        out.update({k: int(counts[k]) for k in COUNT_KEYS if k in counts})
        return out

    def get_metric(self) -> Dict[str, float]:
        """Metrics over everything accumulated since the last reset; then resets."""
        out = self.metric_from_counts(self.get_counts())
        self.reset()
        return out

    def reset(self) -> None:
        self._counts = [0, 0, 0, 0]
