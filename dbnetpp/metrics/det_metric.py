"""``DetMetric``: the one metric object of validation in training, ``tools/eval.py`` and PaddleOCR-style use.

It owns the protocol, the per-image records and the counts (mmocr's ``HmeanIOUMetric`` shape):

* :meth:`~DetMetric.process` scores a batch of images (:class:`ImageInput`: identity, GT and detections)
  with the ICDAR2015 matching of :mod:`dbnetpp.metrics.icdar_eval` and keeps one
  :class:`~dbnetpp.metrics.records.ImageRecord` per image;
* :meth:`~DetMetric.counts` sums the records' integer counts (``gt_care``, ``det_care``, ``matched``,
  ``images``), which is what ranks all-reduce; :meth:`~DetMetric.compute` turns counts (this rank's, or
  the all-reduced ones) into precision / recall / hmean once, as the protocol aggregates over the set;
* :meth:`~DetMetric.state` / :meth:`~DetMetric.load_states` carry the records between ranks (plain dicts),
  so a sharded run ends with the same records, in dataset order, on every rank.

PaddleOCR's interface is kept on top: call the metric once per batch with the post-processed boxes and the
batch (``polys``, ``ignore_tags``, optionally ``texts``), then :meth:`~DetMetric.get_metric`.

:func:`build_metric` builds it from a config's ``Metric`` section (``DetMetric`` with its defaults when the
section is absent), with ``tools/eval.py --protocol`` as an override.
"""
from __future__ import annotations

from typing import Any, Dict, List, Mapping, NamedTuple, Optional, Sequence

from ..errors import ConfigError
from ..registry import METRICS
from .icdar_eval import PROTOCOLS, Sample, evaluate_samples, metrics_from_counts
from .records import ImageRecord, sum_record_counts
from .samples import COUNT_KEYS, METRIC_KEYS, gt_dont_care, polygons


class ImageInput(NamedTuple):
    """One image for :meth:`DetMetric.process`: where it came from, its GT (with the don't-care flags the
    protocol decided) and detections (``sample``), the detection scores, and why it could not be loaded
    (``skipped``; it is then scored with no detections)."""

    index: int  # dataset index
    image: str  # image path
    label: str  # "label_file:line"
    sample: Sample
    scores: List[float]
    skipped: Optional[str] = None


@METRICS.register()
class DetMetric:
    """Text-detection metric with the ICDAR2015 protocol (see :mod:`dbnetpp.metrics.icdar_eval`).

    Args:
        main_indicator: key used to pick the best checkpoint (``hmean``, ``precision`` or ``recall``).
        protocol: ``"official"`` (RRC tool: int coordinates, only ``###`` is don't-care when
            transcriptions are given, nothing skipped) or ``"paddleocr"`` (PaddleOCR's DetMetric:
            float coordinates, ``###`` and ``*`` don't-care, invalid polygons skipped).
    """

    def __init__(self, main_indicator: str = "hmean", protocol: str = "official"):
        if main_indicator not in METRIC_KEYS:
            raise ValueError(f"main_indicator must be hmean, precision or recall, got {main_indicator!r}")
        if protocol not in PROTOCOLS:
            raise ValueError(f"protocol must be one of {', '.join(PROTOCOLS)}, got {protocol!r}")
        self.main_indicator = main_indicator
        self.protocol = protocol
        self.records: List[ImageRecord] = []

    # ------------------------------------------------------------------ the metric
    def reset(self) -> None:
        """Forget every record (a new evaluation)."""
        self.records = []

    def process(self, images: Sequence[ImageInput]) -> List[ImageRecord]:
        """Score ``images`` (one batch) and keep their records; returns them."""
        results = evaluate_samples([im.sample for im in images], self.protocol)
        new = [ImageRecord(index=im.index, image=im.image, label=im.label, gt=list(im.sample.gt),
                           gt_dont_care=list(im.sample.gt_dont_care), det=list(im.sample.det), scores=list(im.scores),
                           result=res, skipped=im.skipped)
               for im, res in zip(images, results)]
        self.records.extend(new)
        return new

    def counts(self) -> Dict[str, int]:
        """The records' counts summed (:data:`~dbnetpp.metrics.samples.COUNT_KEYS`)."""
        return sum_record_counts(self.records)

    def compute(self, counts: Optional[Mapping[str, int]] = None) -> Dict[str, Any]:
        """``{"precision", "recall", "hmean", **counts}`` from ``counts`` (default: :meth:`counts`; pass the
        all-reduced counts of a sharded run)."""
        return self.metric_from_counts(self.counts() if counts is None else counts)

    @staticmethod
    def metric_from_counts(counts: Mapping[str, int]) -> Dict[str, Any]:
        out: Dict[str, Any] = dict(metrics_from_counts(counts))
        out.update({k: int(counts[k]) for k in COUNT_KEYS if k in counts})
        return out

    # ------------------------------------------------------------------ shards
    def state(self) -> List[Dict[str, Any]]:
        """The records as plain dicts (what ranks exchange)."""
        return [r.to_json() for r in self.records]

    def load_states(self, states: Sequence[Sequence[Mapping[str, Any]]]) -> None:
        """Replace the records by those of every rank's :meth:`state`, in dataset order; an index scored on
        two ranks is an error (a padded sampler would count it twice)."""
        records = sorted((ImageRecord.from_json(d) for part in states for d in part), key=lambda r: r.index)
        seen = [r.index for r in records]
        if len(set(seen)) != len(seen):
            dup = sorted({i for i in seen if seen.count(i) > 1})
            raise RuntimeError(f"dataset indices evaluated on more than one rank: {dup[:10]} (padded sampler?)")
        self.records = records

    # ------------------------------------------------------------------ PaddleOCR's interface
    def __call__(self, preds: Sequence[Mapping], batch, texts: Optional[Sequence[Sequence[str]]] = None) -> None:
        """Accumulate one batch, PaddleOCR's way.

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
        images = []
        for i, pred in enumerate(preds):
            gt = polygons(polys_b[i])
            care = gt_dont_care(texts[i] if texts is not None else None, tags_b[i], len(gt), self.protocol,
                                where=f"image {i}: ")
            index = len(self.records) + i
            images.append(ImageInput(index, f"image {index}", f"batch image {i}",
                                     Sample(gt=gt, gt_dont_care=care, det=polygons(pred["points"])),
                                     [float(s) for s in pred.get("scores", [])] if isinstance(pred, Mapping) else []))
        self.process(images)

    def get_counts(self) -> Dict[str, int]:
        """PaddleOCR-style name of :meth:`counts`."""
        return self.counts()

    def get_metric(self) -> Dict[str, Any]:
        """Metrics over everything accumulated since the last reset; then resets (PaddleOCR's contract)."""
        out = self.compute()
        self.reset()
        return out


def build_metric(cfg: Mapping[str, Any], protocol: Optional[str] = None) -> Any:
    """The config's ``Metric`` object (``DetMetric`` with its defaults when the section is absent);
    ``protocol`` (``tools/eval.py --protocol``) overrides ``Metric.protocol``."""
    section = dict(cfg.get("Metric") or {"name": "DetMetric"})
    if protocol is not None:
        section["protocol"] = protocol
    try:
        return METRICS.build(section, where="Metric")
    except ConfigError as exc:
        raise exc.with_context(file=cfg.get("__file__")) from None


__all__ = ["DetMetric", "ImageInput", "build_metric"]
