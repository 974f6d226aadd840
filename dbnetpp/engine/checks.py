"""Checks of a loaded config that training needs beyond :func:`dbnetpp.config.validate_config`.

They run before anything is built, so a wrong optimizer key or a missing
checkpoint file never costs a data-loader start-up or a model build.
"""
from __future__ import annotations

import os
from typing import Any, Mapping

from ..checkpoint import checkpoint_prefix
from ..errors import ConfigError
from .optim import check_optimizer_config

# Global defaults (PaddleOCR's where it has one)
DEFAULTS = {"log_smooth_window": 20, "print_batch_step": 10, "save_model_dir": "./output/", "save_epoch_step": 1,
            "seed": 1024, "max_bad_steps": 5, "eval_at_end": True, "bad_sample_policy": "fail"}


def _checkpoint_exists(path: str) -> bool:
    return os.path.isfile(checkpoint_prefix(path) + ".pdparams")


def check_train_config(cfg: Mapping[str, Any]) -> None:
    """Checks beyond :func:`dbnetpp.config.validate_config` that training needs; raises ConfigError."""
    g = cfg.get("Global") or {}
    file = cfg.get("__file__")
    try:
        if not g.get("epoch_num"):
            raise ConfigError("is required (number of training epochs)", key="Global.epoch_num")
        for sec in ("Train", "Loss"):
            if cfg.get(sec) is None:
                raise ConfigError(f"missing section '{sec}'", key=sec)
        if cfg.get("Eval") is not None:
            for sec in ("PostProcess", "Metric"):
                if cfg.get(sec) is None:
                    raise ConfigError(f"missing section '{sec}' (needed to evaluate the Eval set)", key=sec)
        seed = g.get("seed")
        if seed is not None and not 0 <= seed < 2 ** 63:
            raise ConfigError(f"must be an integer in [0, 2**63), got {seed!r}", key="Global.seed")
        if g.get("amp_dtype") not in (None, "float16", "bfloat16"):
            raise ConfigError(f"must be float16 or bfloat16, got {g['amp_dtype']!r}", key="Global.amp_dtype")
        check_optimizer_config(cfg.get("Optimizer"))
        for key in ("checkpoints", "pretrained_model"):
            path = g.get(key)
            if path and not _checkpoint_exists(str(path)):
                raise ConfigError(f"no checkpoint at '{path}' (expected {checkpoint_prefix(str(path))}"
                                  f".pdparams)", key=f"Global.{key}")
        check_output_dir(g)
    except ConfigError as exc:
        raise exc.with_context(file=file) from None


def check_output_dir(g: Mapping[str, Any]) -> None:
    """A new run never replaces the checkpoints of an earlier one (PaddleOCR overwrites them silently).

    ``save_model_dir`` may hold ``*.pdparams`` only when this run resumes from a checkpoint in that
    folder (``Global.checkpoints``) or ``Global.overwrite`` is true.
    """
    out = g.get("save_model_dir")
    if out is None:
        out = DEFAULTS["save_model_dir"]
    if not str(out).strip():
        raise ConfigError("is empty: name the folder for checkpoints and logs", key="Global.save_model_dir")
    out = str(out)
    if g.get("overwrite") or not os.path.isdir(out):
        return
    saved = sorted(f for f in os.listdir(out) if f.endswith(".pdparams"))
    if not saved:
        return
    ckpt = g.get("checkpoints")
    if ckpt and os.path.samefile(os.path.dirname(os.path.abspath(str(ckpt))), out):
        return
    shown = ", ".join(saved[:4]) + (" ..." if len(saved) > 4 else "")
    raise ConfigError(
        f"{out} holds the checkpoints of an earlier run ({shown}); a new run would replace them. Resume it with "
        f"-o Global.checkpoints={os.path.join(out, 'latest')}, train into another folder with "
        f"-o Global.save_model_dir=DIR, or replace it with -o Global.overwrite=true", key="Global.save_model_dir")
