"""``ImageRecord``: the evaluation outcome of one image (GT, detections, counts, P / R / H)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional, Sequence

import numpy as np

from .icdar_eval import SampleResult
from .samples import COUNT_KEYS


def _points(polys: Sequence[np.ndarray], as_int: bool) -> List[List[List[float]]]:
    out = []
    for p in polys:
        arr = np.asarray(p).reshape(-1, 2)
        out.append(arr.astype(np.int64).tolist() if as_int else arr.astype(np.float64).tolist())
    return out


@dataclass
class ImageRecord:
    """One evaluated image.

    ``gt`` are the GT polygons ``[P, 2]`` in source-image pixels with their don't-care flags
    (as the protocol decided them), ``det`` the detected polygons (int ``[P, 2]``) with
    ``scores``.  ``result`` holds the matching (:class:`~dbnetpp.metrics.SampleResult`).
    ``skipped`` is the reason an image that could not be loaded was scored without
    detections (``None`` for a normally evaluated image).
    """

    index: int  # dataset index (position among the Eval samples)
    image: str  # image path
    label: str  # "label_file:line"
    gt: List[np.ndarray]
    gt_dont_care: List[bool]
    det: List[np.ndarray]
    scores: List[float]
    result: SampleResult
    skipped: Optional[str] = None
    extra: Dict[str, Any] = field(default_factory=dict)

    def metrics(self) -> Dict[str, float]:
        """Per-image precision / recall / hmean (RRC per-sample convention)."""
        return self.result.metrics()

    def counts(self) -> Dict[str, int]:
        """This image's :data:`~dbnetpp.metrics.samples.COUNT_KEYS` counts (``images`` is 1)."""
        return {"gt_care": self.result.gt_care, "det_care": self.result.det_care,
                "matched": self.result.matched, "images": 1}

    def to_json(self) -> Dict[str, Any]:
        """Plain-Python dict (JSON-serialisable; also what ranks exchange)."""
        r = self.result
        out: Dict[str, Any] = {"index": self.index, "image": self.image, "label": self.label}
        out.update(self.metrics())
        out.update(gt_care=r.gt_care, det_care=r.det_care, matched=r.matched,
                   gt_dont_care=[int(i) for i in r.gt_dont_care], det_dont_care=[int(i) for i in r.det_dont_care],
                   gt_skipped=[int(i) for i in r.gt_skipped], det_skipped=[int(i) for i in r.det_skipped],
                   pairs=[dict(p) for p in r.pairs], skipped=self.skipped,
                   gt=_points(self.gt, as_int=False), gt_is_dont_care=[bool(f) for f in self.gt_dont_care],
                   detections=_points(self.det, as_int=True), scores=[float(s) for s in self.scores])
        out.update(self.extra)
        return out

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> "ImageRecord":
        result = SampleResult(gt_care=int(d["gt_care"]), det_care=int(d["det_care"]), matched=int(d["matched"]),
                              pairs=[dict(p) for p in d.get("pairs", [])],
                              gt_dont_care=list(d.get("gt_dont_care", [])),
                              det_dont_care=list(d.get("det_dont_care", [])),
                              gt_skipped=list(d.get("gt_skipped", [])), det_skipped=list(d.get("det_skipped", [])))
        known = {"index", "image", "label", "precision", "recall", "hmean", "gt_care", "det_care", "matched",
                 "gt_dont_care", "det_dont_care", "gt_skipped", "det_skipped", "pairs", "skipped", "gt",
                 "gt_is_dont_care", "detections", "scores"}
        return cls(index=int(d["index"]), image=str(d["image"]), label=str(d["label"]),
                   gt=[np.asarray(p, np.float64).reshape(-1, 2) for p in d.get("gt", [])],
                   gt_dont_care=[bool(f) for f in d.get("gt_is_dont_care", [])],
                   det=[np.asarray(p, np.int64).reshape(-1, 2) for p in d.get("detections", [])],
                   scores=[float(s) for s in d.get("scores", [])], result=result, skipped=d.get("skipped"),
                   extra={k: v for k, v in d.items() if k not in known})


def sum_record_counts(records: Sequence[ImageRecord]) -> Dict[str, int]:
    """Counts summed over records (the same numbers ``DetMetric.get_counts`` accumulates)."""
    total = dict.fromkeys(COUNT_KEYS, 0)
    for rec in records:
        for k, v in rec.counts().items():
            total[k] += v
    return total
