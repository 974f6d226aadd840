"""Evaluate a model on an Eval set, on one rank or sharded over several: the two entry points.

- :func:`evaluate_config` (``tools/eval.py``): builds the Eval loader (sharded without padding),
  the model with its weights and the post-process from a validated config; per-image records
  gathered into the metric for the report.
- :func:`evaluate_in_training` (the trainer): the model being trained, the trainer's loader and metric;
  counts all-reduced, no records gathered.

Both take the metric object of the config's ``Metric`` section (:func:`dbnetpp.metrics.build_metric`).

Both run :func:`~dbnetpp.evaluation.runner.evaluate_shard` on this rank and merge all ranks with
:func:`~dbnetpp.evaluation.gather.merge_shards`.
"""
from __future__ import annotations

import copy
from typing import Any, Callable, Dict, Mapping

import paddle

from .. import registered  # noqa: F401  (registers every module name)
from ..data import build_dataloader
from ..dist import DistEnv
from ..errors import ConfigError
from ..global_schema import global_value
from ..metrics.det_metric import DetMetric
from ..modeling import build_model
from ..registry import POSTPROCESSES
from .gather import EvalResult, merge_shards
from .runner import evaluate_shard
from .weights import load_eval_weights

# Keys the per-image report needs from each Eval sample besides the metric inputs:
# transcriptions (don't-care decided by the protocol) and the image path.
REPORT_KEYS = ("texts", "img_path")


def _transform_names(transforms) -> list:
    return [next(iter(t)) for t in transforms or [] if isinstance(t, Mapping) and t]


def with_report_keys(cfg: Mapping[str, Any]) -> Dict[str, Any]:
    """A copy of ``cfg`` whose Eval ``KeepKeys`` also keeps :data:`REPORT_KEYS`.

    ``texts`` is added only when the pipeline has ``DetLabelEncode`` (which produces it).
    """
    out = copy.deepcopy(dict(cfg))
    transforms = (((out.get("Eval") or {}).get("dataset") or {}).get("transforms")) or []
    names = _transform_names(transforms)
    for item in transforms:
        if isinstance(item, Mapping) and "KeepKeys" in item:
            args = item["KeepKeys"] or {}
            keys = list(args.get("keep_keys") or [])
            for key in REPORT_KEYS:
                if key == "texts" and "DetLabelEncode" not in names:
                    continue
                if key not in keys:
                    keys.append(key)
            item["KeepKeys"] = {**args, "keep_keys": keys}
    return out


def _silent(_msg: str) -> None:
    return None


def evaluate_config(cfg: Mapping[str, Any], weights: str, env: DistEnv, metric: DetMetric, *,
                    log: Callable[[str], Any] = print, progress: bool = True) -> EvalResult:
    """Evaluate ``weights`` on ``cfg``'s Eval set with ``metric`` (:func:`~dbnetpp.metrics.build_metric`);
    every rank returns the merged result, the metric holding the records of all ranks.

    ``Global.bad_sample_policy`` (``fail`` by default) decides what an image that cannot be
    loaded does: stop with an error naming ``label_file:line``, or (``skip``) count as an
    image without detections.  ``log`` and the progress bar are used on rank 0 only.
    """
    if not cfg.get("Eval"):
        raise ConfigError("the config has no Eval section", key="Eval", file=cfg.get("__file__"))
    if not cfg.get("PostProcess"):
        raise ConfigError("the config has no PostProcess section", key="PostProcess", file=cfg.get("__file__"))
    g = cfg.get("Global") or {}
    policy = global_value(g, "bad_sample_policy")
    cfg = with_report_keys(cfg)
    loader = build_dataloader(cfg, "Eval", rank=env.rank, world_size=env.world_size, seed=int(global_value(g, "seed")),
                              policy=policy)
    loader.dataset.check_unique_images()  # a second line for an image would count its boxes twice
    post_process = POSTPROCESSES.build(cfg["PostProcess"], where="PostProcess")
    model = build_model(cfg["Architecture"])
    load_eval_weights(model, weights, log=log if env.is_main else _silent)
    bar = None
    if progress and env.is_main:
        from tqdm import tqdm

        total = sum(len(chunk) for chunk in loader.batch_sampler)
        desc = "eval" if not env.distributed else f"eval (rank 0 of {env.world_size})"
        bar = tqdm(total=total, desc=desc, unit="img", dynamic_ncols=True)
    try:
        shard = evaluate_shard(model, loader, post_process, metric, progress=bar.update if bar else None)
    finally:
        if bar is not None:
            bar.close()
    return merge_shards(shard, rank=env.rank, distributed=env.distributed)


def evaluate_in_training(model: paddle.nn.Layer, loader, post_process, metric: DetMetric, env: DistEnv, *,
                         autocast: Callable[[], Any], should_stop: Callable[[], bool],
                         warn: Callable[[str], Any]) -> Dict[str, Any]:
    """The evaluation of ``tools/eval.py`` on this rank's shard of ``loader``, counts all-reduced.

    Returns precision, recall, hmean, ``gt_care``, ``det_care``, ``matched``, ``images`` and ``fps``
    (this rank's images/s of model + post-process) on every rank.  Images whose label cannot be read
    are named through ``warn``, as is an image count that differs from the Eval set's.  Raises
    :class:`~dbnetpp.evaluation.runner.EvaluationInterrupted` on every rank once ``should_stop()``.
    """
    shard = evaluate_shard(model, loader, post_process, metric, autocast=autocast, should_stop=should_stop)
    merged = merge_shards(shard, rank=env.rank, distributed=env.distributed, gather_records=False)
    for item in shard.unscored:
        warn(f"{item['label']}: not scored: {item['reason']}")
    cur: Dict[str, Any] = {**metric.compute(merged.counts), "fps": shard.images_per_second}
    dataset = loader.dataset
    expected = getattr(dataset, "num_samples", None)
    if expected is None and hasattr(dataset, "__len__"):
        expected = len(dataset)
    if expected is not None and cur["images"] != expected:
        warn(f"evaluated {cur['images']} images but the Eval set has {expected} "
             f"({len(shard.unscored)} with unreadable labels on this rank could not be scored)")
    return cur
