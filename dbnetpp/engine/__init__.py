"""Training engine: optimizers, learning-rate schedules and the trainer.

Importing this package registers the optimizers (OPTIMIZERS) and schedules
(LR_SCHEDULERS).  The trainer itself lives in :mod:`dbnetpp.engine.trainer`; it
evaluates with :mod:`dbnetpp.evaluation` (as ``tools/eval.py`` does) and uses the
process-group helpers of :mod:`dbnetpp.dist`.
"""
from . import lr, optim  # noqa: F401  (registration)
from .optim import build_lr_scheduler, build_optimizer, check_optimizer_config

__all__ = ["build_optimizer", "build_lr_scheduler", "check_optimizer_config"]
