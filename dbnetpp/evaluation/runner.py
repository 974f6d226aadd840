"""Evaluation of one rank's shard of the Eval set: the one evaluation of training and ``tools/eval.py``.

Each rank runs its shard of the Eval loader through the model (under ``autocast`` when given) and
``DBPostProcess``, and hands each batch's images to the metric object
(:class:`~dbnetpp.metrics.DetMetric`, built from the config's ``Metric`` section), which scores them
with its protocol and keeps a record per image; :func:`~dbnetpp.evaluation.gather.merge_shards` then
sums the metric's integer counts (``gt_care``, ``det_care``, ``matched``, ``images``) over ranks and
the metric computes precision / recall / hmean once from the totals, as the ICDAR2015 protocol
aggregates over the whole set (DB paper's evaluation, after PaddleOCR's DetMetric).  Training
(``Trainer._evaluate``) stops there; ``tools/eval.py`` also gathers the records for its report.

* every image keeps its identity (dataset index, image path, ``label_file:line``), its
  detections and its matching, in an :class:`~dbnetpp.metrics.records.ImageRecord`;
* don't-care GT follows the protocol from the transcriptions when the batch carries
  ``texts`` (official: ``###`` only; paddleocr: ``###`` and ``*``), else ``ignore_tags``
  (:func:`dbnetpp.metrics.samples.gt_dont_care`);
* an image that fails to load under the ``skip`` bad-sample policy is not dropped (that would
  inflate recall): its GT is read from its label line and it is scored with no detections
  (``record.skipped`` says why).  A sample whose label line itself is unreadable has no GT to
  score; it is returned in ``ShardResult.unscored``.

Batches are matched to dataset indices through the loader's batch sampler, which yields
the ``(epoch, index)`` lists the loader loads, in order; a skipped sample is recognised by
its ``label_file:line`` in ``batch["_skipped"]`` and the image paths of the others are
checked against their label lines.

A signal (``should_stop``, asked before each batch) ends this rank's pass within one batch;
the shard is marked ``stopped`` and :func:`~dbnetpp.evaluation.gather.merge_shards`, where all
ranks still meet, raises :class:`EvaluationInterrupted` on every rank.
"""
from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field
from typing import Any, Callable, ContextManager, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np
import paddle

from ..data.label_file import parse_label_line, read_raw_lines
from ..data.loader import SKIPPED_KEY, num_samples
from ..data.transforms.det_label_encode import DetLabelEncode
from ..dist import unwrap
from ..errors import DataError
from ..metrics.det_metric import DetMetric, ImageInput
from ..metrics.icdar_eval import Sample
from ..metrics.records import ImageRecord
from ..metrics.samples import gt_dont_care, polygons, to_numpy


class EvaluationInterrupted(Exception):
    """``should_stop`` became true on some rank during :func:`evaluate_shard` (a signal); raised on
    every rank by :func:`~dbnetpp.evaluation.gather.merge_shards`."""


@dataclass
class ShardResult:
    """What one rank evaluated: the metric holding its records, and what could not be scored."""

    metric: DetMetric
    unscored: List[Dict[str, str]] = field(default_factory=list)  # {"label", "reason"}
    seconds_model: float = 0.0  # forward + post-process
    seconds_total: float = 0.0  # the whole pass, loading included
    batches: int = 0
    stopped: bool = False  # should_stop ended the pass early: the records are incomplete

    @property
    def records(self) -> List[ImageRecord]:
        return self.metric.records

    @property
    def images_per_second(self) -> float:
        """This rank's images (skipped ones scored too) per second of model + post-process time."""
        return len(self.records) / self.seconds_model if self.seconds_model > 0 else 0.0


class LabelLookup:
    """Image path and GT of a dataset sample read from its label line (cached per label file)."""

    def __init__(self, dataset):
        self.dataset = dataset
        self._lines: Dict[str, Dict[int, bytes]] = {}
        self._encode = DetLabelEncode()

    def entry(self, index: int):
        file, line = self.dataset.location(index)
        if file not in self._lines:
            self._lines[file] = dict(read_raw_lines(file))
        return parse_label_line(self._lines[file][line], file, line, self.dataset.data_dir,
                                getattr(self.dataset, "delimiter", "\t"))

    def ground_truth(self, index: int) -> Tuple[str, np.ndarray, List[str]]:
        """``(image path, polys [N, P, 2], texts)``; raises :class:`DataError` naming file:line."""
        entry = self.entry(index)
        try:
            data = self._encode({"label": entry.label})
        except DataError as exc:
            raise DataError(exc.raw_message, entry.file, entry.line) from None
        return entry.path, data["polys"], data["texts"]


def _failed_indices(indices: Sequence[int], skipped: Sequence[str], dataset) -> Dict[int, str]:
    """Which of ``indices`` the loader skipped, with the reason (matched on ``file:line: ``)."""
    out: Dict[int, str] = {}
    recognised = set()
    for idx in indices:
        file, line = dataset.location(idx)
        prefix = f"{file}:{line}: "
        for msg in skipped:
            if msg.startswith(prefix):
                out[idx] = msg[len(prefix):]
                recognised.add(msg)
                break
    unknown = [m for m in skipped if m not in recognised]
    if unknown:
        raise RuntimeError(f"skipped samples that are not in this batch: {unknown}")
    return out


