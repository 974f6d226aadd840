"""What :class:`~dbnetpp.engine.trainer.Trainer` is built from, in the order it builds it.

1. :func:`build_parts`: data loaders (sharded by rank), model, loss, post-process and metric; most
   config errors surface here, before anything is written;
2. :func:`prepare_output`: the output folder, ``train.log`` and ``config.yml`` (rank 0);
3. :func:`log_header`: device, world size, seed;
4. optimizer and AMP (:mod:`~dbnetpp.engine.optim`, :mod:`~dbnetpp.engine.amp`), then the weights
   the training starts from: ``Global.checkpoints`` resumes (the trainer's ``_resume``,
   :func:`~dbnetpp.engine.state.resume_state`), else :func:`start_weights` (``Global.pretrained_model``,
   or nothing);
5. :func:`forward_state`: the tensors a skipped step restores and the ones it updates.
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Any, Callable, List, Mapping, NamedTuple, Optional

import paddle

from .. import dist as D
from ..checkpoint import load_pretrained
from ..config import save_config
from ..data import build_dataloader
from ..errors import ConfigError
from ..modeling import build_model, static_graph
from ..metrics import build_metric
from ..registry import LOSSES, POSTPROCESSES
from .amp import FLOAT_DTYPES
from .logger import get_logger


@dataclass
class Parts:
    """Everything the config's sections build (``eval_loader`` and ``metric``: None without an Eval section,
    the metric then ``DetMetric`` with its defaults when there is no Metric section; ``post_process``: None
    without a PostProcess section)."""
    train_loader: Any
    eval_loader: Any
    model: paddle.nn.Layer
    loss_fn: Callable
    post_process: Any
    metric: Any

    @property
    def main_indicator(self) -> str:
        """The metric value that decides ``best_accuracy`` (``hmean`` for DetMetric)."""
        return getattr(self.metric, "main_indicator", "hmean")


def build_parts(cfg: Mapping[str, Any], env: D.DistEnv, seed: int, policy: str) -> Parts:
    """Loaders for this rank (``policy`` = ``Global.bad_sample_policy``), model, loss, post-process, metric."""
    train_loader = build_dataloader(cfg, "Train", rank=env.rank, world_size=env.world_size, seed=seed, policy=policy)
    if len(train_loader) == 0:
        raise ConfigError("the Train set yields no batch (fewer samples than batch_size_per_card with "
                          "drop_last?)", key="Train.loader", file=cfg.get("__file__"))
    eval_loader = None
    if cfg.get("Eval") is not None:
        eval_loader = build_dataloader(cfg, "Eval", rank=env.rank, world_size=env.world_size, seed=seed,
                                       policy=policy)
        eval_loader.dataset.check_unique_images()  # a second line for an image would count its boxes twice
    # a fresh name scope: parameter (and so optimizer-state) names do not depend on what this process
    # built before, which keeps .pdopt files loadable
    with paddle.utils.unique_name.guard():
        model = build_model(cfg["Architecture"])
    return Parts(
        train_loader=train_loader, eval_loader=eval_loader, model=model,
        loss_fn=LOSSES.build(cfg["Loss"], where="Loss"),
        post_process=POSTPROCESSES.build(cfg["PostProcess"], where="PostProcess") if cfg.get("PostProcess") else None,
        metric=build_metric(cfg) if eval_loader is not None else None)


def prepare_output(cfg: Mapping[str, Any], save_dir: str, env: D.DistEnv) -> logging.Logger:
    """The output folder, ``train.log`` and ``config.yml`` (rank 0) -> the logger of this rank.

    An output folder that cannot be written is a config error naming ``Global.save_model_dir``."""
    try:
        if env.is_main:
            os.makedirs(save_dir, exist_ok=True)
        log = get_logger(save_dir if env.is_main else None, env.rank)
        if env.is_main:
            save_config(cfg, os.path.join(save_dir, "config.yml"))
        return log
    except OSError as exc:
        raise ConfigError(f"cannot write the output folder {os.path.abspath(save_dir)}: {exc.strerror or exc}",
                          key="Global.save_model_dir", file=cfg.get("__file__")) from None


def log_header(log: logging.Logger, cfg: Mapping[str, Any], g: Mapping[str, Any], env: D.DistEnv,
               save_dir: str) -> None:
    """Where the config went, device, world size, Paddle version, seed; the CPU-cores hint."""
    log.info(f"config: {cfg.get('__file__')} -> {os.path.join(save_dir, 'config.yml')}")
    log.info(f"device {env.device}, world size {env.world_size}"
             f"{' (gloo)' if env.distributed and env.device == 'cpu' else ''}, paddle {paddle.__version__}, "
             f"seed {g['seed']}")
    hint = D.cpu_cores_hint(env.device, env.world_size)
    if hint:
        log.info(hint)
    if g["deterministic"]:
        log.info("deterministic: seeded Python/NumPy/Paddle, deterministic GPU kernels; augmentation is "
                 "seeded per (seed, epoch, sample), so num_workers does not change the results")


def to_static_model(model: paddle.nn.Layer, log: logging.Logger) -> paddle.nn.Layer:
    """``Global.to_static``: the model as a static graph (:func:`~dbnetpp.modeling.static_graph`); checkpoints and
    state dicts are unchanged.  Training and evaluation each build their program on first use."""
    log.info("Global.to_static: the model runs as a static graph (paddle.jit.to_static, AST mode)")
    return static_graph(model)


def start_weights(model: paddle.nn.Layer, pretrained: Optional[str], log: logging.Logger) -> None:
    """A run that does not resume: load ``Global.pretrained_model`` if set, else train from scratch."""
    if pretrained:
        load_pretrained(model, str(pretrained), log=log.info)
    else:
        log.info("training from scratch (no Global.pretrained_model)")


class ForwardState(NamedTuple):
    """``running``: float state the forward pass updates that is not trained (BatchNorm ``_mean`` /
    ``_variance`` are such parameters), restored after a step without an update; ``trainable``: the
    parameters the optimizer updates (their gradient norm is checked; ``names``: their names in the
    model, for messages)."""
    running: List[paddle.Tensor]
    trainable: List[paddle.Tensor]
    names: List[str]


def forward_state(model: paddle.nn.Layer) -> ForwardState:
    """The :class:`ForwardState` of ``model`` (unwrapped from DataParallel / AMP decoration)."""
    net = D.unwrap(model)
    running = [t for t in list(net.buffers()) + [p for p in net.parameters() if not p.trainable]
               if t.dtype in FLOAT_DTYPES]
    named = [(n, p) for n, p in net.named_parameters() if p.trainable]
    return ForwardState(running, [p for _, p in named], [n for n, _ in named])


class EvalSchedule(NamedTuple):
    """``Global.eval_batch_step = [start, every]``: evaluate after ``start``, every ``every`` global steps."""
    start: int
    every: int

    def due(self, step: int) -> bool:
        return step > self.start and (step - self.start) % self.every == 0


def eval_schedule(g: Mapping[str, Any], has_eval: bool) -> Optional[EvalSchedule]:
    """The schedule of ``Global.eval_batch_step`` (an int ``every`` starts at 0); None without an Eval
    section or a schedule."""
    ebs = g.get("eval_batch_step")
    if not has_eval or ebs is None:
        return None
    return EvalSchedule(0, int(ebs)) if isinstance(ebs, int) else EvalSchedule(int(ebs[0]), int(ebs[1]))


__all__ = ["Parts", "EvalSchedule", "ForwardState", "build_parts", "prepare_output", "log_header", "start_weights",
           "forward_state", "eval_schedule", "to_static_model"]
