"""Which weights an evaluation uses, and loading them completely.

PaddleOCR's ``tools/eval.py`` semantics: ``Global.checkpoints`` wins, else
``Global.pretrained_model``; paths with or without ``.pdparams``.  Unlike training, an
evaluation needs every entry of the model: a file that leaves entries missing (e.g. an
ImageNet backbone) or with other shapes is an error, not a warning.
"""
from __future__ import annotations

import os
from typing import Any, Callable, Mapping, Tuple

import paddle

from ..checkpoint import LoadReport, checkpoint_file, load_pretrained
from ..errors import CheckpointError, ConfigError
from ..modeling.detector import training_only

WEIGHT_KEYS = ("checkpoints", "pretrained_model")


def resolve_weights(cfg: Mapping[str, Any]) -> Tuple[str, str]:
    """``(path as given, "Global.checkpoints" | "Global.pretrained_model")``.

    Raises :class:`ConfigError` when neither is set and :class:`CheckpointError` when the
    ``.pdparams`` file does not exist.
    """
    g = cfg.get("Global") or {}
    for key in WEIGHT_KEYS:
        value = g.get(key)
        if value:
            path = str(value)
            file = checkpoint_file(path)
            if not os.path.isfile(file):
                where = f"Global.{key}={path}"
                raise CheckpointError(f"{file}: file not found ({where}; give the checkpoint prefix, e.g. "
                                      f"output/<model>/best_accuracy, with or without .pdparams)")
            return path, f"Global.{key}"
    raise ConfigError("no weights to evaluate: pass -o Global.checkpoints=PATH (or Global.pretrained_model=PATH), "
                      "PATH being a .pdparams file with or without the extension", key="Global.checkpoints",
                      file=cfg.get("__file__"))


def check_inference_weights(report: LoadReport, action: str, remedy: str) -> None:
    """Raise :class:`CheckpointError` unless the loaded file filled every entry the eval-mode network uses,
    with its shape, and held nothing the model has no place for.

    Entries used only by the training loss (DBHead's threshold branch) may be absent: inference exports
    do not hold them.  ``action`` ("evaluating it", "exporting it") and ``remedy`` complete the message.
    """
    missing = [name for name in report.missing if not training_only(name)]
    if missing or report.mismatched:
        raise CheckpointError(
            f"{report.path}: the file does not hold the whole model ({len(missing)} entries missing, "
            f"{len(report.mismatched)} with other shapes, see the table above); {action} would use "
            f"randomly initialised layers. {remedy}")
    if report.unexpected:
        shown = ", ".join(report.unexpected[:8]) + (" ..." if len(report.unexpected) > 8 else "")
        raise CheckpointError(
            f"{report.path}: {len(report.unexpected)} entries of the file have no place in this model ({shown}); "
            f"the weights were trained with another Architecture (e.g. a DBNet++ checkpoint, with neck.asf.*, "
            f"under a DBNet config) and {action} would silently drop them. {remedy}")


def load_eval_weights(model: paddle.nn.Layer, path: str, log: Callable[[str], Any] = print) -> LoadReport:
    """Load ``path`` into ``model``, which must then be complete (:func:`check_inference_weights`)."""
    report = load_pretrained(model, path, log=log)
    check_inference_weights(report, "evaluating it", "Is it backbone-only pretrained weights, or another "
                            "Architecture? Evaluate with the config the weights were trained with.")
    return report
