"""Checks of a loaded config that training needs beyond :func:`dbnetpp.config.validate_config`
(which applies every section's own rules, e.g. ``Global``'s from :mod:`dbnetpp.global_schema`).

They run before anything is built, so a missing checkpoint file or an output folder holding an
earlier run never costs a data-loader start-up or a model build.
"""
from __future__ import annotations

import os
from typing import Any, Mapping

from ..checkpoint import checkpoint_file
from ..config import check_resolved_target
from ..errors import ConfigError
from ..global_schema import GLOBAL_KEYS, global_value
from .state import LATEST


def _checkpoint_exists(path: str) -> bool:
    return os.path.isfile(checkpoint_file(path))


def _missing_checkpoint(path: str) -> str:
    if "://" in path:
        return (f"'{path}' is a URL; weights are never downloaded during a run: download the file first (e.g. bash "
                f"scripts/download_pretrained.sh) and give its local path without .pdparams")
    if os.path.isdir(path):
        found = sorted(f[: -len(".pdparams")] for f in os.listdir(path) if f.endswith(".pdparams"))
        hint = f" (it holds {', '.join(found[:4])}: e.g. {os.path.join(path, found[0])})" if found else ""
        return f"'{path}' is a folder; give the checkpoint prefix inside it, without .pdparams{hint}"
    return f"no checkpoint at '{path}' (expected {checkpoint_file(path)})"


def check_train_config(cfg: Mapping[str, Any]) -> None:
    """Checks beyond :func:`dbnetpp.config.validate_config` that training needs; raises ConfigError."""
    g = cfg.get("Global") or {}
    file = cfg.get("__file__")
    try:
        if not g.get("epoch_num"):
            raise ConfigError("is required (number of training epochs)", key="Global.epoch_num")
        for sec in ("Train", "Loss", "Optimizer"):  # their contents: validate_config
            if cfg.get(sec) is None:
                raise ConfigError(f"missing section '{sec}'", key=sec)
        if cfg.get("Eval") is not None:
            for sec in ("PostProcess", "Metric"):
                if cfg.get(sec) is None:
                    raise ConfigError(f"missing section '{sec}' (needed to evaluate the Eval set)", key=sec)
        for key in ("checkpoints", "pretrained_model"):
            path = g.get(key)
            if path and not _checkpoint_exists(str(path)):
                raise ConfigError(_missing_checkpoint(str(path)), key=f"Global.{key}")
        check_output_dir(g)
        check_resolved_target(cfg, os.path.join(str(global_value(g, "save_model_dir")), "config.yml"))
    except ConfigError as exc:
        raise exc.with_context(file=file) from None


def check_output_dir(g: Mapping[str, Any]) -> None:
    """A new run never replaces the checkpoints of an earlier one (PaddleOCR overwrites them silently).

    ``save_model_dir`` may hold ``*.pdparams`` only when this run resumes from a checkpoint in that
    folder (``Global.checkpoints``) or ``Global.overwrite`` is true.
    """
    out = str(global_value(g, "save_model_dir"))
    blank = GLOBAL_KEYS["save_model_dir"].rule(out)  # this check also runs on configs not validated yet
    if blank:
        raise ConfigError(blank, key="Global.save_model_dir")
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
        f"-o Global.checkpoints={os.path.join(out, LATEST)}, train into another folder with "
        f"-o Global.save_model_dir=DIR, or replace it with -o Global.overwrite=true", key="Global.save_model_dir")
