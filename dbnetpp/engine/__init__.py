"""Training engine: optimizers, learning-rate schedules, evaluation loop and trainer.

Importing this package registers the optimizers (OPTIMIZERS) and schedules
(LR_SCHEDULERS).  The trainer itself lives in :mod:`dbnetpp.engine.trainer`.
"""
from . import lr, optim  # noqa: F401  (registration)
from .evaluate import run_evaluation
from .optim import build_lr_scheduler, build_optimizer, check_optimizer_config

__all__ = ["build_optimizer", "build_lr_scheduler", "check_optimizer_config", "run_evaluation"]
