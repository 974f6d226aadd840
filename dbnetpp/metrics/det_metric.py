"""``DetMetric``: ICDAR2015-style precision / recall / hmean accumulated over evaluation batches."""
from __future__ import annotations

from typing import Dict, List, Mapping, Optional, Sequence

import numpy as np

from ..registry import METRICS
from .icdar_eval import (COUNT_KEYS, Sample, check_protocol, dont_care_text, evaluate_samples,
                         metrics_from_counts)


def _np(x) -> np.ndarray:
    if hasattr(x, "numpy") and not isinstance(x, np.ndarray):
        x = x.numpy()
    return np.asarray(x)


def _polygons(polys) -> List[np.ndarray]:
    """``[N, P, 2]`` array or a list of ``[P_i, 2]`` -> list of float64 ``[P_i, 2]``."""
    if polys is None:
        return []
    if isinstance(polys, np.ndarray) or hasattr(polys, "numpy"):
        arr = _np(polys).astype(np.float64)
        return [a.reshape(-1, 2) for a in arr] if arr.size else []
    return [_np(p).astype(np.float64).reshape(-1, 2) for p in polys]


@METRICS.register()
class DetMetric:
    """Text-detection metric with the ICDAR2015 protocol (see :mod:`dbnetpp.metrics.icdar_eval`).

    Args:
        main_indicator: key used to pick the best checkpoint (``hmean``, ``precision`` or ``recall``).
        protocol: ``"official"`` (RRC tool: int coordinates, only ``###`` is don't-care when
            transcriptions are given, nothing skipped) or ``"paddleocr"`` (PaddleOCR's DetMetric:
            float coordinates, ``###`` and ``*`` don't-care, invalid polygons skipped).

    Call it once per batch, then :meth:`get_metric`.  For distributed evaluation, all-reduce
    :meth:`get_counts` across ranks and turn the sums into metrics with
    :meth:`metric_from_counts` (see :func:`dbnetpp.metrics.all_reduce_counts`).
    """

    def __init__(self, main_indicator: str = "hmean", protocol: str = "official"):
        if main_indicator not in ("hmean", "precision", "recall"):
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
            gt = _polygons(polys_b[i])
            if texts is not None:
                care = [dont_care_text(t, self.protocol) for t in texts[i]]
            else:
                care = [bool(t) for t in _np(tags_b[i]).reshape(-1)]
            if len(care) != len(gt):
                raise ValueError(f"image {i}: {len(gt)} GT polygons but {len(care)} ignore tags/texts")
            samples.append(Sample(gt=gt, gt_dont_care=care, det=_polygons(pred["points"])))
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
