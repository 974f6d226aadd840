"""From evaluation inputs to the ICDAR2015 matching: polygons, don't-care flags, counts.

The one place for the adapters every evaluator shares: :class:`~dbnetpp.metrics.DetMetric`
(PaddleOCR-style batches), the shard evaluation of :mod:`dbnetpp.evaluation.runner` (training
and ``tools/eval.py``), its per-image records, and the RRC file reader
(:mod:`dbnetpp.metrics.rrc_io`).  They turn

* GT polygons, per image an ``[N, P, 2]`` array or tensor or a list of ``[P_i, 2]``, and the
  detected polygons (post-process ``points``, ``[K, 4, 2]`` int or a list of ``[P_i, 2]``) into
  lists of ``[P_i, 2]`` arrays (:func:`polygons`);
* per image the transcriptions (``texts``, ``[N]`` str) or else the ``ignore_tags`` (``[N]``
  bool) into the don't-care flags of the ``N`` GT polygons under a protocol
  (:func:`gt_dont_care`, :func:`dont_care_text`).

:data:`COUNT_KEYS` are the integer counts that add up over images, batches and ranks; precision,
recall and hmean come from their sums only (``icdar_eval.metrics_from_counts``).

Needs numpy only: a paddle ``Tensor`` is converted through its ``numpy()`` method.
"""
from __future__ import annotations

from typing import Any, List, Optional, Sequence

import numpy as np

COUNT_KEYS = ("gt_care", "det_care", "matched", "images")
METRIC_KEYS = ("precision", "recall", "hmean")  # what the counts give; any one can pick best_accuracy


def to_numpy(x: Any) -> np.ndarray:
    """An ndarray as it is; a paddle ``Tensor`` (anything with ``numpy()``) through it; else ``np.asarray``."""
    if isinstance(x, np.ndarray):
        return x
    if hasattr(x, "numpy"):
        return np.asarray(x.numpy())
    return np.asarray(x)


def polygons(polys: Any, dtype: Optional[type] = np.float64) -> List[np.ndarray]:
    """One image's polygons as a list of ``[P_i, 2]`` arrays.

    ``polys`` is an ``[N, P, 2]`` array or tensor (``N`` may be 0), a list / tuple of ``[P_i, 2]``
    (polygons with different numbers of points), or ``None`` (no polygon).  ``dtype`` converts
    the coordinates (``None`` keeps the input's, e.g. the post-process' int corners).
    """
    if polys is None:
        return []
    if isinstance(polys, (list, tuple)):
        return [_as(to_numpy(p), dtype).reshape(-1, 2) for p in polys]
    arr = _as(to_numpy(polys), dtype)
    return [a.reshape(-1, 2) for a in arr] if arr.size else []


def _as(arr: np.ndarray, dtype: Optional[type]) -> np.ndarray:
    return arr if dtype is None else arr.astype(dtype)


def dont_care_text(text: Optional[str], protocol: str) -> bool:
    """Whether a GT transcription marks a don't-care region under ``protocol``.

    The official tool ignores only ``###``; PaddleOCR's ``DetLabelEncode`` also ``*``.
    """
    if text is None:
        return False
    return text == "###" or (protocol == "paddleocr" and text == "*")


def gt_dont_care(texts: Optional[Sequence[str]], ignore_tags: Any, n: int, protocol: str,
                 where: str = "") -> List[bool]:
    """Don't-care flags of one image's ``n`` GT polygons.

    From the transcriptions ``texts`` by the protocol (:func:`dont_care_text`) when they are
    given, otherwise from ``ignore_tags`` (``[N]`` bool, array, tensor or list; ``None``: no GT).
    A count that differs from ``n`` is a ``ValueError`` (its message starts with ``where``).
    """
    if texts is not None:
        flags = [dont_care_text(t, protocol) for t in texts]
    elif ignore_tags is not None:
        flags = [bool(t) for t in to_numpy(ignore_tags).reshape(-1)]
    else:
        flags = []
    if len(flags) != n:
        raise ValueError(f"{where}{n} GT polygons but {len(flags)} ignore tags/texts")
    return flags