def evaluate_shard(model: paddle.nn.Layer, loader, post_process, metric: DetMetric, *,
                   progress: Optional[Callable[[int], Any]] = None,
                   autocast: Optional[Callable[[], ContextManager]] = None,
                   should_stop: Optional[Callable[[], bool]] = None) -> ShardResult:
    """Run this rank's shard of ``loader`` through ``model`` and ``post_process``; ``metric`` (reset first)
    scores each image with its protocol and keeps the records.

    ``loader`` is a :func:`dbnetpp.data.build_dataloader` Eval loader: its ``batch_sampler``
    yields the ``(epoch, index)`` lists it loads, its batches hold ``image`` ([N,3,H,W]),
    ``shape`` ([N,4]: src_h, src_w, ratio_h, ratio_w), ``polys`` (per image [K,P,2]) and
    ``ignore_tags`` (per image [K]), optionally ``texts`` and ``img_path``.  ``model`` may be
    wrapped in ``paddle.DataParallel``; its train/eval mode is restored afterwards.
    ``progress(n)`` is called after each batch with the number of samples the batch covered
    (skipped ones included); the forward pass runs under ``autocast()`` when given (AMP).

    ``should_stop`` is asked before each batch; once it is true this rank stops evaluating and
    returns the shard with ``stopped`` set.  Nothing is collective here: every rank must still
    pass its shard to :func:`~dbnetpp.evaluation.gather.merge_shards`, whose all-reduce carries
    the flag, so a signal on one rank stops all of them without leaving a rank alone in a
    collective.
    """
    dataset = loader.dataset
    lookup = LabelLookup(dataset)
    plan = [[int(i) for _, i in chunk] for chunk in loader.batch_sampler]
    net = unwrap(model)
    was_training = net.training
    net.eval()
    autocast = autocast or contextlib.nullcontext
    metric.reset()
    out = ShardResult(metric)
    start = time.perf_counter()
    try:
        with paddle.no_grad():
            for b, batch in enumerate(loader):
                if should_stop is not None and should_stop():
                    out.stopped = True
                    break
                if b >= len(plan):
                    raise RuntimeError("the loader yielded more batches than its batch sampler planned")
                metric.process(_batch_images(net, batch, plan[b], post_process, metric.protocol, lookup, dataset, out,
                                             autocast))
                out.batches += 1
                if progress is not None:
                    progress(len(plan[b]))
    finally:
        if was_training:
            net.train()
    if not out.stopped and out.batches != len(plan):
        raise RuntimeError(f"the loader yielded {out.batches} batches, its batch sampler planned {len(plan)}")
    out.seconds_total = time.perf_counter() - start
    return out


def _batch_images(net, batch: Mapping[str, Any], indices: List[int], post_process, protocol: str,
                  lookup: LabelLookup, dataset, out: ShardResult, autocast) -> List[ImageInput]:
    """The batch's images for the metric, in dataset order: those loaded with their detections, those the
    loader skipped with their GT from the label line and no detections."""
    failed = _failed_indices(indices, batch.get(SKIPPED_KEY) or [], dataset)
    good = [i for i in indices if i not in failed]
    n = num_samples(batch)
    if n != len(good):
        raise RuntimeError(f"batch holds {n} samples, expected {len(good)} (indices {indices}, skipped {failed})")
    images = _loaded(net, batch, good, post_process, protocol, lookup, out, autocast) if good else []
    images += _not_loaded(failed, protocol, lookup, dataset, out)
    return sorted(images, key=lambda im: im.index)


def _loaded(net, batch, good: List[int], post_process, protocol: str, lookup: LabelLookup,
            out: ShardResult, autocast) -> List[ImageInput]:
    """Model + post-process on the batch's samples (dataset indices ``good``, in batch order)."""
    t0 = time.perf_counter()
    image = batch["image"]
    with autocast():
        preds = net(image if isinstance(image, paddle.Tensor) else paddle.to_tensor(image))
    maps = preds["maps"] if isinstance(preds, Mapping) else preds
    boxes = post_process({"maps": to_numpy(maps.astype("float32"))}, to_numpy(batch["shape"]))
    out.seconds_model += time.perf_counter() - t0
    texts_b, paths_b = batch.get("texts"), batch.get("img_path")
    pending = []
    for k, idx in enumerate(good):
        entry = lookup.entry(idx)
        if paths_b is not None and str(paths_b[k]) != entry.path:
            raise RuntimeError(f"batch sample {k} is {paths_b[k]}, expected {entry.path} "
                               f"({entry.file}:{entry.line})")
        gt = polygons(batch["polys"][k])
        care = gt_dont_care(texts_b[k] if texts_b is not None else None, batch["ignore_tags"][k], len(gt), protocol,
                            where=f"{entry.file}:{entry.line}: ")
        det = polygons(boxes[k]["points"], dtype=None)  # the post-process' int corners, as detected
        pending.append(ImageInput(idx, entry.path, f"{entry.file}:{entry.line}",
                                  Sample(gt=gt, gt_dont_care=care, det=det), list(boxes[k]["scores"]), None))
    return pending


def _not_loaded(failed: Dict[int, str], protocol: str, lookup: LabelLookup, dataset,
                out: ShardResult) -> List[ImageInput]:
    """Samples the loader skipped: GT from the label line, no detections (or unscored without GT)."""
    pending = []
    for idx, reason in failed.items():
        file, line = dataset.location(idx)
        try:
            path, polys, texts = lookup.ground_truth(idx)
        except DataError as exc:
            out.unscored.append({"label": f"{file}:{line}",
                                 "reason": f"{reason}; its label cannot be read either: {exc.raw_message}"})
            continue
        gt = polygons(polys)
        care = gt_dont_care(texts, None, len(gt), protocol, where=f"{file}:{line}: ")
        pending.append(ImageInput(idx, path, f"{file}:{line}", Sample(gt=gt, gt_dont_care=care, det=[]), [], reason))
    return pending
